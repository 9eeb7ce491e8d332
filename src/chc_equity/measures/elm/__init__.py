"""Measures compiled from their published ELM (CQL's machine form) into set-based SQL.

- :mod:`.library`: load a package's ELM libraries, resolve includes by name and version;
- :mod:`.compiler`: ELM expressions -> DuckDB SQL relations over every patient at once;
- :mod:`.measure`: a Measure resource's populations -> compiled defines -> the engine's scoring;
- :mod:`.conformance`: run a package's official test cases and compare with its ``expected.csv``;
- :mod:`.run`: compiled measures into ``measure_results`` (and which engine runs a measure that has both);
- :mod:`.crosscheck`: compiled vs hand-written on one warehouse, every patient and population.

CLI: ``chc-equity measures compile`` (print the SQL), ``measures run|evaluate --package`` (compiled
measures, ``--engine``) and ``measures elm-run`` (agreement with the official cases per measure).
"""
