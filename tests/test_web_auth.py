"""Sign-in, sessions, CSRF, login throttling, the users CLI and the access log."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from browser.webseed import NORTH, PASSWORD, add_users, build_warehouse, login, make_app
from chc_equity.web.authstore import AuthStore, SessionPolicy, auth_path
from chc_equity.web.roles import Role
from chc_equity.web.security import CSRF_HEADER, SESSION_COOKIE


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = build_warehouse(tmp_path / "wh.duckdb")
    add_users(path)
    return path


def test_login_sets_a_strict_httponly_cookie_and_stores_only_hashes(warehouse: Path) -> None:
    client = TestClient(make_app(warehouse))
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    response = login(client, "Admin ")  # usernames are trimmed and case-insensitive
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = client.cookies[SESSION_COOKIE]
    assert client.get("/api/me").json()["role"] == "network_admin"
    with sqlite3.connect(auth_path(warehouse)) as con:
        hashes = [h for (h,) in con.execute("SELECT password_hash FROM users")]
        sessions = [t for (t,) in con.execute("SELECT token_sha256 FROM sessions")]
    assert all(h.startswith("$argon2id$") for h in hashes) and PASSWORD not in "".join(hashes)
    assert token not in sessions and len(sessions) == 1


def test_wrong_password_and_missing_login_token(warehouse: Path) -> None:
    client = TestClient(make_app(warehouse))
    assert login(client, "admin", "wrong-password-1").status_code == 401
    assert login(client, "nobody", PASSWORD).status_code == 401
    forged = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert forged.status_code == 403 and SESSION_COOKIE not in client.cookies


def test_login_rate_limit_per_username_and_ip(warehouse: Path) -> None:
    app = make_app(warehouse)
    client = TestClient(app)
    for _ in range(5):
        assert login(client, "analyst", "wrong-password-1").status_code == 401
    assert login(client, "analyst", PASSWORD).status_code == 429  # even the right password
    assert login(client, "admin", PASSWORD).status_code == 303  # another username is not locked
    elsewhere = TestClient(app, client=("10.0.0.9", 5000))
    assert login(elsewhere, "analyst", PASSWORD).status_code == 303  # the key is username + IP


def test_throttle_window_expires(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "a.sqlite", SessionPolicy(max_failures=2, failure_window_s=60))
    store.add_user("u1", PASSWORD, Role.VIEWER)
    for _ in range(2):
        assert store.authenticate("u1", "bad-password-x", "1.2.3.4", now=1000.0) is None
    assert store.throttled("u1", "1.2.3.4", now=1030.0)
    assert not store.throttled("u1", "1.2.3.4", now=1061.0)


def test_sessions_expire_when_idle_or_old(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "a.sqlite", SessionPolicy(idle_s=100, absolute_s=1000))
    store.add_user("u1", PASSWORD, Role.VIEWER)
    token = store.authenticate("u1", PASSWORD, "ip", now=0.0)
    assert token and store.session(token, now=90.0) is not None
    assert store.session(token, now=185.0) is not None  # last_seen was refreshed at 90
    assert store.session(token, now=400.0) is None  # idle too long; and the row is gone
    token = store.authenticate("u1", PASSWORD, "ip", now=0.0)
    for t in range(90, 1000, 90):
        assert store.session(token, now=float(t)) is not None
    assert store.session(token, now=1001.0) is None  # absolute lifetime


def test_password_change_and_delete_end_sessions(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "a.sqlite")
    store.add_user("u1", PASSWORD, Role.VIEWER)
    token = store.authenticate("u1", PASSWORD, "ip")
    store.set_password("u1", "another-long-password")
    assert store.session(token) is None
    token = store.authenticate("u1", "another-long-password", "ip")
    assert store.delete_user("u1") and store.session(token) is None


@pytest.mark.parametrize(
    ("role", "center", "password", "message"),
    [
        (Role.CENTER_STAFF, None, PASSWORD, "need --center"),
        (Role.NETWORK_ANALYST, NORTH, PASSWORD, "do not pass --center"),
        (Role.VIEWER, None, "short", "at least 10"),
    ],
)
def test_invalid_users_are_rejected(tmp_path: Path, role: Role, center, password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuthStore(tmp_path / "a.sqlite").add_user("u1", password, role, center)


def test_api_writes_need_the_csrf_header(warehouse: Path) -> None:
    client = TestClient(make_app(warehouse))
    login(client, "staff-north")
    url = f"/api/centers/{NORTH}/data-quality/missing-demographics"
    assert client.post(url, json={"field": "race"}).status_code == 403
    assert client.post(url, json={"field": "race"}, headers={CSRF_HEADER: "forged"}).status_code == 403
    csrf = client.get("/api/me").json()["csrf_token"]
    assert client.post(url, json={"field": "race"}, headers={CSRF_HEADER: csrf}).status_code == 200


def test_admin_page_adds_and_deletes_users(warehouse: Path) -> None:
    client = TestClient(make_app(warehouse))
    login(client, "admin")
    csrf = client.get("/api/me").json()["csrf_token"]
    form = {"username": "new-user", "password": "a-long-password", "role": "viewer", "csrf_token": csrf}
    assert client.post("/admin/users", data={**form, "csrf_token": "x"}).status_code == 403
    assert client.post("/admin/users", data=form, follow_redirects=False).status_code == 303
    assert "new-user" in client.get("/admin/users").text
    bad = client.post("/admin/users", data={**form, "role": "center_staff"})
    assert bad.status_code == 400 and "need --center" in bad.text
    deleted = client.post("/admin/users/new-user/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert deleted.status_code == 303 and "new-user" not in client.get("/admin/users").text


def test_users_cli(tmp_path: Path) -> None:
    from chc_equity.cli import app
    from chc_equity.cli import web as _web  # noqa: F401  (registers `serve` and `users`)

    runner = CliRunner()
    wh = str(tmp_path / "wh.duckdb")
    args = ["users", "add", "Ana", "--role", "center_staff", "--center", NORTH, "--password-stdin", "-w", wh]
    result = runner.invoke(app, args, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["users", "list", "-w", wh])
    assert "ana" in listed.output and "center_staff" in listed.output and NORTH in listed.output
    dup = runner.invoke(app, args, input=PASSWORD + "\n")
    assert dup.exit_code == 1
    prompted = runner.invoke(
        app, ["users", "add", "bo", "--role", "viewer", "-w", wh], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert AuthStore(auth_path(wh)).authenticate("bo", PASSWORD, "ip") is not None
    assert runner.invoke(app, ["users", "delete", "bo", "-w", wh]).exit_code == 0


def test_access_log_has_no_query_strings(warehouse: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(make_app(warehouse))
    login(client, "analyst")
    with caplog.at_level(logging.INFO, logger="chc_equity.web.access"):
        client.get(f"/data-quality?center={NORTH}")
    lines = [r.getMessage() for r in caplog.records if r.name == "chc_equity.web.access"]
    assert lines and all("?" not in line and NORTH not in line for line in lines)
    assert "GET /data-quality 200" in lines[-1] and "user=analyst" in lines[-1]


def test_security_headers(warehouse: Path) -> None:
    response = TestClient(make_app(warehouse)).get("/login")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"


def test_access_log_escapes_control_characters(warehouse: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A crafted path (%00, an ANSI escape) must not write a NUL or terminal codes into the log."""
    client = TestClient(make_app(warehouse))
    with caplog.at_level(logging.INFO, logger="chc_equity.web.access"):
        client.get("/no%00such%1b[31m/caf%C3%A9")
    lines = [r.getMessage() for r in caplog.records if r.name == "chc_equity.web.access"]
    assert lines, "the request was not logged"
    line = lines[-1]
    assert line.isprintable(), repr(line)
    assert "GET /no\\x00such\\x1b[31m/café 404" in line
