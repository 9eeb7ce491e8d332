"""Login throttling that a forged X-Forwarded-For cannot escape, and no common password (issue 11 item 10).

The server tests start the real ``chc-equity serve`` (uvicorn) in a subprocess, as an operator would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from browser.webseed import PASSWORD, add_users, free_port
from chc_equity.cli import app
from chc_equity.cli import web as _web_cli  # noqa: F401  (registers the commands)
from chc_equity.cli.web import proxy_settings
from chc_equity.web.authstore import AuthStore, SessionPolicy
from chc_equity.web.roles import Role

LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
ATTEMPTS = 30


@contextmanager
def serve(tmp_path: Path, *extra: str) -> Iterator[str]:
    """``chc-equity serve`` in a subprocess on a free port (the webseed users, no warehouse data needed)."""
    warehouse = tmp_path / "wh.duckdb"
    add_users(warehouse)
    port = free_port()
    unset = ("CHC_EQUITY_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", "from chc_equity.cli import main; main()", "serve", "--port", str(port)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*command, "--warehouse", str(warehouse), *extra], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chc-equity serve exited: {(tmp_path / 'serve.log').read_text()}")
            try:
                httpx.get(f"{url}/login", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _attempt(url: str, username: str, password: str, forwarded_for: str | None = None) -> int:
    """One sign-in through the form (fresh client: its own login CSRF cookie); the POST's status."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(base_url=url, headers=headers) as client:
        token = LOGIN_CSRF.search(client.get("/login").text)
        assert token, "login form lacks its CSRF field"
        data = {"username": username, "password": password, "login_csrf": token.group(1)}
        return client.post("/login", data=data, follow_redirects=False).status_code


def _spoofed(i: int) -> str:
    return f"198.51.100.{i + 1}"


def test_forged_forwarded_for_is_ignored_by_default(tmp_path: Path) -> None:
    """30 wrong passwords, each claiming another client address: throttled after 5, right one too."""
    with serve(tmp_path) as url:
        statuses = [_attempt(url, "analyst", f"wrong-guess-{i}-x", _spoofed(i)) for i in range(ATTEMPTS)]
        assert statuses == [401] * 5 + [429] * (ATTEMPTS - 5)
        assert _attempt(url, "analyst", PASSWORD, _spoofed(99)) == 429


def test_trusted_proxy_headers_still_throttle_per_user(tmp_path: Path) -> None:
    """Behind a configured proxy the forwarded address counts (5 per address would never trip here),
    and the per-user limit across addresses stops the guessing."""
    limit = SessionPolicy().max_failures_per_user
    with serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1") as url:
        statuses = [_attempt(url, "analyst", f"wrong-guess-{i}-x", _spoofed(i)) for i in range(ATTEMPTS)]
        assert statuses == [401] * limit + [429] * (ATTEMPTS - limit)
        # the forwarded address is believed: another user from a fresh address is not throttled
        assert _attempt(url, "admin", PASSWORD, _spoofed(200)) == 303


def test_one_address_spraying_many_usernames_is_throttled(tmp_path: Path) -> None:
    limit = SessionPolicy().max_failures_per_ip
    with serve(tmp_path) as url:
        statuses = [_attempt(url, f"user{i}", "wrong-guess-x") for i in range(ATTEMPTS)]
        assert statuses == [401] * limit + [429] * (ATTEMPTS - limit)
        assert _attempt(url, "admin", PASSWORD) == 429  # the address is locked out, whatever the name


def test_proxy_settings() -> None:
    assert proxy_settings("") == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert proxy_settings("10.0.0.5") == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


def test_throttle_counts_per_pair_ip_and_user(tmp_path: Path) -> None:
    policy = SessionPolicy(max_failures=3, max_failures_per_ip=5, max_failures_per_user=4)
    store = AuthStore(tmp_path / "a.sqlite", policy)
    store.add_user("u1", PASSWORD, Role.VIEWER)
    for i in range(3):
        assert store.authenticate("u1", "bad-password-x", "ip-a", now=100.0 + i) is None
    assert store.throttled("u1", "ip-a", now=110.0)  # the pair
    assert not store.throttled("u1", "ip-b", now=110.0)
    assert store.authenticate("u1", "bad-password-x", "ip-b", now=111.0) is None
    assert store.throttled("u1", "ip-c", now=112.0)  # the user, from any address
    assert not store.throttled("u2", "ip-c", now=112.0)
    for name in ("u3", "u4", "u5", "u6", "u7"):
        store.authenticate(name, "bad-password-x", "ip-d", now=113.0)
    assert store.throttled("someone-else", "ip-d", now=114.0)  # the address, for any user
    assert not store.throttled("u1", "ip-a", now=113.0 + policy.failure_window_s + 1)  # the window passes


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "1234567890",
        "qwertyuiop",
        "iloveyou2024",
        "aaaaaaaaaaaa",
        "P@ssw0rd2024",
        "newuser12345",  # the username
        "chc-equity-2024",  # the product
    ],
)
def test_common_passwords_are_rejected(tmp_path: Path, password: str) -> None:
    store = AuthStore(tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="too common or too easy to guess"):
        store.add_user("newuser", password, Role.VIEWER)
    store.add_user("newuser", PASSWORD, Role.VIEWER)
    with pytest.raises(ValueError, match="too common"):
        store.set_password("newuser", password)


def test_users_cli_rejects_a_common_password(tmp_path: Path) -> None:
    args = ["users", "add", "bo", "--role", "viewer", "--password-stdin", "-w", str(tmp_path / "wh.duckdb")]
    result = CliRunner().invoke(app, args, input="qwerty123456\n")
    assert result.exit_code == 1 and "too common" in result.output
