"""Read-only queries for the web pages and the API, on the published serving snapshot.

The web app never opens the live warehouse to answer a request: ingest writes it from another process
and DuckDB lets one process write a file at a time. :func:`open_warehouse` opens, read-only and for one
request, the snapshot the last writer published (:mod:`chc_equity.serving`), so pages keep answering
during a load and switch to the new state when the load has published. A request that opens it more than
once gets the same snapshot each time (it is pinned on ``request.state``), and its seq goes out in the
``X-Data-Version`` response header. Only when nothing was ever published and the warehouse is being
written is the answer :class:`WarehouseUnavailable` (HTTP 503 "try again").

Every function takes ``center``: ``None`` means all centers (network roles), a string restricts the rows
to that one center. The authorization layer decides which value a user may pass; these functions only
make sure the filter is applied in SQL, so no row of another center is ever read into Python.

Nothing here returns raw resource text or reject ``raw``/``detail`` columns: those can hold patient data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from chc_equity import serving
from chc_equity.warehouse import FLAT_SCHEMA

LOAD_LIMIT = 50
PATIENT_LIST_LIMIT = 5000


class WarehouseUnavailable(RuntimeError):
    """The warehouse file is missing or locked by a writer; the message is safe to show to users."""


DATA_VERSION_HEADER = "X-Data-Version"
_PIN = "data_snapshot"  # request.state attribute holding the request's Snapshot


def snapshot_for(path: Path, state: object | None = None) -> serving.Snapshot:
    """The snapshot a request reads: pinned on ``state`` (``request.state``) after its first open."""
    pinned = getattr(state, _PIN, None) if state is not None else None
    if pinned is not None:
        return pinned
    snap = serving.current(path)
    if snap is None:  # never published (a warehouse from before snapshots, or built by library code)
        if not path.exists():
            raise WarehouseUnavailable(f"No warehouse yet at {path.name}: run `chc-equity ingest` first.")
        snap = serving.ensure_current(path)
        if snap is None:
            raise WarehouseUnavailable(
                "The warehouse is busy (its first load is still running). Try again in a moment."
            )
    if state is not None:
        setattr(state, _PIN, snap)
    return snap


def snapshot_of(state: object) -> serving.Snapshot | None:
    """The snapshot a request read, if it read one (for the ``X-Data-Version`` header)."""
    return getattr(state, _PIN, None)


@contextmanager
def open_warehouse(path: Path, state: object | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection to the published snapshot of the warehouse at ``path``.

    Pass ``request.state`` as ``state`` so that every open in one request reads the same snapshot and
    the response carries its seq (``X-Data-Version``). The connection is a cursor on the snapshot's
    shared read-only database (:class:`_OpenSnapshots`): same data, none of the cost of opening the file.
    """
    snap = snapshot_for(path, state)
    with _OPEN.cursor(snap.path) as con:
        yield con


