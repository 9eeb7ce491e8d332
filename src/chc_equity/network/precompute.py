"""Precompute the ``agg_*`` tables the web pages read, once per load instead of once per page view.

``precompute(con, period_start=, period_end=)`` runs after ``measures run`` (and in the demo). It reads
``measure_results`` for that period and (re)writes, in one transaction, that period's rows of:

* ``agg_measure`` -- one row per measure x group x center, plus the network row (``center = '*'``):
  population counts, rate with its Wilson 95 % interval, the network rate, the center-vs-network
  p-value, ``signal`` (worse / better / as expected / no data) and its funnel band (one rule: see
  :func:`chc_equity.equity.significance.network_comparison`); measure metadata
  (CMS id, title, inverse, UDS line) is copied in so the pages need nothing but this table.
* ``agg_funnel`` -- per measure x group, the network rate and the 95 % / 99.8 % funnel limits on a grid
  of denominators (the funnel plot's lines).
* ``agg_equity`` -- per measure x group x dimension x (network, each center), the stratified rates from
  :func:`chc_equity.equity.stratify.equity_table` when that module exists; otherwise no rows and
  ``agg_runs.equity_status`` says why.
* ``agg_suppression`` -- per measure x group x center (and network), what viewers and center-bound users
  may not see: one suppression plan over the heat map, the network row and every equity stratum together
  (:mod:`chc_equity.network.plan`); the equity strata in ``agg_equity`` are blanked to match.
* ``agg_runs`` -- one row per period: when it was computed and what it holds. Periods are kept side by
  side, which is what the trend charts read.

Precomputing is also what keeps pages inside their latency budget: the largest agg table has a few
thousand rows, while ``measure_results`` has one row per patient x measure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa

from chc_equity.crashpoints import crash_point
from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.registry import all_measures
from chc_equity.measures.summary import Summary, summarize
from chc_equity.network import plan
from chc_equity.network.equity import equity_rows
from chc_equity.network.stats import FUNNEL_LEVELS, compare_centers, funnel_grid, funnel_limits

NETWORK = "*"  # the center value of network-wide rows

DDL = {
    "agg_runs": """
        CREATE TABLE IF NOT EXISTS agg_runs (
            period_start DATE NOT NULL, period_end DATE NOT NULL, computed_at TIMESTAMPTZ NOT NULL,
            measures INTEGER NOT NULL, centers INTEGER NOT NULL, equity_status VARCHAR NOT NULL,
            PRIMARY KEY (period_start, period_end))""",
    "agg_measure": """
        CREATE TABLE IF NOT EXISTS agg_measure (
            period_start DATE NOT NULL, period_end DATE NOT NULL,
            measure VARCHAR NOT NULL, cms_id VARCHAR NOT NULL, title VARCHAR NOT NULL,
            group_id VARCHAR NOT NULL, group_title VARCHAR, inverse BOOLEAN NOT NULL, uds VARCHAR,
            center VARCHAR NOT NULL,
            initial_population BIGINT, denominator BIGINT, denominator_exclusion BIGINT,
            denominator_exception BIGINT, numerator BIGINT, numerator_exclusion BIGINT,
            performance_denominator BIGINT, rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
            network_rate DOUBLE, p_value DOUBLE, signal VARCHAR, band VARCHAR)""",
    "agg_funnel": """
        CREATE TABLE IF NOT EXISTS agg_funnel (
            period_start DATE NOT NULL, period_end DATE NOT NULL, measure VARCHAR NOT NULL,
            group_id VARCHAR NOT NULL, n BIGINT NOT NULL, network_rate DOUBLE,
            lo95 DOUBLE, hi95 DOUBLE, lo998 DOUBLE, hi998 DOUBLE)""",
    "agg_equity": """
        CREATE TABLE IF NOT EXISTS agg_equity (
            period_start DATE NOT NULL, period_end DATE NOT NULL, measure VARCHAR NOT NULL,
            group_id VARCHAR NOT NULL, dimension VARCHAR NOT NULL, dimension_label VARCHAR,
            center VARCHAR NOT NULL, stratum VARCHAR NOT NULL, numerator BIGINT, denominator BIGINT,
            rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, is_reference BOOLEAN, rate_difference DOUBLE,
            diff_ci_low DOUBLE, diff_ci_high DOUBLE, rate_ratio DOUBLE, p_value DOUBLE, q_value DOUBLE,
            gap_to_equity BIGINT, worse BOOLEAN, better BOOLEAN, unreliable BOOLEAN, suppressed BOOLEAN)""",
    "agg_suppression": plan.DDL,
}
AGG_TABLES: tuple[str, ...] = tuple(DDL)


@dataclass(frozen=True, slots=True)
class PrecomputeResult:
    period_start: date
    period_end: date
    measure_rows: int
    funnel_rows: int
    equity_rows: int
    equity_status: str


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the agg_* tables if missing (they are empty until the first precompute)."""
    for ddl in DDL.values():
        con.execute(ddl)


def _metadata() -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for module in all_measures():
        m = module.measure
        meta[m.name] = {
            "cms_id": m.cms_id,
            "title": m.title,
            "inverse": m.inverse,
            "uds": "; ".join(m.uds) or None,
            "groups": {g.id: g.title or None for g in m.groups},
        }
    return meta


