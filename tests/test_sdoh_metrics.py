"""Social-needs metrics on a hand-built fixture, every value computed by hand (issue 14, "must show").

The fixture (tests/fixtures/sdoh/*.json, one Bundle per patient) is ingested through the real ingest and
views build. Period 2026; center ``c1``; sites North clinic (L1) and South clinic (L2). Each patient is one
status path:

====  =====  ===========================================================================================
p01   North  full PRAPARE QR (food, transportation x2, stress positive; income 30000 for a household of 4:
             below the poverty guideline, income positive; 5 risk points); Z59.41 health concern; food
             referral completed with an output in 20 days (contact day 18); transportation referral
             rejected, statusReason code ``no-capacity``
p02   North  PRAPARE QR declining every HRSN question (LA30122-8): the #487 exception
p03   North  no screen: Z59.01 as an encounter diagnosis only; referral by reason code, task in progress
p04   South  AHC-HRSN QR with ``item.code`` (no linkId codes), every answer negative but HITS: 4 items
             answered 5 + 4 + 3 + 1 = 13 > 10, positive for interpersonal safety
p05   South  screening-response Observations only: food, housing instability, transportation, utilities
             positive; two food referrals for one need (one completed with output in 10 days, one
             completed without an output); re-screened 2026-09-01: food negative (resolved),
             transportation still positive
p06   South  PRAPARE panel Observation with components (4 positives, 4 points); SNOMED homeless concern
p07   North  every PRAPARE core item, only clothing (income) positive (80000 for 2: above poverty); no
             safety item (not screened x5)
p08   North  visit, no screen; an old resolved Z59.41 (outside the period, not counted)
p09   South  a child: not eligible although screened
p10   North  screened in 2026 but last visit in 2025: not eligible
p11   South  housing instability, food, safety positive; housing referral cancelled, safety referral
             completed after 91 days (contact on day 75: not connected), food rejected "at capacity" in
             the reason text only, one referral with no domain and no Task
p12   North  every domain positive (16 points: 9000 for 1 person is below poverty); Z56.0 and Z65.1
             recorded; employment referral accepted, food referral in progress from day 19 (connected)
====  =====  ===========================================================================================
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from chc_equity.ingest import load
from chc_equity.sdoh import mapping, metrics
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

FIXTURE = Path(__file__).parent / "fixtures" / "sdoh"
START, END = date(2026, 1, 1), date(2026, 12, 31)
N, S, ALL = "North clinic", "South clinic", "All"

# (site, domain, metric) -> (numerator, denominator); rates are numerator / denominator.
# Patient-level counts per domain: positive = positive / answered, documented = positive with a recorded
# problem / positive, referred = need with a referral / need (need = positive screen or recorded problem).
RATES: dict[tuple[str, str, str], tuple[int | None, int | None]] = {}


def _rates(site: str, domain: str, **metrics_: str) -> None:
    for metric, frac in metrics_.items():
        num, den = frac.split("/")
        RATES[(site, domain, metric)] = (int(num), int(den))


# eligible: p01-p08, p11, p12 (10); North p01 p02 p03 p07 p08 p12; South p04 p05 p06 p11
RATES[(ALL, "any", "eligible")] = (10, None)
RATES[(N, "any", "eligible")] = (6, None)
RATES[(S, "any", "eligible")] = (4, None)
# screened x5: p01 p04 p05 p06 p11 p12; p02 declined (out of the denominator)
_rates(
    ALL,
    "any",
    screened="6/9",
    declined="1/10",
    prapare_complete="3/6",
    connected_60d="3/6",
    positive="7/7",
    documented="3/7",
    referred="5/8",
    closure="3/11",
    rejected_at_capacity="2/11",
)
_rates(
    N,
    "any",
    screened="2/5",
    declined="1/6",
    prapare_complete="3/4",
    connected_60d="2/2",
    positive="3/3",
    documented="2/3",
    referred="3/4",
    closure="1/5",
    rejected_at_capacity="1/5",
)
_rates(
    S,
    "any",
    screened="4/4",
    declined="0/4",
    prapare_complete="0/2",
    connected_60d="1/4",
    positive="4/4",
    documented="1/4",
    referred="2/4",
    closure="2/6",
    rejected_at_capacity="1/6",
)
# food: answered p01 p04 p05 p06 p07 p11 p12; positive p01 p05 p11 p12; referrals s01a s05a s05b s11c s12b
_rates(
    ALL, "food", positive="4/7", documented="1/4", referred="4/4", closure="2/5", rejected_at_capacity="1/5"
)
_rates(N, "food", positive="2/3", documented="1/2", referred="2/2", closure="1/2", rejected_at_capacity="0/2")
_rates(S, "food", positive="2/4", documented="0/2", referred="2/2", closure="1/3", rejected_at_capacity="1/3")
_rates(
    ALL,
    "housing_instability",
    positive="3/7",
    documented="0/3",
    referred="1/3",
    closure="0/1",
    rejected_at_capacity="0/1",
)
_rates(N, "housing_instability", positive="1/3", documented="0/1", referred="0/1")
_rates(
    S,
    "housing_instability",
    positive="2/4",
    documented="0/2",
    referred="1/2",
    closure="0/1",
    rejected_at_capacity="0/1",
)
_rates(
    ALL,
    "homelessness",
    positive="2/7",
    documented="1/2",
    referred="1/3",
    closure="0/1",
    rejected_at_capacity="0/1",
)
_rates(
    N,
    "homelessness",
    positive="1/3",
    documented="0/1",
    referred="1/2",
    closure="0/1",
    rejected_at_capacity="0/1",
)
_rates(S, "homelessness", positive="1/4", documented="1/1", referred="0/1")
_rates(
    ALL,
    "transportation",
    positive="4/7",
    documented="0/4",
    referred="1/4",
    closure="0/1",
    rejected_at_capacity="1/1",
)
_rates(
    N,
    "transportation",
    positive="2/3",
    documented="0/2",
    referred="1/2",
    closure="0/1",
    rejected_at_capacity="1/1",
)
_rates(S, "transportation", positive="2/4", documented="0/2", referred="0/2")
_rates(ALL, "utilities", positive="3/7", documented="0/3", referred="0/3")
_rates(N, "utilities", positive="1/3", documented="0/1", referred="0/1")
_rates(S, "utilities", positive="2/4", documented="0/2", referred="0/2")
_rates(
    ALL,
    "interpersonal_safety",
    positive="4/6",
    documented="0/4",
    referred="1/4",
    closure="1/1",
    rejected_at_capacity="0/1",
)
_rates(N, "interpersonal_safety", positive="1/2", documented="0/1", referred="0/1")
_rates(
    S,
    "interpersonal_safety",
    positive="3/4",  # p04's HITS total 13 > 10
    documented="0/3",
    referred="1/3",
    closure="1/1",
    rejected_at_capacity="0/1",
)
for _site in (ALL, N):  # asked on PRAPARE's full form only: p01 p07 p12, all North
    _rates(_site, "education", positive="1/3", documented="0/1", referred="0/1")
    _rates(
        _site,
        "employment",
        positive="1/3",
        documented="1/1",
        referred="1/1",
        closure="0/1",
        rejected_at_capacity="0/1",
    )
    _rates(_site, "insurance", positive="1/3", documented="0/1", referred="0/1")
    _rates(_site, "stress", positive="2/3", documented="0/2", referred="0/2")
    _rates(_site, "social_isolation", positive="1/3", documented="0/1", referred="0/1")
    _rates(_site, "incarceration", positive="1/1", documented="1/1", referred="0/1")
    _rates(_site, "refugee", positive="1/1", documented="0/1", referred="0/1")
# p01: income 30000 for 4 people, below the 2025 guideline 15650 + 3 x 5500 = 32150 (p07: 80000 for 2, not)
_rates(ALL, "income", positive="3/5", documented="0/3", referred="0/3")
_rates(N, "income", positive="3/3", documented="0/3", referred="0/3")
_rates(S, "income", positive="0/2", documented="0/0", referred="0/0")  # p06 p11 asked via 93031-3

# re-screen resolution: positive for the domain, answered it again later -- p05 only (South, 2026-09-01):
# food negative (resolved), transportation still positive (not); "any" = every re-screened domain resolved
for _site, _domain, _metric in list(RATES):
    if _metric == "referred":
        RATES[(_site, _domain, "rescreen_resolution")] = (0, 0)
for _site in (ALL, S):
    _rates(_site, "food", rescreen_resolution="1/1")
    _rates(_site, "transportation", rescreen_resolution="0/1")
    _rates(_site, "any", rescreen_resolution="0/1")

# (site, domain) -> (closed referrals, median days, p90 days): quantile_cont (linear interpolation)
DAYS: dict[tuple[str, str], tuple[int, float | None, float | None]] = {
    (ALL, "any"): (3, 20.0, 76.8),  # 10, 20, 91: p90 = 20 + 0.8 * 71
    (N, "any"): (1, 20.0, 20.0),
    (S, "any"): (2, 50.5, 82.9),  # 10, 91: p90 = 10 + 0.9 * 81
    (ALL, "food"): (2, 15.0, 19.0),
    (N, "food"): (1, 20.0, 20.0),
    (S, "food"): (1, 10.0, 10.0),
    (ALL, "interpersonal_safety"): (1, 91.0, 91.0),
    (S, "interpersonal_safety"): (1, 91.0, 91.0),
    **{
        (site, d): (0, None, None)
        for site in (ALL, N)
        for d in ("transportation", "homelessness", "employment")
    },
    (ALL, "housing_instability"): (0, None, None),
    (S, "housing_instability"): (0, None, None),
}

# patient -> (screened x5, declined, PRAPARE core items, risk score, positive domains, tier, connected)
PATIENTS = {
    "p01": (True, False, 10, 5, 4, "high", True),  # + income below poverty (1 point)
    "p02": (False, True, 3, 0, None, "unscreened", False),
    "p03": (False, False, 0, None, None, "unscreened", False),
    "p04": (True, False, 0, None, 1, "moderate", False),  # HITS 5 + 4 + 3 + 1 = 13 > 10: safety
    "p05": (True, False, 0, None, 4, "high", True),
    "p06": (True, False, 3, 4, 4, "high", False),
    "p07": (False, False, 10, 1, 1, "moderate", False),
    "p08": (False, False, 0, None, None, "unscreened", False),
    "p11": (True, False, 4, 3, 3, "high", False),
    "p12": (True, False, 10, 16, 14, "high", True),  # 9000 for 1 person: below poverty, the 22nd point
}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("sdoh") / "w.duckdb"
    c = connect(path)
    result = load(c, [FIXTURE], "c1", after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    assert result.quarantined == 0 and result.inserted > 0
    metrics.build(c, period_start=START, period_end=END)
    return c


def test_every_rate_equals_the_hand_computed_value(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"""SELECT site, domain, metric, numerator, denominator, value FROM {metrics.METRICS}
             WHERE metric NOT LIKE 'days_to_closure%'"""
    ).fetchall()
    got = {(s, d, m): (n, den) for s, d, m, n, den, _ in rows}
    assert got == RATES
    for s, d, m, n, den, value in rows:
        if den:
            assert value == pytest.approx(n / den), (s, d, m)
        elif m != "eligible":
            assert value is None, (s, d, m)


def test_days_to_closure_median_and_p90(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"""SELECT site, domain, max(denominator),
                   max(value) FILTER (WHERE metric = 'days_to_closure_median'),
                   max(value) FILTER (WHERE metric = 'days_to_closure_p90')
              FROM {metrics.METRICS} WHERE metric LIKE 'days_to_closure%' GROUP BY ALL"""
    ).fetchall()
    got = {(s, d): (n, med, p90) for s, d, n, med, p90 in rows}
    assert got.keys() == DAYS.keys()
    for key, (n, med, p90) in DAYS.items():
        assert got[key][0] == n, key
        assert got[key][1] == (pytest.approx(med) if med is not None else None), key
        assert got[key][2] == (pytest.approx(p90) if p90 is not None else None), key


def test_patient_table(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"""SELECT patient_id, screened, declined, prapare_items, prapare_risk_score, positive_domains,
                   social_risk_tier, connected_60d FROM {metrics.PATIENT} ORDER BY patient_id"""
    ).fetchall()
    assert {r[0]: tuple(r[1:]) for r in rows} == PATIENTS


def test_referral_table(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"""SELECT referral_id, domain, task_status, closed, rejected_at_capacity, days_to_closure,
                   organization_id
              FROM {metrics.REFERRAL} ORDER BY referral_id"""
    ).fetchall()
    assert rows == [
        ("s01a", "food", "completed", True, False, 20, "org-food"),
        ("s01b", "transportation", "rejected", False, True, None, "org-ride"),
        ("s03", "homelessness", "in-progress", False, False, None, "org-housing"),
        ("s05a", "food", "completed", True, False, 10, "org-food"),
        ("s05b", "food", "completed", False, False, None, "org-food"),
        ("s11a", "housing_instability", "cancelled", False, False, None, "org-housing"),
        ("s11b", "interpersonal_safety", "completed", True, False, 91, "org-safety"),
        ("s11c", "food", "rejected", False, True, None, "org-food"),
        ("s11d", metrics.NO_DOMAIN, "requested", False, False, None, None),
        ("s12a", "employment", "accepted", False, False, None, "org-jobs"),
        ("s12b", "food", "in-progress", False, False, None, "org-food"),
    ]


def test_organization_table(con: duckdb.DuckDBPyConnection) -> None:
    """Per receiving organization, by hand from the referral table above (s11d names none: left out);
    accepted = latest Task accepted, in progress or completed; closed = completed with an outcome. The
    name is the Organization resource's (tests/fixtures/sdoh/organizations.json)."""
    rows = con.execute(
        f"""SELECT organization_id, organization_name, received, accepted, rejected_at_capacity, closed,
                   days_to_closure_median
              FROM {metrics.ORGANIZATIONS} ORDER BY organization_id"""
    ).fetchall()
    assert rows == [
        ("org-food", "Food bank", 5, 4, 1, 2, 15.0),  # s01a, s05a closed (20, 10 days), s05b, s11c, s12b
        ("org-housing", "Housing partner", 2, 1, 0, 0, None),  # s03 in progress, s11a cancelled
        ("org-jobs", "Job center", 1, 1, 0, 0, None),
        ("org-ride", "Ride program", 1, 0, 1, 0, None),
        ("org-safety", "Safe homes", 1, 1, 0, 1, 91.0),
    ]


