"""Inference attack on the social-needs files: no hidden small count is recovered (exact MILP).

What leaves the system from `chc-equity sdoh` (and what the Social needs page shows viewers, a subset of
it: the center and network rows, the flagged strata) is ``sdoh_metrics`` through
:func:`chc_equity.sdoh.export.suppress_metrics` (site, center and network rows) and ``sdoh_equity``
(every rate by stratum, suppressed per stratum). A small generated network (two centers) is built the
real way; then, per domain (``any`` and the HRSNs), an attacker who has every published number of every
metric of that domain sets up:

* unknowns: numerator and denominator of every cell (each site of each center, each center, the
  network, each equity stratum of each center and of the network), integers >= 0, numerator <=
  denominator;
* relations that hold by construction: sites add up to their center, centers to the network, the strata
  of each dimension to their center (and a site stratum is the site's cell), the network's strata to
  the network and each network stratum to the centers' same strata; across metrics, the
  ``documented`` denominator is the ``positive`` numerator (patients screen-positive), ``closure`` and
  ``rejected_at_capacity`` share their denominator (referrals), and for ``any``: the ``declined``
  denominator is the ``eligible`` count and the ``screened`` denominator is eligible minus declined;
* observations: every published count, and every published rate as an exact fraction of its cell;

and asks HiGHS (scipy ``milp``) for the minimum of every hidden count from 1 to 10 and, where that is
the true value, the maximum. It is recovered when both equal the true value. Zeros are published under
the policy and not checked.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from chc_equity.ingest import load
from chc_equity.sdoh import export, mapping, metrics, strata
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from inference_model import Model, Var, attack

START, END = date(2026, 1, 1), date(2026, 12, 31)
UNKNOWN = "Unknown"
# "any" and the five HRSNs' domains (about 1,800 small MILPs): the PRAPARE-only domains go through the
# same code and relations, and checking them too would double the test's time.
DOMAINS = (metrics.ANY, *mapping.HRSN)

pytestmark = pytest.mark.slow  # about 60 s CPU: a generated network, the stage, 1,800 small MILPs


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Raw and published ``sdoh_metrics`` and ``sdoh_equity`` of a two-center generated network."""
    folder: Path = tmp_path_factory.mktemp("sdoh-inference")
    summary = generate(folder / "net", centers=2, patients=350, seed=7, period_end=END, cfg=load_config())
    con = connect(folder / "w.duckdb")
    try:
        for center in (c["id"] for c in summary["centers"]):
            load(
                con,
                [folder / "net" / center],
                center,
                after_load=lambda c, ctr: build_views(c, centers=[ctr]),
            )
        metrics.build(con, period_start=START, period_end=END)
        raw = con.execute(f"SELECT * FROM {metrics.METRICS} WHERE metric NOT LIKE 'days%'").df()
        shown_equity = strata.equity_table(con)
        true_equity = strata.equity_table(con, threshold=1)  # nothing below 1: the true counts
        assert (shown_equity["center"] == metrics.NETWORK).any()  # the network's strata are published
        series = _series_files(con)
    finally:
        con.close()
    assert json.loads((folder / "net" / "truth.json").read_text())["sdoh"]  # the generator planted sdoh data
    return {
        "raw": raw,
        "shown": export.suppress_metrics(raw),
        "equity": shown_equity,
        "true_equity": true_equity,
        "series": series,
    }


# The series files (`chc-equity series --measure sdoh:<metric>[:<domain>]`, with --center and --by language
# --stratum S) of the linked metrics, for one period: the period of the files above.
SERIES_METRICS = {metrics.ANY: ("declined", "screened", "positive", "documented")}  # linked by construction
SERIES_BY = "language"


def _series_files(con) -> pd.DataFrame:
    """Every series file of :data:`SERIES_METRICS` for the period: the network, each center, each
    language stratum of the network and of each center, as ``published_sdoh_series`` writes them."""
    from chc_equity.improvement.sdoh_trend import published_sdoh_series
    from chc_equity.measures.series import Period
    from chc_equity.sdoh.series import TABLE, sdoh_series

    periods = [Period(START, END)]
    sdoh_series(con, periods, dimensions=[SERIES_BY])
    frames = []
    for domain, names in SERIES_METRICS.items():
        for metric in names:
            scopes = con.execute(
                f"""SELECT DISTINCT center, stratum FROM {TABLE} WHERE metric = ? AND domain = ?
                      AND (stratum_dimension IS NULL OR stratum_dimension = ?)""",
                [metric, domain, SERIES_BY],
            ).fetchall()
            for center, stratum in scopes:
                frames.append(
                    published_sdoh_series(
                        con,
                        metric,
                        domain,
                        periods,
                        center=None if center == metrics.NETWORK else center,
                        dimension=None if stratum is None else SERIES_BY,
                        stratum=stratum,
                    )  # fmt: skip
                )
    return pd.concat(frames, ignore_index=True)


