"""The embedded run of the same inputs, and a row-for-row comparison with a Spark output -- live, or
against stored digests of the embedded run's tables.

The reference is what a user of the embedded warehouse runs (``chc-equity ingest`` of each center in
center order with the views hook and the ingest screen, ``measures run``, the patient attributes and
``equity --by D`` for every dimension), so "identical" means identical to the product, not to a
second harness. Used by tests/test_spark.py and benchmarks/spark.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.equity.attributes import build_patient_attributes
from chc_equity.equity.stratify import EquityRow, EquitySummaryRow, equity_tables
from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.views.build import build_views
from chc_equity.views.shape import builtin_screen
from chc_equity.warehouse import connect, connect_memory


def embedded_run(
    inputs: Mapping[str, Sequence[str]],
    *,
    period_start: date,
    period_end: date,
    path: str | Path | None = None,
    on_stage=None,
) -> duckdb.DuckDBPyConnection:
    """Load every center (one load each, in center order), run every measure and build the patient
    attributes; returns the open warehouse. ``on_stage(name)`` is called after each stage."""
    con = connect(path) if path is not None else connect_memory()
    screen = builtin_screen()
    for center in sorted(inputs):
        load(
            con,
            list(inputs[center]),
            center,
            after_load=lambda c, ctr: build_views(c, centers=[ctr]),
            screen=screen,
        )
    if on_stage:
        on_stage("ingest+views")
    run_measures(con, all_measures(), period_start=period_start, period_end=period_end)
    if on_stage:
        on_stage("measures")
    build_patient_attributes(con, period_start=period_start, period_end=period_end)
    if on_stage:
        on_stage("attributes")
    return con


def embedded_equity(
    con: duckdb.DuckDBPyConnection, dimensions: Sequence[str], *, period_start: date, period_end: date
) -> tuple[list[EquityRow], list[EquitySummaryRow]]:
    """``equity --by D`` for each dimension, concatenated in the Spark output's order."""
    rows: list[EquityRow] = []
    summaries: list[EquitySummaryRow] = []
    for dimension in dimensions:
        r, s = equity_tables(con, None, [dimension], period_start=period_start, period_end=period_end)
        rows += r
        summaries += s
    return rows, summaries


def parquet_glob(output: str | Path, table: str) -> str:
    """The Parquet files of one output table (``flat.patient`` -> ``<output>/flat/patient/*.parquet``)."""
    return f"{output}/{table.replace('.', '/')}/*.parquet"


def _except_all(con: duckdb.DuckDBPyConnection, table: str, output: str | Path) -> tuple[str, str]:
    """SQL of (rows only in the warehouse, rows only in the Spark output) of ``table``, as multisets."""
    name = _quoted(table)
    spark = f"read_parquet('{parquet_glob(output, table)}')"
    cols = ", ".join(f'"{c}"' for c in _columns(con, name))
    return (
        f"SELECT {cols} FROM {name} EXCEPT ALL SELECT {cols} FROM {spark}",
        f"SELECT {cols} FROM {spark} EXCEPT ALL SELECT {cols} FROM {name}",
    )


def differences(con: duckdb.DuckDBPyConnection, table: str, output: str | Path) -> tuple[int, int]:
    """(rows only in the warehouse, rows only in the Spark output) of ``table``, as multisets."""
    here, there = _except_all(con, table, output)
    only_here = con.execute(f"SELECT count(*) FROM ({here})").fetchone()[0]
    only_there = con.execute(f"SELECT count(*) FROM ({there})").fetchone()[0]
    return int(only_here), int(only_there)


def differing_rows(
    con: duckdb.DuckDBPyConnection, table: str, output: str | Path, limit: int = 3
) -> tuple[list[tuple], list[tuple]]:
    """Up to ``limit`` rows only in the warehouse and only in the Spark output (for a failure message)."""
    here, there = _except_all(con, table, output)
    return tuple(con.execute(f"{q} ORDER BY ALL LIMIT {limit}").fetchall() for q in (here, there))


def _quoted(table: str) -> str:
    return table if "." not in table else '{}."{}"'.format(*table.split("."))


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {name} LIMIT 0").description]