@pytest.fixture(scope="module")
def two_centers(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The fixture loaded as two centers (c1, c2: the same patients twice) and built for the network."""
    c = connect(tmp_path_factory.mktemp("sdoh2") / "w.duckdb")
    for center in ("c1", "c2"):
        load(c, [FIXTURE], center, after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    metrics.build(c, period_start=START, period_end=END)
    return c


def test_network_rows_add_up_the_centers(two_centers: duckdb.DuckDBPyConnection) -> None:
    """Network rows (center ``*``, site All) for every metric and domain: counts are c1's twice (each
    center counts its patients), rates and medians equal c1's."""
    rows = two_centers.execute(
        f"SELECT center, site, domain, metric, numerator, denominator, value FROM {metrics.METRICS}"
    ).fetchall()
    by = {(c, s, d, m): (n, den, v) for c, s, d, m, n, den, v in rows}
    net = {k[2:]: v for k, v in by.items() if k[0] == metrics.NETWORK}
    c1 = {k[2:]: v for k, v in by.items() if k[0] == "c1" and k[1] == ALL}
    assert net.keys() == c1.keys() and {k[1] for k in by if k[0] == metrics.NETWORK} == {ALL}
    for key, (n, den, v) in c1.items():
        twice = (2 * n if n is not None else None, 2 * den if den is not None else None)
        assert net[key][:2] == twice, key
        if key[1] != "days_to_closure_p90":  # a doubled sample has the same rates and median
            assert net[key][2] == (pytest.approx(v) if v is not None else None), key
    assert net[("any", "eligible")][0] == 20 and net[("any", "closure")][:2] == (6, 22)
    # p90 of 10, 10, 20, 20, 91, 91 (linear interpolation at 4.5 of 0..5) = 91; c1's 10, 20, 91: 76.8
    assert net[("any", "days_to_closure_p90")][2] == 91 and c1[("any", "days_to_closure_p90")][2] == 76.8