def _cell(row) -> tuple[str, ...]:
    if row.center == metrics.NETWORK:
        return ("network",)
    if row.site == metrics.ALL_SITES:
        return ("center", str(row.center))
    return ("site", str(row.center), UNKNOWN if pd.isna(row.site) else str(row.site))


def _model(domain: str, shown: pd.DataFrame, equity: pd.DataFrame) -> Model:
    m = Model()
    rows = shown[shown["domain"] == domain]
    by_metric = {k: g for k, g in rows.groupby("metric")}
    for metric, g in by_metric.items():
        centers = sorted(c for c in g["center"].unique() if c != metrics.NETWORK)
        for r in g.itertuples():
            if metric == "eligible":
                m.observe(metric, _cell(r), r.numerator, r.numerator, None)
            else:
                m.observe(metric, _cell(r), r.numerator, r.denominator, r.value)
        for part in ("x", "d"):
            if (g["center"] == metrics.NETWORK).any():
                m.eq({(metric, "network", part): -1, **{(metric, "center", c, part): 1 for c in centers}})
            for c in centers:
                sites = g[(g["center"] == c) & (g["site"] != metrics.ALL_SITES)]
                cells = {(metric, *_cell(s), part): 1 for s in sites.itertuples()}
                m.eq({(metric, "center", c, part): -1, **cells})
        eq = equity[(equity["metric"] == metric) & (equity["domain"] == domain)]
        for (c, dim), s in eq.groupby(["center", "dimension"]):
            for r in s.itertuples():
                rate = None if r.suppressed else r.rate
                m.observe(metric, ("stratum", c, dim, str(r.stratum)), r.numerator, r.denominator, rate)
                if dim == "site" and (metric, "site", c, str(r.stratum), "x") in m.index:
                    for part in ("x", "d"):
                        m.eq({(metric, "stratum", c, dim, str(r.stratum), part): 1,
                              (metric, "site", c, str(r.stratum), part): -1})  # fmt: skip
            total = ("network",) if c == metrics.NETWORK else ("center", c)
            for part in ("x", "d"):
                cells = {(metric, "stratum", c, dim, str(r.stratum), part): 1 for r in s.itertuples()}
                m.eq({(metric, *total, part): -1, **cells})
        # the network's strata (pooled units of every center) add up the centers' same strata
        net = eq[eq["center"] == metrics.NETWORK]
        for r in net.itertuples():
            for part in ("x", "d"):
                same = eq[(eq["center"] != metrics.NETWORK) & (eq["dimension"] == r.dimension)
                          & (eq["stratum"] == r.stratum)]  # fmt: skip
                cells = {(metric, "stratum", c, r.dimension, str(r.stratum), part): 1 for c in same["center"]}
                m.eq({(metric, "stratum", metrics.NETWORK, r.dimension, str(r.stratum), part): -1, **cells})
    cells = {v[1:-1] for v in m.index}
    for cell in cells:  # relations across metrics, cell by cell
        links = [(("documented", "d"), ("positive", "x")), (("closure", "d"), ("rejected_at_capacity", "d"))]
        if domain == metrics.ANY:
            links += [(("declined", "d"), ("eligible", "x"))]
            if ("screened", *cell, "d") in m.index:
                m.eq({("screened", *cell, "d"): 1, ("eligible", *cell, "x"): -1, ("declined", *cell, "x"): 1})
        for (ma, pa), (mb, pb) in links:
            if (ma, *cell, pa) in m.index and (mb, *cell, pb) in m.index:
                m.eq({(ma, *cell, pa): 1, (mb, *cell, pb): -1})
    return m


