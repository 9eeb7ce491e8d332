"""What the data pages and API show: counts without raw text, unknown rates, suppression, availability."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser.webseed import (
    DETAIL_SENTINEL,
    NORTH,
    RAW_SENTINEL,
    SOUTH,
    add_users,
    build_warehouse,
    login,
    make_app,
    patient_id,
)
from chc_equity.web.data import UnknownRate
from chc_equity.web.privacy import suppress_rate


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_warehouse(tmp_path_factory.mktemp("web") / "wh.duckdb")
    add_users(path)
    return path


def _client(warehouse: Path, user: str) -> TestClient:
    client = TestClient(make_app(warehouse))
    assert login(client, user).status_code == 303
    return client


def _rates(quality: dict) -> dict[tuple[str, str], dict]:
    return {(r["center"], r["field"]): r for r in quality["demographics"]["rates"]}


def test_rejects_are_counted_never_shown_raw(seeded: Path) -> None:
    client = _client(seeded, "analyst")
    quality = client.get("/api/data-quality").json()
    groups = {(r["center"], r["reason"], r["field"]): r["count"] for r in quality["rejects"]}
    assert groups == {
        (NORTH, "malformed-json", None): 2,
        (NORTH, "invalid-value", "birthDate"): 1,
        (SOUTH, "bad-ref", "subject"): 2,
    }
    for text in (json.dumps(quality), client.get("/data-quality").text, client.get(f"/centers/{NORTH}").text):
        assert RAW_SENTINEL not in text and DETAIL_SENTINEL not in text
        assert f"{NORTH}-pt-bad" not in text and f"{SOUTH}-obs-1" not in text  # no resource ids either


def test_unknown_demographic_rates(seeded: Path) -> None:
    client = _client(seeded, "admin")
    rates = _rates(client.get("/api/data-quality").json())
    assert rates[(NORTH, "race")] == {
        "center": NORTH,
        "field": "race",
        "patients": 40,
        "unknown": 5,
        "rate": 5 / 40,
        "hidden": {},
    }
    assert rates[(NORTH, "birth_sex")]["unknown"] == 12  # 'UNK' counts as unknown
    assert rates[(NORTH, "ethnicity")]["unknown"] == 0
    assert rates[(NORTH, "language")]["unknown"] == 20  # BCP-47 'und'
    assert rates[(SOUTH, "ethnicity")]["unknown"] == 11  # 'ASKU'
    assert rates[(SOUTH, "postal_code")]["unknown"] == 14  # blank
    page = client.get("/data-quality").text
    assert "12.5%" in page and "race" in page


def test_viewers_get_suppressed_counts(seeded: Path) -> None:
    viewer = _client(seeded, "viewer")
    quality = viewer.get("/api/data-quality").json()
    assert quality["suppressed"] is True
    rates = _rates(quality)
    # 5 of 40 unknown: the 5 is hidden, and so is its complement (35), else 40 - 35 gives it back.
    assert rates[(NORTH, "race")]["unknown"] is None and rates[(NORTH, "race")]["rate"] is None
    assert rates[(NORTH, "ethnicity")]["unknown"] == 0  # zeros are published (CMS policy)
    assert rates[(SOUTH, "ethnicity")]["unknown"] == 11
    assert rates[(SOUTH, "birth_sex")]["unknown"] is None  # 2 of 30
    assert "&lt;11*" in viewer.get("/data-quality").text
    # Why each is hidden, never the value (issue 17): 5 is small; 95 of 100 hides 5 known ones.
    assert rates[(NORTH, "race")]["hidden"] == {"unknown": "small"}
    assert suppress_rate(UnknownRate("c", "race", 100, 95)).hidden == {"unknown": "complementary"}
    analyst = _rates(_client(seeded, "analyst").get("/api/data-quality").json())
    assert analyst[(NORTH, "race")]["unknown"] == 5


@pytest.mark.parametrize(
    ("patients", "unknown", "expected"),
    [(40, 5, (40, None)), (40, 0, (40, 0)), (40, 15, (40, 15)), (8, 0, (None, None)), (100, 95, (100, None))],
)
def test_suppress_rate(patients: int, unknown: int, expected: tuple) -> None:
    out = suppress_rate(UnknownRate("c", "race", patients, unknown))
    assert (out.patients, out.unknown) == expected


def test_overview_and_center_pages(seeded: Path) -> None:
    client = _client(seeded, "analyst")
    overview = client.get("/").text
    assert 'id="heatmap"' in overview and NORTH in overview and SOUTH in overview
    centers = {c["center"]: c for c in client.get("/api/centers").json()}
    assert centers[NORTH]["resources"] == 52 and centers[NORTH]["by_type"] == {"Encounter": 12, "Patient": 40}
    assert centers[NORTH]["loads"] == 2 and centers[SOUTH]["loads"] == 1
    loads = client.get(f"/api/centers/{NORTH}/loads").json()
    assert [x["load_id"] for x in loads] == [3, 1]
    assert client.get("/api/centers/ctr-nowhere/loads").status_code == 404
    assert client.get("/centers/ctr-nowhere").status_code == 404
    page = client.get(f"/centers/{NORTH}")
    assert page.status_code == 200 and "List patients" in page.text
    csrf = client.get("/api/me").json()["csrf_token"]
    listed = client.post(f"/centers/{NORTH}/missing-demographics", data={"field": "race", "csrf_token": csrf})
    assert listed.status_code == 200 and patient_id(NORTH, 4) in listed.text
    assert patient_id(NORTH, 5) not in listed.text


def test_without_flat_patient_the_page_says_so(tmp_path: Path) -> None:
    warehouse = build_warehouse(tmp_path / "wh.duckdb", with_flat=False)
    add_users(warehouse)
    client = _client(warehouse, "admin")
    demo = client.get("/api/data-quality").json()["demographics"]
    assert demo["available"] is False and "flat.patient does not exist yet" in demo["message"]
    assert "flat.patient does not exist yet" in client.get("/data-quality").text


def test_missing_warehouse_is_a_clear_503(tmp_path: Path) -> None:
    warehouse = tmp_path / "none.duckdb"
    add_users(warehouse)
    client = _client(warehouse, "admin")
    assert client.get("/api/health").json() == {"status": "ok", "warehouse": False}
    response = client.get("/api/centers")
    assert response.status_code == 503 and "chc-equity ingest" in response.json()["detail"]
    assert client.get("/data-quality").status_code == 503


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the warehouse's write lock (as an ingest does), until stdin closes."""
    script = f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True); input()"
    writer = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "ok"
    return writer


