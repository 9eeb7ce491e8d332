"""Stratify measure results by patient attributes: counts from DuckDB, statistics and suppression in numpy.

:func:`equity_tables` is the I/O edge: one SQL aggregation per dimension set counts every requested
measure x group x stratum at once (``measure_results`` joined to ``patient_attributes``); everything
after that is pure (:func:`analyse`), one :func:`~chc_equity.equity.stats.compare_strata` call per
measure x group, so 21 measures x 6 dimensions on 100k patients take a few seconds.

Counting follows the eCQM convention of :mod:`chc_equity.measures.summary`: a stratum's denominator is
its subjects in the denominator and not excluded or excepted; its numerator is its subjects in the
numerator (the engine already makes the numerator imply that). Subjects are patients, or encounters for
episode measures (CMS22, CMS177).

Suppression (``threshold``, default 11) is always applied to what this module returns for export:
* one dimension: :func:`~chc_equity.equity.suppression.suppress_measure` with the measure's overall
  counts locked as published (the measures report publishes them), so complements are strata, never the
  totals;
* two dimensions crossed: the one-way tables of both dimensions are suppressed first, exactly as a
  one-way request would, and their published margins are locked into the crossed table's equations
  (cells, both margins and the totals, for met and not met), so combining the crossed file with the
  one-way files and the totals recovers no suppressed cell either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

import duckdb
import numpy as np
from numpy.typing import NDArray

from chc_equity.equity import disparity
from chc_equity.equity.attributes import DIMENSIONS, TABLE, ensure_patient_attributes
from chc_equity.equity.labels import UNKNOWN
from chc_equity.equity.significance import network_comparison
from chc_equity.equity.stats import (
    DEFAULT_UNRELIABLE_BELOW,
    DisparitySummary,
    EquityComparison,
    StratumStats,
    compare_strata,
)
from chc_equity.equity.suppression import (
    DEFAULT_THRESHOLD,
    LinearTable,
    MeasureSuppression,
    primary_mask,
    published_totals,
    suppress,
    suppress_measure,
)
from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.registry import all_measures

CROSS = " × "
CENTER = "center"
NETWORK_REFERENCE = "network"  # the comparator of the center dimension (all centers of the table)
Reference = Literal["largest", "best"] | str


@dataclass(frozen=True, slots=True)
class EquityRow:
    """One stratum of one measure group, as exported (``None`` = suppressed or undefined)."""

    measure: str  # CMS id, e.g. "CMS122"
    measure_name: str
    group_id: str
    inverse: bool
    dimension: str
    stratum: str
    dimension2: str | None
    stratum2: str | None
    denominator: int | None
    numerator: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    reference: str | None
    is_reference: bool
    rate_difference: float | None
    rd_ci_low: float | None
    rd_ci_high: float | None
    rate_ratio: float | None
    rr_ci_low: float | None
    rr_ci_high: float | None
    p_value: float | None
    q_value: float | None
    gap_to_equity: int | None
    worse_than_reference: bool
    better_than_reference: bool
    suppressed: bool
    unreliable: bool | None  # None when suppressed: "under 20" would tell a hidden denominator's size

    @property
    def label(self) -> str:
        """Display label of the stratum ("A" or "A × B")."""
        return self.stratum if self.stratum2 is None else f"{self.stratum}{CROSS}{self.stratum2}"


@dataclass(frozen=True, slots=True)
class EquitySummaryRow:
    """Measure-level disparity summaries for one measure group x dimension set (published strata only)."""

    measure: str
    group_id: str
    dimension: str
    dimension2: str | None
    reference: str | None
    strata: int
    strata_summarised: int
    between_group_variance: float | None
    index_of_disparity: float | None
    index_of_disparity_adverse: float | None
    max_min_ratio: float | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Per-stratum counts of one measure group for one dimension set (strata in sorted label order)."""

    measure: str
    group_id: str
    strata: tuple[tuple[str, ...], ...]  # one tuple of values per stratum (1 or 2 values)
    numerators: NDArray[np.int64]
    denominators: NDArray[np.int64]