class _OpenSnapshots:
    """One read-only DuckDB database per published snapshot file, shared by every request that reads it.

    Why: opening a DuckDB file (catalog, storage) costs more CPU than most of the queries a page runs on
    it (about 10 ms against 0.3 ms for a cursor on an open one), and under many concurrent users that
    was most of the server's CPU. Sharing is safe because a published snapshot is never written again
    (:mod:`chc_equity.serving` writes a new file and switches CURRENT); each request still gets its own
    cursor (a DuckDB connection of its own, with its own transaction). The file's inode and mtime are part
    of the key, so a file replaced under the same name is opened afresh. The newest :attr:`keep` files
    stay open; an older one is closed when its last request is done (a request pinned to it keeps it).
    """

    keep = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int, int], _Shared] = {}

    @contextmanager
    def cursor(self, file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
        shared = self._acquire(file)
        try:
            cur = shared.con.cursor()
        except BaseException:
            self._release(shared)
            raise
        try:
            yield cur
        finally:
            cur.close()
            self._release(shared)

    def _acquire(self, file: Path) -> _Shared:
        try:
            st = os.stat(file)
        except FileNotFoundError as exc:
            # Only if KEEP newer snapshots were published since this request pinned its one.
            raise WarehouseUnavailable("The data changed while answering. Try again.") from exc
        key = (str(file), st.st_ino, st.st_mtime_ns)
        with self._lock:
            shared = self._open.get(key)
            if shared is None:
                # DuckDB hands back a database already open under the same path, even when the file was
                # replaced since: close such a one first (or, in use, let the request retry).
                for other in [k for k in self._open if k[0] == key[0]]:
                    if self._open[other].users:
                        raise WarehouseUnavailable("The data changed while answering. Try again.")
                    self._open.pop(other).con.close()
                try:
                    con = duckdb.connect(str(file), read_only=True)
                except duckdb.IOException as exc:
                    raise WarehouseUnavailable("The data changed while answering. Try again.") from exc
                shared = self._open[key] = _Shared(con)
                others = sorted(k for k in self._open if k != key)  # file names sort by seq
                for old in others[: max(0, len(others) - self.keep + 1)]:
                    retired = self._open.pop(old)
                    retired.retired = True
                    if retired.users == 0:
                        retired.con.close()
            shared.users += 1
            return shared

    def _release(self, shared: _Shared) -> None:
        with self._lock:
            shared.users -= 1
            if shared.retired and shared.users == 0:
                shared.con.close()

    def close_all(self) -> None:
        """Close every database no request is using (tests, shutdown)."""
        with self._lock:
            for key, shared in list(self._open.items()):
                if shared.users == 0:
                    shared.con.close()
                    del self._open[key]


@dataclass(slots=True)
class _Shared:
    con: duckdb.DuckDBPyConnection
    users: int = 0
    retired: bool = False


_OPEN = _OpenSnapshots()


def _scope(center: str | None, column: str = "center") -> tuple[str, list[str]]:
    """SQL ``WHERE`` fragment and parameters restricting rows to ``center`` (or nothing for all)."""
    if center is None:
        return "TRUE", []
    return f"{column} = ?", [center]


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


# -- centers ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class CenterSummary:
    center: str
    loads: int
    last_load: str | None
    last_status: str | None
    resources: int | None = 0  # None: suppressed (viewers)
    by_type: dict[str, int | None] = field(default_factory=dict)
    # Why a count is hidden (viewers): resource type (or "*" for the total) -> "small" / "complementary"
    hidden: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def centers(con: duckdb.DuckDBPyConnection, center: str | None = None) -> list[CenterSummary]:
    """Centers that appear in ``loads``, with their load count, last load and resource counts by type."""
    where, params = _scope(center)
    rows = con.execute(
        f"""
        SELECT center, count(*) AS n,
               strftime(max(started_at), '%Y-%m-%d %H:%M:%S %Z') AS last_load,
               arg_max(status, started_at) AS last_status
        FROM loads WHERE {where} GROUP BY center ORDER BY center
        """,
        params,
    ).fetchall()
    out = {c: CenterSummary(c, int(n), last, status) for c, n, last, status in rows}
    counts = con.execute(
        f"SELECT center, type, n FROM resource_counts WHERE {where} ORDER BY ALL", params
    ).fetchall()
    for c, rtype, n in counts:
        summary = out.get(c)
        if summary is not None:
            summary.by_type[rtype] = int(n)
            summary.resources = (summary.resources or 0) + int(n)
    return list(out.values())


def center_exists(con: duckdb.DuckDBPyConnection, center: str) -> bool:
    row = con.execute("SELECT count(*) FROM loads WHERE center = ?", [center]).fetchone()
    return bool(row and row[0])


# -- loads --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoadRow:
    load_id: int
    center: str
    started_at: str | None
    duration_s: float | None
    files: int
    resources_read: int | None
    inserted: int | None
    updated: int | None
    unchanged: int | None
    quarantined: int | None
    status: str


def loads(
    con: duckdb.DuckDBPyConnection, center: str | None = None, limit: int = LOAD_LIMIT
) -> list[LoadRow]:
    """The most recent loads, newest first (file count only: paths are shown per reject group)."""
    where, params = _scope(center)
    rows = con.execute(
        f"""
        SELECT load_id, center, strftime(started_at, '%Y-%m-%d %H:%M:%S %Z'), duration_s,
               coalesce(len(files), 0), resources_read, inserted, updated, unchanged, quarantined, status
        FROM loads WHERE {where} ORDER BY started_at DESC, load_id DESC LIMIT ?
        """,
        [*params, limit],
    ).fetchall()
    return [LoadRow(*row) for row in rows]


# -- rejects ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RejectGroup:
    """Rejected records counted by file, type, reason and field: never the raw text or detail."""

    center: str | None
    source_file: str | None
    resource_type: str | None
    reason: str
    field: str | None
    count: int


def reject_groups(con: duckdb.DuckDBPyConnection, center: str | None = None) -> list[RejectGroup]:
    where, params = _scope(center)
    rows = con.execute(
        f"""
        SELECT center, source_file, resource_type, reason, field, n
        FROM reject_counts WHERE {where}
        ORDER BY center, source_file, n DESC, reason, field
        """,
        params,
    ).fetchall()
    return [RejectGroup(c, f, t, r, fld, int(n)) for c, f, t, r, fld, n in rows]


# -- demographics -------------------------------------------------------------------------------------
# What counts as "unknown" for each demographic field of flat.patient: NULL/blank, plus the codes that
# explicitly say unknown (US Core data-absent codes UNK/ASKU, BCP-47 'und'). Each entry is the SQL
# expression that is TRUE when the value is unknown, and the columns it needs.
DEMOGRAPHIC_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "birth_sex": ("coalesce(trim(birth_sex), '') IN ('', 'UNK', 'ASKU')", ("birth_sex",)),
    "race": ("coalesce(trim(race_omb_code), '') IN ('', 'UNK', 'ASKU')", ("race_omb_code",)),
    "ethnicity": ("coalesce(trim(ethnicity_omb_code), '') IN ('', 'UNK', 'ASKU')", ("ethnicity_omb_code",)),
    "language": (
        "lower(coalesce(trim(coalesce(preferred_language_code, first_language_code)), ''))"
        " IN ('', 'unk', 'und')",
        ("preferred_language_code", "first_language_code"),
    ),
    "postal_code": ("coalesce(trim(postal_code), '') IN ('', '00000')", ("postal_code",)),
}


