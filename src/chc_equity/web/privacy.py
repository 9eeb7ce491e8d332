"""Small-cell suppression of the counts a viewer sees (viewers get suppressed aggregates only).

Counts of people (patients per center, patients with an unknown demographic value) and resource counts
go through :func:`chc_equity.equity.suppression.suppress` with their published total, so a hidden cell
can not be rebuilt by subtraction. Load and reject counts describe files and records, not people, and are
shown as they are.
"""

from __future__ import annotations

from dataclasses import replace

from chc_equity.equity.suppression import one_way_table, suppress
from chc_equity.web.analytics import Cell, EquityStratum
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


def suppress_cell(cell: Cell) -> Cell:
    """A measure cell as a viewer sees it: met / not met / performance denominator suppressed together.

    The rate (and its interval, test and funnel band) is shown only when both the numerator and its
    complement are published: a rate of a small cell, or 1 minus one, would reveal the hidden count.
    Other population counts (initial population, exclusions, exceptions) are not shown to viewers.
    """
    if cell.numerator is None or cell.performance_denominator is None:
        return cell
    met, denom = cell.numerator, cell.performance_denominator
    table = one_way_table([met, max(denom - met, 0)], ["met", "not met"])
    pub_met, pub_not, pub_total = suppress(table).published()
    visible = pub_met is not None and pub_not is not None
    hidden: dict[str, object] = (
        {} if visible else dict.fromkeys(("rate", "ci_low", "ci_high", "p_value", "signal", "band"))
    )
    return replace(
        cell,
        initial_population=None,
        denominator=None,
        denominator_exclusion=None,
        denominator_exception=None,
        numerator_exclusion=None,
        numerator=pub_met,
        performance_denominator=pub_total,
        **hidden,
    )


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
