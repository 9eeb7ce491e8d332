"""The voucher program in the app database, on SQLite and PostgreSQL (``app_backend``): the fixture's
43 lines adjudicated through import + database give the hand-computed amounts, a re-import pays nothing
twice, appeals re-open lines, two staff deciding one line at once end with one decision, and a
``kill -9`` inside an import leaves all of the file or none of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import chc_equity
from chc_equity.appdb import AppDB
from chc_equity.appdb.engine import database_url
from chc_equity.appdb.models import VoucherClaimFile, VoucherClaimLine, VoucherDecision, VoucherLedger
from chc_equity.vouchers import store
from chc_equity.vouchers.claims_file import read_claims, write_claims_csv
from chc_equity.vouchers.rules import ClaimLine
from chc_equity.vouchers.setup import cents
from test_vouchers_rules import FIXTURE, expected_rows

SRC = str(Path(chc_equity.__file__).resolve().parents[1])
BL = "BL-2026-PURCH"
DAY = date(2026, 9, 1)


def setup_fixture_program(db: AppDB) -> None:
    """program.json into the database: setup, then each voucher issued (and V6 voided) the real way."""
    raw = json.loads((FIXTURE / "program.json").read_text())
    with db.write() as s:
        store.load_program(s, raw, "setup")
        for v in raw["vouchers"]:
            store.issue(s, voucher_id=v["id"], patient_id=v["patient_id"], budget_line_id=BL,
                        services=v["services"], issued_on=date.fromisoformat(v["issued_on"]),
                        expires_on=date.fromisoformat(v["expires_on"]), max_cents=cents(v["max_amount"]),
                        max_units=v["max_units"], provider_id=v["provider_id"], by="staff")  # fmt: skip
            if v.get("voided"):
                store.void(s, v["id"], "staff", date.fromisoformat(v["issued_on"]))


@pytest.fixture
def db(app_backend: str, tmp_path: Path):
    appdb = AppDB(database_url(tmp_path / "wh.duckdb"))
    yield appdb
    appdb.dispose()


def _lines(db: AppDB) -> list[VoucherClaimLine]:
    with db.read() as s:
        return list(s.scalars(select(VoucherClaimLine).order_by(VoucherClaimLine.file_line)))


def test_fixture_through_the_database(db: AppDB, tmp_path: Path) -> None:
    setup_fixture_program(db)
    parsed = read_claims(FIXTURE / "claims_fixture.csv")
    with db.write() as s:
        result = store.import_claims(s, parsed, "staff")
    assert (result.new_lines, result.already_received, result.rejects, result.replay) == (43, 0, 0, False)
    with db.write() as s:
        assert store.adjudicate_open(s, "staff", DAY) == 43
    for row, line in zip(expected_rows(), _lines(db), strict=True):
        got = (line.status, line.paid_units, line.paid_cents, line.reason or "")
        want = (row["expected_status"], int(row["expected_units"]), cents(row["expected_paid"]),
                row["expected_reason"])  # fmt: skip
        assert got == want, f"line {line.file_line} ({row['why']})"
    with db.read() as s:
        assert store.position(s, BL, DAY).paid_cents == 173_500
        assert store.reconcile(s, BL, DAY) == []

    # The same file again, and the same lines in another file (other bytes): nothing new, nothing paid.
    with db.write() as s:
        assert store.import_claims(s, parsed, "staff").replay
    copy = tmp_path / "resent.csv"
    write_claims_csv(copy, [x for _, x in reversed(parsed.lines)])
    with db.write() as s:
        again = store.import_claims(s, read_claims(copy), "staff")
        assert (again.new_lines, again.already_received, again.replay) == (0, 43, False)
        assert store.adjudicate_open(s, "staff", DAY) == 0
    with db.read() as s:
        assert store.position(s, BL, DAY).paid_cents == 173_500
        assert s.scalar(select(func.count()).select_from(VoucherClaimLine)) == 43


def test_appeals_reopen_and_every_decision_is_kept(db: AppDB) -> None:
    setup_fixture_program(db)
    with db.write() as s:
        store.import_claims(s, read_claims(FIXTURE / "claims_fixture.csv"), "staff")
        store.adjudicate_open(s, "staff", DAY)
    by_claim = {x.claim_no: x for x in _lines(db)}
    nope = by_claim["C029"]  # NOT_ELIGIBLE: verification lapsed; re-verified on appeal
    with db.write() as s:
        with pytest.raises(store.VoucherError, match="note"):
            store.appeal(s, nope.id, "lead", DAY, "  ")
        store.record_verification(s, "NOPE", "seasonal", date(2026, 3, 1), "lead", documents="pay stub")
        store.appeal(s, nope.id, "lead", DAY, "re-verified: pay stub 2026-03-01", expected_version=2)
        line = store.adjudicate_line(s, nope.id, "lead", DAY, expected_version=3)
        assert (line.status, line.paid_cents) == ("paid", 9000)
    first = by_claim["C001"]  # paid: an appeal takes the payment back, re-adjudication pays it again
    with db.write() as s:
        store.appeal(s, first.id, "lead", DAY, "provider asks for review")
        assert store.position(s, BL, DAY).paid_cents == 173_500 + 9000 - 9000
        assert store.reconcile(s, BL, DAY) == []
        line = store.adjudicate_line(s, first.id, "lead", DAY)
        assert (line.status, line.paid_cents) == ("paid", 9000)
        steps = [(d.seq, d.action, d.status, d.decided_by) for d in store.history(s, first.id)]
        assert steps == [(2, "adjudicate", "paid", "staff"), (3, "appeal", "open", "lead"),
                         (4, "adjudicate", "paid", "lead")]  # fmt: skip
        assert store.position(s, BL, DAY).paid_cents == 182_500
        assert store.reconcile(s, BL, DAY) == []
        with pytest.raises(store.Conflict, match="already paid"):
            store.adjudicate_line(s, first.id, "other", DAY)


def test_issue_refuses_what_the_rules_forbid(db: AppDB) -> None:
    setup_fixture_program(db)
    base = dict(patient_id="W1", budget_line_id=BL, services=["99213"], issued_on=date(2026, 3, 1),
                expires_on=date(2026, 6, 30), max_cents=10_000, by="staff")  # fmt: skip
    with db.write() as s:
        for change, message in [
            ({"patient_id": "W2", "issued_on": date(2026, 6, 1)}, "not verified eligible"),
            ({"services": ["99999"]}, "no fee schedule entry for: 99999"),
            ({"expires_on": date(2027, 1, 31)}, "dates must satisfy"),
            ({"max_cents": 260_001}, "has 2600.00 remaining"),  # 5000 - 2500 issued + 100 voided
        ]:
            with pytest.raises(store.VoucherError, match=message):
                store.issue(s, **{**base, **change})
        v, created = store.issue(s, **base, idempotency_key="k1")
        again, created_again = store.issue(s, **base, idempotency_key="k1")
        assert created and not created_again and again.id == v.id
        pos = store.position(s, BL, date(2026, 3, 1))
        assert (pos.paid_cents, pos.encumbered_cents, pos.remaining_cents) == (0, 250_000, 250_000)


def test_two_staff_adjudicating_one_line_at_once_end_with_one_decision(db: AppDB) -> None:
    setup_fixture_program(db)
    with db.write() as s:
        store.import_claims(s, read_claims(FIXTURE / "claims_fixture.csv"), "staff")
    ids = [x.id for x in _lines(db)][:8]
    for line_id in ids:
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def decide(who: str, line_id: int = line_id, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                with db.write() as s:
                    store.adjudicate_line(s, line_id, who, DAY, expected_version=1)
                outcomes[who] = "decided"
            except store.Conflict:
                outcomes[who] = "conflict"

        threads = [threading.Thread(target=decide, args=(w,)) for w in ("ana", "ben")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes.values()) == ["conflict", "decided"], outcomes
    with db.read() as s:
        decisions = s.execute(select(VoucherDecision.line_id, func.count()).group_by(VoucherDecision.line_id))
        assert dict(decisions.all()) == dict.fromkeys(ids, 1)
        pays = s.scalar(select(func.count()).select_from(VoucherLedger).where(VoucherLedger.kind == "pay"))
        assert pays == sum(x.status != "denied" for x in _lines(db) if x.id in ids)
        assert store.reconcile(s, BL, DAY) == []


CHILD = """
import sys
from pathlib import Path
from chc_equity.appdb import AppDB
from chc_equity.appdb.engine import database_url
from chc_equity.vouchers import store
from chc_equity.vouchers.claims_file import read_claims
db = AppDB(database_url(Path(sys.argv[1])))
with db.write() as s:
    print(store.import_claims(s, read_claims(sys.argv[2]), "kill-test"))