def test_network_rows_never_give_back_a_hidden_center(two_centers: duckdb.DuckDBPyConnection) -> None:
    """Suppressed: a network count is hidden whenever a center count of the same metric and domain is
    (else network minus the other center gives it back); shown, it is the sum of the shown centers."""
    from chc_equity.sdoh.export import suppress_metrics

    df = suppress_metrics(two_centers.execute(f"SELECT * FROM {metrics.METRICS}").df(), threshold=3)
    df = df[df["site"] == ALL]
    checked = 0
    for (metric, domain), g in df.groupby(["metric", "domain"]):
        if metric.startswith("days_to_closure"):
            continue
        net = g[g["center"] == metrics.NETWORK].iloc[0]
        centers = g[g["center"] != metrics.NETWORK]
        if centers["numerator"].isna().any():
            assert pd.isna(net["numerator"]) and pd.isna(net["value"]), (metric, domain)
            checked += 1
        elif not pd.isna(net["numerator"]):
            assert net["numerator"] == centers["numerator"].sum(), (metric, domain)
    assert checked > 10  # counts of 1 and 2 per center are hidden at threshold 3
    shown = df[(df["center"] == metrics.NETWORK) & (df["metric"] == "eligible")]
    assert shown["numerator"].tolist() == [20]  # 10 + 10, both centers shown


