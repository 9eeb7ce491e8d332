"""Users, sessions and login throttling, stored in the app database (``chc_equity.appdb``).

Why not the warehouse: the warehouse is a DuckDB file that `chc-equity ingest` writes to, and DuckDB
allows one writing process per file. The web app writes on every login, so its state lives in the app
database (``<warehouse>.app.sqlite`` or PostgreSQL) and it never needs (or blocks) the warehouse's write
lock; it opens the warehouse read-only, per request.

Only hashes are stored: argon2 hashes of passwords and SHA-256 of session tokens, so a copy of the
database does not let anyone sign in. Every method is one short transaction: the database handles the
concurrency between uvicorn workers and the CLI.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from zxcvbn import zxcvbn

from chc_equity.appdb import AppDB, app_db_path, open_for_warehouse
from chc_equity.appdb.models import LoginFailure, User, UserSession
from chc_equity.web.roles import Principal, Role, validate_assignment

_HASHER = PasswordHasher()
# Verified against when the username does not exist, so a wrong username costs as long as a wrong password
# (no user enumeration through response time).
_DUMMY_HASH = _HASHER.hash("not-a-real-password")

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
    """The default app database file of ``warehouse`` (kept under its old name for callers and tests
    that open a store by path; :meth:`AuthStore.for_warehouse` also honours ``CHC_EQUITY_DATABASE_URL``)."""
    return app_db_path(warehouse)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthStore:
    """Users, sessions and throttling on one app database: one object per app/CLI call, one
    transaction per operation."""

    def __init__(self, db: AppDB | str | Path, policy: SessionPolicy | None = None) -> None:
        self.db = db if isinstance(db, AppDB) else AppDB(db)
        self.policy = policy or SessionPolicy()

    @classmethod
    def for_warehouse(cls, warehouse: str | Path, policy: SessionPolicy | None = None) -> AuthStore:
        return cls(open_for_warehouse(warehouse), policy)

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: Role, center: str | None = None) -> None:
        """Create a user; raises ``ValueError`` for a bad name/password/role combination or a duplicate."""
        username = normalize_username(username)
        validate_assignment(role, center)
        check_password_strength(password, user_inputs=(username,))
        user = User(
            username=username,
            password_hash=_HASHER.hash(password),
            role=role.value,
            center=center or None,
            created_at=time.time(),
        )
        try:
            with self.db.write() as s:
                s.add(user)
        except IntegrityError as exc:
            raise ValueError(f"user {username!r} already exists") from exc

    def set_password(self, username: str, password: str) -> None:
        """Change a password and end all of that user's sessions."""
        check_password_strength(password, user_inputs=(username,))
        with self.db.write() as s:
            done = s.execute(
                update(User).where(User.username == username).values(password_hash=_HASHER.hash(password))
            )
            if done.rowcount == 0:
                raise KeyError(username)
            s.execute(delete(UserSession).where(UserSession.username == username))

    def delete_user(self, username: str) -> bool:
        """Remove a user (their sessions go with them); False when there was no such user."""
        with self.db.write() as s:
            s.execute(delete(UserSession).where(UserSession.username == username))
            return s.execute(delete(User).where(User.username == username)).rowcount > 0

    def list_users(self) -> list[UserRow]:
        with self.db.read() as s:
            rows = s.execute(
                select(User.username, User.role, User.center, User.created_at).order_by(User.username)
            )
            return [UserRow(u, Role(r), c, t) for u, r, c, t in rows]

    def user(self, username: str) -> UserRow | None:
        with self.db.read() as s:
            row = s.get(User, username)
            return UserRow(row.username, Role(row.role), row.center, row.created_at) if row else None

    def count_admins(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.count()).where(User.role == Role.NETWORK_ADMIN.value)) or 0)

    # -- login ---------------------------------------------------------------------------------------
    def throttled(self, username: str, ip: str, now: float | None = None) -> bool:
        """True when the (username, ip) pair, the ip (any username) or the username (any ip) has used up
        its failed attempts in the current window (see :class:`SessionPolicy`)."""
        now = time.time() if now is None else now
        name = normalize_username(username, strict=False)
        f = LoginFailure
        with self.db.write() as s:
            s.execute(delete(f).where(f.at < now - self.policy.failure_window_s))
            pair, by_ip, by_user = s.execute(
                select(
                    func.count().filter(f.username == name, f.ip == ip),
                    func.count().filter(f.ip == ip),
                    func.count().filter(f.username == name),
                ).where(or_(f.ip == ip, f.username == name))
            ).one()
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
        with self.db.read() as s:
            row = s.scalar(select(User.password_hash).where(User.username == name))
        stored = row if row is not None else _DUMMY_HASH
        try:
            ok = _HASHER.verify(stored, password) and row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        with self.db.write() as s:
            if not ok:
                s.add(LoginFailure(username=name, ip=ip, at=now))
                return None
            s.execute(delete(LoginFailure).where(LoginFailure.username == name, LoginFailure.ip == ip))
            if _HASHER.check_needs_rehash(stored):
                s.execute(
                    update(User).where(User.username == name).values(password_hash=_HASHER.hash(password))
                )
            token = secrets.token_urlsafe(32)
            s.add(
                UserSession(
                    token_sha256=_token_hash(token),
                    username=name,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    last_seen=now,
                )
            )
        return token

    # -- sessions ------------------------------------------------------------------------------------
    def session(self, token: str, now: float | None = None) -> Principal | None:
        """The principal behind a session token, or None when unknown or expired (idle or absolute)."""
        if not token:
            return None
        now = time.time() if now is None else now
        key = _token_hash(token)
        with self.db.read() as s:
            row = s.execute(
                select(
                    User.username,
                    User.role,
                    User.center,
                    UserSession.csrf_token,
                    UserSession.created_at,
                    UserSession.last_seen,
                )
                .join(User, User.username == UserSession.username)
                .where(UserSession.token_sha256 == key)
            ).first()
        if row is None:
            return None
        username, role, center, csrf, created, last_seen = row
        if now - last_seen > self.policy.idle_s or now - created > self.policy.absolute_s:
            with self.db.write() as s:
                s.execute(delete(UserSession).where(UserSession.token_sha256 == key))
            return None
        if now - last_seen > 60:  # refresh the idle clock at most once a minute (fewer writes)
            with self.db.write() as s:
                s.execute(update(UserSession).where(UserSession.token_sha256 == key).values(last_seen=now))
        return Principal(username=username, role=Role(role), center=center, csrf_token=csrf)

    def end_session(self, token: str) -> None:
        with self.db.write() as s:
            s.execute(delete(UserSession).where(UserSession.token_sha256 == _token_hash(token)))


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
