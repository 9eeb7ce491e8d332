"""Published serving snapshots: what the web app (and the CHW worklist) reads, apart from the warehouse.

Why: DuckDB lets one process write a file at a time, and a read-only open fails while a writer holds it.
A load holds the warehouse for minutes, so a web app reading the warehouse itself would answer 503 for
the whole load, and a request in progress would in turn make the load fail. Instead, every command that
changes what the web reads ends by *publishing* a snapshot (:func:`publish`, called once, from
:func:`chc_equity.warehouse.writing`): a new DuckDB file ``<warehouse>.serving/<seq>.duckdb`` holding
exactly the serving tables below, copied inside the writer's process after its commit. Then the pointer
``<warehouse>.serving/CURRENT`` is replaced atomically (temp file, fsync, ``os.replace``, fsync of the
folder). Readers open the file CURRENT names read-only, one connection per request: a request sees one
published state, before or after a load, never a mix; a reader never waits for a writer and a writer never
waits for a reader. The newest :data:`KEEP` snapshots are kept; an older one is deleted (a reader that
still has it open keeps reading it: on Linux an unlinked file lives until its last close).

The serving set is defined here and only here (:data:`SERVING_TABLES`), and a test runs every page and
API call against a snapshot with the warehouse moved away. The raw ``resources`` JSON is never copied:
the little the web reads from ``resources`` and ``rejects`` is a summary view (:data:`SUMMARY_VIEWS`),
defined in the warehouse (so CLI readers of the live warehouse use the same SQL) and materialized as a
table in each snapshot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

FLAT = "flat"  # = chc_equity.warehouse.FLAT_SCHEMA (not imported: warehouse imports this module)
FORMAT = 8  # bump when the serving set or a summary changes: `serve` then republishes at start
KEEP = 3  # snapshots kept; $CHC_EQUITY_SERVING_KEEP overrides (the load test keeps all, to check them)
KEEP_ENV = "CHC_EQUITY_SERVING_KEEP"
CURRENT = "CURRENT"
META = "serving_meta"
PARTS = "serving_parts"  # per table and center: the signature of the rows a snapshot holds
_SNAPSHOT = re.compile(r"^(\d{8})\.duckdb$")
_OUT = "chc_serving_out"  # the snapshot's catalog alias while it is written

# Tables of the main schema copied as they are (a table not in the warehouse yet is left out; readers
# treat a missing table as "not computed yet", as they do on the warehouse).
MAIN_TABLES: tuple[str, ...] = (
    "loads",  # web/data.py (centers, loads), pull/state.py, outreach/worklist.py (data_version)
    "pulls",  # pull/state.py status_rows (/admin/pulls)
    "measure_series",  # improvement/project_chart.py: project pages chart their measure (aggregates)
    "sdoh_series",  # improvement/project_chart.py: ... or their social-needs metric (aggregates)
    "measure_results",  # web/gaps.py, outreach/worklist.py (open care gaps: patient-level)
    "agg_runs",  # network/precompute.py AGG_TABLES, read by web/analytics.py and web/uds.py
    "agg_measure",
    "agg_funnel",
    "agg_equity",
    "agg_suppression",
    "patient_attributes",  # outreach/indicators.py
    "sdoh_metrics",  # web/sdoh.py (aggregates of `chc-equity sdoh`)
    "sdoh_equity",
    "sdoh_organization",  # web/sdoh.py: community organizations (aggregates, suppressed for viewers)
    "sdoh_patient_domain",  # sdoh/lists.py: the staff lists (patient-level, like measure_results)
    "sdoh_referral",
    "sdoh_patient",  # sdoh/lists.py open_needs: the CHW worklist's social-risk tier
    "vbp_roster",  # vbp/store.py: imported payer files (web/routes_vbp.py: lists and aggregates)
    "vbp_payer_gaps",
    "vbp_claims",
    "vbp_fills",
    "vbp_contracts",
    "vbp_rejects",
    "child_measure",  # child/view.py: the pediatric view (aggregates, stored suppressed)
    "child_referral_metrics",  # child/view.py: referral loops (suppressed for viewers at read)
    "child_referral_equity",
    "child_bh_followup",  # child/view.py (counted at read) -- patient-level rows
    "child_depression_open",
    "child_referral",  # child/lists.py: open referrals (patient-level, like sdoh_referral)
    "child_guardian",  # child/lists.py: guardians' contact (patient-level)
    "child_gap",  # child/lists.py: pediatric care gaps (patient-level, like measure_results)
)
# flat.* tables (views stage) read by web/data.py, web/gaps.py and chc_equity.outreach (worklist, billing).
FLAT_TABLES: tuple[str, ...] = (
    "patient",
    "encounter",
    "encounter_location",
    "encounter_type",
    "observation",
    "observation_code",
    "observation_component",
    "service_request",
    "service_request_category",
    "task",
    "appointment",
    "care_team_member",
    "communication",
    "communication_category",
    "communication_status_reason",
)
# Summaries of the raw layer: views in the warehouse (created by warehouse.connect), tables in a snapshot.
SUMMARY_VIEWS: dict[str, str] = {
    # resources per center and type (web/data.py centers)
    "resource_counts": "SELECT center, type, count(*) AS n FROM resources GROUP BY ALL",
    # rejects counted by file, type, reason and field: never raw text, detail or resource id
    "reject_counts": """
        SELECT center, source_file, resource_type, reason, field, count(*) AS n FROM rejects GROUP BY ALL
    """,
    # one row per Patient resource: identity and contact (web/gaps.py, outreach/worklist.py, web/outreach)
    # -- name: family, given; MRN: identifier typed MR or whose system says "mrn", else the first one;
    # phone: mobile first, then by rank; interpreter: the patient-interpreterRequired extension.
    "patient_contact": """
        SELECT r.center, r.id AS patient_id,
               trim(concat_ws(', ',
                    json_extract_string(r.resource, '$.name[0].family'),
                    array_to_string(CAST(json_extract(r.resource, '$.name[0].given') AS VARCHAR[]), ' ')
               )) AS name,
               (SELECT json_extract_string(i, '$.value')
                  FROM unnest(CAST(json_extract(r.resource, '$.identifier') AS JSON[])) AS t(i)
                 ORDER BY (coalesce(json_extract_string(i, '$.system'), '') ILIKE '%mrn%'
                           OR coalesce(CAST(json_extract(i, '$.type') AS VARCHAR), '') LIKE '%"MR"%') DESC
                 LIMIT 1) AS mrn,
               (SELECT json_extract_string(t, '$.value')
                  FROM unnest(CAST(json_extract(r.resource, '$.telecom') AS JSON[])) AS u(t)
                 WHERE json_extract_string(t, '$.system') IN ('phone', 'sms')
                 ORDER BY (json_extract_string(t, '$.use') = 'mobile') DESC NULLS LAST,
                          try_cast(json_extract_string(t, '$.rank') AS INTEGER) NULLS LAST
                 LIMIT 1) AS phone,
               (SELECT bool_or(CAST(json_extract(e, '$.valueBoolean') AS BOOLEAN))
                  FROM unnest(CAST(json_extract(r.resource, '$.extension') AS JSON[])) AS u(e)
                 WHERE json_extract_string(e, '$.url')
                       = 'http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired'
               ) AS interpreter
          FROM resources r WHERE r.type = 'Patient'
    """,
}
# Every table a snapshot can hold, as "schema.table" (the test of the web's reads checks against this).
SERVING_TABLES: frozenset[str] = frozenset(
    [f"main.{t}" for t in (*MAIN_TABLES, *SUMMARY_VIEWS, META, PARTS)] + [f"{FLAT}.{t}" for t in FLAT_TABLES]
)

SUMMARY_DDL = ";\n".join(
    f"CREATE OR REPLACE VIEW {name} AS {sql.strip()}" for name, sql in SUMMARY_VIEWS.items()
)


class NotPublished(RuntimeError):
    """No snapshot could be published from the warehouse (missing, or locked by a writer right now)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published state: its sequence number (the data version responses carry) and its file."""

    seq: int
    path: Path


def serving_dir(warehouse: Path) -> Path:
    """``<warehouse>.serving``: next to the warehouse, so it moves, backs up and is deleted with it."""
    return warehouse.with_name(warehouse.name + ".serving")


def current(warehouse: Path) -> Snapshot | None:
    """The snapshot CURRENT names, or None when nothing was published yet."""
    folder = serving_dir(warehouse)
    try:
        name = (folder / CURRENT).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    match = _SNAPSHOT.match(name)
    if match is None:
        return None
    return Snapshot(int(match.group(1)), folder / name)


def snapshots(warehouse: Path) -> list[Snapshot]:
    """Every snapshot file present, oldest first."""
    folder = serving_dir(warehouse)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / p) for p in os.listdir(folder) if (m := _SNAPSHOT.match(p))]
    return [Snapshot(seq, path) for seq, path in sorted(found)]


# -- publishing ---------------------------------------------------------------------------------------
def publish(con: duckdb.DuckDBPyConnection, warehouse: Path) -> Snapshot:
    """Copy the serving tables of the warehouse ``con`` has as its default catalog into a new snapshot and
    make it CURRENT. ``con`` is the writer's own connection (after its commit) or a read-only one.

    Publishes are serialized by a lock file in the serving folder (a writer and a starting ``serve``
    could publish at once); the copy is one read transaction, so it is one committed state.
    """
    folder = serving_dir(warehouse)
    folder.mkdir(exist_ok=True)
    with _publish_lock(folder):
        for stale in folder.glob(".tmp-*"):  # a publisher that died mid-copy (we hold the lock)
            stale.unlink(missing_ok=True)
        existing = snapshots(warehouse)
        seq = (existing[-1].seq if existing else 0) + 1
        tmp = folder / f".tmp-{os.getpid()}-{seq:08d}.duckdb"
        _copy(con, tmp, seq, current(warehouse))
        _fsync(tmp)
        final = folder / f"{seq:08d}.duckdb"
        os.replace(tmp, final)
        _write_pointer(folder, final.name)
        _prune(warehouse, keep=max(1, int(os.environ.get(KEEP_ENV) or KEEP)))
    return Snapshot(seq, final)


def publish_from_file(warehouse: Path) -> Snapshot:
    """Publish from the warehouse file opened read-only here (``serve`` on a never-published warehouse).

    Raises :class:`NotPublished` when the file is missing or a writer holds it (that writer publishes
    when it is done).
    """
    if not warehouse.exists():
        raise NotPublished(f"no warehouse at {warehouse}")
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"ATTACH '{_sql_str(str(warehouse))}' AS chc_serving_src (READ_ONLY)")
        except duckdb.IOException as exc:
            raise NotPublished(f"warehouse {warehouse} is being written") from exc
        con.execute("USE chc_serving_src")
        return publish(con, warehouse)
    finally:
        con.close()


def ensure_current(warehouse: Path) -> Snapshot | None:
    """The current snapshot, publishing one first when there is none or it is outdated (an older
    :data:`FORMAT`, or a warehouse changed since by something that did not publish: an older version of
    chc-equity, or library code). Best effort: None when nothing can be published right now."""
    snap = current(warehouse)
    if snap is not None and warehouse.exists():
        try:
            stale = _format_of(snap) != FORMAT or _fingerprint_of(snap) != fingerprint_file(warehouse)
        except duckdb.Error:
            stale = False  # busy or unreadable: serve what is published
        if not stale:
            return snap
    try:
        return publish_from_file(warehouse)
    except NotPublished:
        return snap


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A cheap signature of the serving sources in the warehouse ``con`` reads (row counts, the newest
    load, the newest precompute): differs from the snapshot's when something changed it unpublished."""
    names = [
        (schema, table)
        for schema, table in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() ORDER BY 1, 2"
        ).fetchall()
        if f"{schema}.{table}" in SERVING_TABLES
        or (schema, table) in (("main", "resources"), ("main", "rejects"))
    ]
    parts = [f"{s}.{t}:{con.execute(f'SELECT count(*) FROM {s}.{t}').fetchone()[0]}" for s, t in names]
    if ("main", "loads") in names:
        parts.append(f"load:{con.execute('SELECT max(load_id) FROM loads').fetchone()}")
    if ("main", "agg_runs") in names:
        parts.append(f"runs:{con.execute('SELECT epoch_us(max(computed_at)) FROM agg_runs').fetchone()}")
    return "|".join(parts)