def _truth(raw: pd.DataFrame, true_equity: pd.DataFrame, domain: str) -> dict[Var, int]:
    out: dict[Var, int] = {}
    for r in raw[raw["domain"] == domain].itertuples():
        out[(r.metric, *_cell(r), "x")] = int(r.numerator)
        if r.metric != "eligible":
            out[(r.metric, *_cell(r), "d")] = int(r.denominator)
    for r in true_equity[true_equity["domain"] == domain].itertuples():
        key = (r.metric, "stratum", r.center, r.dimension, str(r.stratum))
        out[(*key, "x")], out[(*key, "d")] = int(r.numerator), int(r.denominator)
    return out


def _observe_series(m: Model, series: pd.DataFrame, domain: str) -> None:
    """A series point is the cell of the same metric, center (or network) and stratum."""
    for r in series[series["domain"] == domain].itertuples():
        if pd.isna(r.stratum):
            cell = ("network",) if r.center == metrics.NETWORK else ("center", str(r.center))
        else:
            cell = ("stratum", str(r.center), SERIES_BY, str(r.stratum))
        m.observe(r.metric, cell, r.numerator, r.denominator, r.rate)


@pytest.mark.parametrize("with_series", [False, True], ids=["files", "files+series"])
def test_no_hidden_small_count_is_recovered(published: dict[str, pd.DataFrame], with_series: bool) -> None:
    """The social-needs files alone, and with the series files of the same period (docs/sdoh.md)."""
    shown, equity = published["shown"], published["equity"]
    checked, recovered = 0, []
    for domain in DOMAINS if not with_series else tuple(SERIES_METRICS):
        model = _model(domain, shown, equity)
        if with_series:
            _observe_series(model, published["series"], domain)
        found, n = attack(model, _truth(published["raw"], published["true_equity"], domain))
        checked += n
        recovered += found
    what = "files + series" if with_series else "files"
    print(f"sdoh {what}: {checked} hidden small counts attacked, {len(recovered)} recovered")
    assert checked > (20 if with_series else 50), (
        checked
    )  # the network has plenty of hidden small cells to attack
    assert recovered == [], recovered[:10]


# The CHW program's `reach_by_<dimension>.csv` (`chc-equity chw indicators --by D`, one file per
# dimension, all of one panel): the attacker has every file and the program's totals (enrolled and
# reached, in chw_indicators.csv and the command's summary line) wherever the cell-size rule lets them
# out. Patients of a panel in strata chosen so that small cells sit in one, two or all strata of a file.
REACH_PANEL = {  # dimension -> stratum -> (reached, enrolled)
    "language": {"es": (30, 45), "en": (31, 60), "pt": (4, 9), "Unknown": (0, 3)},
    "sex": {"female": (44, 70), "male": (21, 47)},
    "age_band": {"18-39": (3, 14), "40-64": (50, 80), "65+": (12, 23)},
    "insurance": {"Unknown": (65, 117)},  # one stratum: its row is the program total
}


def _reach_files() -> tuple[dict[str, pd.DataFrame], tuple[int, int]]:
    """``stratify`` (the code behind the files) run on one panel, per dimension; the true totals."""
    from chc_equity.outreach.indicators import stratify

    files = {}
    for dim, cells in REACH_PANEL.items():
        ids, reached, values = [], [], []
        for stratum, (x, d) in cells.items():
            for i in range(d):
                ids.append(f"p{len(ids)}")
                reached.append(i < x)
                values.append(stratum)
        per_patient = pd.DataFrame({"patient_id": ids, "reached": reached})
        attrs = pd.DataFrame({"patient_id": ids, dim: values})
        files[dim] = stratify(per_patient, attrs, dim, numerator="reached")
    x, d = (sum(c[i] for c in REACH_PANEL["language"].values()) for i in (0, 1))
    return files, (x, d)


