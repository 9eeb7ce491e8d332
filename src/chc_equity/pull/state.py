"""The ``pulls`` table: one row per pull attempt, kept in the warehouse itself.

Why in the warehouse and not a state file: a successful pull's row is written inside the same
transaction as the data it loaded (``runner`` passes it to ingest's ``after_load``), so the ``_since``
of the next pull can never get ahead of (or behind) what is actually loaded -- a crash between "data
committed" and "state saved" is impossible. Failed attempts are recorded afterwards in their own small
transaction, with the error text and no data.

``source`` identifies what was pulled: the FHIR base URL plus ``/Group/<id>``. ``--since auto`` uses
the ``transactionTime`` of the newest successful pull of the same source into the same center.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

DDL = """
CREATE TABLE IF NOT EXISTS pulls (
    pull_id          BIGINT PRIMARY KEY,
    center           VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    duration_s       DOUBLE,
    since            VARCHAR,
    transaction_time VARCHAR,
    status           VARCHAR NOT NULL,
    load_id          BIGINT,
    files            BIGINT,
    bytes            BIGINT,
    resources        BIGINT,
    deleted          BIGINT,
    error            VARCHAR
)
"""


@dataclass
class PullRecord:
    """What one pull attempt did (the row of ``pulls``)."""

    center: str
    source: str
    started_at: datetime
    since: str | None = None
    transaction_time: str | None = None
    status: str = "running"
    load_id: int | None = None
    files: int = 0
    bytes: int = 0
    resources: int = 0
    deleted: int = 0
    duration_s: float = 0.0
    error: str | None = None
    pull_id: int | None = None


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def last_transaction_time(con: duckdb.DuckDBPyConnection, center: str, source: str) -> str | None:
    """``transactionTime`` of the newest successful pull of ``source`` into ``center``, if any."""
    ensure_table(con)
    row = con.execute(
        """SELECT transaction_time FROM pulls WHERE center = ? AND source = ? AND status = 'ok'
           ORDER BY pull_id DESC LIMIT 1""",
        [center, source],
    ).fetchone()
    return row[0] if row else None


def record(con: duckdb.DuckDBPyConnection, rec: PullRecord) -> int:
    """Insert the attempt's row in the caller's transaction; returns its pull_id."""
    ensure_table(con)
    pull_id = int(con.execute("SELECT coalesce(max(pull_id), 0) + 1 FROM pulls").fetchone()[0])
    con.execute(
        """INSERT INTO pulls (pull_id, center, source, started_at, finished_at, duration_s, since,
                              transaction_time, status, load_id, files, bytes, resources, deleted, error)
           VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            pull_id,
            rec.center,
            rec.source,
            rec.started_at,
            rec.duration_s,
            rec.since,
            rec.transaction_time,
            rec.status,
            rec.load_id,
            rec.files,
            rec.bytes,
            rec.resources,
            rec.deleted,
            rec.error,
        ],
    )
    return pull_id


def status_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per center: its newest pull (any outcome), its newest successful pull, and its newest load.

    For the web status page; works on a warehouse that has never pulled (no ``pulls`` table yet).
    """
    has_pulls = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'pulls'"
    ).fetchone()[0]
    pulls = (
        """, last_pull AS (SELECT * FROM pulls QUALIFY row_number() OVER (PARTITION BY center
                                                                         ORDER BY pull_id DESC) = 1),
             last_ok AS (SELECT center, max(finished_at) AS ok_at FROM pulls WHERE status = 'ok'
                         GROUP BY center)"""
        if has_pulls
        else """, last_pull AS (SELECT NULL::VARCHAR AS center, NULL::VARCHAR AS source,
                    NULL::TIMESTAMPTZ AS started_at, NULL::DOUBLE AS duration_s, NULL::VARCHAR AS status,
                    NULL::BIGINT AS files, NULL::BIGINT AS bytes, NULL::BIGINT AS resources,
                    NULL::BIGINT AS deleted, NULL::VARCHAR AS error, NULL::VARCHAR AS since WHERE false),
               last_ok AS (SELECT NULL::VARCHAR AS center, NULL::TIMESTAMPTZ AS ok_at WHERE false)"""
    )
    sql = f"""
        WITH last_load AS (SELECT * FROM loads QUALIFY row_number() OVER (PARTITION BY center
                                                                          ORDER BY load_id DESC) = 1)
        {pulls},
        centers AS (SELECT center FROM last_load UNION SELECT center FROM last_pull)
        SELECT c.center,
               p.source, p.started_at AS pull_started, p.duration_s AS pull_duration_s,
               p.status AS pull_status, p.since AS pull_since, p.files AS pull_files,
               p.bytes AS pull_bytes, p.resources AS pull_resources, p.deleted AS pull_deleted,
               p.error AS pull_error, o.ok_at AS last_ok_pull,
               l.load_id, l.finished_at AS load_finished, l.duration_s AS load_duration_s,
               l.inserted, l.updated, l.unchanged, l.quarantined, l.status AS load_status
        FROM centers c
        LEFT JOIN last_pull p USING (center)
        LEFT JOIN last_ok o USING (center)
        LEFT JOIN last_load l USING (center)
        ORDER BY c.center"""
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
