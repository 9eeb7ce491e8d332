"""The "Social needs" page's data: funnels per center and domain, and flagged equity strata.

Reads the published snapshot's ``sdoh_metrics``, ``sdoh_equity`` and ``sdoh_organization`` (written by
``chc-equity sdoh``); aggregates only (the staff lists are ``chc_equity.sdoh.lists``). Viewers get the
counts through the same suppression as the CLI's files (:func:`chc_equity.sdoh.export.suppress_metrics`,
``suppress_organizations``); ``sdoh_equity`` is
stored suppressed for every role.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from chc_equity.sdoh.mapping import DOMAINS, HRSN
from chc_equity.sdoh.metrics import ALL_SITES, ANY, METRICS, NETWORK, ORGANIZATIONS
from chc_equity.sdoh.strata import TABLE as EQUITY

FUNNEL = ("positive", "documented", "referred", "closure", "rejected_at_capacity", "rescreen_resolution")
HEADLINE = ("eligible", "screened", "declined", "prapare_complete", "connected_60d")
DOMAIN_ORDER = (ANY, *HRSN, *(d for d in DOMAINS if d not in HRSN))


@dataclass(slots=True)
class Cell:
    numerator: int | None
    denominator: int | None
    value: float | None


@dataclass(slots=True)
class CenterFunnel:
    center: str
    period: str
    headline: dict[str, Cell]
    rows: list[tuple[str, dict[str, Cell]]]  # (domain label, metric -> cell), 'any' first
    network: bool = False  # the network row (all centers together), shown first

    @property
    def label(self) -> str:
        return "Network (all centers)" if self.network else self.center


@dataclass(slots=True)
class SdohView:
    available: bool
    suppressed: bool
    centers: list[CenterFunnel] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)  # suppressed for viewers


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchone()
    return bool(row and row[0])


def _num(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return v


def load(con: duckdb.DuckDBPyConnection, center: str | None, *, suppressed: bool) -> SdohView:
    """The page for ``center`` (None: every center in the table), suppressed when ``suppressed``."""
    if not _has(con, METRICS):
        return SdohView(available=False, suppressed=suppressed)
    where, params = ("center = ?", [center]) if center else ("TRUE", [])
    df = con.execute(f"SELECT * FROM {METRICS} WHERE {where} ORDER BY center", params).df()
    if suppressed:
        from chc_equity.sdoh.export import suppress_metrics

        df = suppress_metrics(df)
    df = df[df["site"] == ALL_SITES]
    view = SdohView(available=True, suppressed=suppressed)
    for c, g in df.groupby("center", sort=True):
        cells = {
            (r.domain, r.metric): Cell(_num(r.numerator), _num(r.denominator), _num(r.value))
            for r in g.itertuples()
        }
        period = f"{str(g['period_start'].iloc[0])[:10]} to {str(g['period_end'].iloc[0])[:10]}"
        headline = {m: cells.get((ANY, m), Cell(None, None, None)) for m in HEADLINE}
        rows = [
            (
                ("All domains" if d == ANY else DOMAINS[d]),
                {m: cells[(d, m)] for m in FUNNEL if (d, m) in cells},
            )
            for d in DOMAIN_ORDER
            if any((d, m) in cells for m in FUNNEL)
        ]
        view.centers.append(CenterFunnel(str(c), period, headline, rows, network=c == NETWORK))
    if _has(con, EQUITY):
        rows = con.execute(
            f"""SELECT center, metric, domain, dimension, stratum, numerator, denominator, rate, q_value
                  FROM {EQUITY}
                 WHERE {where} AND NOT suppressed AND worse_than_reference
                 ORDER BY center, q_value, metric, domain, dimension, stratum""",
            params,
        ).fetchall()
        keys = ("center", "metric", "domain", "dimension", "stratum", "numerator", "denominator", "rate", "q")
        view.flagged = [dict(zip(keys, r, strict=True)) for r in rows]
    if _has(con, ORGANIZATIONS):
        orgs = con.execute(
            f"SELECT * FROM {ORGANIZATIONS} WHERE {where} ORDER BY center, organization_name, 2",
            params,
        )
        df = orgs.df()
        if suppressed:
            from chc_equity.sdoh.export import suppress_organizations

            df = suppress_organizations(df)
        view.organizations = [{k: _num(v) for k, v in r.items()} for r in df.to_dict("records")]
    return view
