"""Measures compiled from their published ELM (CQL's machine form) into set-based SQL.

- :mod:`.library`: load a package's ELM libraries, resolve includes by name and version;
- :mod:`.compiler`: ELM expressions -> DuckDB SQL relations over every patient at once;
- :mod:`.measure`: a Measure resource's populations -> compiled defines -> the engine's scoring;
- :mod:`.conformance`: run a package's official test cases and compare with its ``expected.csv``.

CLI: ``chc-equity measures elm-sql`` (print the SQL) and ``measures elm-run`` (agreement per measure).
"""
