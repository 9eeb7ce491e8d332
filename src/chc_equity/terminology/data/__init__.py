"""Package data: terminology.json.gz, built by scripts/build_terminology.py (a package so wheels ship it)."""