def test_organization_suppression() -> None:
    """Small counts hidden, with complements, per center; the median needs 11 closed referrals."""

    from chc_equity.sdoh.export import suppress_organizations

    df = pd.DataFrame(
        [
            ("c1", "org-a", 40, 30, 5, 20, 12.0),
            ("c1", "org-b", 30, 25, 0, 15, 9.0),
            ("c1", "org-c", 25, 20, 12, 8, 30.0),
            ("c2", "org-a", 6, 6, 0, 6, 5.0),
        ],
        columns=["center", "organization_id", "received", "accepted", "rejected_at_capacity", "closed",
                 "days_to_closure_median"],
    )  # fmt: skip
    out = suppress_organizations(df).set_index(["center", "organization_id"])
    assert pd.isna(out.loc[("c1", "org-a"), "rejected_at_capacity"])  # 5: primary
    assert out["rejected_at_capacity"].isna().sum() >= 2  # and a complement
    assert pd.isna(out.loc[("c1", "org-c"), "closed"]) and pd.isna(
        out.loc[("c1", "org-c"), "days_to_closure_median"]
    )
    assert (
        out.loc[("c1", "org-a"), "received"] == 40
        and out.loc[("c1", "org-b"), "days_to_closure_median"] == 9.0
    )
    assert out.loc[("c2", "org-a")][["received", "accepted", "closed"]].isna().all()  # 6 received
    shown = out[["received", "accepted", "rejected_at_capacity", "closed"]].stack().dropna()
    assert not ((shown >= 1) & (shown <= 10)).any()


