"""The voucher pages through the real app (TestClient, webseed warehouse, SQLite app database): verify
eligibility (the rule decides the category or refuses), issue, upload a claims file, and two staff
adjudicating the same line from pages loaded at the same version: one decision, one 409."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from browser.webseed import add_users, build_warehouse, login, make_app
from chc_equity.vouchers import store
from test_vouchers_rules import FIXTURE

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    path = build_warehouse(tmp_path_factory.mktemp("vouchers-web") / "wh.duckdb", with_measures=False)
    add_users(path)
    app = make_app(path)
    raw = json.loads((FIXTURE / "program.json").read_text())
    with app.state.db.write() as s:
        store.load_program(s, {k: v for k, v in raw.items() if k != "vouchers"}, "setup")
    return app


def _staff(app) -> tuple[TestClient, str]:
    client = TestClient(app)
    assert login(client, "program-staff").headers["location"] == "/vouchers"
    return client, CSRF.search(client.get("/vouchers").text).group(1)


def test_verify_issue_import_and_one_decision_for_two_staff(app) -> None:
    ana, ana_csrf = _staff(app)
    ben, ben_csrf = _staff(app)
    facts = {"csrf_token": ana_csrf, "patient_id": "W9", "household": "H9", "relationship": "worker",
             "zip_code": "01002", "state": "MA", "naics": "111219", "last_ag_work": "2026-05-01",
             "insurance": "uninsured", "documents": "pay stub", "h2a": "true"}  # fmt: skip
    refused = ana.post("/vouchers/verify", data={**facts, "insurance": "insured"})
    assert refused.status_code == 400 and "the program serves the un/underinsured" in refused.text
    forestry = ana.post("/vouchers/verify", data={**facts, "naics": "113310"})
    assert forestry.status_code == 400 and "NAICS 113310 is not agriculture" in forestry.text
    verified = ana.post("/vouchers/verify", data=facts)
    assert verified.status_code == 200 and "W9 verified migratory until" in verified.text  # H-2A

    issue = {"csrf_token": ana_csrf, "patient_id": "W1", "budget_line_id": "BL-2026-PURCH",
             "services": "99213,99214", "issued_on": "2026-03-01", "expires_on": "2026-06-30",
             "max_amount": "300", "idempotency_key": "web-test-key-1"}  # fmt: skip
    first = ana.post("/vouchers/issue", data=issue)
    again = ana.post("/vouchers/issue", data=issue)  # a double submit
    voucher = re.search(r"Issued voucher (\S+)\.", first.text).group(1)
    assert f"Already issued voucher {voucher}." in again.text
    too_big = ana.post(
        "/vouchers/issue", data={**issue, "max_amount": "9999", "idempotency_key": "web-test-key-2"}
    )
    assert too_big.status_code == 400 and "remaining" in too_big.text

    csv = ("provider_id,claim_no,claim_line,voucher_id,patient_id,service_date,service_code,units,"
           "billed_amount,received_date\n"
           f"P-CLIN,W001,1,{voucher},W1,2026-03-10,99214,1,130.00,2026-03-12\n")  # fmt: skip
    up = ana.post("/vouchers/claims/import", data={"csrf_token": ana_csrf},
                  files={"file": ("w.csv", csv.encode(), "text/csv")})  # fmt: skip
    assert up.status_code == 200 and "Imported w.csv: 1 new line(s)" in up.text
    replay = ana.post("/vouchers/claims/import", data={"csrf_token": ana_csrf},
                      files={"file": ("w.csv", csv.encode(), "text/csv")})  # fmt: skip
    assert "was imported before: nothing added" in replay.text
    line_id = re.search(r'data-line="(\d+)" data-claim="W001"', up.text).group(1)

    # both pages were loaded at version 1; Ana decides first, Ben's decision is refused
    decided = ana.post(
        f"/vouchers/claims/{line_id}/adjudicate", data={"csrf_token": ana_csrf, "version": "1"}
    )
    assert decided.status_code == 200 and f"Line {line_id}: paid 130.00" in decided.text
    stale = ben.post(f"/vouchers/claims/{line_id}/adjudicate", data={"csrf_token": ben_csrf, "version": "1"})
    assert stale.status_code == 409 and "changed by program-staff meanwhile" in stale.text
    with app.state.db.read() as s:
        assert [d.action for d in store.history(s, int(line_id))] == ["adjudicate"]

    page = ana.get("/vouchers/households?household=H9").text
    assert "W9" in page and "migratory" in page
    assert ana.get("/").status_code == 403  # the analytics are not this role's


def test_verify_records_birth_date_and_sex_and_a_blank_reverification_keeps_them(app) -> None:
    from datetime import date

    from chc_equity.appdb.models import VoucherPerson

    client, csrf = _staff(app)
    facts = {"csrf_token": csrf, "patient_id": "W8", "household": "H8", "relationship": "worker",
             "zip_code": "06010", "state": "CT", "naics": "111219", "last_ag_work": "2026-05-01",
             "insurance": "uninsured", "documents": "pay stub",
             "birth_date": "1990-05-17", "sex": "F"}  # fmt: skip
    assert client.post("/vouchers/verify", data={**facts, "sex": "X"}).status_code == 422
    assert client.post("/vouchers/verify", data=facts).status_code == 200
    again = client.post("/vouchers/verify", data={**facts, "birth_date": "", "sex": "", "zip_code": "06016"})
    assert again.status_code == 200, again.text
    with app.state.db.read() as s:
        person = s.get(VoucherPerson, "W8")
        assert (person.birth_date, person.sex, person.zip) == (date(1990, 5, 17), "F", "06016")
