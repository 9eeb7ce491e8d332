"""The embedded DuckDB warehouse: where it lives and the tables every stage shares.

The raw layer is one table, ``resources``, keyed by (center, type, id); every later stage reads
from it or from tables derived from it. Keeping the DDL here (and only here) means ingest, views
and measures agree on one schema without importing each other.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

DEFAULT_WAREHOUSE = "chc_equity.duckdb"
WAREHOUSE_ENV = "CHC_EQUITY_WAREHOUSE"
# How long opening the warehouse waits while another process holds it (a load queued behind another).
LOCK_TIMEOUT_ENV = "CHC_EQUITY_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 3600.0

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


def lock_timeout() -> float:
    """Seconds to wait for another process's lock: $CHC_EQUITY_LOCK_TIMEOUT, else one hour."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LOCK_TIMEOUT_S
    except ValueError as exc:
        raise WarehouseError(f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds") from exc


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    return "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _open_waiting(
    target: Path, read_only: bool, timeout: float, wait_message: Callable[[str], None]
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried with backoff while another process holds the file's lock.

    Why: DuckDB allows one writing process per file and fails at once otherwise; loads started together
    (one per center, from cron) should run one after another instead. Waits at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    said = False
    while True:
        try:
            return duckdb.connect(str(target), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseError(
                    f"cannot open warehouse {target}: another process still holds it after {timeout:g} s "
                    f"(another load? raise {LOCK_TIMEOUT_ENV} to wait longer)"
                ) from exc
            if not said:
                wait_message(f"waiting for another load of {target} to finish (up to {timeout:g} s) ...")
                said = True
            time.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 2.0)


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    timeout: float | None = None,
    wait_message: Callable[[str], None] = _say,
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse and make sure the shared tables exist.

    While another process holds the file (a load in progress), waits up to ``timeout`` seconds
    (default :func:`lock_timeout`), saying so once through ``wait_message``.

    Raises ``WarehouseError`` (one line: the path and why) when the file cannot be used: missing,
    a directory, in a missing or read-only directory, read-only, not a DuckDB database, or still
    locked when the wait is over.
    """
    target = warehouse_path(path)
    if read_only and not target.exists():
        raise WarehouseMissing(f"warehouse {target} does not exist; run `chc-equity ingest` first")
    why = _unusable(target)
    if why is not None:
        raise WarehouseError(f"cannot open warehouse {target}: it {why}")
    if not read_only and target.exists() and not os.access(target, os.W_OK):
        raise WarehouseError(f"cannot open warehouse {target} for writing: the file is read-only")
    wait = lock_timeout() if timeout is None else timeout
    try:
        con = _open_waiting(target, read_only, wait, wait_message)
    except duckdb.Error as exc:
        # e.g. "not a valid DuckDB database file", or locked by another process; the first line only
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WarehouseError(f"cannot open warehouse {target}: {first}") from exc
    if not read_only:
        from chc_equity.serving import SUMMARY_DDL

        try:
            _create_schema(con)
            con.execute(SUMMARY_DDL)
        except duckdb.Error as exc:
            con.close()
            raise WarehouseError(f"cannot write to warehouse {target}: {type(exc).__name__}") from exc
    return con


@contextmanager
def writing(
    path: str | os.PathLike[str] | None = None, *, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened for writing by a command that changes what the web app reads (ingest, pull,
    measures run, precompute, views build, uds, equity): when the command's work is done, the serving
    snapshot is published from this connection (``chc_equity.serving.publish``), then it is closed.

    This is the one place a snapshot is published. Nothing is published when the body raises: the web
    keeps the last complete state, and whatever committed is published by the next command that ends.
    """
    from chc_equity.serving import publish

    target = warehouse_path(path)
    con = connect(target, timeout=timeout)
    try:
        yield con
        try:
            publish(con, target.resolve())
        except (duckdb.Error, OSError) as exc:
            raise WarehouseError(
                f"the data is committed but the web snapshot of {target} was not published "
                f"({type(exc).__name__}); the next command publishes it"
            ) from exc
    finally:
        con.close()


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
    from chc_equity.serving import SUMMARY_DDL

    con = duckdb.connect(":memory:")
    con.execute(DDL)
    con.execute(SUMMARY_DDL)
    return con
