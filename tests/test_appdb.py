"""The app database on both back ends (SQLite file and a throwaway PostgreSQL cluster): migrations,
users and sessions, CHWs and assignments, outreach records (idempotency, history), the legacy auth file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from typer.testing import CliRunner

from browser.webseed import PASSWORD
from chc_equity.appdb import AppDB, assignments, head_revision, last_outreach, open_for_warehouse
from chc_equity.appdb import chw as chws
from chc_equity.appdb import outreach as records
from chc_equity.appdb.models import Base, Outreach, OutreachRevision
from chc_equity.web.authstore import AuthStore
from chc_equity.web.roles import Role
from pgcluster import new_database, pg_cluster

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[str]:
    with pg_cluster() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDB]:
    if request.param == "sqlite":
        target: str | Path = tmp_path / "wh.duckdb.app.sqlite"
    else:
        target = new_database(request.getfixturevalue("pg_admin"))
    appdb = AppDB(target)
    yield appdb
    appdb.dispose()


def test_migrations_create_exactly_the_models_schema(db: AppDB) -> None:
    assert db.revision() == head_revision()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert db.upgrade() == head_revision()  # idempotent


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    db = AppDB(tmp_path / "a.sqlite")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_users_sessions_and_throttling(db: AppDB) -> None:
    store = AuthStore(db)
    store.add_user("Ana", PASSWORD, Role.CHW, "ctr-a")
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("ana", PASSWORD, Role.CHW, "ctr-a")
    token = store.authenticate("ana", PASSWORD, "ip", now=1000.0)
    assert token is not None
    user = store.session(token, now=1010.0)
    assert user is not None and (user.role, user.center) == (Role.CHW, "ctr-a")
    for _ in range(5):
        assert store.authenticate("ana", "wrong-password-9", "ip2", now=1020.0) is None
    assert store.throttled("ana", "ip2", now=1030.0) and not store.throttled("ana", "ip3", now=1030.0)
    assert store.delete_user("ana") and store.session(token, now=1040.0) is None


def test_outreach_create_is_idempotent_and_edits_keep_history(db: AppDB) -> None:
    fields = records.OutreachFields(date(2026, 3, 1), "phone", "no_answer", 3)
    with db.write() as s:
        worker = chws.add_chw(s, "ctr-a", "Rosa", "pm")
        first, created = records.create(s, "ctr-a", "pt-1", fields, "rosa", idempotency_key="k1")
        assert created
    with db.write() as s:
        again, created = records.create(s, "ctr-a", "pt-1", fields, "rosa", idempotency_key="k1")
        assert not created and again.id == first.id
        other, created = records.create(s, "ctr-a", "pt-1", fields, "luis", idempotency_key="k1")
        assert created and other.id != first.id  # keys are per author
        with pytest.raises(chws.Conflict):
            records.create(s, "ctr-a", "pt-2", fields, "rosa", idempotency_key="k1")
    reached = records.OutreachFields(date(2026, 3, 2), "phone", "reached", 12, "left a message", worker.id)
    with db.write() as s:
        edited = records.edit(s, "ctr-a", first.id, reached, "rosa", expected_version=1)
        assert (edited.version, edited.outcome, edited.chw_id) == (2, "reached", worker.id)
    with db.write() as s, pytest.raises(chws.Conflict):
        records.edit(s, "ctr-a", first.id, fields, "rosa", expected_version=1)  # stale
    with db.write() as s, pytest.raises(chws.NotFound):
        records.edit(s, "ctr-b", first.id, fields, "rosa", expected_version=2)  # other center
    with db.read() as s:
        history = records.revisions(s, first.id)
        assert [(r.version, r.outcome, r.minutes) for r in history] == [
            (1, "no_answer", 3),
            (2, "reached", 12),
        ]
        assert s.scalar(select(func.count()).select_from(Outreach)) == 2
        assert s.scalar(select(func.count()).select_from(OutreachRevision)) == 3
        assert last_outreach(s, "ctr-a") == {"pt-1": (date(2026, 3, 2), "reached")}
        assert last_outreach(s, "ctr-b") == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (records.OutreachFields(date(2026, 3, 1), "fax", "reached", 3), "channel"),
        (records.OutreachFields(date(2026, 3, 1), "phone", "maybe", 3), "outcome"),
        (records.OutreachFields(date(2026, 3, 1), "phone", "reached", -1), "minutes"),
        (records.OutreachFields(date(2026, 3, 1), "phone", "reached", 5, "x" * 501), "note"),
    ],
)
def test_outreach_fields_are_checked(tmp_path: Path, fields: records.OutreachFields, message: str) -> None:
    db = AppDB(tmp_path / "a.sqlite")
    with db.write() as s, pytest.raises(ValueError, match=message):
        records.create(s, "ctr-a", "pt-1", fields, "rosa")


def test_assignments_bulk_reassign_and_panel(db: AppDB) -> None:
    with db.write() as s:
        rosa = chws.add_chw(s, "ctr-a", "Rosa", "pm", username="rosa")
        luis = chws.add_chw(s, "ctr-a", "Luis", "pm")
        elsewhere = chws.add_chw(s, "ctr-b", "Mia", "pm")
        assert chws.assign(s, "ctr-a", rosa.id, [f"pt-{i}" for i in range(5)], "pm") == 5
        assert chws.assign(s, "ctr-a", luis.id, ["pt-4", "pt-5"], "pm") == 2  # pt-4 moves to Luis
        with pytest.raises(chws.NotFound):
            chws.assign(s, "ctr-a", elsewhere.id, ["pt-9"], "pm")  # a CHW of another center
        with pytest.raises(chws.Conflict):
            chws.add_chw(s, "ctr-a", "Rosa again", "pm", username="rosa")
    with db.read() as s:
        mapping = assignments(s, "ctr-a")
        assert mapping == {**{f"pt-{i}": rosa.id for i in range(4)}, "pt-4": luis.id, "pt-5": luis.id}
        assert assignments(s, "ctr-b") == {}
        assert chws.panel_of(s, "rosa", "ctr-a") == {f"pt-{i}" for i in range(4)}
        assert [(c.display_name, c.patients) for c in chws.list_chws(s, "ctr-a")] == [
            ("Luis", 2),
            ("Rosa", 4),
        ]
        assert not chws.panel_only(s, "ctr-a")
    with db.write() as s:
        chws.set_panel_only(s, "ctr-a", True, "pm")
    with db.read() as s:
        assert chws.panel_only(s, "ctr-a") and not chws.panel_only(s, "ctr-b")


LEGACY_SCHEMA = """
CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, center TEXT,
                    created_at REAL NOT NULL);