def test_one_center_only(con: duckdb.DuckDBPyConnection) -> None:
    metrics.build(con, period_start=START, period_end=END, center="elsewhere")
    assert con.execute(f"SELECT count(*) FROM {metrics.METRICS}").fetchone() == (0,)
    metrics.build(con, period_start=START, period_end=END, center="c1")
    assert con.execute(f"SELECT count(*) FROM {metrics.PATIENT}").fetchone() == (10,)


# ----------------------------------------------------------------------------------- mapping table
LOINC_CODE = r"^[0-9]{1,7}-[0-9]$"
LA_CODE = r"^LA[0-9]{1,6}-[0-9]$"


def _loinc_check_digit_ok(code: str) -> bool:
    """LOINC's mod-10 check digit of a question code (doubling every other digit from the right)."""
    body, check = code.split("-")
    digits = [int(c) for c in body]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10 == int(check)


def test_mapping_codes_are_well_formed() -> None:
    import re

    rows = mapping.rows()
    assert rows
    for r in rows:
        assert r.kind in mapping.KINDS, r
        if r.kind != "decline":
            assert r.domain in mapping.DOMAINS, r
        if r.kind in mapping.RESULTS:
            assert r.result in mapping.RESULTS[r.kind], r
        else:
            assert r.result == "positive", r
        if r.kind in ("question", "answer"):
            assert r.system == "http://loinc.org" and re.match(LOINC_CODE, r.item), r
            assert _loinc_check_digit_ok(r.item), r
        if r.kind == "answer":
            assert re.match(LA_CODE, r.code), r  # LA answer codes carry no mod-10 check digit
            q = {(x.item, x.domain) for x in rows if x.kind == "question"}
            assert (r.item, r.domain) in q, f"answer without its question row: {r}"
        if r.kind == "score":  # HITS: each answer 1 (never) to 5 (frequently), on an item asking the domain
            assert re.match(LA_CODE, r.code) and 1 <= r.score <= 5, r
            assert (r.item, r.domain) in {(x.item, x.domain) for x in rows if x.kind == "question"}, r
        if r.kind == "icd10":
            assert re.match(r"^Z[0-9]{2}(\.[0-9A-Z]{1,4})?$", r.code), r
        if r.kind == "snomed":
            assert re.match(r"^[1-9][0-9]{5,17}$", r.code), r
        assert r.risk_points in (0, 1), r
        assert r.source, r


