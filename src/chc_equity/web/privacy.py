"""Small-cell suppression of the counts a viewer sees (viewers get suppressed aggregates only).

Measure cells follow the precomputed publication plan (:mod:`chc_equity.network.plan`), made over
everything published about a measure group at once; the functions here only apply it.

Counts of people (patients per center, patients with an unknown demographic value) and counts of
resources about people go through :func:`chc_equity.equity.suppression.suppress` with their published
total, so a hidden cell can not be rebuilt by subtraction. Load and reject counts describe files and
records, and Location / Organization (and other non-person) resource counts describe a center's sites and
partners, not people: they are shown as they are.

Every hidden count carries *why* (:data:`SMALL` or :data:`COMPLEMENTARY`), so a page can say
"suppressed (small number)" or "hidden so that another cell cannot be recovered" -- never its value.
"""

from __future__ import annotations

from dataclasses import replace

from chc_equity.equity.suppression import one_way_table, suppress
from chc_equity.web.analytics import Cell, EquityStratum, Plan
from chc_equity.web.data import CenterSummary, UnknownRate

SMALL_CELL = 11  # counts 1 to SMALL_CELL - 1 are suppressed
SMALL = "small"  # primary: the count (or its complement) is 1 to 10
COMPLEMENTARY = "complementary"  # hidden so that a small cell cannot be recovered by subtraction
# Resource types that are not about people (a center's sites, partners, catalogue entries): not suppressed.
NOT_PEOPLE: frozenset[str] = frozenset(
    {"Location", "Organization", "Endpoint", "HealthcareService", "Medication", "Device", "Substance"}
)


def reason(*counts: int | None) -> str:
    """Why a hidden cell is hidden: SMALL when one of its own counts is 1-10, else COMPLEMENTARY."""
    return SMALL if any(c is not None and 0 < c < SMALL_CELL for c in counts) else COMPLEMENTARY


def suppress_rate(rate: UnknownRate) -> UnknownRate:
    """Suppress (known, unknown, total patients) together; hidden quantities become None."""
    if rate.patients is None or rate.unknown is None:
        return rate
    table = one_way_table([rate.patients - rate.unknown, rate.unknown], ["known", "unknown"])
    result = suppress(table)
    _known, unknown, total = result.published()
    why = {
        name: (SMALL if bool(result.primary[i]) else COMPLEMENTARY)
        for name, i in (("unknown", 1), ("patients", 2))
        if bool(result.suppressed[i])
    }
    if total is None and "unknown" not in why:
        why["unknown"] = COMPLEMENTARY
    return replace(rate, patients=total, unknown=unknown if total is not None else None, hidden=why)


def suppress_center(summary: CenterSummary) -> CenterSummary:
    """Resource counts by type; those about people are suppressed with their total (None, with why).

    The all-resources total is published only when the people total is (it would give it back).
    """
    kinds = sorted(k for k in summary.by_type if k not in NOT_PEOPLE)
    if not kinds:
        return summary
    result = suppress(one_way_table([summary.by_type[k] or 0 for k in kinds], kinds))
    published = result.published()
    by_type = dict(summary.by_type)
    hidden: dict[str, str] = {}
    for i, k in enumerate(kinds):
        by_type[k] = published[i]
        if published[i] is None:
            hidden[k] = SMALL if bool(result.primary[i]) else COMPLEMENTARY
    others = sum(n or 0 for k, n in summary.by_type.items() if k in NOT_PEOPLE)
    total = None if published[-1] is None else published[-1] + others
    if total is None:
        hidden["*"] = SMALL if bool(result.primary[-1]) else COMPLEMENTARY
    return replace(summary, resources=total, by_type=by_type, hidden=hidden)


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
    why: dict[str, str] = {}
    if plan.numerator_hidden:
        not_met = (
            None
            if cell.numerator is None or cell.performance_denominator is None
            else (cell.performance_denominator - cell.numerator)
        )
        why["numerator"] = reason(cell.numerator, not_met)
    if plan.denominator_hidden:
        why["performance_denominator"] = reason(cell.performance_denominator)
    return replace(
        cell,
        hidden=why,
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
    """An equity stratum as a viewer sees it: counts and rate hidden when met or not-met is 1-10.

    A stratum already blanked at precompute (the equity package's or the joint plan's suppression) has
    no counts left to tell why: its reason stays None ("small number, or to protect another cell").
    """
    if row.numerator is None or row.denominator is None:
        return row
    small = any(0 < v < SMALL_CELL for v in (row.numerator, row.denominator - row.numerator))
    if not small and not row.suppressed:
        return row
    return replace(
        row,
        hidden_reason=SMALL if small else COMPLEMENTARY,
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
