"""``pull()``: one Bulk Data export of a Group, loaded into one center, all or nothing.

Order of work, and why:
1. everything is downloaded to a private temporary folder first; a failed or short download stops
   the pull before the warehouse is touched;
2. one ``chc_equity.ingest.load`` of the output files (the normal ingest: checks, quarantine, merge);
   its ``after_load`` hook -- inside the load's transaction -- removes the ``deleted`` keys, writes the
   ``pulls`` row that holds the next ``_since``, then runs the caller's hook (the views refresh);
3. the temporary folder is removed whatever happened (the files hold patient data).
So the warehouse either gains the whole export, its deletions and its pull record, or nothing; a failed
attempt is then recorded (status ``error``) in a transaction of its own.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

from chc_equity.ingest import LoadResult, load, mark_stale
from chc_equity.ingest.loader import AfterLoad, Screen
from chc_equity.ingest.store import TOUCHED
from chc_equity.pull import state
from chc_equity.pull.auth import AuthError, Credentials, TokenSource
from chc_equity.pull.bulk import BulkClient, Downloaded, ExportRequest, Log, Manifest, Policy, PullError
from chc_equity.pull.deleted import read_deletions

AUTO = "auto"


@dataclass
class PullResult:
    record: state.PullRecord
    load: LoadResult | None
    manifest: Manifest | None


def source_key(server: str, group: str) -> str:
    return f"{server.rstrip('/')}/Group/{group}"


def resolve_since(con: duckdb.DuckDBPyConnection, since: str | None, center: str, source: str) -> str | None:
    """``auto`` -> the last successful pull's transactionTime (None: first pull, so a full one)."""
    if since == AUTO:
        return state.last_transaction_time(con, center, source)
    return since


def pull(
    con: duckdb.DuckDBPyConnection,
    server: str,
    group: str,
    center: str,
    *,
    since: str | None = None,
    types: list[str] | None = None,
    credentials: Credentials | None = None,
    after_load: AfterLoad | None = None,
    screen: Screen | None = None,
    policy: Policy | None = None,
    log: Log | None = None,
    work_dir: str | Path | None = None,
    http: httpx.Client | None = None,
) -> PullResult:
    """Export ``group`` from ``server`` and load it into ``center``; raises PullError on failure
    (after recording the failed attempt), leaving the data exactly as before."""
    if not center or not center.strip():
        raise ValueError("center must be a non-empty id")
    log = log or (lambda _msg: None)
    policy = policy or Policy()
    source = source_key(server, group)
    started = time.perf_counter()
    rec = state.PullRecord(center=center, source=source, started_at=datetime.now(UTC))
    own_http = http is None
    client = http or httpx.Client(timeout=policy.timeout_s, follow_redirects=True)
    try:
        rec.since = resolve_since(con, since, center, source)
        tokens = TokenSource(credentials, client, server) if credentials else None
        bulk = BulkClient(server, client, tokens, policy, log)
        with tempfile.TemporaryDirectory(prefix="chc-pull-", dir=work_dir) as tmp:
            request = ExportRequest(group, rec.since, types or [])
            manifest, outputs, deletions = _export(bulk, request, Path(tmp))
            rec.transaction_time = manifest.transaction_time
            rec.files = len(outputs) + len(deletions)
            rec.bytes = sum(d.nbytes for d in outputs + deletions)
            keys = read_deletions([d.path for d in deletions])
            log(f"loading {len(outputs)} files and {len(keys)} deletions into {center}")

            def finish(load_con: duckdb.DuckDBPyConnection, load_center: str) -> None:
                rec.deleted = _apply_deletions(load_con, load_center, keys)
                if rec.deleted:
                    mark_stale(load_con, load_center, _this_load(load_con, load_center))
                rec.status = "ok"
                rec.duration_s = time.perf_counter() - started
                rec.pull_id = state.record(load_con, rec)
                if after_load is not None:
                    after_load(load_con, load_center)

            state.ensure_table(con)  # outside the load: DDL must not be what a rollback undoes
            result = load(con, [d.path for d in outputs], center, after_load=finish, screen=screen)
        rec.load_id = result.load_id
        rec.resources = result.loaded
        _set_load_id(con, rec)
        return PullResult(rec, result, manifest)
    except BaseException as exc:
        rec.status = "error"
        rec.error = _describe(exc)
        rec.duration_s = time.perf_counter() - started
        _record_failure(con, rec)
        if isinstance(exc, AuthError):
            raise PullError(f"authorization: {exc}") from None
        raise
    finally:
        if own_http:
            client.close()


