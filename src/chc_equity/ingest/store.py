"""Warehouse side of a load: stage batches via Arrow, then merge them into ``resources`` in SQL.

A load is staged whole before merging because the within-load rule (newest lastUpdated wins, ties
go to the last one seen) needs every occurrence of a key. The staging table is a DuckDB temp table,
so under the connection's ``memory_limit`` it spills to the temp directory instead of growing RAM.

Merge rules against what is already stored for (center, type, id):
- both sides have lastUpdated: the incoming row replaces only when strictly newer (equal keeps);
- either side lacks lastUpdated: the incoming row replaces only when its JSON differs;
- unchanged rows are not touched at all (load_id and source columns keep their old values).
Within one load: the occurrence with the greatest lastUpdated wins, occurrences without lastUpdated
rank below those with one, and ties (including all-missing) go to the last one seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from chc_equity.ingest.records import Reject, Resource

STAGE = "_ingest_stage"
WINNERS = "_ingest_winners"
# (type, id) of every resource the load inserted or replaced: what derived tables must recompute.
# Lives until the load's after_load hook has run (see loader.load).
TOUCHED = "_ingest_touched"
BATCH_ROWS = 20_000
BATCH_BYTES = 32 << 20

_STAGE_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("type", pa.large_string()),
        ("id", pa.large_string()),
        ("last_updated", pa.timestamp("us", tz="UTC")),
        ("source_file", pa.large_string()),
        ("source_pos", pa.large_string()),
        ("resource", pa.large_string()),
    ]
)

_REJECT_COLUMNS = (
    "load_id",
    "center",
    "source_file",
    "source_pos",
    "resource_type",
    "resource_id",
    "field",
    "reason",
    "detail",
    "raw",
)


@dataclass
class Stager:
    """Buffers resources and rejects of one load and writes them in Arrow batches."""

    con: duckdb.DuckDBPyConnection
    load_id: int
    center: str
    seq: int = 0
    _rows: dict[str, list] = field(default_factory=lambda: {name: [] for name in _STAGE_SCHEMA.names})
    _bytes: int = 0
    _rejects: list[tuple] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {STAGE} (seq BIGINT, type VARCHAR, id VARCHAR, "
            "last_updated TIMESTAMPTZ, source_file VARCHAR, source_pos VARCHAR, resource VARCHAR)"
        )

    def add(self, item: Resource, source_file: str) -> None:
        rows = self._rows
        rows["seq"].append(self.seq)
        rows["type"].append(item.type)
        rows["id"].append(item.id)
        rows["last_updated"].append(item.last_updated)
        rows["source_file"].append(source_file)
        rows["source_pos"].append(item.pos)
        rows["resource"].append(item.json)
        self.seq += 1
        self._bytes += len(item.json)
        if len(rows["seq"]) >= BATCH_ROWS or self._bytes >= BATCH_BYTES:
            self.flush()

    def reject(self, item: Reject, source_file: str) -> None:
        self._rejects.append(
            (
                self.load_id,
                self.center,
                source_file,
                item.pos,
                item.resource_type,
                item.resource_id,
                item.field,
                item.reason,
                item.detail,
                item.raw,
            )
        )
        if len(self._rejects) >= 1000:
            self.flush()

    def flush(self) -> None:
        if self._rows["seq"]:
            # from_arrow + insert_into: con.register()/unregister() kept every batch alive inside
            # the connection (measured: RSS grew by the size of the input), defeating streaming.
            self.con.from_arrow(_to_arrow(self._rows)).insert_into(STAGE)
            for column in self._rows.values():
                column.clear()
            self._bytes = 0
        if self._rejects:
            marks = ", ".join("?" * len(_REJECT_COLUMNS))
            self.con.executemany(
                f"INSERT INTO rejects ({', '.join(_REJECT_COLUMNS)}) VALUES ({marks})", self._rejects
            )
            self._rejects.clear()


def _validity(values: list) -> pa.Buffer | None:
    """Arrow's validity bitmap of ``values`` (None = null), or None when nothing is null."""
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    return None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))


