"""`chc-equity pull` against the SMART reference Bulk Data server (an independent implementation).

The server (../shared/bulk-data-server) is installed once into .cache/, fed our synthetic patients with
its own import script and started for this module; each check compares the warehouse with the server's
export files, fetched here by a deliberately plain download (no retries, no auth, no ingest).
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

import bulkserver
from chc_equity.cli import _register, app
from chc_equity.pull import PullError, load_credentials, pull
from chc_equity.pull.auth import TokenSource
from chc_equity.pull.bulk import Policy
from chc_equity.synth import generate, load_config
from chc_equity.warehouse import connect

GROUP = "BlueCrossBlueShield"
CENTER = "c01"
# Short retries, but the server's "Retry-After: 1" while an export runs is honoured (max_wait_s=1): the
# server blocks a client for 5 minutes past 60 status polls a minute, which polling every 0.5 s
# reached on a loaded CI machine (an export taking ~30 s ended in "export failed: HTTP 429").
# An export not ready in 5 minutes fails the test then, not after the 6-hour default.
FAST = Policy(attempts=3, backoff_s=0.05, max_wait_s=1.0, parallel=3, timeout_s=30, poll_timeout_s=300)
# No simulated wait. One file per type: the server pages a type's files with LIMIT/OFFSET over a query
# ordered by type only, so with several files per type SQLite may hand the same row to two pages.
SIM = {"dur": 0}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    why = bulkserver.node_available()
    if why:
        pytest.skip(f"the Bulk Data server needs Node.js: {why}")
    if not bulkserver.SHARED.is_dir():
        pytest.skip(f"{bulkserver.SHARED} is absent (shared reference material)")
    work = tmp_path_factory.mktemp("bulk")
    cfg = load_config(None, disparities=True)
    generate(work / "synth", centers=1, patients=40, seed=3, period_end=date(2026, 12, 31), cfg=cfg)
    srv = bulkserver.BulkServer(work, next((work / "synth").glob("c*")))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _own_client_address(request: pytest.FixtureRequest) -> None:
    """Each test talks to the shared server as a new client (see FaultProxy.source): the server's rate
    limit is per client, and a whole module of pulls within a minute exceeds it (found in CI as an
    "export failed: HTTP 429" in whichever test came later)."""
    if "server" in request.fixturenames:
        request.getfixturevalue("server").proxy.new_client()


# -- the oracle: a plain export download ---------------------------------------------------------------
def reference_export(base: str, since: str | None = None) -> dict[str, list[dict]]:
    """{"output": resources, "deleted": Bundles} of one export, fetched without any of pull's machinery."""
    params = {"_since": since} if since else {}
    kick = httpx.get(
        f"{base}/Group/{GROUP}/$export",
        params=params,
        headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
    )
    assert kick.status_code == 202, kick.text
    status = kick.headers["Content-Location"]
    for _ in range(120):
        response = httpx.get(status)
        if response.status_code == 200:
            break
        time.sleep(float(response.headers.get("Retry-After", 1)))
    # The server can answer 200 a moment before its last file entry is saved (progress is estimated
    # from rows read ahead); a second read after a pause is the settled manifest.
    time.sleep(1.0)
    manifest = httpx.get(status).json()
    out: dict[str, list[dict]] = {"output": [], "deleted": []}
    for key in out:
        for entry in manifest.get(key) or []:
            text = httpx.get(entry["url"], headers={"Accept-Encoding": "identity"}).text
            out[key] += [json.loads(line) for line in text.splitlines() if line.strip()]
    return out


def keys_of(resources: list[dict]) -> set[tuple[str, str]]:
    return {(r["resourceType"], r["id"]) for r in resources}


def warehouse_resources(path: Path) -> dict[tuple[str, str], dict]:
    con = connect(path, read_only=True)
    try:
        rows = con.execute("SELECT type, id, resource FROM resources WHERE center = ?", [CENTER]).fetchall()
    finally:
        con.close()
    return {(t, i): json.loads(r) for t, i, r in rows}


