"""The embedded DuckDB warehouse: where it lives and the tables every stage shares.

The raw layer is one table, ``resources``, keyed by (center, type, id); every later stage reads
from it or from tables derived from it. Keeping the DDL here (and only here) means ingest, views
and measures agree on one schema without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

DEFAULT_WAREHOUSE = "chc_equity.duckdb"
WAREHOUSE_ENV = "CHC_EQUITY_WAREHOUSE"

# Schema for the flat tables that the built-in ViewDefinitions materialize (flat.patient, ...).
FLAT_SCHEMA = "flat"
# Centers whose derived results still have to be refreshed after a load (see chc_equity.refresh).
PENDING_REFRESH = "pending_refresh"
# Which patients of a pending center changed (patient_id NULL: the whole center), per load.
PENDING_PATIENTS = "pending_patients"

DDL = f"""
CREATE SEQUENCE IF NOT EXISTS load_id_seq START 1;

CREATE TABLE IF NOT EXISTS loads (
    load_id        BIGINT PRIMARY KEY,
    center         VARCHAR NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    duration_s     DOUBLE,
    files          VARCHAR[],
    resources_read BIGINT,
    inserted       BIGINT,
    updated        BIGINT,
    unchanged      BIGINT,
    quarantined    BIGINT,
    status         VARCHAR NOT NULL
);

-- One row per FHIR resource, upserted by (center, type, id); a newer meta.lastUpdated wins.
CREATE TABLE IF NOT EXISTS resources (
    center       VARCHAR NOT NULL,
    type         VARCHAR NOT NULL,
    id           VARCHAR NOT NULL,
    last_updated TIMESTAMPTZ,
    source_file  VARCHAR,
    source_pos   VARCHAR,
    load_id      BIGINT,
    resource     JSON NOT NULL,
    PRIMARY KEY (center, type, id)
);

-- Quarantine: what could not be loaded, why, and the raw text, so nothing is lost.
CREATE TABLE IF NOT EXISTS rejects (
    load_id      BIGINT,
    center       VARCHAR,
    source_file  VARCHAR,
    source_pos   VARCHAR,
    resource_type VARCHAR,
    resource_id  VARCHAR,
    field        VARCHAR,
    reason       VARCHAR NOT NULL,
    detail       VARCHAR,
    raw          VARCHAR
);

-- Centers whose derived results (measure_results, agg_*) are older than their data. A load that changes
-- data writes its row in the load's own transaction; chc_equity.refresh deletes it only once every
-- refresh step has committed, so a crash in between leaves the work recorded for the next run.
CREATE TABLE IF NOT EXISTS {PENDING_REFRESH} (
    center    VARCHAR PRIMARY KEY,
    load_id   BIGINT NOT NULL
);

-- What is left of a pending refresh, per load: the patients whose results are older than their data, or
-- one row with patient_id NULL when the whole center is (a resource without a patient changed, or the
-- patients were not resolved). Written in the load's transaction, deleted with the pending_refresh row.
CREATE TABLE IF NOT EXISTS {PENDING_PATIENTS} (
    center     VARCHAR NOT NULL,
    load_id    BIGINT NOT NULL,
    patient_id VARCHAR
);

CREATE SCHEMA IF NOT EXISTS {FLAT_SCHEMA};
"""


def warehouse_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the warehouse file: explicit argument, else $CHC_EQUITY_WAREHOUSE, else ./chc_equity.duckdb."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


class WarehouseError(OSError):
    """The warehouse file cannot be opened; the message is one line a user can act on."""


class WarehouseMissing(WarehouseError, FileNotFoundError):
    """A warehouse opened read-only does not exist (yet)."""


def _unusable(target: Path) -> str | None:
    """Why ``target`` cannot be a warehouse, found before DuckDB tries (its errors are tracebacks)."""
    if target.is_dir():
        return "is a directory"
    if not target.exists():
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            return f"its directory {parent} does not exist"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"its directory {parent} is not writable"
        return None
    if not os.access(target, os.R_OK):
        return "is not readable"
    return None


def connect(
    path: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse and make sure the shared tables exist.

    Raises ``WarehouseError`` (one line: the path and why) when the file cannot be used: missing,
    a directory, in a missing or read-only directory, read-only, or not a DuckDB database.
    """
    target = warehouse_path(path)
    if read_only and not target.exists():
        raise WarehouseMissing(f"warehouse {target} does not exist; run `chc-equity ingest` first")
    why = _unusable(target)
    if why is not None:
        raise WarehouseError(f"cannot open warehouse {target}: it {why}")
    if not read_only and target.exists() and not os.access(target, os.W_OK):
        raise WarehouseError(f"cannot open warehouse {target} for writing: the file is read-only")
    try:
        con = duckdb.connect(str(target), read_only=read_only)
    except duckdb.Error as exc:
        # e.g. "not a valid DuckDB database file", or locked by another process; the first line only
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WarehouseError(f"cannot open warehouse {target}: {first}") from exc
    if not read_only:
        try:
            _create_schema(con)
        except duckdb.Error as exc:
            con.close()
            raise WarehouseError(f"cannot write to warehouse {target}: {type(exc).__name__}") from exc
    return con


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Run the DDL; a warehouse made before ``pending_patients`` existed gets a whole-center row there for
    each pending center, since nothing recorded which of its patients changed (same transaction)."""
    exists = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?"
    had = con.execute(exists, [PENDING_PATIENTS]).fetchone()[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(DDL)
        if not had:
            con.execute(f"INSERT INTO {PENDING_PATIENTS} SELECT center, load_id, NULL FROM {PENDING_REFRESH}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def connect_memory() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the shared schema (tests, conformance runs, `measures evaluate`)."""
    con = duckdb.connect(":memory:")
    con.execute(DDL)
    return con
