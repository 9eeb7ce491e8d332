"""The program dashboard (GET /vouchers, program staff) on the synthetic season replayed through the real
store: workers served, cost per patient, services by type and by provider (visits, patients, paid,
median days from service to payment) and denial reasons equal the figures worked out here from the
generator's truth -- every valid line paid what it billed on the day its weekly file was imported,
every planted line denied with its reason -- never from the store's own tables."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date
from statistics import median

import pytest
from fastapi.testclient import TestClient

from browser.webseed import add_users, build_warehouse, login, make_app
from chc_equity.vouchers import season as synth
from chc_equity.vouchers.setup import dollars


@pytest.fixture(scope="module")
def season() -> synth.Season:
    return synth.generate(seed=20, households=8)


@pytest.fixture(scope="module")
def page(season: synth.Season, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("vouchers-dashboard")
    path = build_warehouse(folder / "wh.duckdb", with_measures=False)
    add_users(path)
    app = make_app(path)
    synth.replay(app.state.db, season, folder / "season")
    mp = pytest.MonkeyPatch()
    mp.setattr("chc_equity.web.routes_vouchers._today", lambda: date(synth.YEAR, 12, 31))
    try:
        client = TestClient(app)
        assert login(client, "program-staff").headers["location"] == "/vouchers"
        res = client.get("/vouchers")
        assert res.status_code == 200
        return res.text
    finally:
        mp.undo()
        app.state.db.dispose()


def _rows(html: str, table_id: str) -> dict[str, tuple[str, ...]]:
    body = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', html, re.S).group(1)
    out = {}
    for key, row in re.findall(r'<tr data-key="([^"]+)">(.*?)</tr>', body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        out[key] = tuple(c.strip() for c in cells[1:])
    return out


def _expected(season: synth.Season, group) -> dict[str, tuple[str, ...]]:
    """(visits, patients, paid, cost per patient, median days) per group, from the truth."""
    paid_on = {(x.provider_id, x.claim_no, x.claim_line): day for day, _, xs in season.files() for x in xs}
    valid = [x for x in season.lines if season.truth[(x.provider_id, x.claim_no, x.claim_line)] is None]
    groups = defaultdict(list)
    for x in valid:
        groups[group(x)].append(x)
    out = {}
    for key, xs in groups.items():
        patients = len({x.patient_id for x in xs})
        cents = sum(x.billed_cents for x in xs)
        days = [(paid_on[(x.provider_id, x.claim_no, x.claim_line)] - x.service_date).days for x in xs]
        out[key] = (str(len({(x.patient_id, x.provider_id, x.service_date) for x in xs})), str(patients),
                    dollars(cents), dollars(round(cents / patients)), str(median(days)))  # fmt: skip
    return out


def test_services_by_type_and_by_provider(season: synth.Season, page: str) -> None:
    service_type = {f[0]: f[2] for f in synth.FEES}
    by_type = _expected(season, lambda x: service_type[x.code])
    assert set(by_type) == {"medical", "lab", "dental", "vision", "pharmacy"}
    assert _rows(page, "by-type") == by_type
    by_provider = _expected(season, lambda x: x.provider_id)
    assert len(by_provider) >= 5
    assert _rows(page, "by-provider") == by_provider


def test_workers_served_cost_per_patient_days_to_payment_and_denials(season: synth.Season, page: str) -> None:
    (everything,) = _expected(season, lambda x: "all").values()
    visits, patients, paid, per_patient, days = everything
    figures = re.sub(r"\s+", " ", re.search(r'<p id="figures">(.*?)</p>', page, re.S).group(1))
    assert f"{patients} patient(s) served in {synth.YEAR}" in figures
    assert f"purchased services {paid} · {per_patient} per patient" in figures
    assert f"median {days} days from service to payment" in figures
    planted = Counter(r.value for r in season.truth.values() if r is not None)
    body = re.search(r'<table class="data" id="reasons">(.*?)</table>', page, re.S).group(1)
    shown = {r: int(n) for r, n in re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td></tr>", body)}
    assert shown == dict(planted) and len(shown) == len(synth.PLANTED_REASON)
