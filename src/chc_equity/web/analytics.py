"""Read the precomputed ``agg_*`` tables (see :mod:`chc_equity.network.precompute`) for the measure pages.

Only agg tables are read here, so a page costs a few small indexed scans whatever the network's size.
As in :mod:`chc_equity.web.data`, ``center=None`` means every center and a string restricts rows to that
center **in SQL**. Rows of the network (``center = '*'``) are aggregates over every center; a user bound
to one center gets the network *rate* only (:func:`network_for_bound_user`), and nothing of the network
at all where the publication plan (``agg_suppression``, :func:`plans`) withholds it from their center.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import duckdb

from chc_equity.network.precompute import NETWORK

MEASURE_COLUMNS = (
    "measure, cms_id, title, group_id, group_title, inverse, uds, center, initial_population, denominator, "
    "denominator_exclusion, denominator_exception, numerator, numerator_exclusion, performance_denominator, "
    "rate, ci_low, ci_high, network_rate, p_value, signal, band, period_start, period_end"
)


@dataclass(frozen=True, slots=True)
class Run:
    """One precomputed period."""

    period_start: date
    period_end: date
    computed_at: str
    measures: int
    centers: int
    equity_status: str

    @property
    def label(self) -> str:
        return f"{self.period_start.isoformat()} to {self.period_end.isoformat()}"


@dataclass(frozen=True, slots=True)
class Cell:
    """One agg_measure row: a measure group at one center (or the network, ``center == '*'``).

    Counts and rates are ``None`` when suppressed for viewers (or hidden for center-bound users).
    """

    measure: str
    cms_id: str
    title: str
    group_id: str
    group_title: str | None
    inverse: bool
    uds: str | None
    center: str
    initial_population: int | None
    denominator: int | None
    denominator_exclusion: int | None
    denominator_exception: int | None
    numerator: int | None
    numerator_exclusion: int | None
    performance_denominator: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    network_rate: float | None
    p_value: float | None
    signal: str | None
    band: str | None
    period_start: date
    period_end: date
    # Why a count is hidden (viewers): "numerator" / "performance_denominator" -> "small" (1-10, or its
    # complement is) or "complementary" (hidden so that another cell cannot be recovered). Never a value.
    hidden: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_network(self) -> bool:
        return self.center == NETWORK

    @property
    def key(self) -> str:
        """Column label of a measure group: the CMS id, plus the group when the measure has several."""
        return (
            self.cms_id if self.group_id == "Group_1" else f"{self.cms_id} {self.group_id.replace('_', ' ')}"
        )


@dataclass(frozen=True, slots=True)
class FunnelPoint:
    n: int
    network_rate: float
    lo95: float
    hi95: float
    lo998: float
    hi998: float


@dataclass(frozen=True, slots=True)
class EquityStratum:
    group_id: str
    dimension: str
    dimension_label: str
    stratum: str
    numerator: int | None
    denominator: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    is_reference: bool | None
    rate_difference: float | None
    p_value: float | None
    q_value: float | None
    gap_to_equity: int | None
    worse: bool | None
    unreliable: bool | None
    suppressed: bool | None
    measure: str = ""  # the measure's name (agg_equity.measure)
    # Why the counts are hidden (viewers): "small" (a count 1-10) or "complementary" (so that another
    # hidden cell cannot be recovered by subtraction); None when shown. Never the value itself.
    hidden_reason: str | None = None


@dataclass(slots=True)
class MeasureView:
    """Everything the measure page shows for one measure and period."""

    run: Run
    measure: str
    cms_id: str
    title: str
    inverse: bool
    uds: str | None
    groups: list[str]
    network: dict[str, Cell]  # group -> network cell
    centers: dict[str, list[Cell]]  # group -> center cells
    funnel: dict[str, list[FunnelPoint]]  # group -> limits
    trend: list[Cell] = field(default_factory=list)  # every period, network + visible centers
    equity: list[EquityStratum] = field(default_factory=list)
    equity_status: str = ""
    runs: list[Run] = field(default_factory=list)  # every precomputed period (the period picker)


def runs(con: duckdb.DuckDBPyConnection) -> list[Run]:
    """Precomputed periods, latest first (empty when precompute has never run).

    Asks the table directly and treats "no such table" as "never precomputed": an information_schema
    lookup first would cost more than the query itself on every page view.
    """
    try:
        rows = con.execute(
            "SELECT period_start, period_end, strftime(computed_at, '%Y-%m-%d %H:%M:%S %Z'), measures, "
            "centers, equity_status FROM agg_runs ORDER BY period_end DESC, period_start DESC"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [Run(*r) for r in rows]


def pick_run(con: duckdb.DuckDBPyConnection, period_end: date | None) -> Run | None:
    """The run ending on ``period_end`` (latest of those), else the latest run; None when none match."""
    available = runs(con)
    if period_end is None:
        return available[0] if available else None
    return next((r for r in available if r.period_end == period_end), None)


def _scope(center: str | None, *, with_network: bool) -> tuple[str, list[str]]:
    if center is None:
        return ("TRUE" if with_network else f"center <> '{NETWORK}'"), []
    if with_network:
        return "center IN (?, ?)", [center, NETWORK]
    return "center = ?", [center]


def cells(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    center: str | None = None,
    *,
    measure: str | None = None,
    with_network: bool = True,
) -> list[Cell]:
    """agg_measure rows of one period, for the user's scope (and one measure when given)."""
    where, params = _scope(center, with_network=with_network)
    if measure is not None:
        where += " AND measure = ?"
        params.append(measure)
    rows = con.execute(
        f"SELECT {MEASURE_COLUMNS} FROM agg_measure WHERE period_start = ? AND period_end = ? AND {where} "
        "ORDER BY cms_id, group_id, center = '*' DESC, center",
        [run.period_start, run.period_end, *params],
    ).fetchall()
    return [Cell(*r) for r in rows]