def _measure_info() -> dict[str, tuple[str, bool]]:
    """Measure folder name -> (CMS id, inverse)."""
    return {m.measure.name: (m.measure.cms_id, m.measure.inverse) for m in all_measures()}


def resolve_measures(ids: Sequence[str] | None) -> list[str]:
    """Measure folder names for CMS ids / names (``None`` or ``["all"]``: every implemented measure)."""
    modules = all_measures()
    if not ids or [i.lower() for i in ids] == ["all"]:
        return [m.measure.name for m in modules]
    out: list[str] = []
    for ident in ids:
        key = ident.lower()
        match = [m.measure.name for m in modules if key in (m.measure.name.lower(), m.measure.cms_id.lower())]
        if not match:
            known = ", ".join(m.measure.cms_id for m in modules)
            raise KeyError(f"unknown measure {ident!r}; implemented: {known}")
        out.extend(n for n in match if n not in out)
    return out


def latest_period(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """The most recent period in ``measure_results`` (the usual default for reports)."""
    row = con.execute(
        f"SELECT period_start, period_end FROM {RESULTS_TABLE} ORDER BY period_end DESC, period_start DESC "
        "LIMIT 1"
    ).fetchone()
    if row is None:
        raise LookupError("measure_results is empty: run `chc-equity measures run` first")
    return row[0], row[1]


def stratum_counts(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str],
    by: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
) -> list[Counts]:
    """Counts per measure x group x stratum in one query (strata with a zero denominator are omitted)."""
    _check_by(by)
    ensure_patient_attributes(con, period_start=period_start, period_end=period_end)
    where = "r.measure IN (SELECT unnest($measures)) AND r.period_start = $ps AND r.period_end = $pe"
    params: dict[str, object] = {"measures": list(measures), "ps": period_start, "pe": period_end}
    if centers:
        where += " AND r.center IN (SELECT unnest($centers))"
        params["centers"] = list(centers)
    rows = con.execute(stratum_counts_sql(by, where), params).fetchall()
    return counts_from_rows(rows, len(by))


def stratum_counts_sql(
    by: Sequence[str],
    where: str,
    results: str = RESULTS_TABLE,
    attributes: str = TABLE,
    *,
    having: bool = True,
) -> str:
    """The one counting query: rows of measure, group, the ``by`` values, num, den, per measure x group x
    stratum with a non-zero denominator. ``where`` filters ``r``. Counts are sums over patients, so
    partial counts of disjoint sets of patients add up: :mod:`chc_equity.spark` runs it per partition
    with ``having=False`` (a stratum empty here may not be elsewhere) and sums with Spark SQL."""
    cols = ", ".join(f"coalesce(a.{d}, '{UNKNOWN}') AS {d}" for d in by)
    return f"""
        SELECT r.measure, r.group_id, {cols},
               count(*) FILTER (WHERE r.numerator) AS num,
               count(*) FILTER (WHERE r.denominator AND NOT r.denominator_exclusion
                                AND NOT r.denominator_exception) AS den
        FROM {results} r
        LEFT JOIN {attributes} a ON a.center = r.center AND a.patient_id = r.patient_id
        WHERE {where}
        GROUP BY ALL {"HAVING den > 0" if having else ""}
        ORDER BY ALL
        """


def counts_from_rows(rows: Sequence[Sequence[object]], k: int) -> list[Counts]:
    """Rows of :func:`stratum_counts_sql` (sorted) -> one :class:`Counts` per measure x group."""
    grouped: dict[tuple[str, str], list[Sequence[object]]] = {}
    for row in rows:
        grouped.setdefault((str(row[0]), str(row[1])), []).append(row)
    return [
        Counts(
            measure=m,
            group_id=g,
            strata=tuple(tuple(str(v) for v in r[2 : 2 + k]) for r in rs),
            numerators=np.array([r[2 + k] for r in rs], dtype=np.int64),
            denominators=np.array([r[3 + k] for r in rs], dtype=np.int64),
        )
        for (m, g), rs in grouped.items()
    ]


