"""The synthetic season replayed through the real store, on SQLite and PostgreSQL: every planted error is
denied with its reason, no valid line is denied (each is paid what it billed), and the budget reconciles
(paid + encumbered + remaining = budget, ledger = vouchers = claim lines) after every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from chc_equity.appdb import AppDB
from chc_equity.appdb.engine import database_url
from chc_equity.appdb.models import VoucherClaimLine
from chc_equity.vouchers import season as synth
from chc_equity.vouchers import store


@pytest.fixture(scope="module")
def season() -> synth.Season:
    return synth.generate(seed=20, households=18)


def test_the_season_plants_every_kind_of_error(season: synth.Season) -> None:
    planted = [r for r in season.truth.values() if r is not None]
    assert {r for r in planted} == set(synth.PLANTED_REASON.values())
    assert len(planted) >= 35 and len(season.lines) - len(planted) >= 150
    assert {p["state"] for p in season.program["providers"]} == {"MA", "CT"}
    assert synth.generate(seed=20, households=18).lines == season.lines  # reproducible


def test_replay_denies_exactly_the_planted_errors_and_reconciles_at_every_step(
    season: synth.Season, app_backend: str, tmp_path: Path
) -> None:
    db = AppDB(database_url(tmp_path / "wh.duckdb"))
    checked = []

    def check(step: synth.Step) -> None:
        with db.read() as s:
            problems = store.reconcile(s, synth.BUDGET_LINE, step.day)
            pos = store.position(s, synth.BUDGET_LINE, step.day)
        assert problems == [], f"{step}: {problems}"
        assert pos.paid_cents + pos.encumbered_cents + pos.remaining_cents == pos.budget_cents
        checked.append(pos)

    try:
        steps = synth.replay(db, season, tmp_path / "season", check=check)
        assert len(checked) == len(steps) > 180
        assert checked[-1].paid_cents > 0 and checked[0].paid_cents == 0
        with db.read() as s:
            lines = {
                (x.provider_id, x.claim_no, x.claim_line): x for x in s.scalars(select(VoucherClaimLine))
            }
        assert lines.keys() == season.truth.keys()
        wrong = []
        for key, reason in season.truth.items():
            x = lines[key]
            if reason is None and (x.status != "paid" or x.paid_cents != x.billed_cents):
                wrong.append((key, "valid line not paid in full", x.status, x.reason))
            elif reason is not None and (x.status, x.reason) != ("denied", reason.value):
                wrong.append((key, f"planted {reason.value}", x.status, x.reason))
        assert wrong == []
        paid = sum(x.billed_cents for k, x in lines.items() if season.truth[k] is None)
        assert checked[-1].paid_cents == paid
    finally:
        db.dispose()


def test_demo_seed_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    db = AppDB(database_url(tmp_path / "wh.duckdb"))
    try:
        assert synth.seed_demo(db, tmp_path / "season", households=3)
        assert not synth.seed_demo(db, tmp_path / "season", households=3)  # serving again: nothing replayed
        with db.read() as s:
            assert store.reconcile(s, synth.BUDGET_LINE, synth.date(2026, 12, 31)) == []
    finally:
        db.dispose()