@dataclass(frozen=True, slots=True)
class UnknownRate:
    """Patients of one center with an unknown value of one field. ``None`` counts are suppressed."""

    center: str
    field: str
    patients: int | None
    unknown: int | None
    # Why a count is hidden (viewers): "patients" / "unknown" -> "small" / "complementary"
    hidden: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def rate(self) -> float | None:
        if self.patients is None or self.unknown is None or self.patients == 0:
            return None
        return self.unknown / self.patients


@dataclass(slots=True)
class Demographics:
    available: bool
    message: str | None = None
    rates: list[UnknownRate] = field(default_factory=list)


def patient_columns(con: duckdb.DuckDBPyConnection) -> set[str] | None:
    """Columns of ``flat.patient``, or None when the views stage has not built it yet."""
    if not _table_exists(con, FLAT_SCHEMA, "patient"):
        return None
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = ? AND table_name = 'patient'",
        [FLAT_SCHEMA],
    ).fetchall()
    return {r[0] for r in rows}


def demographics(con: duckdb.DuckDBPyConnection, center: str | None = None) -> Demographics:
    """Share of patients with an unknown birth sex, race, ethnicity, language, postal code, per center."""
    columns = patient_columns(con)
    if columns is None:
        return Demographics(False, "flat.patient does not exist yet: run `chc-equity views build`.")
    fields = {name: expr for name, (expr, needs) in DEMOGRAPHIC_FIELDS.items() if set(needs) <= columns}
    if not fields or "center" not in columns:
        return Demographics(False, "flat.patient lacks the demographic columns this page expects.")
    where, params = _scope(center)
    selects = ", ".join(f"count(*) FILTER (WHERE {expr})" for expr in fields.values())
    rows = con.execute(
        f"SELECT center, count(*), {selects} FROM {FLAT_SCHEMA}.patient WHERE {where} GROUP BY center "
        "ORDER BY center",
        params,
    ).fetchall()
    rates = [
        UnknownRate(row[0], name, int(row[1]), int(n))
        for row in rows
        for name, n in zip(fields, row[2:], strict=True)
    ]
    missing = [name for name in DEMOGRAPHIC_FIELDS if name not in fields]
    note = f"not in flat.patient: {', '.join(missing)}" if missing else None
    return Demographics(True, note, rates)


def patients_missing(con: duckdb.DuckDBPyConnection, center: str, field_name: str) -> list[str] | None:
    """Ids of ``center``'s patients whose ``field_name`` is unknown (patient-level: callers authorize).

    Returns None when flat.patient or the field's columns are not there.
    """
    expr, needs = DEMOGRAPHIC_FIELDS[field_name]
    columns = patient_columns(con)
    if columns is None or not set(needs) <= columns:
        return None
    rows = con.execute(
        f"SELECT id FROM {FLAT_SCHEMA}.patient WHERE center = ? AND ({expr}) ORDER BY id LIMIT ?",
        [center, PATIENT_LIST_LIMIT],
    ).fetchall()
    return [r[0] for r in rows]