def test_every_domain_has_a_positive_rule() -> None:
    positive = {r.domain for r in mapping.rows() if r.result == "positive"}
    assert positive == set(mapping.DOMAINS)
    assert set(mapping.HRSN) <= set(mapping.DOMAINS)
    assert {mapping.HRSN[d] for d in mapping.HRSN} == set(mapping.HRSN_GROUPS)


def test_prapare_risk_points_stay_within_0_22() -> None:
    # 21 answer points in the table + 1 for income below the poverty guideline (computed: metrics.py)
    assert sum(r.risk_points for r in mapping.rows()) == 21
    assert {r.score for r in mapping.rows() if r.kind == "score"} == {1, 2, 3, 4, 5}
    assert len(mapping.prapare_core_items()) == 10


def test_every_source_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "sdoh.md").read_text(encoding="utf-8")
    for source in {r.source for r in mapping.rows()}:
        assert f"`{source}`" in doc, f"docs/sdoh.md lacks source {source}"


# ----------------------------------------------------------------------------------- equity layer
def test_site_strata_equal_the_per_site_metrics(con: duckdb.DuckDBPyConnection) -> None:
    """Unsuppressed (threshold 1), every rate's site strata are exactly the per-site rows of sdoh_metrics."""
    from chc_equity.sdoh import strata

    df = strata.equity_table(con, threshold=1)
    assert set(df["dimension"]) == set(strata.DIMENSIONS)
    site = df[df["dimension"] == "site"]
    got = {(r.stratum, r.domain, r.metric): (r.numerator, r.denominator) for r in site.itertuples()}
    want = {k: v for k, v in RATES.items() if k[0] != ALL and k[2] not in ("eligible", "declined") and v[1]}
    assert got == want
    for dim in strata.DIMENSIONS:  # every dimension partitions the same units
        part = df[df["dimension"] == dim].groupby(["metric", "domain"])[["numerator", "denominator"]].sum()
        for (metric, domain), (num, den) in part.iterrows():
            assert (num, den) == RATES[(ALL, domain, metric)], (dim, metric, domain)


def test_equity_suppresses_small_cells(con: duckdb.DuckDBPyConnection) -> None:
    from chc_equity.sdoh import strata

    df = strata.build(con)
    assert len(df) and bool(df["suppressed"].all())  # no stratum reaches 11 in a 10-patient fixture
    stored = con.execute(f"SELECT count(*), count(rate) FROM {strata.TABLE}").fetchone()
    assert stored == (len(df), 0)


