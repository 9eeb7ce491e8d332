"""Real browser: sign in, open the UDS page, download the Excel workbook and open it with openpyxl.

The warehouse is a real ingest + measures + full precompute (so ``patient_attributes`` is in it, the case
that answered 409 for every role, issue 11 item 11). The downloaded workbook must hold the same cells as
the one ``chc-equity uds`` writes from the same warehouse.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, sign_in
from browser.webseed import PASSWORD, add_users, build_synthetic_warehouse, live_server, make_app
from chc_equity.uds import NETWORK
from chc_equity.web.authstore import AuthStore, auth_path
from chc_equity.web.roles import Role

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl not installed")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path, centers = build_synthetic_warehouse(tmp_path_factory.mktemp("browser-uds"))
    add_users(path)
    AuthStore(auth_path(path)).add_user("staff-first", PASSWORD, Role.CENTER_STAFF, centers[0])
    return path, centers


@pytest.fixture(scope="module")
def base_url(network: tuple[Path, list[str]]) -> Iterator[str]:
    with live_server(make_app(network[0])) as url:
        yield url


def _cli_workbook(warehouse: Path, tmp: Path, center: str | None):
    """What ``chc-equity uds`` writes (on a copy: the CLI's build writes helper tables)."""
    from chc_equity.uds import build_report
    from chc_equity.uds.export import write_xlsx
    from chc_equity.warehouse import connect

    copy = tmp / "copy.duckdb"
    shutil.copyfile(warehouse, copy)
    con = connect(copy)
    try:
        report = build_report(con, 2026, centers=[center] if center else None)
    finally:
        con.close()
    return openpyxl.load_workbook(write_xlsx(report, tmp / "cli.xlsx"))


def _cells(book) -> dict[str, list[tuple]]:
    return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}


def _download(browser, base_url: str, username: str, target: Path):
    page, errors = sign_in(browser, base_url, username)
    page.goto(f"{base_url}/uds")
    with page.expect_download() as info:
        page.click("#uds-download")
    info.value.save_as(str(target))
    assert errors == [], errors
    page.close()
    return info.value.suggested_filename, openpyxl.load_workbook(target)


@pytest.mark.parametrize(("username", "scope"), [("admin", None), ("analyst", None), ("staff-first", 0)])
def test_uds_workbook_downloads_and_opens(
    browser, base_url: str, network: tuple[Path, list[str]], tmp_path: Path, username: str, scope: int | None
) -> None:
    warehouse, centers = network
    center = None if scope is None else centers[scope]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name, book = _download(browser, base_url, username, ARTIFACTS / f"uds-{username}.xlsx")
    assert name == f"uds-2026-{center or 'network'}.xlsx"
    assert {"Table 3A", "Table 3B", "Table 4", "Table 6B", "Table 7", "Edits"} <= set(book.sheetnames)
    scopes = {row[0] for row in book["Table 3B"].iter_rows(min_row=4, values_only=True) if row[0]}
    assert scopes == ({center} if center else {*centers, NETWORK})
    assert _cells(book) == _cells(_cli_workbook(warehouse, tmp_path, center))