def trend(con: duckdb.DuckDBPyConnection, measure: str, center: str | None = None) -> list[Cell]:
    """One measure across every precomputed period (network and the centers in scope)."""
    where, params = _scope(center, with_network=True)
    rows = con.execute(
        f"SELECT {MEASURE_COLUMNS} FROM agg_measure WHERE measure = ? AND {where} "
        "ORDER BY group_id, center, period_end",
        [measure, *params],
    ).fetchall()
    return [Cell(*r) for r in rows]


def funnel(con: duckdb.DuckDBPyConnection, run: Run, measure: str) -> dict[str, list[FunnelPoint]]:
    rows = con.execute(
        "SELECT group_id, n, network_rate, lo95, hi95, lo998, hi998 FROM agg_funnel "
        "WHERE period_start = ? AND period_end = ? AND measure = ? ORDER BY group_id, n",
        [run.period_start, run.period_end, measure],
    ).fetchall()
    out: dict[str, list[FunnelPoint]] = {}
    for group, *rest in rows:
        out.setdefault(group, []).append(FunnelPoint(*rest))
    return out


def equity(
    con: duckdb.DuckDBPyConnection, run: Run, measure: str | None, center: str = NETWORK
) -> list[EquityStratum]:
    """Equity strata of one measure (every measure when None), network-wide or of one center (computed
    by the equity package during precompute: a center's strata are compared within the center)."""
    where, params = ("measure = ?", [measure]) if measure is not None else ("TRUE", [])
    rows = con.execute(
        "SELECT group_id, dimension, coalesce(dimension_label, dimension), stratum, numerator, denominator, "
        "rate, ci_low, ci_high, is_reference, rate_difference, p_value, q_value, gap_to_equity, worse, "
        "unreliable, suppressed, measure FROM agg_equity WHERE period_start = ? AND period_end = ? AND "
        f"{where} AND center = ? ORDER BY measure, group_id, dimension, denominator DESC NULLS LAST, stratum",
        [run.period_start, run.period_end, *params, center],
    ).fetchall()
    return [EquityStratum(*r) for r in rows]


def measure_meta(con: duckdb.DuckDBPyConnection, run: Run) -> dict[str, tuple[str, str, bool]]:
    """Measure name -> (CMS id, title, inverse) of the measures precomputed for ``run``."""
    rows = con.execute(
        "SELECT DISTINCT measure, cms_id, title, inverse FROM agg_measure WHERE period_start = ? "
        "AND period_end = ? ORDER BY cms_id",
        [run.period_start, run.period_end],
    ).fetchall()
    return {m: (cms, title, bool(inv)) for m, cms, title, inv in rows}


def find_measure(con: duckdb.DuckDBPyConnection, key: str) -> tuple[str, str] | None:
    """(measure name, CMS id) for a name or CMS id as used in URLs ("CMS122", "cms122", full name)."""
    try:
        row = con.execute(
            "SELECT measure, cms_id FROM agg_measure "
            "WHERE lower(measure) = lower(?) OR lower(cms_id) = lower(?) LIMIT 1",
            [key, key],
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return (row[0], row[1]) if row else None


def network_for_bound_user(cell: Cell) -> Cell:
    """A network cell as a center-bound user sees it: the rate only (no counts, no interval)."""
    return replace(
        cell,
        initial_population=None,
        denominator=None,
        denominator_exclusion=None,
        denominator_exception=None,
        numerator=None,
        numerator_exclusion=None,
        performance_denominator=None,
        ci_low=None,
        ci_high=None,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """One agg_suppression row: what viewers / center-bound users may not see of one cell."""

    numerator_hidden: bool
    not_met_hidden: bool
    denominator_hidden: bool
    network_withheld: bool

    @property
    def rate_hidden(self) -> bool:
        return self.numerator_hidden or self.not_met_hidden or self.denominator_hidden


# What a cell without a plan (a warehouse precomputed before plans existed) falls back to: hide it all.
HIDE_ALL = Plan(True, True, True, True)
PlanKey = tuple[date, date, str, str, str]  # (period_start, period_end, measure, group_id, center)


def plans(con: duckdb.DuckDBPyConnection, measure: str | None = None) -> dict[PlanKey, Plan]:
    """The publication plan of every precomputed period (of one measure when given); empty when absent."""
    where, params = ("measure = ?", [measure]) if measure is not None else ("TRUE", [])
    try:
        rows = con.execute(
            "SELECT period_start, period_end, measure, group_id, center, numerator_hidden, not_met_hidden, "
            f"denominator_hidden, network_withheld FROM agg_suppression WHERE {where}",
            params,
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    return {(r[0], r[1], r[2], r[3], r[4]): Plan(*r[5:]) for r in rows}