# ----------------------------------------------------------------------------------- CLI and export
def test_default_suppression_hides_every_small_count(con: duckdb.DuckDBPyConnection) -> None:
    from chc_equity.sdoh.export import suppress_metrics

    rows = suppress_metrics(con.execute(f"SELECT * FROM {metrics.METRICS}").df())
    assert len(rows) == len(RATES) + 2 * len(DAYS)
    # every count is 1-10 here, so hidden; zeros are not small cells (South's 0 of 0 income referrals)
    shown = rows[~rows["suppressed"]]
    assert set(shown["numerator"].astype(int)) == {0} and shown["value"].isna().all()
    eligible = rows[rows["metric"] == "eligible"]
    assert eligible["numerator"].isna().all()  # 10, 6 and 4 patients: all below 11


def test_cli_writes_suppressed_files(tmp_path: Path) -> None:
    import csv

    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app

    path = tmp_path / "w.duckdb"
    c = connect(path)
    load(c, [FIXTURE], "c1", after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    c.close()
    _register()
    runner = CliRunner()
    base = ["sdoh", "--warehouse", str(path), "--period-start", "2026-01-01", "--period-end", "2026-12-31"]
    # a threshold of 2 hides only the ones (and their complements)
    result = runner.invoke(app, [*base, "--threshold", "2", "--out", str(tmp_path / "o2")])
    assert result.exit_code == 0, result.output
    assert "10 eligible patients" in result.output
    wb = load_workbook(tmp_path / "o2" / "sdoh.xlsx", read_only=True)
    assert wb.sheetnames == ["sdoh_metrics", "sdoh_equity", "sdoh_organizations"]
    for name in wb.sheetnames:  # Parquet: the same suppressed rows as the CSV
        parquet = pd.read_parquet(tmp_path / "o2" / f"{name}.parquet")
        from_csv = pd.read_csv(tmp_path / "o2" / f"{name}.csv", keep_default_na=False, dtype=str)
        assert list(parquet.columns) == list(from_csv.columns) and len(parquet) == len(from_csv) > 0
    shown_rows = pd.read_parquet(tmp_path / "o2" / "sdoh_metrics.parquet")
    assert not (shown_rows["numerator"] == 1).any()  # the ones are hidden in Parquet too
    svg = (tmp_path / "o2" / "sdoh_funnel.svg").read_text()
    assert svg.startswith("<svg") and "Food insecurity" in svg and "suppressed" in svg
    with open(tmp_path / "o2" / "sdoh_organizations.csv", newline="") as fh:
        orgs = {r["organization_id"]: r for r in csv.DictReader(fh)}
    assert orgs["org-food"]["received"] == "5" and orgs["org-housing"]["received"] == "2"
    assert orgs["org-ride"]["received"] == ""  # 1 referral: hidden at threshold 2
    counts = ("received", "accepted", "rejected_at_capacity", "closed")
    assert all(r[c] != "1" for r in orgs.values() for c in counts)
    with open(tmp_path / "o2" / "sdoh_metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    shown = {
        (r["site"], r["domain"], r["metric"]): r["numerator"] for r in rows if r["suppressed"] == "False"
    }
    assert shown[(ALL, "any", "referred")] == "5" and shown[(ALL, "any", "eligible")] == "10"
    # 1 declined is hidden, so the screened denominator (eligible - declined) is hidden too, per site
    assert (ALL, "any", "screened") not in shown
    for site in (ALL, N, S):
        assert (site, "any", "declined") in shown or (site, "any", "screened") not in shown
    # a hidden domain hides every domain row of that referral metric (they add up to the "any" row)
    assert shown[(ALL, "any", "closure")] == "3"
    assert not [k for k in shown if k[0] == ALL and k[2] == "closure" and k[1] != "any"]
    assert (ALL, "incarceration", "positive") not in shown  # 1 of 1
    assert "1" not in shown.values()
    missing = runner.invoke(
        app, ["sdoh", "--warehouse", str(path), "--out", str(tmp_path / "o3")], env={"COLUMNS": "200"}
    )
    assert missing.exit_code == 2 and "give the period" in missing.output