def snapshot(path: Path) -> tuple:
    con = connect(path, read_only=True)
    try:
        return tuple(
            con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() for table in ("resources", "loads")
        )
    finally:
        con.close()


def run_pull(path: Path, base: str, **kwargs):
    con = connect(path)
    try:
        return pull(con, base, GROUP, CENTER, policy=kwargs.pop("policy", FAST), **kwargs)
    finally:
        con.close()


@pytest.fixture(scope="module")
def full(server, tmp_path_factory):
    """One full pull, shared by the checks that start from a loaded warehouse (copied per test)."""
    path = tmp_path_factory.mktemp("full") / "wh.duckdb"
    result = run_pull(path, server.fhir(**SIM))
    return path, result


def copy_of(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "wh.duckdb"
    target.write_bytes(path.read_bytes())
    return target


# -- full and _since pulls -----------------------------------------------------------------------------
def test_full_pull_loads_exactly_the_export(server, full) -> None:
    path, result = full
    expected = reference_export(server.fhir(**SIM))["output"]
    loaded = warehouse_resources(path)
    assert set(loaded) == keys_of(expected)
    assert {(r["resourceType"], r["id"]): r for r in expected} == loaded  # same content, not just keys
    assert len(result.manifest.output) == len({t for t, _ in loaded}) >= 8  # downloaded in parallel
    assert result.record.status == "ok" and result.record.since is None
    assert result.load.loaded == len(expected) and result.load.quarantined == 0
    con = connect(path, read_only=True)
    (row,) = con.execute("SELECT status, load_id, resources, files, transaction_time FROM pulls").fetchall()
    con.close()
    assert row[:4] == ("ok", result.load.load_id, len(expected), len(result.manifest.output))
    assert row[4] == result.manifest.transaction_time


def test_since_pull_loads_exactly_the_since_export(server, tmp_path) -> None:
    since = "2026-06-01T00:00:00Z"
    expected = reference_export(server.fhir(**SIM), since)["output"]
    full_export = reference_export(server.fhir(**SIM))["output"]
    assert 0 < len(expected) < len(full_export)  # a real subset, so the check means something
    result = run_pull(tmp_path / "wh.duckdb", server.fhir(**SIM), since=since)
    assert set(warehouse_resources(tmp_path / "wh.duckdb")) == keys_of(expected)
    assert result.record.since == since


def test_since_auto_uses_the_last_successful_pull(server, full, tmp_path) -> None:
    path = copy_of(full[0], tmp_path)
    first = full[1].manifest.transaction_time
    before = warehouse_resources(path)
    result = run_pull(path, server.fhir(**SIM), since="auto")
    assert result.record.since == first
    expected = reference_export(server.fhir(**SIM), first)["output"]
    assert result.load.loaded == len(expected)
    assert warehouse_resources(path) == before  # nothing new upstream: the same data
    again = run_pull(path, server.fhir(**SIM), since="auto")
    assert again.record.since == result.manifest.transaction_time  # moves on with each success


def test_deleted_entries_are_applied(server, full, tmp_path) -> None:
    path = copy_of(full[0], tmp_path)
    sim = {**SIM, "del": 25}  # the server reports 25 % of changed resources as deleted
    since = "2026-01-01T00:00:00Z"
    export = reference_export(server.fhir(**sim), since)
    gone = {tuple(e["request"]["url"].split("/")) for b in export["deleted"] for e in b["entry"]}
    before = warehouse_resources(path)
    assert gone and gone <= set(before)
    result = run_pull(path, server.fhir(**sim), since=since)
    after = warehouse_resources(path)
    assert result.record.deleted == len(gone)
    assert set(after) == set(before) - gone


# -- authorization -------------------------------------------------------------------------------------
def _register_client(server, alg: str, tmp_path: Path) -> Path:
    """Generate a key pair, register its public JWK with the server, write a credentials file."""
    if alg == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
        public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = f"test-{alg.lower()}"
    public_jwk.update(kid=kid, alg=alg)
    response = httpx.post(
        f"{server.url}/auth/register", data={"jwks": json.dumps({"keys": [public_jwk]}), "dur": "5"}
    )
    assert response.status_code == 200, response.text
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"client_id": response.text, "private_key": pem, "kid": kid, "alg": alg}))
    return creds


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_pull_with_a_registered_client(server, tmp_path, alg, capsys) -> None:
    creds = load_credentials(_register_client(server, alg, tmp_path))
    assert "PRIVATE KEY" not in repr(creds)
    secure = server.fhir(**SIM, secure=True)
    result = run_pull(tmp_path / "wh.duckdb", secure, credentials=creds)
    assert result.manifest.requires_token
    assert set(warehouse_resources(tmp_path / "wh.duckdb")) == keys_of(
        reference_export(server.fhir(**SIM))["output"]
    )
    # without credentials the secure server refuses, clearly, and nothing is loaded
    with pytest.raises(PullError, match="kick-off refused: HTTP 401"):
        run_pull(tmp_path / "other.duckdb", secure)
    assert warehouse_resources(tmp_path / "other.duckdb") == {}


