"""Every table of a warehouse file as comparable data: the "exactly equal" of the kill and incremental tests.

``dump`` lists every table and view of the file, in every schema, from DuckDB's catalog (so a table added
later is compared too), casts every column to text and sorts the rows, so that row order and float
formatting can neither hide nor fake a difference. Columns named in ``excluded`` as (table, column) --
the wall-clock ones -- are left out. Table comments are not compared (``patient_attributes`` keeps its
cache tag there: when it was built, not what it holds).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import duckdb

Dump = dict[str, list[tuple]]

# Columns holding wall-clock time: they differ between any two runs.
WALL_CLOCK = frozenset(
    {
        ("loads", "started_at"),
        ("loads", "finished_at"),
        ("loads", "duration_s"),
        ("agg_runs", "computed_at"),
    }
)


def dump(db: Path, excluded: Collection[tuple[str, str]] = WALL_CLOCK) -> Dump:
    """Every table and view of the file (catalog order), all columns but ``excluded`` as text, rows sorted."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        relations = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE NOT internal AND NOT temporary "
            "ORDER BY ALL"
        ).fetchall()
        out: Dump = {}
        for schema, name in relations:
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                    "ORDER BY column_index",
                    [schema, name],
                ).fetchall()
                if (name, c) not in excluded
            ]
            cast = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
            out[f"{schema}.{name}"] = con.execute(
                f'SELECT {cast} FROM "{schema}"."{name}" ORDER BY ALL'
            ).fetchall()
        return out
    finally:
        con.close()


def differences(got: Dump, want: Dump) -> list[str]:
    """Names of the tables whose contents differ (or that only one side has)."""
    return sorted(t for t in set(got) | set(want) if got.get(t) != want.get(t))
