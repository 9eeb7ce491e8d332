"""``load()``: one ingest run = one warehouse transaction.

Everything a load writes (staged resources, the merge, rejects, its ``loads`` row, and whatever
``after_load`` does) happens inside a single DuckDB transaction, so an exception or a ``kill -9``
mid-load leaves the warehouse exactly as it was: DuckDB only makes a transaction durable at commit.
A failed load therefore leaves no ``loads`` row either -- the caller sees the exception.

So that no single record can make that happen, ``screen`` (the CLI passes the built-in views'
screen, ``chc_equity.views.shape``) turns every resource a view could not read into a
``wrong-shape`` reject before it is staged, and a record over ``max_record_bytes`` becomes a
``too-large`` reject instead of being held in memory and parsed.

A load that changed data also writes a ``pending_refresh`` row for its center in that same transaction,
and its scope in ``pending_patients`` (the whole center, narrowed to the touched patients by the views
hook, ``chc_equity.touched``): the results derived later (measure results, patient attributes, web
aggregates) are older than the data until ``chc_equity.refresh.finish_pending`` has rebuilt them and
deleted the rows. So a crash between the commit
and the end of the refresh can never leave results stale unnoticed (see docs/architecture.md).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from chc_equity.crashpoints import crash_point
from chc_equity.ingest.records import Reject, Resource
from chc_equity.ingest.sources import DEFAULT_MAX_RECORD_BYTES, find_inputs, read_file
from chc_equity.ingest.store import TOUCHED, Stager, merge, next_load_id
from chc_equity.warehouse import PENDING_PATIENTS, PENDING_REFRESH

AfterLoad = Callable[[duckdb.DuckDBPyConnection, str], None]
# progress(bytes_delta, resources_delta): bytes of input files consumed (compressed size for .gz).
Progress = Callable[[int, int], None]
# screen(resource type, parsed resource) -> None when fine, else a problem with .element and .detail.
Screen = Callable[[str, dict], object]

# Bounded DuckDB memory during a load; staging spills to the temp directory beyond it.
DEFAULT_MEMORY_LIMIT = "1GB"
UNKNOWN_TYPE = "(unknown)"


@dataclass
class LoadResult:
    """What one load did; mirrors its ``loads`` row plus per-type counts for the CLI table."""

    load_id: int
    center: str
    files: list[str]
    resources_read: int = 0
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    duration_s: float = 0.0
    status: str = "ok"
    loaded_by_type: Counter[str] = field(default_factory=Counter)
    quarantined_by_type: Counter[str] = field(default_factory=Counter)
    # Directory entries not read (path, why), and urn:uuid references no Bundle entry resolved.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dangling_references: int = 0


def load(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[str | os.PathLike[str]],
    center: str,
    *,
    after_load: AfterLoad | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    screen: Screen | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> LoadResult:
    """Ingest files/directories for ``center`` into the warehouse behind ``con``, atomically.

    ``after_load(con, center)`` runs inside the load's transaction, just before commit, so derived
    tables are refreshed in the same atomic step (the CLI passes the views refresh). It may read the
    temp table ``store.TOUCHED`` (``type``, ``id``): the resources this load inserted or replaced.
    """
    if not center or not center.strip():
        raise ValueError("center must be a non-empty id")
    if max_record_bytes < 1:
        raise ValueError("max_record_bytes must be positive")
    inputs = find_inputs(paths)
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    previous = _settings(con, memory_limit, progress_bar=False)
    con.begin()
    try:
        crash_point("load:begun")
        result = _run(con, inputs.files, center, progress, screen, max_record_bytes)
        result.skipped = inputs.skipped
        result.duration_s = time.perf_counter() - started
        _record(con, result, started_at)
        if result.inserted + result.updated:
            mark_stale(con, center, result.load_id)
        crash_point("load:recorded")
        if after_load is not None:
            after_load(con, center)
        crash_point("load:views-built")
        con.execute(f"DROP TABLE IF EXISTS {TOUCHED}")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        _settings(con, *previous)
    crash_point("load:committed")
    return result


def _run(
    con: duckdb.DuckDBPyConnection,
    files: list,
    center: str,
    progress: Progress | None,
    screen: Screen | None,
    max_record_bytes: int,
) -> LoadResult:
    load_id = next_load_id(con)
    names = [str(path.resolve()) for path in files]
    result = LoadResult(load_id, center, names)
    stager = Stager(con, load_id, center)
    on_bytes = (lambda n: progress(n, 0)) if progress is not None else None
    pending = 0
    for path, name in zip(files, names, strict=True):
        for read in read_file(path, on_bytes, max_record_bytes):
            result.resources_read += 1
            item = vet(read, screen, max_record_bytes) if isinstance(read, Resource) else read
            if isinstance(item, Resource):
                result.dangling_references += item.dangling
                stager.add(item, name)
                result.loaded_by_type[item.type] += 1
            else:
                stager.reject(item, name)
                result.quarantined_by_type[item.resource_type or UNKNOWN_TYPE] += 1
            pending += 1
            if progress is not None and pending >= 1000:
                progress(0, pending)
                pending = 0
    if progress is not None and pending:
        progress(0, pending)
    stager.flush()
    crash_point("load:staged")
    result.loaded = sum(result.loaded_by_type.values())
    result.quarantined = sum(result.quarantined_by_type.values())
    result.inserted, result.updated, result.unchanged = merge(con, center, load_id)
    crash_point("load:merged")
    result.status = "ok" if result.quarantined == 0 else "quarantined"
    return result


def vet(item: Resource, screen: Screen | None, max_record_bytes: int) -> Resource | Reject:
    """The loader's own checks on a parsed resource: its size (a Bundle entry or a document is only
    measured once parsed) and the screen; the parsed object is released either way."""
    data, item.data = item.data, None
    if len(item.json) > max_record_bytes:
        return Reject(
            item.pos,
            "too-large",
            f"{len(item.json):,} bytes, over the per-record limit of {max_record_bytes:,}; raw text not "
            f"copied: {item.pos or 'the whole file'}",
            resource_type=item.type,
            resource_id=item.id,
        )
    problem = screen(item.type, data) if screen is not None and data is not None else None
    if problem is None:
        return item
    return Reject(
        item.pos,
        "wrong-shape",
        problem.detail,  # type: ignore[attr-defined]
        field=problem.element,  # type: ignore[attr-defined]
        raw=item.json.decode(),
        resource_type=item.type,
        resource_id=item.id,
    )


def _record(con: duckdb.DuckDBPyConnection, r: LoadResult, started_at: datetime) -> None:
    con.execute(
        """INSERT INTO loads (load_id, center, started_at, finished_at, duration_s, files, resources_read,
                              inserted, updated, unchanged, quarantined, status)
           VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            r.load_id,
            r.center,
            started_at,
            r.duration_s,
            r.files,
            r.resources_read,
            r.inserted,
            r.updated,
            r.unchanged,
            r.quarantined,
            r.status,
        ],
    )