def read_rows(output: str | Path, table: str, cls: type) -> list:
    """An equity table of a Spark output as the embedded stratifier's dataclass rows, in file order."""
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{parquet_glob(output, table)}')")
        names = [d[0] for d in cur.description]
        return [cls(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
    finally:
        con.close()


# --- digests: the embedded run's tables as a stored reference ----------------------------------------
# A table's digest is the SHA-256 of its rows as a multiset: every row cast to the warehouse's column
# types and rendered as JSON, each row hashed, the sorted row hashes hashed again. It holds no row, so
# a 20k-patient reference fits in tests/fixtures. Two renderings are chosen so that the same rows give
# the same digest from the warehouse and from Spark's Parquet: JSON columns as their text (Parquet holds
# them as strings), and doubles to 12 significant digits (the equity statistics use numpy, whose SIMD
# math may differ in the last bit between CPUs; a different count changes the integer columns anyway).
# ``source_file`` holds an input file's absolute path: digested relative to the inputs' root, so the
# reference does not depend on where the network was generated.
_DOUBLES = ("DOUBLE", "FLOAT", "REAL")


def _canonical(column: str, type_: str, root: str | None) -> str:
    if type_ in _DOUBLES:
        return f"printf('%.11e', CAST(\"{column}\" AS DOUBLE))"
    if column == "source_file" and root:
        prefix = root.rstrip("/").replace("'", "''") + "/"
        return f"replace(CAST(\"{column}\" AS VARCHAR), '{prefix}', '')"
    return f'CAST("{column}" AS {"VARCHAR" if type_ == "JSON" else type_})'


def table_digest(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[Sequence[str]], root: str | None = None
) -> dict:
    """``{"rows": n, "sha256": hex}`` of ``relation`` (a table or ``read_parquet(...)``) over ``columns``
    ((name, warehouse type) pairs), ``source_file`` relative to ``root``. Timestamps with time zone
    render in the connection's TimeZone: callers set it to UTC (:func:`embedded_digests`,
    :func:`output_digests`)."""
    fields = ", ".join(f'"{c}" := {_canonical(c, t, root)}' for c, t in columns)
    [(rows, digest)] = con.execute(
        f"SELECT count(*), sha256(coalesce(string_agg(h, '' ORDER BY h), '')) "
        f"FROM (SELECT sha256(to_json(struct_pack({fields}))) AS h FROM {relation})"
    ).fetchall()
    return {"rows": int(rows), "sha256": digest}


def embedded_digests(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    dimensions: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    root: str | None = None,
) -> dict[str, dict]:
    """The digest and column types of each of ``tables`` in the embedded warehouse, and of the equity
    tables (``equity --by D`` for each dimension, as :func:`embedded_equity`); ``root``: the inputs'
    folder (see ``source_file`` above). Sets TimeZone to UTC."""
    from chc_equity.spark.pipeline import _rows_table

    con.execute("SET TimeZone = 'UTC'")
    out: dict[str, dict] = {}
    for table in tables:
        name = _quoted(table)
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]
        out[table] = {**table_digest(con, name, columns, root), "columns": columns}
    rows, summaries = embedded_equity(con, dimensions, period_start=period_start, period_end=period_end)
    for table, got, cls in (("equity", rows, EquityRow), ("equity_summary", summaries, EquitySummaryRow)):
        con.register("_digest_rows", _rows_table(got, cls))
        try:
            columns = [(r[0], r[1]) for r in con.execute("DESCRIBE _digest_rows").fetchall()]
            out[table] = {**table_digest(con, "_digest_rows", columns), "columns": columns}
        finally:
            con.unregister("_digest_rows")
    return out


def output_digests(
    output: str | Path, reference: Mapping[str, Mapping], root: str | None = None
) -> dict[str, dict]:
    """The digest of each table of ``reference`` (as :func:`embedded_digests` returns) in a Spark
    output, its columns cast to the reference's types, ``source_file`` relative to ``root``."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return {
            table: table_digest(con, f"read_parquet('{parquet_glob(output, table)}')", ref["columns"], root)
            for table, ref in reference.items()
        }
    finally:
        con.close()