def test_reads_keep_answering_while_a_writer_holds_the_warehouse(seeded: Path, tmp_path: Path) -> None:
    """Ingest in another process holds the write lock: pages answer from the published snapshot."""
    copy = tmp_path / "locked.duckdb"
    copy.write_bytes(seeded.read_bytes())
    add_users(copy)
    client = _client(copy, "admin")  # the app publishes a first snapshot of a never-published warehouse
    before = client.get("/api/centers")
    writer = _hold_lock(copy)
    try:
        response = client.get("/api/centers")
        assert response.status_code == 200 and response.json() == before.json()
        assert response.headers["X-Data-Version"] == before.headers["X-Data-Version"] == "1"
        assert client.get("/data-quality").status_code == 200
    finally:
        writer.communicate("", timeout=30)


def test_never_published_and_locked_is_a_503_not_a_crash(seeded: Path, tmp_path: Path) -> None:
    """Only a warehouse that was never published, while its first writer holds it, answers 'busy'."""
    copy = tmp_path / "first.duckdb"
    copy.write_bytes(seeded.read_bytes())
    add_users(copy)
    writer = _hold_lock(copy)
    try:
        client = _client(copy, "admin")
        response = client.get("/api/centers")
        assert response.status_code == 503 and "busy" in response.json()["detail"]
    finally:
        writer.communicate("", timeout=30)
    assert client.get("/api/centers").status_code == 200  # published by the next request


def test_real_ingest_and_views(tmp_path: Path) -> None:
    """With the real ingest and views stages: a synthetic NDJSON file through to the data-quality API."""
    ingest = pytest.importorskip("chc_equity.ingest")
    build = pytest.importorskip("chc_equity.views.build")
    from chc_equity.warehouse import connect

    race = {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}],
    }
    lines = [
        json.dumps({"resourceType": "Patient", "id": f"syn-{i}", "extension": [race] if i % 2 else []})
        for i in range(6)
    ]
    lines.append('{"resourceType": "Patient", "id": "broken"')  # malformed
    source = tmp_path / "Patient.ndjson"
    source.write_text("\n".join(lines) + "\n")
    warehouse = tmp_path / "wh.duckdb"
    con = connect(warehouse)
    try:
        ingest.load(
            con, [source], "ctr-syn", after_load=lambda c, center: build.build_views(c, centers=[center])
        )
    finally:
        con.close()
    add_users(warehouse)
    quality = _client(warehouse, "admin").get("/api/data-quality").json()
    assert [r["reason"] for r in quality["rejects"]] == ["malformed-json"]
    assert "broken" not in json.dumps(quality)
    rates = _rates(quality)
    assert rates[("ctr-syn", "race")]["patients"] == 6 and rates[("ctr-syn", "race")]["unknown"] == 3


def test_open_snapshots_share_one_database_per_file_and_close_retired_ones(tmp_path: Path) -> None:
    """Requests reading one snapshot file share one open database (a cursor each); a file replaced under
    its name is read afresh; only the newest two stay open, and one still in use is closed when released."""
    import duckdb

    from chc_equity.web.data import WarehouseUnavailable, _OpenSnapshots

    def snapshot(name: str, value: int) -> Path:
        path = tmp_path / name
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE t AS SELECT ? AS x", [value])
        con.close()
        return path

    first, second, third = (
        snapshot("00000001.duckdb", 1),
        snapshot("00000002.duckdb", 2),
        snapshot("00000003.duckdb", 3),
    )
    cache = _OpenSnapshots()
    with cache.cursor(first) as a, cache.cursor(first) as b:
        assert a.execute("SELECT x FROM t").fetchone() == b.execute("SELECT x FROM t").fetchone() == (1,)
        assert len(cache._open) == 1  # one database, two cursors
        held = next(iter(cache._open.values()))
        with cache.cursor(second), cache.cursor(third) as c:
            assert c.execute("SELECT x FROM t").fetchone() == (3,)
            assert held.retired and held not in cache._open.values()
        assert a.execute("SELECT x FROM t").fetchone() == (1,)  # retired, still readable while in use
    with pytest.raises(duckdb.ConnectionException):
        held.con.execute("SELECT 1")  # closed with its last user
    assert sorted(Path(k[0]).name for k in cache._open) == ["00000002.duckdb", "00000003.duckdb"]

    snapshot("new.duckdb", 4).replace(third)  # the same name, another file
    with cache.cursor(third) as d:
        assert d.execute("SELECT x FROM t").fetchone() == (4,)
    third.unlink()
    with pytest.raises(WarehouseUnavailable), cache.cursor(third):
        pass
    cache.close_all()
    assert cache._open == {}