def _check_by(by: Sequence[str]) -> None:
    if not 1 <= len(by) <= 2:
        raise ValueError("stratify by one dimension or two crossed")
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
    if len(by) == 2 and by[0] == by[1]:
        raise ValueError("cross two different dimensions")


# --- suppression -----------------------------------------------------------------------------------
def one_way_suppression(counts: Counts, threshold: int) -> MeasureSuppression:
    """One-way suppression with the measure totals locked as published."""
    labels = [CROSS.join(s) for s in counts.strata]
    return suppress_measure(labels, counts.numerators, counts.denominators, threshold, totals_published=True)


def _margin(strata: Sequence[tuple[str, ...]], axis: int, x: NDArray, d: NDArray) -> Counts:
    keys = sorted({s[axis] for s in strata})
    index = {v: i for i, v in enumerate(keys)}
    num = np.zeros(len(keys), dtype=np.int64)
    den = np.zeros(len(keys), dtype=np.int64)
    for s, xi, di in zip(strata, x, d, strict=True):
        num[index[s[axis]]] += xi
        den[index[s[axis]]] += di
    return Counts("", "", tuple((k,) for k in keys), num, den)


def crossed_suppression(counts: Counts, threshold: int) -> NDArray[np.bool_]:
    """Which crossed cells' rates are suppressed (True), consistent with both one-way publications.

    Quantities: per cell met / not met / denominator; per row and per column the same three margins;
    the three totals. Margin state comes from :func:`one_way_suppression` of each dimension (hidden there
    = hidden here, published there = locked here); the totals are locked unless small.
    """
    rows = _margin(counts.strata, 0, counts.numerators, counts.denominators)
    cols = _margin(counts.strata, 1, counts.numerators, counts.denominators)
    r_idx = {s[0]: i for i, s in enumerate(rows.strata)}
    c_idx = {s[0]: j for j, s in enumerate(cols.strata)}
    n_r, n_c = len(r_idx), len(c_idx)
    x = np.zeros((n_r, n_c), dtype=np.int64)
    d = np.zeros((n_r, n_c), dtype=np.int64)
    for s, xi, di in zip(counts.strata, counts.numerators, counts.denominators, strict=True):
        x[r_idx[s[0]], c_idx[s[1]]] = xi
        d[r_idx[s[0]], c_idx[s[1]]] = di
    y = d - x
    cells = n_r * n_c
    # layout: x cells, y cells, d cells | x rows, y rows, d rows | x cols, y cols, d cols | X, Y, D
    xc, yc, dc = np.arange(cells), cells + np.arange(cells), 2 * cells + np.arange(cells)
    base = 3 * cells
    xr, yr, dr = base + np.arange(n_r), base + n_r + np.arange(n_r), base + 2 * n_r + np.arange(n_r)
    base += 3 * n_r
    xk, yk, dk = base + np.arange(n_c), base + n_c + np.arange(n_c), base + 2 * n_c + np.arange(n_c)
    tx, ty, td = base + 3 * n_c, base + 3 * n_c + 1, base + 3 * n_c + 2
    values = np.concatenate(
        [x.ravel(), y.ravel(), d.ravel(), x.sum(1), y.sum(1), d.sum(1), x.sum(0), y.sum(0), d.sum(0)]
        + [[x.sum(), y.sum(), d.sum()]]
    ).astype(np.int64)
    eqs: list[tuple[int, tuple[int, ...]]] = []
    for i in range(cells):
        eqs.append((int(dc[i]), (int(xc[i]), int(yc[i]))))
    for tot, (a, b) in ((dr, (xr, yr)), (dk, (xk, yk))):
        eqs += [(int(tot[i]), (int(a[i]), int(b[i]))) for i in range(len(tot))]
    eqs.append((td, (tx, ty)))
    for cell_ids, row_tot, col_tot, grand in ((xc, xr, xk, tx), (yc, yr, yk, ty), (dc, dr, dk, td)):
        grid = cell_ids.reshape(n_r, n_c)
        eqs += [(int(row_tot[i]), tuple(int(v) for v in grid[i])) for i in range(n_r)]
        eqs += [(int(col_tot[j]), tuple(int(v) for v in grid[:, j])) for j in range(n_c)]
        eqs.append((grand, tuple(int(v) for v in row_tot)))
        eqs.append((grand, tuple(int(v) for v in col_tot)))
    names = tuple(f"q{i}" for i in range(values.size))
    table = LinearTable(values, tuple(eqs), names)

    hidden_before = np.zeros(values.size, dtype=bool)
    locked = np.zeros(values.size, dtype=bool)
    for margin, (mx, my, md) in ((rows, (xr, yr, dr)), (cols, (xk, yk, dk))):
        sup = one_way_suppression(margin, threshold).detail.suppressed
        k = len(margin.strata)
        for ids, hid in ((mx, sup[0 : 2 * k : 2]), (my, sup[1 : 2 * k : 2]), (md, sup[2 * k : 3 * k])):
            hidden_before[ids] = hid
            locked[ids] = ~hid
    totals = np.array([tx, ty, td])
    locked[totals] = published_totals(values[totals], threshold)
    hidden_before[totals] = primary_mask(values[totals], threshold)
    result = suppress(table, threshold, locked=locked, hidden_before=hidden_before)
    h = result.suppressed
    cell_hidden = (h[xc] | h[dc]).reshape(n_r, n_c)
    return np.array([cell_hidden[r_idx[s[0]], c_idx[s[1]]] for s in counts.strata], dtype=bool)