def _text_column(values: list[bytes | str | None]) -> pa.Array:
    """Text (or compact JSON bytes) -> an Arrow large_string column built from one joined buffer plus
    offsets.

    orjson always emits valid UTF-8, so no second validation pass is needed; and building from
    buffers is a memcpy, where ``pa.array(list_of_bytes)`` was the slowest step of staging.
    """
    raw = [b"" if v is None else v.encode() if isinstance(v, str) else v for v in values]
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), out=offsets[1:])
    data = b"".join(raw)
    return pa.Array.from_buffers(
        pa.large_string(), len(raw), [_validity(values), pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _int_column(values: list[int | None], typ: pa.DataType) -> pa.Array:
    """Integers (timestamps as epoch microseconds) -> an Arrow column of ``typ``, from buffers."""
    data = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=len(values))
    return pa.Array.from_buffers(typ, len(values), [_validity(values), pa.py_buffer(data)])


def _to_arrow(rows: dict[str, list]) -> pa.Table:
    """Buffered columns -> one Arrow table for DuckDB to insert.

    Every column is built from buffers, never with ``pa.array``: that call imports pandas (~0.5 CPU-s,
    paid by every `chc-equity ingest` process) only to ask whether a list is a pandas object.
    """
    arrays = [
        _text_column(rows[name]) if pa.types.is_large_string(typ) else _int_column(rows[name], typ)
        for name, typ in zip(_STAGE_SCHEMA.names, _STAGE_SCHEMA.types, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=_STAGE_SCHEMA)


_REPLACES = """CASE WHEN s.last_updated IS NOT NULL AND r.last_updated IS NOT NULL
                    THEN s.last_updated > r.last_updated
                    ELSE s.resource <> CAST(r.resource AS VARCHAR) END"""

# Within-load winner per key, without sorting the JSON payload: the greatest (lastUpdated, seq), with a
# missing lastUpdated ranked below every real one.
_WINNER_SEQS = f"""SELECT arg_max(seq, {{'t': coalesce(epoch_us(last_updated), -9223372036854775807),
                                          's': seq}}) AS seq
                   FROM {STAGE} GROUP BY type, id"""


def merge(con: duckdb.DuckDBPyConnection, center: str, load_id: int) -> tuple[int, int, int]:
    """Merge the staged load into ``resources``; returns (inserted, updated, unchanged) distinct keys.

    The decision table holds only (seq, is_new, replaces), so the staged JSON is read once more to
    write rows instead of being copied into another temp table (memory stays bounded).
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {WINNERS} AS
            SELECT s.seq, r.id IS NULL AS is_new, r.id IS NOT NULL AND ({_REPLACES}) AS replaces
            FROM {STAGE} s SEMI JOIN ({_WINNER_SEQS}) w ON s.seq = w.seq
            LEFT JOIN resources r ON r.center = $center AND r.type = s.type AND r.id = s.id""",
        {"center": center},
    )
    inserted, updated, unchanged = con.execute(
        f"SELECT count(*) FILTER (is_new), count(*) FILTER (replaces), "
        f"count(*) FILTER (NOT is_new AND NOT replaces) FROM {WINNERS}"
    ).fetchone()
    rows = f"SELECT s.* FROM {STAGE} s JOIN {WINNERS} w ON s.seq = w.seq"
    if updated:
        con.execute(
            f"""UPDATE resources SET last_updated = u.last_updated, source_file = u.source_file,
                       source_pos = u.source_pos, load_id = $load_id, resource = CAST(u.resource AS JSON)
                FROM ({rows} WHERE w.replaces) u
                WHERE resources.center = $center AND resources.type = u.type AND resources.id = u.id""",
            {"center": center, "load_id": load_id},
        )
    if inserted:
        con.execute(
            f"""INSERT INTO resources
                       (center, type, id, last_updated, source_file, source_pos, load_id, resource)
                SELECT $center, type, id, last_updated, source_file, source_pos, $load_id,
                       CAST(resource AS JSON)
                FROM ({rows} WHERE w.is_new)""",
            {"center": center, "load_id": load_id},
        )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {TOUCHED} AS
            SELECT s.type, s.id FROM {STAGE} s JOIN {WINNERS} w ON s.seq = w.seq
            WHERE w.is_new OR w.replaces"""
    )
    con.execute(f"DROP TABLE IF EXISTS {WINNERS}")
    con.execute(f"DROP TABLE IF EXISTS {STAGE}")
    return int(inserted), int(updated), int(unchanged)


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    """max+1 inside the load's transaction (a sequence would advance even when the load rolls back)."""
    return int(con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()[0])


def list_rejects(
    con: duckdb.DuckDBPyConnection, load_id: int | None = None, limit: int | None = None
) -> list[dict]:
    """Rejects (newest load first, then in input order), as dicts with the rejects table's columns."""
    where = "" if load_id is None else "WHERE load_id = $load_id"
    params: dict = {} if load_id is None else {"load_id": load_id}
    sql = f"SELECT * FROM rejects {where} ORDER BY load_id DESC, rowid"
    if limit is not None:
        sql += " LIMIT $limit"
        params["limit"] = limit
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
