"""The embedded run of the same inputs, and a row-for-row comparison with a Spark output.

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


def differences(con: duckdb.DuckDBPyConnection, table: str, output: str | Path) -> tuple[int, int]:
    """(rows only in the warehouse, rows only in the Spark output) of ``table``, as multisets."""
    name = table if "." not in table else '{}."{}"'.format(*table.split("."))
    spark = f"read_parquet('{parquet_glob(output, table)}')"
    cols = ", ".join(f'"{c}"' for c in _columns(con, name))
    only_here = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {name} EXCEPT ALL SELECT {cols} FROM {spark})"
    ).fetchone()[0]
    only_there = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {spark} EXCEPT ALL SELECT {cols} FROM {name})"
    ).fetchone()[0]
    return int(only_here), int(only_there)


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
