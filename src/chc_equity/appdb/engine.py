"""Where the app database lives, how to connect to it, and bringing its schema up to date.

Records that people write (users, sessions, CHWs, assignments, outreach) live here, never in the
warehouse: the warehouse is a DuckDB file that ingest writes and the web app only ever opens read-only.

* Default: a SQLite file next to the warehouse, ``<warehouse>.app.sqlite``, in WAL mode (readers never
  block the writer), ``synchronous=FULL`` (a committed write survives a crash of the process or the
  machine) and a busy timeout (concurrent writers wait instead of failing). Write transactions start
  with ``BEGIN IMMEDIATE`` so two writers queue up front rather than deadlock on a read-then-write.
* ``CHC_EQUITY_DATABASE_URL`` set: that database, normally PostgreSQL (``postgresql://...`` is run with
  psycopg 3).

The schema is owned by the Alembic migrations shipped in this package; :meth:`AppDB.upgrade` runs them
programmatically (on startup, and by ``chc-equity appdb upgrade``), serialized by a lock so two
processes starting at once cannot both migrate.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

T = TypeVar("T")

ENV_URL = "CHC_EQUITY_DATABASE_URL"
MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_S = 30
_PG_LOCK_ID = 724_311_001  # pg_advisory_xact_lock key: one migrator at a time


def app_db_path(warehouse: str | Path) -> Path:
    """``<warehouse>.app.sqlite``: the default app database travels with its warehouse."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".app.sqlite")


def legacy_auth_path(warehouse: str | Path) -> Path:
    """Where users and sessions lived before the app database (imported once, then renamed)."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".auth.sqlite")


def database_url(warehouse: str | Path) -> str:
    """``$CHC_EQUITY_DATABASE_URL`` when set, else the SQLite file next to ``warehouse``."""
    return os.environ.get(ENV_URL) or sqlite_url(app_db_path(warehouse))


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path)}"


def normalize_url(target: str | Path) -> str:
    """A SQLAlchemy URL for ``target``: a path means a SQLite file; ``postgresql://`` means psycopg 3."""
    if isinstance(target, Path) or "://" not in target:
        return sqlite_url(target)
    url = make_url(target)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_con: sqlite3.Connection, _record) -> None:
        dbapi_con.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            f"busy_timeout = {BUSY_TIMEOUT_S * 1000}",
        ):
            dbapi_con.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_engine(target: str | Path) -> Engine:
    url = normalize_url(target)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True)


@cache
def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


class AppDB:
    """One app database: an engine, read and write transactions, and its migrations."""

    def __init__(self, target: str | Path, *, upgrade: bool = True) -> None:
        self.url = normalize_url(target)
        self.engine = make_engine(self.url)
        self._writer = self.engine.execution_options(immediate=True)
        if upgrade:
            self.upgrade()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction for reading (it may also write; on SQLite it takes the write lock lazily)."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on exit, rolled back on an exception.

        On SQLite it takes the write lock at BEGIN, so a read-then-write cannot fail half way with
        "database is locked" when another writer got there first: it waits its turn (busy timeout).
        """
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def revision(self) -> str | None:
        """The schema's current Alembic revision (None: not migrated yet)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None

    def upgrade(self) -> str:
        """Run pending migrations (a no-op when at head); returns the revision reached."""
        if self.revision() == head_revision():
            return head_revision()
        with self._writer.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            config = _alembic_config()
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            finally:
                config.attributes.pop("connection", None)
        return head_revision()

    def dispose(self) -> None:
        self.engine.dispose()


def open_for_warehouse(warehouse: str | Path) -> AppDB:
    """The app database of ``warehouse`` (see :func:`database_url`), migrated, with any legacy
    ``<warehouse>.auth.sqlite`` imported into it."""
    from chc_equity.appdb.legacy import import_legacy_auth

    db = AppDB(database_url(warehouse))
    import_legacy_auth(db, legacy_auth_path(warehouse))
    return db


def read_only(warehouse: str | Path, read: Callable[[Session], T]) -> T | None:
    """``read(session)`` on the warehouse's app database, read only (never created, never migrated), for
    the CLI; None when there is no app database or its schema was never created."""
    if not os.environ.get(ENV_URL) and not app_db_path(warehouse).exists():
        return None
    db = AppDB(database_url(warehouse), upgrade=False)
    try:
        if db.revision() is None:
            return None
        with db.read() as session:
            return read(session)
    finally:
        db.dispose()
