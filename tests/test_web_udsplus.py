"""UDS+ submissions on the web UDS page (issue 16, Build item 4): network admins only.

A package exported by the real CLI (``chc-equity udsplus export`` without ``--out``) on the hand-built
UDS fixture lands in ``<warehouse>.udsplus/<center>/<year>/<submission id>/``; the admin sees it on
``/uds`` and downloads a zip that holds exactly the package's files (manifest, the NDJSON files the
manifest names, the validation report) -- not a stray key file left in the folder -- and whose NDJSON
passes the UDS+ validator. Every other role sees no section and no link, and gets 403 on the zip route.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from browser.webseed import (
    PASSWORD,
    UDSPLUS_HC,
    UDSPLUS_KEY,
    add_users,
    build_uds_fixture_warehouse,
    login,
    make_app,
)
from chc_equity.udsplus.reader import read_package
from chc_equity.udsplus.store import list_packages, root_for
from chc_equity.udsplus.validate import validate, validate_all
from chc_equity.web.roles import Role

YEAR = 2025
DENIED = ["viewer", "viewer-north", "staff-north", "staff-hc1", "pm-north", "chw-north", "analyst"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(warehouse, submission id, package folder) after one CLI export of hc1 with no --out."""
    from chc_equity.cli import _register, app

    root = tmp_path_factory.mktemp("web_udsplus")
    warehouse = build_uds_fixture_warehouse(root / "wh.duckdb")
    key = root / "operator.key"
    key.write_bytes(UDSPLUS_KEY)
    _register()
    args = ["udsplus", "export", "--year", str(YEAR), "--center", "hc1", "--hc-config", str(UDSPLUS_HC)]
    res = CliRunner().invoke(app, [*args, "--key-file", str(key), "--warehouse", str(warehouse)])
    assert res.exit_code == 0, res.output
    (folder,) = (root_for(warehouse) / "hc1" / str(YEAR)).iterdir()
    assert " ".join(res.output.split()).endswith("every resource conforms to its UDS+ profile")
    shutil.copy(key, folder / "udsplus.key")  # an operator's slip: must never be served
    store = add_users(warehouse)
    store.add_user("staff-hc1", PASSWORD, Role.CENTER_STAFF, "hc1")  # hc1's own staff: still no
    return warehouse, folder.name, folder


@pytest.fixture(scope="module")
def clients(exported: tuple[Path, str, Path]) -> dict[str, TestClient]:
    app = make_app(exported[0])
    out = {}
    for name in ["admin", *DENIED]:
        out[name] = TestClient(app)
        assert login(out[name], name).status_code == 303
    return out


def test_the_cli_writes_beside_the_warehouse_and_the_listing_reads_the_package(exported) -> None:
    warehouse, sid, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["id"] == sid  # the folder is named after the submission id
    (info,) = list_packages(root_for(warehouse))
    ndjson = sorted(folder.glob("*.ndjson"))
    lines = sum(len(p.read_text().splitlines()) for p in ndjson)
    assert (info.center, info.year, info.submission_id) == ("hc1", YEAR, sid)
    assert (info.files, info.resources, info.violations) == (len(ndjson), lines, 0)
    assert info.files == [p["name"] for p in manifest["parameter"]].count("udsData")


def test_admin_sees_the_package_and_downloads_exactly_its_files(exported, clients, tmp_path: Path) -> None:
    _warehouse, sid, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    (when,) = [p["valueDateTime"] for p in manifest["parameter"] if p["name"] == "submissionTime"]
    admin = clients["admin"]
    page = admin.get("/uds")
    assert page.status_code == 200 and "UDS+ submissions" in page.text
    assert sid in page.text and f'href="/uds/udsplus/{sid}.zip"' in page.text and ">valid<" in page.text
    assert datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC") in page.text
    res = admin.get(f"/uds/udsplus/{sid}.zip")
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    assert f"udsplus-hc1-{YEAR}-{sid}.zip" in res.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(res.content)) as zf:
        assert zf.testzip() is None
        names = sorted(zf.namelist())
        expected = sorted(
            f"{sid}/{p.name}" for p in folder.iterdir() if p.suffix in {".ndjson", ".json", ".csv"}
        )
        assert names == expected and f"{sid}/udsplus.key" not in names
        assert {f"{sid}/manifest.json", f"{sid}/validation.csv", f"{sid}/Patient.ndjson"} <= set(names)
        for name in names:
            assert zf.read(name) == (folder / name.split("/", 1)[1]).read_bytes(), name
        unpacked = tmp_path / "unzipped"
        zf.extractall(unpacked)
    assert UDSPLUS_KEY not in res.content  # stored deflated; the raw key bytes also appear nowhere
    resources = read_package(unpacked / sid)
    assert sum(len(rs) for rs in resources.values()) == sum(
        len(p.read_text().splitlines()) for p in folder.glob("*.ndjson")
    )
    assert validate_all((r for rs in resources.values() for r in rs), strict=True) == []
    assert validate(json.loads((unpacked / sid / "manifest.json").read_text())) == []


def test_other_roles_see_no_section_and_get_403(exported, clients) -> None:
    _warehouse, sid, _folder = exported
    for name in DENIED:
        client = clients[name]
        page = client.get("/uds")
        assert page.status_code == 200, name
        assert (
            "UDS+ submissions" not in page.text and "/uds/udsplus/" not in page.text and sid not in page.text
        )
        assert client.get(f"/uds/udsplus/{sid}.zip").status_code == 403, name
        assert client.get("/uds/udsplus/no-such-id.zip").status_code == 403, name


def test_unknown_ids_are_404_and_never_paths(exported, clients) -> None:
    admin = clients["admin"]
    assert admin.get("/uds/udsplus/no-such-id.zip").status_code == 404
    assert admin.get("/uds/udsplus/..%2F..%2Fwh.duckdb.zip").status_code == 404
    assert admin.get("/uds/udsplus/udsplus.key.zip").status_code == 404


def test_a_package_with_violations_is_listed_as_such(exported, tmp_path: Path) -> None:
    """The listing counts the validation report's rows (header excluded), as the export wrote them."""
    _warehouse, sid, folder = exported
    copy = tmp_path / "pkgs" / "hc1" / str(YEAR) / sid
    shutil.copytree(folder, copy)
    with (copy / "validation.csv").open("a") as fh:
        fh.write('"Patient/x","Patient.gender","binding","not in value set"\n')
        fh.write('"Patient/y","Patient.extension","cardinality","min 1"\n')
    (info,) = list_packages(tmp_path / "pkgs")
    assert (info.violations, info.valid) == (2, False)
