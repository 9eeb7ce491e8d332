"""The voucher program's pure rules on a hand-computed fixture: 43 claim lines covering every rule and
reason code (tests/fixtures/vouchers/claims_fixture.csv, expected columns with a note per line)."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from chc_equity.vouchers import budget
from chc_equity.vouchers.claims_file import ClaimsFileError, read_claims
from chc_equity.vouchers.rules import (
    Eligibility,
    Reason,
    WorkFacts,
    adjudicate_all,
    classify,
    due_for_reverification,
)
from chc_equity.vouchers.setup import cents, parse_program

FIXTURE = Path(__file__).parent / "fixtures" / "vouchers"


def expected_rows() -> list[dict[str, str]]:
    with (FIXTURE / "claims_fixture.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def program():
    return parse_program(json.loads((FIXTURE / "program.json").read_text()))


def test_fixture_adjudicates_to_the_hand_computed_amounts() -> None:
    parsed = read_claims(FIXTURE / "claims_fixture.csv")
    assert parsed.rejects == [] and len(parsed.lines) == 43
    decisions = adjudicate_all([line for _, line in parsed.lines], program().book())
    for row, (n, _line), d in zip(expected_rows(), parsed.lines, decisions, strict=True):
        got = (d.status, d.paid_units, d.paid_cents, d.reason.value if d.reason else "")
        want = (row["expected_status"], int(row["expected_units"]), cents(row["expected_paid"]),
                row["expected_reason"])  # fmt: skip
        assert got == want, f"line {n} ({row['why']})"
    assert sum(d.paid_cents for d in decisions) == 173_500  # $1,735.00, summed by hand
    assert sum(d.status == "denied" for d in decisions) == 25
    assert sum(d.status == "reduced" for d in decisions) == 7


def test_fixture_covers_every_reason_code() -> None:
    reasons = {r["expected_reason"] for r in expected_rows()} - {""}
    assert reasons == {r.value for r in Reason}


def test_classify_migratory_seasonal_and_refusals() -> None:
    on = date(2026, 5, 1)
    base = WorkFacts("111219", date(2026, 4, 1), True, False, "uninsured", ("pay stub",))
    assert classify(base, on).category == "migratory"
    seasonal = WorkFacts("112120", date(2025, 6, 1), False, False, "underinsured", ("employer letter",))
    assert classify(seasonal, on).category == "seasonal"
    h2a = WorkFacts("115115", date(2026, 4, 1), False, True, "uninsured", ("H-2A visa",))
    assert classify(h2a, on).category == "migratory"
    aquaculture = WorkFacts("112511", date(2026, 4, 1), False, False, "uninsured", ("pay stub",))
    assert classify(aquaculture, on).category == "seasonal"
    forestry = WorkFacts("113310", date(2026, 4, 1), True, False, "uninsured", ("pay stub",))
    assert classify(forestry, on).category is None  # logging is not agriculture under HRSA's rule
    old = WorkFacts("111219", date(2024, 4, 30), True, False, "uninsured", ("pay stub",))
    assert "no agricultural work in the last 24 months" in classify(old, on).problems
    insured = WorkFacts("111219", date(2026, 4, 1), True, False, "insured", ("pay stub",))
    assert classify(insured, on).category is None
    nodoc = WorkFacts("111219", date(2026, 4, 1), True, False, "uninsured", ())
    assert classify(nodoc, on).problems == ("no document seen",)


def test_reverification_list() -> None:
    vs = [
        Eligibility("A", "seasonal", date(2025, 6, 1)),  # until 2026-05-31
        Eligibility("A", "seasonal", date(2024, 6, 1)),  # older: ignored
        Eligibility("B", "migratory", date(2025, 5, 1)),  # until 2026-04-30: overdue
        Eligibility("C", "migratory", date(2026, 1, 1)),  # until 2026-12-31: not due
    ]
    assert due_for_reverification(vs, date(2026, 5, 10)) == [
        ("B", date(2026, 4, 30)),
        ("A", date(2026, 5, 31)),
    ]


def test_budget_position_status_and_warnings() -> None:
    on = date(2026, 6, 1)
    vs = [
        budget.VoucherMoney(50_000, 20_000, date(2026, 7, 31)),  # partially used: 30,000 encumbered
        budget.VoucherMoney(20_000, 0, date(2026, 12, 31)),  # issued: 20,000
        budget.VoucherMoney(10_000, 0, date(2026, 12, 31), voided=True),  # 0
        budget.VoucherMoney(10_000, 10_000, date(2026, 12, 31)),  # used: 0
        budget.VoucherMoney(10_000, 4_000, date(2026, 4, 30)),  # expired, inside the filing window: 6,000
        budget.VoucherMoney(10_000, 1_000, date(2026, 2, 28)),  # expired + 90 days passed: 0
    ]
    assert [v.status(on) for v in vs] == ["partially_used", "issued", "voided", "used", "expired", "expired"]
    pos = budget.position(100_000, vs, on)
    assert (pos.paid_cents, pos.encumbered_cents, pos.remaining_cents) == (35_000, 56_000, 9_000)
    assert pos.warning == "warning"  # 91 % committed
    assert budget.position(100_000, vs[:1], on).warning is None  # 50 %
    assert budget.Position(1000, 900, 60).warning == "critical"


def test_burn_down_and_forecast() -> None:
    pays = [(date(2026, 5, 3), 100), (date(2026, 5, 20), 50), (date(2026, 7, 1), 200)]
    assert budget.burn_down(1000, pays) == [("2026-05", 150, 850), ("2026-07", 200, 650)]
    prior = {2024: [(date(2024, 6, 1), 300), (date(2024, 9, 1), 700)],  # 30 % by June 30
             2025: [(date(2025, 6, 15), 500), (date(2025, 10, 1), 500)]}  # 50 % by June 30  # fmt: skip
    assert budget.forecast_season(400, date(2026, 6, 30), prior) == 1000  # 400 / mean(0.3, 0.5)
    assert budget.forecast_season(400, date(2026, 6, 30), {}) is None


def test_claims_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "provider_id,claim_no,claim_line,voucher_id,patient_id,service_date,service_code,units,"
        "billed_amount,received_date\n"
        "P,C1,1,V,W,2026-02-30,99213,1,90.00,2026-03-01\n"
        "P,C2,1,V,W,2026-02-03,99213,1.5,90.00,2026-03-01\n"
        "P,C3,1,V,W,2026-02-03,99213,1,90.001,2026-03-01\n"
        "P,C4,1,V,,2026-02-03,99213,1,90.00,2026-03-01\n"
        "P,C5,1,V,W,2026-02-03,99213,1,$1,090.00,2026-03-01\n"
    )
    parsed = read_claims(bad)
    assert [(r.line, r.field) for r in parsed.rejects] == [
        (2, "service_date"), (3, "units"), (4, "billed_amount"), (5, "patient_id"), (6, "received_date"),
    ]  # fmt: skip
    assert "'2026-02-30' is not a date" in parsed.rejects[0].reason
    missing = tmp_path / "short.csv"
    missing.write_text("provider_id,claim_no\nP,C1\n")
    with pytest.raises(ClaimsFileError, match=r"short.csv: line 1: column\(s\) missing: claim_line"):
        read_claims(missing)


def test_claims_file_xlsx_reads_like_csv(tmp_path: Path) -> None:
    from openpyxl import Workbook

    rows = list(csv.reader((FIXTURE / "claims_fixture.csv").open(newline="")))
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(tmp_path / "claims.xlsx")
    xlsx = read_claims(tmp_path / "claims.xlsx")
    assert [x for _, x in xlsx.lines] == [x for _, x in read_claims(FIXTURE / "claims_fixture.csv").lines]


def test_fhir_claims_read_like_the_template(tmp_path: Path) -> None:
    from chc_equity.vouchers.fhir_claims import claim_resource

    lines = [x for _, x in read_claims(FIXTURE / "claims_fixture.csv").lines]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": claim_resource([x])} for x in lines]}  # fmt: skip
    (tmp_path / "claims.json").write_text(json.dumps(bundle))
    parsed = read_claims(tmp_path / "claims.json")
    assert parsed.rejects == [] and [x for _, x in parsed.lines] == lines
    decisions = adjudicate_all([x for _, x in parsed.lines], program().book())
    assert sum(d.paid_cents for d in decisions) == 173_500

    broken = claim_resource(lines[:1])
    del broken["insurance"][0]["preAuthRef"]
    two_items = claim_resource(lines[:2])  # one Claim, two items: two lines
    two_items["item"][1]["sequence"] = 2
    rows = [json.dumps(broken), "{not json", json.dumps({"resourceType": "Patient"}), json.dumps(two_items)]
    (tmp_path / "claims.ndjson").write_text("\n".join(rows) + "\n")
    parsed = read_claims(tmp_path / "claims.ndjson")
    assert [(r.line, r.field) for r in parsed.rejects] == [
        (1, "Claim.insurance[0].preAuthRef"), (2, "(line)"), (3, "resourceType"),
    ]  # fmt: skip
    assert [(n, x.claim_line) for n, x in parsed.lines] == [(4, 1), (4, 2)]