# --- statistics ------------------------------------------------------------------------------------
def against_network(
    cmp: EquityComparison, x: NDArray[np.int64], n: NDArray[np.int64], *, inverse: bool, alpha: float
) -> list[StratumStats]:
    """Center strata compared with the network (all centers of the table), not with a reference center.

    "Is this center worse than the rest?" must get one answer wherever it is asked, so the flags and
    p-values are those of :func:`~chc_equity.equity.significance.network_comparison` -- the rule of the
    heat map and the funnel plot -- with the network rate as comparator: ``rate_difference`` and
    ``rate_ratio`` against it, the gap to reach it, no q-value (the funnel has no multiplicity
    correction) and no interval for the difference or ratio (a center is part of the network, so the
    two-sample intervals do not apply; the funnel plot is the interval).
    """
    net = network_comparison(x, n, inverse=inverse, alpha=alpha)
    p0 = net.network_rate
    gaps = disparity.gap_to_equity(x.tolist(), n.tolist(), int(x.sum()), int(n.sum()), inverse=inverse)
    out: list[StratumStats] = []
    for i, st in enumerate(cmp.strata):
        if st.label == UNKNOWN:  # reported, never ranked
            out.append(st)
            continue
        pv = float(net.p_values[i])
        out.append(
            replace(
                st,
                is_reference=False,
                rate_difference=None if st.rate is None or p0 is None else st.rate - p0,
                diff_ci_low=None,
                diff_ci_high=None,
                rate_ratio=None if st.rate is None or not p0 else st.rate / p0,
                ratio_ci_low=None,
                ratio_ci_high=None,
                p_value=None if np.isnan(pv) else pv,
                q_value=None,
                gap_to_equity=gaps[i],
                worse_than_reference=net.signals[i] == "worse",
                better_than_reference=net.signals[i] == "better",
            )
        )
    return out