def test_token_is_renewed_when_it_expires(server, tmp_path) -> None:
    creds = load_credentials(_register_client(server, "RS384", tmp_path))
    now = [time.time()]
    with httpx.Client() as client:
        tokens = TokenSource(creds, client, server.fhir(), clock=lambda: now[0])
        first = tokens.header()
        assert tokens.header() == first and tokens.fetched == 1  # cached while valid
        now[0] += 5 * 60  # the registration's 5-minute token lifetime has passed
        tokens.header()
        assert tokens.fetched == 2  # a new token request (the server's clock did not move: same claims)
        tokens.invalidate()  # what a 401 does
        tokens.header()
        assert tokens.fetched == 3


def test_credentials_from_the_environment(monkeypatch, tmp_path) -> None:
    payload = {"client_id": "abc", "private_key": "-----BEGIN PRIVATE KEY-----x", "kid": "k1", "alg": "ES384"}
    monkeypatch.setenv("CHC_EQUITY_PULL_CREDENTIALS_JSON", json.dumps(payload))
    creds = load_credentials()
    assert (creds.client_id, creds.kid, creds.alg) == ("abc", "k1", "ES384")
    assert "BEGIN" not in repr(creds)
    monkeypatch.delenv("CHC_EQUITY_PULL_CREDENTIALS_JSON")
    assert load_credentials() is None


# -- failures mid-download -----------------------------------------------------------------------------
def test_killed_connection_is_retried_cleanly(server, full, tmp_path) -> None:
    server.proxy.cut("/bulkfiles/", after_bytes=300, times=2)
    try:
        path = tmp_path / "wh.duckdb"
        run_pull(path, server.fhir(**SIM))
    finally:
        server.proxy.clear()
    assert server.proxy.cut_count >= 2
    assert warehouse_resources(path) == warehouse_resources(full[0])


def test_connection_killed_every_time_is_a_clear_error_and_nothing_changes(server, full, tmp_path) -> None:
    path = copy_of(full[0], tmp_path)
    before = snapshot(path)
    server.proxy.cut("/bulkfiles/", after_bytes=300, times=100)
    try:
        with pytest.raises(PullError, match=r"download .* failed after 2 attempts"):
            run_pull(path, server.fhir(**SIM), since="2026-01-01T00:00:00Z", policy=Policy(2, 0.01, 1.0))
    finally:
        server.proxy.clear()
    assert snapshot(path) == before
    con = connect(path, read_only=True)
    status, error = con.execute("SELECT status, error FROM pulls ORDER BY pull_id DESC LIMIT 1").fetchone()
    con.close()
    assert status == "error" and "failed after 2 attempts" in error


