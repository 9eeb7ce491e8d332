"""The re-link table: submitted pseudonym -> warehouse id, encrypted at rest, usable only with the key.

Rows live in the warehouse table ``udsplus_relink`` (never in the submission). Each original id is sealed
with AES-256-GCM under a key derived from the operator's secret, with the row's (year, center, type,
pseudonym) as associated data, so a row cannot be moved to another pseudonym and a wrong key fails
loudly instead of returning garbage. The secret itself is never stored: the operator supplies it
(``--key-file`` or ``CHC_EQUITY_UDSPLUS_KEY``) for export and for re-linking.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chc_equity.udsplus.deid import Pseudonymizer

TABLE = "udsplus_relink"
KEY_ENV = "CHC_EQUITY_UDSPLUS_KEY"
MIN_KEY_BYTES = 32


class RelinkError(Exception):
    """No such pseudonym, or the key does not open it."""


def load_key(path: Path | None = None) -> bytes:
    """The operator's secret from ``path`` or $CHC_EQUITY_UDSPLUS_KEY (at least 32 bytes)."""
    if path is not None:
        key = Path(path).read_bytes().strip()
        where = str(path)
    else:
        value = os.environ.get(KEY_ENV, "")
        key, where = value.encode(), f"${KEY_ENV}"
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"UDS+ key from {where} is {len(key)} bytes; give at least {MIN_KEY_BYTES} random bytes "
            f"(e.g. `openssl rand -hex 32 > udsplus.key`), kept outside the warehouse and the package"
        )
    return key


def _aead(key: bytes) -> AESGCM:
    return AESGCM(hmac.new(key, b"chc-equity udsplus relink v1", hashlib.sha256).digest())


def _aad(year: int, center: str, rtype: str, pseudonym: str) -> bytes:
    return f"{year}|{center}|{rtype}|{pseudonym}".encode()


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (year INTEGER, center VARCHAR, resource_type VARCHAR, "
        "pseudonym VARCHAR, nonce BLOB, sealed BLOB, PRIMARY KEY (year, center, resource_type, pseudonym))"
    )


def store(
    con: duckdb.DuckDBPyConnection, key: bytes, year: int, center: str, ids: Iterable[tuple[str, str, str]]
) -> int:
    """Replace the (year, center) rows with ``ids`` = (resource type, original id, pseudonym)."""
    ensure_table(con)
    aead = _aead(key)
    rows = []
    for rtype, original, pseudonym in ids:
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, original.encode(), _aad(year, center, rtype, pseudonym))
        rows.append((year, center, rtype, pseudonym, nonce, sealed))
    con.execute(f"DELETE FROM {TABLE} WHERE year = ? AND center = ?", [year, center])
    if rows:  # one columnar insert (executemany binds row by row: minutes for a center's ids)
        cols = list(zip(*rows, strict=True))
        batch = pa.table(
            {
                "year": pa.array(cols[0], pa.int32()),
                "center": pa.array(cols[1], pa.string()),
                "resource_type": pa.array(cols[2], pa.string()),
                "pseudonym": pa.array(cols[3], pa.string()),
                "nonce": pa.array(cols[4], pa.binary()),
                "sealed": pa.array(cols[5], pa.binary()),
            }
        )
        con.register("_udsplus_relink_batch", batch)
        try:
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM _udsplus_relink_batch")
        finally:
            con.unregister("_udsplus_relink_batch")
    return len(rows)


def relink(
    con: duckdb.DuckDBPyConnection, key: bytes, year: int, center: str, rtype: str, pseudonym: str
) -> str:
    """The warehouse id behind a submitted ``rtype/pseudonym``; :class:`RelinkError` without the key."""
    row = con.execute(
        f"SELECT nonce, sealed FROM {TABLE} WHERE year = ? AND center = ? AND resource_type = ? "
        "AND pseudonym = ?",
        [year, center, rtype, pseudonym],
    ).fetchone()
    if row is None:
        raise RelinkError(f"no {rtype}/{pseudonym} in the {year} submission of {center}")
    try:
        original = _aead(key).decrypt(bytes(row[0]), bytes(row[1]), _aad(year, center, rtype, pseudonym))
    except InvalidTag:
        raise RelinkError("the key does not open this re-link entry (wrong key)") from None
    ident = original.decode()
    if Pseudonymizer(key, year, center)(rtype, ident) != pseudonym:  # belt and braces
        raise RelinkError("re-link entry does not match its pseudonym under this key")
    return ident