def analyse(
    counts: Counts,
    by: Sequence[str],
    *,
    cms_id: str,
    inverse: bool,
    reference: Reference = "largest",
    threshold: int = DEFAULT_THRESHOLD,
    alpha: float = 0.05,
    unreliable_below: int = DEFAULT_UNRELIABLE_BELOW,
    hidden: NDArray[np.bool_] | None = None,
) -> tuple[list[EquityRow], EquitySummaryRow]:
    """Statistics + suppression for one measure group; pure (counts in, export rows out).

    ``reference``: "largest", "best", or a stratum label ("A" or "A × B"). Unknown strata (either value
    Unknown when crossed) are reported but never ranked: no comparison, flag or reference role, and they
    stay out of the disparity summaries -- their make-up is unknown, so "equity" with them is meaningless.
    The ``center`` dimension alone is compared with the network instead of a reference stratum, by the
    same rule as the heat map and the funnel plot (see :func:`against_network`).
    ``hidden``: strata whose counts are suppressed, when the plan was made over a larger publication.
    """
    labels = [CROSS.join(s) for s in counts.strata]
    x, n = counts.numerators, counts.denominators
    if hidden is not None:  # planned elsewhere (one center's slice of the center x dimension plan)
        num_hidden = den_hidden = hidden
    elif len(by) == 1:
        sup = one_way_suppression(counts, threshold)
        hidden = sup.rate_suppressed
        num_hidden, den_hidden = sup.numerator_suppressed, sup.denominator_suppressed
    else:
        hidden = crossed_suppression(counts, threshold)
        num_hidden = den_hidden = hidden
    rule = reference if reference in ("largest", "best") else "named"
    if list(by) == [CENTER] and rule == "named":
        raise ValueError("--by center compares every center with the network: a --reference does not apply")
    unknown_labels = [lab for lab, s in zip(labels, counts.strata, strict=True) if UNKNOWN in s]
    cmp = compare_strata(
        labels,
        x,
        n,
        inverse=inverse,
        reference=rule,  # type: ignore[arg-type]
        reference_label=None if rule != "named" else reference,
        alpha=alpha,
        unreliable_below=unreliable_below,
        shown=~hidden,
        unranked=unknown_labels,
    )
    strata, reference_name = list(cmp.strata), cmp.reference
    if list(by) == [CENTER]:
        strata, reference_name = against_network(cmp, x, n, inverse=inverse, alpha=alpha), NETWORK_REFERENCE
    rows: list[EquityRow] = []
    for i, st in enumerate(strata):
        s = counts.strata[i]
        h = bool(hidden[i])

        def keep(value: float | int | None, h: bool = h) -> float | int | None:
            return None if h else value

        rows.append(
            EquityRow(
                measure=cms_id,
                measure_name=counts.measure,
                group_id=counts.group_id,
                inverse=inverse,
                dimension=by[0],
                stratum=s[0],
                dimension2=by[1] if len(by) == 2 else None,
                stratum2=s[1] if len(by) == 2 else None,
                denominator=None if den_hidden[i] else st.denominator,
                numerator=None if num_hidden[i] else st.numerator,
                rate=keep(st.rate),
                ci_low=keep(st.ci_low),
                ci_high=keep(st.ci_high),
                reference=reference_name,
                is_reference=st.is_reference,
                rate_difference=keep(st.rate_difference),
                rd_ci_low=keep(st.diff_ci_low),
                rd_ci_high=keep(st.diff_ci_high),
                rate_ratio=keep(st.rate_ratio),
                rr_ci_low=keep(st.ratio_ci_low),
                rr_ci_high=keep(st.ratio_ci_high),
                p_value=keep(st.p_value),
                q_value=keep(st.q_value),
                gap_to_equity=keep(st.gap_to_equity),  # type: ignore[arg-type]
                worse_than_reference=st.worse_than_reference and not h,
                better_than_reference=st.better_than_reference and not h,
                suppressed=h,
                unreliable=None if h else st.unreliable,
            )
        )
    summary: DisparitySummary = cmp.summary
    srow = EquitySummaryRow(
        measure=cms_id,
        group_id=counts.group_id,
        dimension=by[0],
        dimension2=by[1] if len(by) == 2 else None,
        reference=cmp.reference,
        strata=len(labels),
        strata_summarised=summary.strata_summarised,
        between_group_variance=summary.between_group_variance,
        index_of_disparity=summary.index_of_disparity,
        index_of_disparity_adverse=summary.index_of_disparity_adverse,
        max_min_ratio=summary.max_min_ratio,
    )
    return rows, srow


