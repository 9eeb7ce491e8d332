"""Users, sessions and login throttling in a small SQLite file next to the warehouse.

Why SQLite and not the warehouse: the warehouse is a DuckDB file that `chc-equity ingest` writes to, and
DuckDB allows one writing process per file. The web app writes on every login, so keeping its state in
``<warehouse>.auth.sqlite`` means it never needs (or blocks) the warehouse's write lock; it opens the
warehouse read-only, per request.

Only hashes are stored: argon2 hashes of passwords and SHA-256 of session tokens, so a copy of this file
does not let anyone sign in. Every function opens its own short-lived connection: SQLite handles the
concurrency between uvicorn workers and the CLI.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from chc_equity.web.roles import Principal, Role, validate_assignment

_HASHER = PasswordHasher()
# Verified against when the username does not exist, so a wrong username costs as long as a wrong password
# (no user enumeration through response time).
_DUMMY_HASH = _HASHER.hash("not-a-real-password")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    center        TEXT,
    created_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256  TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_seen     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    ip       TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(username, ip, at);
CREATE INDEX IF NOT EXISTS login_failures_ip ON login_failures(ip, at);
"""

MIN_PASSWORD_LENGTH = 10
# zxcvbn's score (0-4): 3 means about 10^8 to 10^10 guesses; below that the password is a common one
# (its list of the 30,000 most common), a dictionary word with digits, a keyboard walk, a repeat or a date.
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_LENGTH = 72  # zxcvbn's own cap (its matching slows down on long input): longer ones are judged by
# their first 72 characters, which alone must then be hard to guess
PRODUCT_WORDS = ("chc", "equity", "chc-equity", "health", "center")


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Session lifetime and login throttling; defaults suit a shared office workstation.

    Failed logins in the window are counted three ways: per (username, IP) (``max_failures``, the
    lockout a user who mistypes meets), per IP across usernames (``max_failures_per_ip``: one client
    spraying many accounts) and per username across IPs (``max_failures_per_user``: one account guessed
    from many addresses, or behind a proxy that forwards forged client addresses).
    """

    idle_s: float = 2 * 3600
    absolute_s: float = 12 * 3600
    max_failures: int = 5
    failure_window_s: float = 15 * 60
    max_failures_per_ip: int = 20
    max_failures_per_user: int = 20


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as listed on the admin page (never the hash)."""

    username: str
    role: Role
    center: str | None
    created_at: float


