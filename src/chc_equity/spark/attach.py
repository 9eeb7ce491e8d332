"""Bring a committed Spark output into an embedded warehouse, so the CLI, UDS tables and the web app
work on a Spark-computed network.

The Parquet tables are copied into the warehouse's own tables (DuckDB reads Parquet natively), not
left as views over files: every later stage (UDS, precompute, the serving snapshots, `equity`) then
runs unchanged, and the warehouse does not depend on the output staying where it is. The centers of
the output replace those centers in the warehouse, in one transaction; each becomes one row of
``loads`` (numbered after the warehouse's newest load). ``patient_attributes`` is tagged for the run's
period, so the equity and network steps use it instead of rebuilding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.attributes import tag_patient_attributes
from chc_equity.measures.engine import RESULTS_DDL, RESULTS_TABLE
from chc_equity.spark.compare import parquet_glob
from chc_equity.spark.pipeline import read_manifest
from chc_equity.spark.tasks import all_tables
from chc_equity.warehouse import FLAT_SCHEMA


@dataclass
class Attached:
    period_start: date
    period_end: date
    centers: list[str]
    rows: dict[str, int] = field(default_factory=dict)


def attach(con: duckdb.DuckDBPyConnection, output: str) -> Attached:
    """Copy ``output`` (a committed ``chc-equity spark run``) into the warehouse behind ``con``."""
    manifest = read_manifest(output)
    centers = [c["center"] for c in manifest["centers"]]
    start, end = (date.fromisoformat(manifest[k]) for k in ("period_start", "period_end"))
    done = Attached(start, end, centers)
    params = {"centers": centers}
    in_centers = "center IN (SELECT unnest($centers))"
    con.begin()
    try:
        offset = con.execute("SELECT coalesce(max(load_id), 0) FROM loads").fetchone()[0]
        for c in manifest["centers"]:
            con.execute(
                "INSERT INTO loads (load_id, center, started_at, finished_at, duration_s, files, "
                "resources_read, inserted, updated, unchanged, quarantined, status) "
                "VALUES (?, ?, now(), now(), 0, ?, NULL, NULL, 0, 0, NULL, 'spark')",
                [offset + c["load_id"], c["center"], c["files"]],
            )
        con.execute(f"DELETE FROM resources WHERE {in_centers}", params)
        con.execute(
            "INSERT INTO resources SELECT center, type, id, last_updated, source_file, source_pos, "
            f"load_id + {int(offset)}, CAST(resource AS JSON) "
            f"FROM read_parquet('{parquet_glob(output, 'resources')}')"
        )
        con.execute(f"DELETE FROM rejects WHERE {in_centers}", params)
        con.execute(
            "INSERT INTO rejects BY NAME SELECT * REPLACE (load_id + "
            f"{int(offset)} AS load_id) FROM read_parquet('{parquet_glob(output, 'rejects')}')"
        )
        con.execute(RESULTS_DDL)
        con.execute(
            f"DELETE FROM {RESULTS_TABLE} WHERE {in_centers} AND period_start = $s AND period_end = $e",
            {**params, "s": start, "e": end},
        )
        for table in [t for t in all_tables() if t != ATTRIBUTES]:
            _replace(con, table, output, in_centers, params)
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [ATTRIBUTES]
        ).fetchone()[0]
        if exists:
            # The table holds one period: other periods' rows go, other centers' rows of this one stay.
            con.execute(f"DELETE FROM {ATTRIBUTES} WHERE {in_centers}", params)
        _replace(con, ATTRIBUTES, output, "false", {})
        tag_patient_attributes(con, period_start=start, period_end=end)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {FLAT_SCHEMA}")
        for table in ["resources", "rejects", *all_tables()]:
            name = _name(table)
            done.rows[table] = con.execute(
                f"SELECT count(*) FROM {name} WHERE {in_centers}", params
            ).fetchone()[0]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return done


def _name(table: str) -> str:
    return table if "." not in table else '{}."{}"'.format(*table.split("."))


def _replace(con: duckdb.DuckDBPyConnection, table: str, output: str, where: str, params: dict) -> None:
    """This output's rows of ``table`` in place of the warehouse's rows matching ``where``."""
    name = _name(table)
    source = f"read_parquet('{parquet_glob(output, table)}')"
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        list(table.split(".")) if "." in table else ["main", table],
    ).fetchone()[0]
    if not exists:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")
        return
    if where != "false":
        con.execute(f"DELETE FROM {name} WHERE {where}", params)
    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {source}")