def measure_rows(summaries: list[Summary], network: list[Summary]) -> list[dict[str, Any]]:
    """agg_measure rows (without the period columns) from per-center and network summaries."""
    meta = _metadata()
    by_key: dict[tuple[str, str], list[Summary]] = defaultdict(list)
    for s in summaries:
        by_key[(s.measure, s.group_id)].append(s)
    rows: list[dict[str, Any]] = []
    for net in network:
        info = meta.get(net.measure, {})
        inverse = bool(info.get("inverse", False))
        centers = by_key.get((net.measure, net.group_id), [])
        p0, comparisons = compare_centers(
            [s.center for s in centers],
            [s.numerator for s in centers],
            [s.performance_denominator for s in centers],
            inverse=inverse,
        )
        common = {
            "measure": net.measure,
            "cms_id": info.get("cms_id", net.cms_id),
            "title": info.get("title", net.measure),
            "group_id": net.group_id,
            "group_title": info.get("groups", {}).get(net.group_id),
            "inverse": inverse,
            "uds": info.get("uds"),
        }
        (net_row,) = _with_rates([net], inverse)
        rows.append({**common, **_counts(net), **net_row, "network_rate": p0})
        for s, c in zip(centers, comparisons, strict=True):
            rows.append(
                {
                    **common,
                    **_counts(s),
                    "rate": c.rate,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "network_rate": c.network_rate,
                    "p_value": c.p_value,
                    "signal": c.signal,
                    "band": c.band,
                }
            )
    return rows


def _counts(s: Summary) -> dict[str, Any]:
    return {
        "center": s.center,
        "initial_population": s.initial_population,
        "denominator": s.denominator,
        "denominator_exclusion": s.denominator_exclusion,
        "denominator_exception": s.denominator_exception,
        "numerator": s.numerator,
        "numerator_exclusion": s.numerator_exclusion,
        "performance_denominator": s.performance_denominator,
    }


def _with_rates(rows: list[Summary], inverse: bool) -> list[dict[str, Any]]:
    """Rate and Wilson interval of network rows (no test: the network is the comparator)."""
    _, comps = compare_centers(
        [NETWORK] * len(rows),
        [s.numerator for s in rows],
        [s.performance_denominator for s in rows],
        inverse=inverse,
    )
    return [
        {
            "rate": c.rate,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": None,
            "signal": None,
            "band": None,
        }
        for c in comps
    ]


def funnel_rows(measures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """agg_funnel rows from the network rows: limits on a log grid up to 1.2 x the largest center."""
    largest: dict[tuple[str, str], int] = defaultdict(int)
    for r in measures:
        if r["center"] != NETWORK:
            key = (r["measure"], r["group_id"])
            largest[key] = max(largest[key], int(r["performance_denominator"]))
    out: list[dict[str, Any]] = []
    for r in measures:
        key = (r["measure"], r["group_id"])
        p0 = r["network_rate"]
        if r["center"] != NETWORK or p0 is None or largest[key] <= 0:
            continue
        grid = funnel_grid(max(2, int(largest[key] * 1.2)))
        lo95, hi95 = funnel_limits(p0, grid, FUNNEL_LEVELS[0])
        lo998, hi998 = funnel_limits(p0, grid, FUNNEL_LEVELS[1])
        for i, n in enumerate(grid):
            out.append(
                {
                    "measure": key[0],
                    "group_id": key[1],
                    "n": int(n),
                    "network_rate": p0,
                    "lo95": float(lo95[i]),
                    "hi95": float(hi95[i]),
                    "lo998": float(lo998[i]),
                    "hi998": float(hi998[i]),
                }
            )
    return out


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], period: dict) -> None:
    if not rows:
        return
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    data = {c: [row.get(c, period.get(c)) for row in rows] for c in columns}
    for c in ("period_start", "period_end"):
        data[c] = [period[c]] * len(rows)
    batch = pa.table(data)  # noqa: F841  (referenced by name in the SQL below)
    con.execute(f"INSERT INTO {table} SELECT {', '.join(columns)} FROM batch")


def precompute(
    con: duckdb.DuckDBPyConnection,
    *,
    period_start: date,
    period_end: date,
    equity: bool = True,
) -> PrecomputeResult:
    """(Re)write the agg_* rows of one period from ``measure_results``; one transaction.

    ``equity=False`` skips the stratified tables (quicker, e.g. in tests that do not look at them).
    """
    ensure_tables(con)
    names = (
        [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT measure FROM {RESULTS_TABLE} WHERE period_start = ? AND period_end = ? "
                "ORDER BY 1",
                [period_start, period_end],
            ).fetchall()
        ]
        if _has_results(con)
        else []
    )
    summaries = summarize(con, names, period_start, period_end) if names else []
    network = summarize(con, names, period_start, period_end, by_center=False) if names else []
    measures = measure_rows(summaries, network)
    funnels = funnel_rows(measures)
    if equity and names:
        equity_data, equity_status, strata = equity_rows(
            con, names, period_start=period_start, period_end=period_end
        )
    else:
        equity_data, equity_status, strata = (
            [],
            "not computed: skipped" if names else "not computed: no results",
            {},
        )
    hidden = plan.publication_plan(summaries, network, equity_data, strata)
    period = {"period_start": period_start, "period_end": period_end}
    con.execute("BEGIN TRANSACTION")
    try:
        for table in AGG_TABLES:
            con.execute(
                f"DELETE FROM {table} WHERE period_start = ? AND period_end = ?", [period_start, period_end]
            )
        _insert(con, "agg_measure", measures, period)
        _insert(con, "agg_funnel", funnels, period)
        _insert(con, "agg_equity", equity_data, period)
        _insert(con, "agg_suppression", hidden, period)
        con.execute(
            "INSERT INTO agg_runs VALUES (?, ?, now(), ?, ?, ?)",
            [period_start, period_end, len(names), len({s.center for s in summaries}), equity_status],
        )
        crash_point("aggregates:before-commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return PrecomputeResult(
        period_start, period_end, len(measures), len(funnels), len(equity_data), equity_status
    )


def _has_results(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [RESULTS_TABLE],
    ).fetchone()
    return bool(row and row[0])