def test_reach_by_files_and_program_totals_recover_no_small_count() -> None:
    from chc_equity.equity.suppression import published_totals

    files, (tx, td) = _reach_files()
    assert all(sum(c[1] for c in cells.values()) == td for cells in REACH_PANEL.values())
    m = Model()
    show = published_totals([tx, td - tx, td], 11)
    m.observe("reach", ("total",), tx if show[0] else None, td if show[2] else None, None)
    truth: dict[Var, int] = {}
    for dim, table in files.items():
        for part in ("x", "d"):
            cells = {("reach", "stratum", dim, str(r.stratum), part): 1 for r in table.itertuples()}
            m.eq({("reach", "total", part): -1, **cells})
        for r in table.itertuples():
            rate = None if r.suppressed else r.rate
            m.observe("reach", ("stratum", dim, str(r.stratum)), r.numerator, r.denominator, rate)
            assert not r.suppressed or (pd.isna(r.p_value) and pd.isna(r.ci_low))  # no statistic leaks
            x, d = REACH_PANEL[dim][str(r.stratum)]
            key = ("reach", "stratum", dim, str(r.stratum))
            truth[(*key, "x")], truth[(*key, "d")] = x, d
    observed = {next(iter(f)) for f in m.rows if len(f) == 1}
    checked, recovered = 0, []
    for var, value in truth.items():
        if var in observed or not 1 <= value <= 10:
            continue
        checked += 1
        lo, hi = m.bound(var, 4.0 * td, 1), m.bound(var, 4.0 * td, -1)
        assert lo <= value <= hi, (var, lo, value, hi)
        if lo == hi:
            recovered.append((var, value))
    assert checked == 4, checked  # pt (4 of 9), its 9, 18-39 (3 of 14); Unknown: 3 enrolled
    assert recovered == [], recovered


# The voucher program report (`chc-equity vouchers report`): `uds_table4_agricultural.csv` (migratory,
# seasonal, their total) and `patients_by_zip.csv` (each ZIP, the total) count the same patients -- those
# with a voucher-paid service in the year, of category migratory, seasonal or unknown (never verified).
# Programs (m, s, u, patients per ZIP) chosen so that small cells sit in the category split, the ZIP
# split, or only in the unknown category, which neither file shows.
VOUCHER_PROGRAMS = [
    (12, 40, 4, {"01001": 30, "01002": 20, "01003": 6}),
    (5, 30, 0, {"01001": 20, "01002": 15}),
    (3, 0, 25, {"01001": 14, "01002": 14}),
    (20, 18, 7, {"01001": 9, "01002": 25, "01060": 11}),
    (15, 15, 15, {"01001": 45}),
]


def _voucher_recovered(
    m: int, s: int, u: int, by_zip: list, t4_rows: list, zip_rows: list
) -> tuple[list, int]:
    """Hidden counts (1-10) an attacker with both files pins down, and how many were checked."""
    model = Model()
    truth = {("v", "migratory", "x"): m, ("v", "seasonal", "x"): s, ("v", "unknown", "x"): u}
    cats = list(truth)
    zips = {("v", f"zip {z}", "x"): n for z, n in by_zip}
    model.eq({v: 1 for v in zips} | {v: -1 for v in cats})  # the same patients, split two ways
    t4 = dict(t4_rows)
    for label, var in (("migratory", cats[0]), ("seasonal", cats[1])):
        if t4[label] is not None:
            model.eq({var: 1}, t4[label])
    if t4["total"] is not None:
        model.eq({cats[0]: 1, cats[1]: 1}, t4["total"])
    for z, n in zip_rows:
        if n is not None:
            model.eq({v: 1 for v in zips} if z == "total" else {("v", f"zip {z}", "x"): 1}, n)
    observed = {next(iter(f)) for f in model.rows if len(f) == 1}
    truth |= zips
    recovered, checked = [], 0
    big = 4.0 * (m + s + u) + 10
    for var, value in truth.items():
        if var in observed or not 1 <= value <= 10:
            continue
        checked += 1
        lo, hi = model.bound(var, big, 1), model.bound(var, big, -1)
        assert lo <= value <= hi, (var, lo, value, hi)
        if lo == hi:
            recovered.append((var, value))
    return recovered, checked


def test_voucher_report_files_together_recover_no_small_count() -> None:
    from chc_equity.vouchers import report

    checked = 0
    for m, s, u, by_zip in VOUCHER_PROGRAMS:
        zips = sorted(by_zip.items())
        t4, zip_rows = report.published_patients({"migratory": m, "seasonal": s, "total": m + s + u}, zips)
        recovered, n = _voucher_recovered(m, s, u, zips, t4, zip_rows)
        assert recovered == [], (m, s, u, by_zip, t4, zip_rows, recovered)
        checked += n
    assert checked >= 6, checked
    # each file suppressed on its own (the report before): the ZIP total minus Table 4's gave the
    # patients of unknown category back (4 of the first program)
    m, s, u, by_zip = VOUCHER_PROGRAMS[0]
    alone = report.published([("migratory", m), ("seasonal", s)]), report.published(sorted(by_zip.items()))
    assert _voucher_recovered(m, s, u, sorted(by_zip.items()), *alone)[0] == [(("v", "unknown", "x"), 4)]