def equity_tables(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str] | None,
    by: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    reference: Reference = "largest",
    threshold: int = DEFAULT_THRESHOLD,
    alpha: float = 0.05,
) -> tuple[list[EquityRow], list[EquitySummaryRow]]:
    """Suppressed equity rows and per-measure summaries for many measures and one dimension set."""
    names = resolve_measures(measures)
    slices = (
        center_slices(
            con, names, centers, by, period_start=period_start, period_end=period_end, threshold=threshold
        )
        if centers
        else None
    )
    counts = stratum_counts(con, names, by, period_start=period_start, period_end=period_end, centers=centers)
    return tables_from_counts(
        counts, by, reference=reference, threshold=threshold, alpha=alpha, center_slices=slices
    )


def tables_from_counts(
    counts_list: Sequence[Counts],
    by: Sequence[str],
    *,
    reference: Reference = "largest",
    threshold: int = DEFAULT_THRESHOLD,
    alpha: float = 0.05,
    center_slices: dict[tuple[str, str], dict[str, bool]] | None = None,
) -> tuple[list[EquityRow], list[EquitySummaryRow]]:
    """The pure half of :func:`equity_tables`: statistics and suppression from counts, whichever engine
    counted them (DuckDB here, Spark SQL in :mod:`chc_equity.spark`)."""
    info = _measure_info()
    rows: list[EquityRow] = []
    summaries: list[EquitySummaryRow] = []
    for counts in counts_list:
        cms_id, inverse = info.get(counts.measure, (counts.measure, False))
        hidden = None
        if center_slices is not None:
            mask = center_slices.get((counts.measure, counts.group_id), {})
            hidden = np.array([mask.get(s[0], True) for s in counts.strata], dtype=bool)
        r, s = analyse(
            counts,
            by,
            cms_id=cms_id,
            inverse=inverse,
            reference=reference,
            threshold=threshold,
            alpha=alpha,
            hidden=hidden,
        )
        rows += r
        summaries.append(s)
    return rows, summaries


def center_slices(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str],
    centers: Sequence[str],
    by: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    threshold: int,
) -> dict[tuple[str, str], dict[str, bool]]:
    """Per measure group, which strata of ``centers[0]`` are hidden: its row of the network-wide
    center x dimension plan (:func:`crossed_suppression`).

    A center's table is a slice of that one plan, whose margins are exactly the network-wide one-way
    table (``--by <dimension>``) and the per-center totals; so any set of per-center files, the network
    file and the totals, put together, are parts of one jointly suppressed publication and no hidden
    cell comes back by subtracting one from another (issue 11, item 6).
    """
    if len(centers) != 1 or len(by) != 1 or by[0] == "center":
        raise ValueError(
            "--center takes one center and one --by dimension (its table is a slice of the network-wide "
            "center × dimension plan); for several centers side by side use --by center --by <dimension>"
        )
    out: dict[tuple[str, str], dict[str, bool]] = {}
    for counts in stratum_counts(
        con, names, ["center", by[0]], period_start=period_start, period_end=period_end
    ):
        hidden = crossed_suppression(counts, threshold)
        out[(counts.measure, counts.group_id)] = {
            s[1]: bool(h) for s, h in zip(counts.strata, hidden, strict=True) if s[0] == centers[0]
        }
    return out


def equity_table(
    con: duckdb.DuckDBPyConnection,
    measure: str,
    by: list[str],
    *,
    centers: Sequence[str] | None = None,
    reference: Reference = "largest",
    period_start: date,
    period_end: date,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[EquityRow]:
    """Contract 2: the suppressed equity rows of one measure (all its groups) by one or two dimensions."""
    rows, _ = equity_tables(
        con,
        [measure],
        by,
        period_start=period_start,
        period_end=period_end,
        centers=centers,
        reference=reference,
        threshold=threshold,
    )
    return rows
