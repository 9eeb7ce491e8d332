"""Real-browser test of the farmworker voucher program (issue 20): program staff sign in, land on the
program page, issue a voucher, import a provider's claims file through the upload form, adjudicate its
two lines (one paid, one denied for a fee above the schedule) and see the budget's paid and remaining
amounts change. Debian's Chromium, a live uvicorn server, the fixture program's setup in the app database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import ARTIFACTS, CHROMIUM
from browser.webseed import PASSWORD, add_users, build_warehouse, live_server, make_app
from chc_equity.vouchers import store

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)
PROGRAM = Path(__file__).resolve().parents[1] / "fixtures" / "vouchers" / "program.json"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = build_warehouse(tmp_path_factory.mktemp("browser-vouchers") / "wh.duckdb")
    add_users(path)
    app = make_app(path)
    raw = json.loads(PROGRAM.read_text())
    with app.state.db.write() as s:  # budget line, providers, fee schedule, people, verifications
        store.load_program(s, {k: v for k, v in raw.items() if k != "vouchers"}, "setup")
    with live_server(app) as url:
        yield url


def _money(page, selector: str) -> float:
    return float(page.inner_text(selector).replace(",", ""))


def test_issue_import_adjudicate_and_the_budget_updates(browser, base_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{base_url}/login")
    page.fill("#username", "program-staff")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/vouchers")
    row = "#budget tr[data-line='BL-2026-PURCH']"
    assert _money(page, f"{row} td.budget") == 5000.00 and _money(page, f"{row} td.paid") == 0.0

    page.fill("#issue input[name=patient_id]", "W1")
    page.fill("#issue input[name=services]", "99213")
    page.fill("#issue input[name=issued_on]", "2026-03-01")
    page.fill("#issue input[name=expires_on]", "2026-06-30")
    page.fill("#issue input[name=max_amount]", "200.00")
    page.click("#issue button[type=submit]")
    page.wait_for_selector("#message")
    match = re.fullmatch(r"Issued voucher (\S+)\.", page.inner_text("#message"))
    assert match, page.inner_text("#message")
    voucher = match.group(1)
    assert page.locator(f"#vouchers td.voucher-id:text-is('{voucher}')").count() == 1

    claims = tmp_path / "valley-claims.csv"
    claims.write_text(
        "provider_id,claim_no,claim_line,voucher_id,patient_id,service_date,service_code,units,"
        "billed_amount,received_date\n"
        f"P-CLIN,B001,1,{voucher},W1,2026-03-10,99213,1,90.00,2026-03-20\n"
        f"P-CLIN,B002,1,{voucher},W1,2026-03-17,99213,1,95.00,2026-03-20\n"
    )
    page.click("header nav a:text('Claims')")
    page.wait_for_url(f"{base_url}/vouchers/claims")
    page.set_input_files("#import input[type=file]", str(claims))
    page.click("#import button[type=submit]")
    page.wait_for_selector("#message")
    assert page.inner_text("#message").startswith("Imported valley-claims.csv: 2 new line(s)")

    for claim, status, paid, reason in (
        ("B001", "paid", "90.00", ""),
        ("B002", "denied", "0.00", "FEE_ABOVE_SCHEDULE"),
    ):
        page.click(f"#lines tr[data-claim='{claim}'] button.adjudicate")
        page.wait_for_selector("#message")
        line = page.locator(f"#lines tr[data-claim='{claim}']")
        assert line.locator("td.status").inner_text() == status
        assert line.locator("td.paid").inner_text() == paid
        assert line.locator("td.reason").inner_text() == reason
    page.screenshot(path=str(ARTIFACTS / "voucher-claims.png"), full_page=True)

    page.click("header nav a:text('Vouchers')")
    page.wait_for_url(f"{base_url}/vouchers")
    paid, encumbered = _money(page, f"{row} td.paid"), _money(page, f"{row} td.encumbered")
    assert paid == 90.00
    assert _money(page, f"{row} td.remaining") == round(5000.00 - paid - encumbered, 2)
    page.screenshot(path=str(ARTIFACTS / "voucher-budget.png"), full_page=True)

    page.click("header nav a:text('Households')")
    page.fill("#find input[name=household]", "H1")
    page.click("#find button[type=submit]")
    page.wait_for_url(f"{base_url}/vouchers/households?household=H1")
    cells = page.locator("table[data-household='H1'] tbody tr").first.locator("td").all_inner_texts()
    assert cells[:2] + cells[4:5] + cells[-2:] == ["W1", "worker", "migratory", "1", "90.00"]
    assert errors == [], errors
    page.close()
