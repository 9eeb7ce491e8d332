"""What leaves the system: ``sdoh_metrics`` with small-cell suppression, and the CSV / Excel files.

The per-site rows of one (center, metric, domain) are the strata of a table whose total is the center
row (site ``All``), so each group goes through the equity layer's
:func:`~chc_equity.equity.suppression.suppress_measure` (primary and complementary suppression, totals
included): a hidden count is blank and so is the rate it would give back. ``eligible`` (a count without
a denominator) is suppressed as a one-column table of the same kind (all patients "met"). Days to
closure (median, 90th percentile) are shown only where at least ``threshold`` referrals closed. Rows
that other rows would give back are hidden too (:func:`_linked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from chc_equity.equity.suppression import DEFAULT_THRESHOLD, suppress_measure
from chc_equity.exports import neutralize, write_frame_csv
from chc_equity.sdoh.metrics import ALL_SITES, ANY, NETWORK


def suppress_metrics(df: pd.DataFrame, threshold: int = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """A copy of ``sdoh_metrics`` rows with suppressed cells empty and a ``suppressed`` column."""
    out = df.copy()
    out["numerator"] = out["numerator"].astype("Int64")
    out["denominator"] = out["denominator"].astype("Int64")
    out["suppressed"] = False
    for _, idx in out.groupby(["center", "metric", "domain"]).groups.items():
        g = out.loc[idx]
        metric = g["metric"].iloc[0]
        if metric.startswith("days_to_closure"):
            hide = g["denominator"].fillna(0) < threshold
            out.loc[hide[hide].index, ["value", "suppressed"]] = [None, True]
            continue
        sites = g[g["site"] != ALL_SITES]
        total = g[g["site"] == ALL_SITES]
        if not len(sites):  # no per-site rows: the center row is the only cell
            sites, total = total, total.iloc[0:0]
        den_col = "numerator" if metric == "eligible" else "denominator"
        x = sites["numerator"].fillna(0).astype(int).tolist()
        d = sites[den_col].fillna(0).astype(int).tolist()
        s = suppress_measure([str(v) for v in sites["site"]], x, d, threshold)
        for i, row_id in enumerate(sites.index):
            if s.rate_suppressed[i] or s.denominator_suppressed[i]:
                out.loc[row_id, ["numerator", "value", "suppressed"]] = [pd.NA, None, True]
            if s.denominator_suppressed[i] and metric != "eligible":
                out.loc[row_id, "denominator"] = pd.NA
        for row_id in total.index:
            if s.total_numerator_suppressed or s.total_denominator_suppressed:
                out.loc[row_id, ["numerator", "value", "suppressed"]] = [pd.NA, None, True]
            if s.total_denominator_suppressed and metric != "eligible":
                out.loc[row_id, "denominator"] = pd.NA
    _network(out)
    _linked(out)
    return out


def _network(out: pd.DataFrame) -> None:
    """Hide network rows (center :data:`NETWORK`) that would give back a hidden center row (in place).

    A network count is the sum of the center counts: published beside every center row but one, it
    gives that one back. So a network numerator (denominator) is hidden whenever a center row of the
    same (metric, domain) has its numerator (denominator) hidden; the network row's own small cells were
    hidden above as a one-cell table. Conservative (a network row with two hidden centers could be shown)
    but simple enough to be obviously safe."""
    net = out["center"] == NETWORK
    if not net.any():
        return
    centers = out[~net & (out["site"] == ALL_SITES)]
    for (metric, domain), g in centers.groupby(["metric", "domain"]):
        if metric.startswith("days_to_closure"):  # a quantile is not a sum: its own threshold only
            continue
        rows = out.index[net & (out["metric"] == metric) & (out["domain"] == domain)]
        if g["suppressed"].any():
            out.loc[rows, ["numerator", "value", "suppressed"]] = [pd.NA, None, True]
        if g["denominator"].isna().any() and metric != "eligible":
            out.loc[rows, "denominator"] = pd.NA


ORGANIZATION_COUNTS = ("accepted", "rejected_at_capacity", "closed")


def suppress_organizations(df: pd.DataFrame, threshold: int = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """A copy of ``sdoh_organization`` with small cells empty and a ``suppressed`` column.

    Per center, the organizations are the strata of a table per count (accepted, rejected at capacity,
    closed; each out of ``received``), so each count goes through ``suppress_measure`` (primary and
    complementary: the center's totals are in ``sdoh_metrics``); ``received`` as a one-column table.
    The median days to closure is shown only where at least ``threshold`` referrals closed.
    """
    out = df.copy()
    for c in ("received", *ORGANIZATION_COUNTS):
        out[c] = out[c].astype("Int64")
    out["suppressed"] = False
    for _, idx in out.groupby("center").groups.items():
        g = out.loc[idx]
        labels = [str(v) for v in g["organization_id"]]
        received = g["received"].fillna(0).astype(int).tolist()
        s = suppress_measure(labels, received, received, threshold)
        hidden_received = s.rate_suppressed | s.denominator_suppressed
        for col in ORGANIZATION_COUNTS:
            x = g[col].fillna(0).astype(int).tolist()
            m = suppress_measure(labels, x, received, threshold)
            for i, row_id in enumerate(g.index):
                if m.rate_suppressed[i] or m.denominator_suppressed[i] or hidden_received[i]:
                    out.loc[row_id, [col, "suppressed"]] = [pd.NA, True]
        for i, row_id in enumerate(g.index):
            if hidden_received[i]:
                out.loc[row_id, ["received", "suppressed"]] = [pd.NA, True]
    out.loc[df["closed"].fillna(0) < threshold, "days_to_closure_median"] = None  # the true count
    return out


REFERRAL_METRICS = ("closure", "rejected_at_capacity", "days_to_closure_median", "days_to_closure_p90")


def _linked(out: pd.DataFrame) -> None:
    """Hide what other published rows would give back (in place), per (center, site):

    - ``screened``'s denominator is ``eligible - declined``: when ``declined`` is hidden, so is it;
    - a referral counts in ``any`` and (mostly) in one domain, so the domain rows of a referral metric add
      up to about the ``any`` row: when one of them is hidden, all of them are.
    """
    hide = ["numerator", "denominator", "value", "suppressed"]
    for _, g in out.groupby(["center", "site"]):
        declined = g[(g["metric"] == "declined") & g["suppressed"]]
        if len(declined):
            rows = g.index[g["metric"] == "screened"]
            out.loc[rows, ["denominator", "value", "suppressed"]] = [pd.NA, None, True]
        for metric in REFERRAL_METRICS:
            dom = g[(g["metric"] == metric) & (g["domain"] != ANY)]
            if dom["suppressed"].any():
                out.loc[dom.index, hide] = [pd.NA, pd.NA, None, True]


def write_excel(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """One sheet per frame; every text cell through :func:`chc_equity.exports.neutralize`."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, df in sheets.items():
        ws = wb.create_sheet(name[:31])
        ws.append([neutralize(c) for c in df.columns])
        for row in df.itertuples(index=False):
            ws.append([None if pd.isna(v) else neutralize(v) for v in row])
    wb.save(path)


def write_outputs(
    out: Path,
    metrics: pd.DataFrame,
    equity: pd.DataFrame,
    organizations: pd.DataFrame,
    *,
    charts: Sequence[str] = ("svg",),
) -> list[Path]:
    """``sdoh_metrics``, ``sdoh_equity`` and ``sdoh_organizations`` as CSV and Parquet, ``sdoh.xlsx``
    (one sheet each) and the funnel chart (``sdoh_funnel.<fmt>`` for each of ``charts``) in ``out``.
    All from the suppressed frames given, so no file shows more than another."""
    from chc_equity.sdoh.charts import write_charts

    out.mkdir(parents=True, exist_ok=True)
    names = ("sdoh_metrics", "sdoh_equity", "sdoh_organizations")
    frames = dict(zip(names, (metrics, equity, organizations), strict=True))
    files = []
    for name, df in frames.items():
        write_frame_csv(df, out / f"{name}.csv")
        df.to_parquet(out / f"{name}.parquet", index=False)
        files += [out / f"{name}.csv", out / f"{name}.parquet"]
    files.append(out / "sdoh.xlsx")
    write_excel(files[-1], frames)
    files += write_charts(out, metrics, charts)
    return files