def fingerprint_file(warehouse: Path) -> str:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{_sql_str(str(warehouse))}' AS chc_serving_src (READ_ONLY)")
        con.execute("USE chc_serving_src")
        return fingerprint(con)
    finally:
        con.close()


def _copy(con: duckdb.DuckDBPyConnection, target: Path, seq: int, base: Snapshot | None) -> None:
    """Write snapshot ``seq`` to ``target``: from scratch, or -- when ``base`` (the current snapshot) can
    be reused -- as a file copy of ``base`` in which only what differs is rewritten.

    Why: a load changes one center, but the serving set holds every center's patient-level rows; copying
    them all (about 5 s at 100k patients) made publishing cost more than the load. Each snapshot records a
    signature per table and center (:data:`PARTS`); the next publish signs the warehouse the same way (a
    hash of the rows, which is a read, not a write) and replaces only the centers whose signature changed,
    and whole tables without a ``center`` column when theirs did. What readers see is unchanged: a
    complete file, switched to atomically.
    """
    present = {
        (s, t)
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
            " UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    }
    sources = [("main", t) for t in MAIN_TABLES if ("main", t) in present]
    sources += [("main", v) for v in SUMMARY_VIEWS if ("main", v) in present]
    sources += [(FLAT, t) for t in FLAT_TABLES if (FLAT, t) in present]
    old = _base_state(base) if base is not None else None
    if old is not None:
        shutil.copyfile(base.path, target)  # a kernel copy: ~0.1 s per 100 MB, no re-encoding
    con.execute(f"ATTACH '{_sql_str(str(target))}' AS {_OUT}")
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            signed = {key: _sign(con, *key) for key in sources}
            if old is None:
                con.execute(f"CREATE SCHEMA {_OUT}.{FLAT}")
                for key in sources:
                    _replace(con, key, None, create=True)
            else:
                for key in set(old.parts) - set(signed):  # gone from the warehouse since
                    con.execute(f'DROP TABLE IF EXISTS {_OUT}.{key[0]}."{key[1]}"')
                for key, sig in signed.items():
                    _update(con, key, old.parts.get(key), sig)
            for name, sql in SUMMARY_VIEWS.items():  # warehouses written before the views existed
                if ("main", name) not in present:
                    con.execute(f"DROP TABLE IF EXISTS {_OUT}.main.{name}")
                    con.execute(f"CREATE TABLE {_OUT}.main.{name} AS {sql}")
            loads: list[int] = []
            if ("main", "loads") in present:
                loads = con.execute("SELECT list(load_id ORDER BY load_id) FROM loads").fetchone()[0] or []
            con.execute(f"DROP TABLE IF EXISTS {_OUT}.main.{META}")
            con.execute(
                f"CREATE TABLE {_OUT}.main.{META} AS SELECT ?::BIGINT AS seq, now() AS published_at, "
                "?::INTEGER AS format, ?::BIGINT[] AS load_ids, ?::VARCHAR AS fingerprint, "
                "?::BIGINT AS base_seq, ?::BIGINT AS whole_bytes",
                [
                    seq,
                    FORMAT,
                    loads,
                    fingerprint(con),
                    None if old is None else base.seq,
                    None if old is None else old.whole_bytes,
                ],
            )
            _write_parts(con, signed)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute(f"CHECKPOINT {_OUT}")
    finally:
        con.execute(f"DETACH {_OUT}")


# -- publishing in proportion to the change -----------------------------------------------------------
GROWTH = 2.0  # a snapshot written over a copy is rewritten whole once it outgrows its chain's first 2x
# Summary views are signed by the raw rows they summarize (ids, versions, load), not by their output:
# computing patient_contact parses every Patient's JSON, while signing its input is a plain scan.
_SUMMARY_INPUT: dict[str, tuple[str, str, str]] = {
    "resource_counts": ("resources", "type, id", "TRUE"),
    "patient_contact": (
        "resources",
        "id, last_updated, load_id, source_file, source_pos",
        "type = 'Patient'",
    ),
    "reject_counts": (
        "rejects",
        "load_id, source_file, source_pos, resource_type, resource_id, field, reason",
        "TRUE",
    ),
}


@dataclass(frozen=True, slots=True)
class _Signed:
    """One serving table's signature: its columns, whether it is split by center, and per center (None
    for a table without a ``center`` column) "rows:sum of row hashes"."""

    columns: str
    keyed: bool
    parts: dict[str | None, str]


@dataclass(frozen=True, slots=True)
class _Base:
    parts: dict[tuple[str, str], _Signed]
    whole_bytes: int  # the size of the snapshot its chain of copies started from


def _base_state(base: Snapshot) -> _Base | None:
    """The signatures of the current snapshot, when a new one may start as a copy of it: same
    :data:`FORMAT`, signed, and not grown past :data:`GROWTH` times the snapshot its chain started from
    (deleted rows leave free blocks behind; a whole rewrite compacts them)."""
    try:
        size = base.path.stat().st_size
        src = duckdb.connect(str(base.path), read_only=True)
    except (OSError, duckdb.Error):
        return None
    try:
        fmt, whole = src.execute(f"SELECT format, whole_bytes FROM {META}").fetchone()
        rows = src.execute(
            f"SELECT schema_name, table_name, columns, keyed, center, sig FROM {PARTS}"
        ).fetchall()
    except duckdb.Error:  # written before signatures existed
        return None
    finally:
        src.close()
    whole = whole or size
    if fmt != FORMAT or size > GROWTH * whole:
        return None
    parts: dict[tuple[str, str], _Signed] = {}
    for schema, table, columns, keyed, center, sig in rows:
        signed = parts.setdefault((schema, table), _Signed(columns, keyed, {}))
        if sig is not None:  # NULL: the row of an empty table (its columns only)
            signed.parts[center] = sig
    return _Base(parts, whole)


def _sign(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> _Signed:
    columns = con.execute(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) FROM duckdb_columns()"
        " WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchone()[0]
    keyed = re.search(r"(^|, )center ", columns or "") is not None
    if schema == "main" and table in _SUMMARY_INPUT:
        source, hashed, where = _SUMMARY_INPUT[table]
        row = f"({hashed})"
    else:
        source, row, where = f'{schema}."{table}"', "t", "TRUE"
    group = "center" if keyed else "NULL"
    found = con.execute(
        f"SELECT {group}, count(*)::VARCHAR || ':' || coalesce(sum(hash({row})), 0)::VARCHAR "
        f"FROM {source} t WHERE {where} GROUP BY ALL"
    ).fetchall()
    return _Signed(columns or "", keyed, dict(found))


def _update(con: duckdb.DuckDBPyConnection, key: tuple[str, str], old: _Signed | None, new: _Signed) -> None:
    """Bring one table of the copied snapshot to the warehouse's state: nothing when its signatures are
    equal, the changed centers' rows when it is split by center, else the whole table."""
    if old is None or old.columns != new.columns or old.keyed != new.keyed:
        _replace(con, key, None, create=True)
        return
    changed = [c for c in old.parts.keys() | new.parts.keys() if old.parts.get(c) != new.parts.get(c)]
    if changed:
        _replace(con, key, changed if new.keyed else None, create=False)


def _replace(
    con: duckdb.DuckDBPyConnection, key: tuple[str, str], centers: list[str | None] | None, *, create: bool
) -> None:
    """Copy table ``key`` into the snapshot being written: whole (``centers`` None), or only those
    centers' rows in place of the ones it holds."""
    out, src = f'{_OUT}.{key[0]}."{key[1]}"', f'{key[0]}."{key[1]}"'
    if create:
        con.execute(f"DROP TABLE IF EXISTS {out}")
        con.execute(f"CREATE TABLE {out} AS SELECT * FROM {src}")
        return
    where = "TRUE"
    if centers is not None:
        named = ", ".join(f"'{_sql_str(c)}'" for c in centers if c is not None)
        where = " OR ".join(
            ([f"center IN ({named})"] if named else []) + (["center IS NULL"] if None in centers else [])
        )
    con.execute(f"DELETE FROM {out} WHERE {where}")
    con.execute(f"INSERT INTO {out} SELECT * FROM {src} WHERE {where}")


def _write_parts(con: duckdb.DuckDBPyConnection, signed: dict[tuple[str, str], _Signed]) -> None:
    con.execute(f"DROP TABLE IF EXISTS {_OUT}.main.{PARTS}")
    con.execute(
        f"CREATE TABLE {_OUT}.main.{PARTS} (schema_name VARCHAR, table_name VARCHAR, columns VARCHAR, "
        "keyed BOOLEAN, center VARCHAR, sig VARCHAR)"
    )
    rows = [
        (schema, table, s.columns, s.keyed, center, sig)
        for (schema, table), s in signed.items()
        for center, sig in (s.parts.items() if s.parts else [(None, None)])
    ]
    if rows:
        con.executemany(f"INSERT INTO {_OUT}.main.{PARTS} VALUES (?, ?, ?, ?, ?, ?)", rows)


def _meta(snap: Snapshot, column: str) -> object:
    con = duckdb.connect(str(snap.path), read_only=True)
    try:
        return con.execute(f"SELECT {column} FROM {META}").fetchone()[0]
    finally:
        con.close()


def _format_of(snap: Snapshot) -> object:
    return _meta(snap, "format")


def _fingerprint_of(snap: Snapshot) -> object:
    return _meta(snap, "fingerprint")


def _write_pointer(folder: Path, name: str) -> None:
    """Replace CURRENT atomically and durably: a reader sees the old name or the new one, never neither."""
    tmp = folder / f".tmp-{os.getpid()}-{CURRENT}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / CURRENT)
    _fsync_dir(folder)


def _prune(warehouse: Path, keep: int) -> None:
    for snap in snapshots(warehouse)[:-keep]:
        snap.path.unlink(missing_ok=True)
        snap.path.with_name(snap.path.name + ".wal").unlink(missing_ok=True)


@contextlib.contextmanager
def _publish_lock(folder: Path) -> Iterator[None]:
    with open(folder / ".publish.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sql_str(value: str) -> str:
    return value.replace("'", "''")
