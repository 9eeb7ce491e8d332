"""Inference attack on the value-based-payment cost and use a viewer sees: no small count is recovered.

What a viewer (and every analytics role) sees of cost and use is :func:`chc_equity.vbp.report.cost_view`
through the ``/vbp/{center}/cost`` page: per payer, each month's member months, PMPM and ED visits and
admissions per 1,000 member months (the viewer's months: ``shown``), and per stratum of the chosen
dimension the members, member months, PMPM and the two rates (the page can be fetched for each of the
five dimensions). A one-center generated warehouse (synthetic FHIR -> ingest -> measures -> precompute)
with the synthetic payer of ``chc-equity vbp synth`` is built the real way; per payer the attacker sets
up:

* unknowns: member months, ED visits and admissions of every month, of every stratum of every
  dimension and of the year; members of every stratum;
* relations that hold by construction: the months add up to the year, and so do the strata of each
  dimension (member months, ED visits, admissions);
* observations: every published count; a rate per 1,000 next to published member months is the visit
  count itself (rounded to 0.1 per 1,000: exact while member months are under 10,000, asserted);

and asks HiGHS for the minimum, then the maximum, of every count from 1 to 10 (:func:`inference_model.
attack`). PMPM is dollars, not a count, and is not modelled. Not modelled either (so the attacker here
is weaker than a real one): a stratum's member months lie between its members and 12 times them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from browser.webseed import PERIOD, build_synthetic_warehouse
from chc_equity.cli import _register
from chc_equity.cli import app as cli
from chc_equity.vbp import cost, report, store
from chc_equity.vbp.roster import month_starts
from chc_equity.warehouse import connect
from inference_model import Model, Var, attack

YEAR = (date(PERIOD[1].year, 1, 1), PERIOD[1])

pytestmark = pytest.mark.slow  # about 15 CPU-s: a generated warehouse with its payer, ~50 MILPs


@pytest.fixture(scope="module")
def vbp_published(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("vbp-inference")
    path, centers = build_synthetic_warehouse(folder, centers=1, patients=250)
    _register("vbp")
    run = CliRunner().invoke(cli, ["vbp", "synth", "-c", centers[0], str(folder / "payer"), "--load", "-w",
                                   str(path)])  # fmt: skip
    assert run.exit_code == 0, run.output
    center = centers[0]
    con = connect(path)
    try:
        pages = {by: report.cost_view(con, center, *YEAR, by) for by in report.STRATA}
        linked = store.members(con, center)
        months: dict[tuple[str, str], set[date]] = defaultdict(set)
        for m, _ in linked:
            for first in month_starts(*YEAR):
                if m.covers(first):
                    months[(m.payer, m.member_id)].add(first)
        claims = cost.attributed_claims(
            [c for c in store.claims(con, center) if YEAR[0] <= c.service_date <= YEAR[1]], months
        )
        labels = {}
        for by in report.STRATA:
            sql = f"SELECT patient_id, any_value({by}) FROM patient_attributes WHERE center = ? GROUP BY 1"
            of = dict(con.execute(sql, [center]).fetchall())
            labels[by] = {(m.payer, m.member_id): of.get(p, "Unknown") if p else "Unknown" for m, p in linked}
    finally:
        con.close()
    return {"pages": pages, "months": months, "claims": claims, "labels": labels}


def _truth(data: dict, payer: str) -> dict[Var, int]:
    """Member months, ED visits, admissions of every month, stratum and the year; members per stratum."""
    months = {k: v for k, v in data["months"].items() if k[0] == payer}
    truth: dict[Var, int] = defaultdict(int)
    for key, ms in months.items():
        for m in ms:
            truth[("mm", m.isoformat())] += 1
            truth[("mm", "year")] += 1
            for by, of in data["labels"].items():
                truth[("mm", by, of[key])] += 1
        for by, of in data["labels"].items():
            truth[("members", by, of[key])] += 1
    for c in data["claims"]:
        if c.payer != payer or c.setting not in ("ed", "inpatient"):
            continue
        q = "ed" if c.setting == "ed" else "adm"
        points = [(c.service_date.replace(day=1).isoformat(),), ("year",)]
        points += [(by, of[(c.payer, c.member_id)]) for by, of in data["labels"].items()]
        for p in points:
            truth[(q, *p)] += 1  # one claim, one visit (claim ids are unique in the synthetic payer)
    for key in list(truth):  # zero visits where a month or stratum has member months
        if key[0] == "mm":
            truth.setdefault(("ed", *key[1:]), 0)
            truth.setdefault(("adm", *key[1:]), 0)
    return dict(truth)


def _visits(rate: Decimal | None, mm: int | None) -> int | None:
    """The visit count a published rate per 1,000 gives back, next to published member months."""
    if rate is None or mm is None:
        return None
    assert mm < 10_000  # 0.1 per 1,000 then pins down one integer
    return int((Decimal(rate) * mm / 1000).to_integral_value())


def _model(data: dict, payer: str, truth: dict[Var, int]) -> Model:
    m = Model()
    for q in ("mm", "ed", "adm"):
        month_points = [k for k in truth if k[0] == q and len(k) == 2 and k[1] != "year"]
        m.total((q, "year"), month_points)
        for by in report.STRATA:
            m.total((q, "year"), [k for k in truth if k[0] == q and len(k) == 3 and k[1] == by])
    for k in truth:
        m.var(k)
    for by, (_, strata, shown) in data["pages"].items():
        for r in shown:
            if r.payer != payer:
                continue
            p = r.month.isoformat()
            m.eq({("mm", p): 1}, float(r.member_months))
            for q, rate in (("ed", r.ed_per_1000), ("adm", r.admissions_per_1000)):
                if (v := _visits(rate, r.member_months)) is not None:
                    m.eq({(q, p): 1}, float(v))
        for s in strata.get(payer, []):
            if s.members is not None:
                m.eq({("members", by, s.stratum): 1}, float(s.members))
            if s.member_months is not None:
                m.eq({("mm", by, s.stratum): 1}, float(s.member_months))
            for q, rate in (("ed", s.ed_per_1000), ("adm", s.admissions_per_1000)):
                if (v := _visits(rate, s.member_months)) is not None:
                    m.eq({(q, by, s.stratum): 1}, float(v))
    return m


def test_viewer_cost_and_use_recover_no_small_count(vbp_published: dict) -> None:
    payers = sorted({k[0] for k in vbp_published["months"]})
    assert payers
    checked, recovered = 0, []
    for payer in payers:
        truth = _truth(vbp_published, payer)
        model = _model(vbp_published, payer, truth)
        found, n = attack(model, truth)
        checked += n
        recovered += [(payer, *f) for f in found]
    print(f"vbp cost and use: {checked} hidden small counts attacked, {len(recovered)} recovered")
    assert checked >= 10, checked
    assert recovered == [], recovered[:10]


def test_the_rates_are_hidden_where_their_visits_are_small(vbp_published: dict) -> None:
    """Every rate a viewer sees stands for 0 or at least 11 visits (the primary rule of the plan)."""
    shown = 0
    for _, strata, months in vbp_published["pages"].values():
        rows = [(r.ed_per_1000, r.member_months) for r in months]
        rows += [(r.admissions_per_1000, r.member_months) for r in months]
        rows += [(s.ed_per_1000, s.member_months) for rs in strata.values() for s in rs]
        rows += [(s.admissions_per_1000, s.member_months) for rs in strata.values() for s in rs]
        for rate, mm in rows:
            v = _visits(rate, mm)
            if v is not None:
                shown += 1
                assert v == 0 or v >= 11, (rate, mm, v)
    assert shown > 0