def _export(
    bulk: BulkClient, request: ExportRequest, folder: Path
) -> tuple[Manifest, list[Downloaded], list[Downloaded]]:
    """Kick-off, wait, download. Returns the manifest, output files and deleted files (all local)."""
    status_url = bulk.kick_off(request)
    bulk.log(f"export accepted; polling {status_url}")
    manifest = bulk.wait_for_manifest(status_url)
    if manifest.error:
        types = sorted({e.type for e in manifest.error if e.type}) or ["?"]
        bulk.cancel(status_url)
        raise PullError(
            f"the server reported {len(manifest.error)} export error file(s) ({', '.join(types)}); "
            "nothing loaded, so the next pull does not skip what this one missed"
        )
    bulk.log(f"export ready: {len(manifest.output)} files, {len(manifest.deleted)} deleted files")
    outputs = bulk.download_all(manifest.output, folder / "output", manifest.requires_token)
    deleted = bulk.download_all(manifest.deleted, folder / "deleted", manifest.requires_token)
    total = sum(d.nbytes for d in outputs + deleted)
    bulk.log(f"downloaded {len(outputs) + len(deleted)} files, {total:,} bytes")
    bulk.cancel(status_url)  # done with the files: the server may delete them
    return manifest, outputs, deleted


def _apply_deletions(con: duckdb.DuckDBPyConnection, center: str, keys: list[tuple[str, str]]) -> int:
    """Remove the deleted keys of ``center`` from ``resources`` (in the load's transaction)."""
    if not keys:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE _pull_deleted (type VARCHAR, id VARCHAR)")
    con.executemany("INSERT INTO _pull_deleted VALUES (?, ?)", keys)
    removed = con.execute(
        """DELETE FROM resources r USING _pull_deleted d
           WHERE r.center = ? AND r.type = d.type AND r.id = d.id""",
        [center],
    ).fetchone()
    # the views refresh (after_load) removes the flat rows of every key listed as touched
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {TOUCHED} (type VARCHAR, id VARCHAR)")
    con.execute(f"INSERT INTO {TOUCHED} SELECT type, id FROM _pull_deleted")
    con.execute("DROP TABLE _pull_deleted")
    return int(removed[0]) if removed else 0


def _this_load(con: duckdb.DuckDBPyConnection, center: str) -> int:
    """The id of the load in progress (its ``loads`` row is written before ``after_load`` runs)."""
    return int(con.execute("SELECT max(load_id) FROM loads WHERE center = ?", [center]).fetchone()[0])


def _set_load_id(con: duckdb.DuckDBPyConnection, rec: state.PullRecord) -> None:
    """The pull row is written inside the load, before ingest returns its load_id and counts; a small
    follow-up fills them in (if it failed, only these two display columns would stay empty)."""
    con.execute(
        "UPDATE pulls SET load_id = ?, resources = ? WHERE pull_id = ?",
        [rec.load_id, rec.resources, rec.pull_id],
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PullError | AuthError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    # the type only: a database or parser message can quote a data value
    return f"{type(exc).__name__} during the pull"


def _record_failure(con: duckdb.DuckDBPyConnection, rec: state.PullRecord) -> None:
    try:
        state.ensure_table(con)
        state.record(con, rec)
    except duckdb.Error:
        pass  # the original error matters more than its record
