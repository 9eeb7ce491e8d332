"""Value sets and direct-reference codes, shipped as package data and loaded into DuckDB."""
