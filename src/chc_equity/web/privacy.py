"""Small-cell suppression of the counts a viewer sees (viewers get suppressed aggregates only).

Measure cells follow the precomputed publication plan (:mod:`chc_equity.network.plan`), made over
everything published about a measure group at once; the functions here only apply it.

Counts of people (patients per center, patients with an unknown demographic value) and resource counts
go through :func:`chc_equity.equity.suppression.suppress` with their published total, so a hidden cell
can not be rebuilt by subtraction. Load and reject counts describe files and records, not people, and are
shown as they are.
"""

from __future__ import annotations

from dataclasses import replace

from chc_equity.equity.suppression import one_way_table, suppress
from chc_equity.web.analytics import Cell, EquityStratum, Plan
from chc_equity.web.data import CenterSummary, UnknownRate

SMALL_CELL = 11  # counts 1 to SMALL_CELL - 1 are suppressed


def suppress_rate(rate: UnknownRate) -> UnknownRate:
    """Suppress (known, unknown, total patients) together; hidden quantities become None."""
    if rate.patients is None or rate.unknown is None:
        return rate
    table = one_way_table([rate.patients - rate.unknown, rate.unknown], ["known", "unknown"])
    _known, unknown, total = suppress(table).published()
    return replace(rate, patients=total, unknown=unknown if total is not None else None)


def suppress_center(summary: CenterSummary) -> CenterSummary:
    """Resource counts by type with their total; suppressed ones become None."""
    kinds = sorted(summary.by_type)
    if not kinds:
        return summary
    published = suppress(one_way_table([summary.by_type[k] for k in kinds], kinds)).published()
    by_type = dict(zip(kinds, published[:-1], strict=True))
    return replace(summary, resources=published[-1], by_type=by_type)


def suppress_cell(cell: Cell, plan: Plan) -> Cell:
    """A measure cell as a viewer sees it, following the period's publication plan (``agg_suppression``).

    The plan was made once over the heat map, the network row and every equity stratum together, so no
    hidden count comes back by subtracting one published table from another. The rate (and its interval,
    test, signal and funnel band) is shown only when both the numerator and its complement are: a rate
    next to a published denominator gives the hidden numerator back. Other population counts (initial
    population, exclusions, exceptions) are not shown to viewers.
    """
    hidden: dict[str, object] = (
        dict.fromkeys(("rate", "ci_low", "ci_high", "p_value", "signal", "band")) if plan.rate_hidden else {}
    )
    return replace(
        cell,
        initial_population=None,
        denominator=None,
        denominator_exclusion=None,
        denominator_exception=None,
        numerator_exclusion=None,
        numerator=None if plan.numerator_hidden else cell.numerator,
        performance_denominator=None if plan.denominator_hidden else cell.performance_denominator,
        **hidden,
    )


def without_network(cell: Cell) -> Cell:
    """A cell with nothing derived from the network's counts: the network cell loses every number, a
    center cell its network rate and its test against the rest of the network (p, signal, band)."""
    if cell.is_network:
        return replace(
            cell,
            **dict.fromkeys(
                (
                    "initial_population",
                    "denominator",
                    "denominator_exclusion",
                    "denominator_exception",
                    "numerator",
                    "numerator_exclusion",
                    "performance_denominator",
                    "rate",
                    "ci_low",
                    "ci_high",
                    "network_rate",
                )
            ),
        )
    return replace(cell, network_rate=None, p_value=None, signal=None, band=None)


def suppress_stratum(row: EquityStratum) -> EquityStratum:
    """An equity stratum as a viewer sees it: counts and rate hidden when met or not-met is 1-10."""
    if row.numerator is None or row.denominator is None:
        return row
    small = any(0 < v < SMALL_CELL for v in (row.numerator, row.denominator - row.numerator))
    if not small and not row.suppressed:
        return row
    return replace(
        row,
        numerator=None,
        denominator=None,
        rate=None,
        ci_low=None,
        ci_high=None,
        rate_difference=None,
        p_value=None,
        q_value=None,
        gap_to_equity=None,
        worse=None,
        suppressed=True,
    )