@pytest.mark.parametrize(
    ("err", "message"),
    [
        ("file_expired", r"download .*HTTP 410"),
        ("some_file_generation_failed", "export error file"),
        ("file_generation_failed", "kick-off refused: HTTP 500"),
    ],
)
def test_server_error_simulation_is_a_clear_error(server, full, tmp_path, err, message) -> None:
    path = copy_of(full[0], tmp_path)
    before = snapshot(path)
    with pytest.raises(PullError, match=message):
        run_pull(path, server.fhir(**SIM, err=err), since="2026-01-01T00:00:00Z", policy=Policy(2, 0.01, 1.0))
    assert snapshot(path) == before


# What the server's own `transient_error` simulation answers a status request.
TRANSIENT = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "transient",
            "diagnostics": "An unknown error occurred (transient_error). Please try again.",
        }
    ],
}


def test_transient_status_error_is_retried(server, full, tmp_path) -> None:
    """Three status polls in a row answer HTTP 500 with a `transient` OperationOutcome; the pull asks
    again and loads exactly the export.

    The answers come from the proxy, not from the server's `transient_error` simulation: that simulation
    has a lost update (the status handler loads the job, sets "already failed once" and saves it, and a
    save that lands after the export job's final save puts its progress back under 100 %), so the export
    can stay "in progress" until the server deletes it an hour later (seen in CI: 3,604 s, then 404).
    """
    path = tmp_path / "wh.duckdb"
    before = server.proxy.answered
    server.proxy.answer("/bulkstatus/", 500, TRANSIENT, times=3)
    try:
        result = run_pull(path, server.fhir(**SIM))
        assert server.proxy.answered == before + 3
    finally:
        server.proxy.clear()
    assert result.record.status == "ok"
    assert warehouse_resources(path) == warehouse_resources(full[0])


# -- the command line ----------------------------------------------------------------------------------
def test_cli_pull_twice_with_since_auto(server, full, tmp_path) -> None:
    _register()
    runner = CliRunner()
    path = tmp_path / "wh.duckdb"
    args = ["pull", "--server", server.fhir(**SIM), "--group", GROUP, "--center", CENTER]
    args += ["--since", "auto", "--warehouse", str(path), "--no-refresh"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "full," in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "since 20" in second.output
    assert warehouse_resources(path) == warehouse_resources(full[0])
    con = connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM flat.patient").fetchone()[0] > 0  # views refreshed
    con.close()
    bad = runner.invoke(
        app,
        [
            "pull",
            "--server",
            server.fhir(**SIM, err="file_expired"),
            "--group",
            GROUP,
            "--center",
            CENTER,
            "--warehouse",
            str(path),
        ],
    )
    assert bad.exit_code == 1 and "nothing was loaded" in bad.output


# -- scheduled mode ------------------------------------------------------------------------------------
def test_every_parses_and_keeps_going_after_a_failure() -> None:
    from chc_equity.pull.schedule import parse_every, run_every

    assert [parse_every(t) for t in ("90s", "30m", "24h", "1d")] == [90, 1800, 86400, 86400]
    with pytest.raises(ValueError, match="e.g. 24h"):
        parse_every("daily")
    calls, messages, sleeps = [], [], []

    def once() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise PullError("kick-off refused: HTTP 503")

    assert run_every(3600, once, messages.append, sleep=sleeps.append, max_runs=3) == 3
    assert "pull failed: kick-off refused: HTTP 503" in messages
    assert len(sleeps) == 2 and all(3590 < s <= 3600 for s in sleeps)


def test_every_stops_cleanly_on_ctrl_c() -> None:
    from chc_equity.pull.schedule import run_every

    messages = []

    def interrupted_sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    assert run_every(60, lambda: None, messages.append, sleep=interrupted_sleep) == 1
    assert messages[-1] == "stopped"