def mark_stale(con: duckdb.DuckDBPyConnection, center: str, load_id: int) -> None:
    """Record, inside the load's transaction, that ``center``'s derived results predate this load.

    Public for writers that change ``resources`` inside a load's ``after_load`` (the Bulk Data pull applies
    ``deleted`` entries there), so a change that inserts nothing still gets its results refreshed.

    The load's scope starts as the whole center (a ``pending_patients`` row with patient_id NULL); the
    views hook narrows it to the patients the load touched (``chc_equity.touched``) when it can.
    """
    con.execute(
        f"""INSERT INTO {PENDING_PATIENTS} (center, load_id, patient_id)
            SELECT $center, $load_id, NULL WHERE NOT EXISTS (
                SELECT 1 FROM {PENDING_PATIENTS}
                WHERE center = $center AND load_id = $load_id AND patient_id IS NULL)""",
        {"center": center, "load_id": load_id},
    )
    con.execute(
        f"INSERT OR REPLACE INTO {PENDING_REFRESH} (center, load_id) VALUES (?, ?)", [center, load_id]
    )


def _settings(
    con: duckdb.DuckDBPyConnection, memory_limit: str | None, progress_bar: bool
) -> tuple[str | None, bool]:
    """Apply memory_limit and DuckDB's own progress bar (the CLI draws a Rich one; DuckDB's would
    interleave with it on stdout); returns the previous values so the caller can restore them."""
    previous_bar = bool(con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0])
    con.execute(f"SET enable_progress_bar = {'true' if progress_bar else 'false'}")
    if memory_limit is None:
        return None, previous_bar
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", memory_limit):
        raise ValueError(f"memory_limit must look like '1GB' or '512MiB', got {memory_limit!r}")
    previous_limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return previous_limit, previous_bar