"""


def _big_file(path: Path, n: int) -> Path:
    day = date(2026, 4, 1)
    lines = [ClaimLine("P-CLIN", f"K{i:05d}", 1, "V1", "W1", day + timedelta(days=i % 60), "99214", 1, 13000,
                       day + timedelta(days=70)) for i in range(n)]  # fmt: skip
    return write_claims_csv(path, lines)


@pytest.mark.parametrize("point", store.CRASH_POINTS)
def test_kill_during_import_leaves_all_or_nothing(db: AppDB, tmp_path: Path, point: str) -> None:
    setup_fixture_program(db)
    big = _big_file(tmp_path / "big.csv", 3000)
    env = {**os.environ, "PYTHONPATH": SRC, store.CRASH_ENV: point}
    args = [sys.executable, "-c", CHILD, str(tmp_path / "wh.duckdb"), str(big)]
    child = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr  # it reached the point and died there
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(VoucherClaimLine)) == 0
        assert s.scalar(select(func.count()).select_from(VoucherClaimFile)) == 0
    env.pop(store.CRASH_ENV)
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(VoucherClaimLine)) == 3000
        assert s.scalar(select(VoucherClaimFile.lines)) == 3000


def test_reports_on_the_fixture(db: AppDB) -> None:
    """UDS Table 4/5-style figures for the fixture's paid lines, counted by hand from the expected file:
    patients with a paid line: W1, D1 (migratory), W2, W3 (seasonal); NOPE has none."""
    from chc_equity.vouchers import report

    setup_fixture_program(db)
    with db.write() as s:
        store.import_claims(s, read_claims(FIXTURE / "claims_fixture.csv"), "staff")
        store.adjudicate_open(s, "staff", DAY)
    with db.read() as s:
        assert report.uds_table4(s, 2026) == {"migratory": 2, "seasonal": 2, "total": 4}
        # visits = distinct (patient, provider, day) among paid lines, per service type of the code
        assert report.uds_table5(s, 2026) == [
            ("dental", 1, 1),  # W1 at P-DENT on 03-02 (D0120 + D1110: one visit)
            ("lab", 2, 1),  # W1 85025 on 04-02 and 04-03
            ("medical", 11, 4),  # W1 6 days, W2 02-15 03-01, D1 03-10 04-12, W3 06-10
            ("pharmacy", 2, 1),  # D1 NDC-AB 03-10, 04-10
            ("vision", 1, 1),  # W3 92004 06-11
        ]
        assert report.patients_by_zip(s, 2026) == [("01002", 2), ("01060", 1), ("06010", 1)]
        figures = report.program_figures(s, 2026)
        assert (figures["patients"], figures["paid_lines"], figures["cost_cents"]) == (4, 18, 173_500)
        assert figures["cost_per_patient_cents"] == 43_375
        reasons = dict(report.denial_reasons(s))
        assert sum(reasons.values()) == 25 and reasons["PROVIDER_NOT_PARTICIPATING"] == 3


def test_household_view(db: AppDB) -> None:
    from chc_equity.vouchers import report

    setup_fixture_program(db)
    with db.read() as s:
        h1 = report.households(s, "H1")
        assert list(h1) == ["H1"]
        assert [(m.id, m.relationship, m.category, str(m.valid_until), m.vouchers) for m in h1["H1"]] == [
            ("W1", "worker", "migratory", "2027-01-09", 4),  # V1 V2 V6 V8
            ("D1", "dependent", "migratory", "2027-01-09", 1),
        ]
        assert len(report.households(s)) == 4


def test_two_staff_issuing_with_one_key_or_one_id_at_once(db: AppDB) -> None:
    """A double-clicked issue form (same key) gives one voucher; two vouchers named alike: one and a 409."""
    setup_fixture_program(db)
    base = dict(patient_id="W1", budget_line_id=BL, services=["99213"], issued_on=date(2026, 3, 1),
                expires_on=date(2026, 6, 30), max_cents=10_000, by="staff")  # fmt: skip
    for extra, expect in (({"idempotency_key": "same-key"}, ["created", "replayed"]),
                          ({"voucher_id": "V-SAME"}, ["conflict", "created"])):  # fmt: skip
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def go(extra=extra, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                with db.write() as s:
                    _, created = store.issue(s, **base, **extra)
                outcomes.append("created" if created else "replayed")
            except store.Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == expect
    with db.read() as s:
        assert store.reconcile(s, BL, DAY) == []
        assert store.position(s, BL, date(2026, 3, 1)).encumbered_cents == 240_000 + 2 * 10_000