CREATE TABLE sessions (token_sha256 TEXT PRIMARY KEY, username TEXT NOT NULL, csrf_token TEXT NOT NULL,
                       created_at REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE login_failures (username TEXT NOT NULL, ip TEXT NOT NULL, at REAL NOT NULL);
"""


def test_a_legacy_auth_file_is_imported_once(tmp_path: Path) -> None:
    """A warehouse from before the app database keeps its users (and open sessions) on upgrade."""
    from argon2 import PasswordHasher

    warehouse = tmp_path / "wh.duckdb"
    legacy = tmp_path / "wh.duckdb.auth.sqlite"
    with sqlite3.connect(legacy) as con:
        con.executescript(LEGACY_SCHEMA)
        con.execute(
            "INSERT INTO users VALUES ('old-admin', ?, 'network_admin', NULL, 1.0)",
            (PasswordHasher().hash(PASSWORD),),
        )
        con.execute("INSERT INTO sessions VALUES ('abc', 'old-admin', 'csrf', 1.0, 1.0)")
    con.close()
    store = AuthStore(open_for_warehouse(warehouse))
    assert [u.username for u in store.list_users()] == ["old-admin"]
    assert store.authenticate("old-admin", PASSWORD, "ip") is not None
    assert not legacy.exists() and (tmp_path / "wh.duckdb.auth.sqlite.migrated").exists()
    store.delete_user("old-admin")
    assert AuthStore(open_for_warehouse(warehouse)).list_users() == []  # not imported a second time


def test_appdb_upgrade_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chc_equity.cli import app
    from chc_equity.cli import appdb as _appdb  # noqa: F401  (registers `appdb`)

    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["appdb", "upgrade", "-w", str(tmp_path / "wh.duckdb")])
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision()}" in result.output
    assert AppDB(tmp_path / "wh.duckdb.app.sqlite", upgrade=False).revision() == head_revision()


def test_database_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_admin: str
) -> None:
    url = new_database(pg_admin)
    monkeypatch.setenv("CHC_EQUITY_DATABASE_URL", url)
    store = AuthStore.for_warehouse(tmp_path / "wh.duckdb")
    store.add_user("pg-user", PASSWORD, Role.VIEWER)
    assert store.db.dialect == "postgresql"
    assert not (tmp_path / "wh.duckdb.app.sqlite").exists()
    assert [u.username for u in AuthStore(url).list_users()] == ["pg-user"]