def auth_path(warehouse: str | Path) -> Path:
    """``<warehouse>.auth.sqlite``: the auth file always travels with its warehouse."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".auth.sqlite")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthStore:
    """The auth SQLite file: one object per app/CLI call, one connection per operation."""

    def __init__(self, path: str | Path, policy: SessionPolicy | None = None) -> None:
        self.path = Path(path)
        self.policy = policy or SessionPolicy()
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA journal_mode = WAL")
            with con:  # one transaction, committed or rolled back
                yield con
        finally:
            con.close()

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: Role, center: str | None = None) -> None:
        """Create a user; raises ``ValueError`` for a bad name/password/role combination or a duplicate."""
        username = normalize_username(username)
        validate_assignment(role, center)
        check_password_strength(password, user_inputs=(username,))
        try:
            with self._connect() as con:
                con.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                    (username, _HASHER.hash(password), role.value, center or None, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"user {username!r} already exists") from exc

    def set_password(self, username: str, password: str) -> None:
        """Change a password and end all of that user's sessions."""
        check_password_strength(password, user_inputs=(username,))
        with self._connect() as con:
            cur = con.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", (_HASHER.hash(password), username)
            )
            if cur.rowcount == 0:
                raise KeyError(username)
            con.execute("DELETE FROM sessions WHERE username = ?", (username,))

    def delete_user(self, username: str) -> bool:
        """Remove a user (their sessions go with them); False when there was no such user."""
        with self._connect() as con:
            return con.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount > 0

    def list_users(self) -> list[UserRow]:
        with self._connect() as con:
            rows = con.execute("SELECT username, role, center, created_at FROM users ORDER BY username")
            return [UserRow(u, Role(r), c, t) for u, r, c, t in rows]

    def count_admins(self) -> int:
        with self._connect() as con:
            (n,) = con.execute(
                "SELECT count(*) FROM users WHERE role = ?", (Role.NETWORK_ADMIN.value,)
            ).fetchone()
            return int(n)

    # -- login ---------------------------------------------------------------------------------------
    def throttled(self, username: str, ip: str, now: float | None = None) -> bool:
        """True when the (username, ip) pair, the ip (any username) or the username (any ip) has used up
        its failed attempts in the current window (see :class:`SessionPolicy`)."""
        now = time.time() if now is None else now
        name = normalize_username(username, strict=False)
        with self._connect() as con:
            con.execute("DELETE FROM login_failures WHERE at < ?", (now - self.policy.failure_window_s,))
            pair, by_ip, by_user = con.execute(
                "SELECT count(*) FILTER (WHERE username = ? AND ip = ?), count(*) FILTER (WHERE ip = ?), "
                "count(*) FILTER (WHERE username = ?) FROM login_failures WHERE ip = ? OR username = ?",
                (name, ip, ip, name, ip, name),
            ).fetchone()
        return (
            pair >= self.policy.max_failures
            or by_ip >= self.policy.max_failures_per_ip
            or by_user >= self.policy.max_failures_per_user
        )

    def authenticate(self, username: str, password: str, ip: str, now: float | None = None) -> str | None:
        """Check the password; on success open a session and return its token, else record a failure.

        Callers check :meth:`throttled` first (and answer 429) so a locked-out key cannot keep guessing.
        """
        now = time.time() if now is None else now
        name = normalize_username(username, strict=False)
        with self._connect() as con:
            row = con.execute("SELECT password_hash FROM users WHERE username = ?", (name,)).fetchone()
        stored = row[0] if row else _DUMMY_HASH
        try:
            ok = _HASHER.verify(stored, password) and row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        with self._connect() as con:
            if not ok:
                con.execute("INSERT INTO login_failures VALUES (?, ?, ?)", (name, ip, now))
                return None
            con.execute("DELETE FROM login_failures WHERE username = ? AND ip = ?", (name, ip))
            if _HASHER.check_needs_rehash(stored):
                con.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?", (_HASHER.hash(password), name)
                )
            token = secrets.token_urlsafe(32)
            con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), name, secrets.token_urlsafe(32), now, now),
            )
        return token

    # -- sessions ------------------------------------------------------------------------------------
    def session(self, token: str, now: float | None = None) -> Principal | None:
        """The principal behind a session token, or None when unknown or expired (idle or absolute)."""
        if not token:
            return None
        now = time.time() if now is None else now
        key = _token_hash(token)
        with self._connect() as con:
            row = con.execute(
                "SELECT u.username, u.role, u.center, s.csrf_token, s.created_at, s.last_seen "
                "FROM sessions s JOIN users u USING (username) WHERE s.token_sha256 = ?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            username, role, center, csrf, created, last_seen = row
            if now - last_seen > self.policy.idle_s or now - created > self.policy.absolute_s:
                con.execute("DELETE FROM sessions WHERE token_sha256 = ?", (key,))
                return None
            if now - last_seen > 60:  # refresh the idle clock at most once a minute (fewer writes)
                con.execute("UPDATE sessions SET last_seen = ? WHERE token_sha256 = ?", (now, key))
        return Principal(username=username, role=Role(role), center=center, csrf_token=csrf)

    def end_session(self, token: str) -> None:
        with self._connect() as con:
            con.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_token_hash(token),))


def normalize_username(username: str, *, strict: bool = True) -> str:
    """Usernames are case-insensitive and trimmed; strict mode also enforces a safe character set."""
    name = username.strip().lower()
    if strict and (not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name)):
        raise ValueError("username must be 1-64 characters: letters, digits, '.', '_', '-', '@'")
    return name


def check_password_strength(password: str, user_inputs: Sequence[str] = ()) -> None:
    """A minimum length and no common or easily guessed password (NIST SP 800-63B: length and a
    blocklist, no composition rules).

    The blocklist is zxcvbn's (a maintained library, MIT licence): its 30,000 most common passwords
    (from leaked password sets), English words, names, keyboard walks, repeats, sequences and dates,
    with l33t and case variants, plus ``user_inputs`` (the username) and the product's own name.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[*user_inputs, *PRODUCT_WORDS])
    if result["score"] < MIN_PASSWORD_SCORE:
        warning = result["feedback"].get("warning") or "It is too easy to guess."
        raise ValueError(f"password is too common or too easy to guess: {warning}")
