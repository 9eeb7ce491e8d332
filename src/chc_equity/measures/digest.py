"""A fingerprint of ``measure_results``: proves a refactoring of the measure engine changed no result.

The digest is a SHA-256 per measure over every result row in a fixed order (strata sorted), so two
runs agree exactly when every subject of every measure lands in the same populations. It holds no
patient data (only hashes and counts), so it can be stored in the repository and compared in a test.
"""

from __future__ import annotations

import hashlib

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE

_ROW = """
SELECT measure, center, group_id, period_start, period_end, subject_type, subject_id, patient_id,
       initial_population, denominator, denominator_exclusion, denominator_exception,
       numerator, numerator_exclusion, list_sort(coalesce(strata, [])) AS strata
FROM {table}
ORDER BY ALL
"""


def results_digest(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
    """``{measure: {"rows": n, "sha256": hex}}`` over ``measure_results``, one entry per measure."""
    digests: dict[str, hashlib._Hash] = {}
    rows: dict[str, int] = {}
    cursor = con.execute(_ROW.format(table=RESULTS_TABLE))
    while batch := cursor.fetchmany(10_000):
        for row in batch:
            h = digests.setdefault(row[0], hashlib.sha256())
            h.update(repr(row[1:]).encode())
            rows[row[0]] = rows.get(row[0], 0) + 1
    return {m: {"rows": rows[m], "sha256": digests[m].hexdigest()} for m in sorted(digests)}
