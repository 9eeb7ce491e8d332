"""Small-cell suppression of the counts a viewer sees (viewers get suppressed aggregates only).

Counts of people (patients per center, patients with an unknown demographic value) and resource counts
go through :func:`chc_equity.equity.suppression.suppress` with their published total, so a hidden cell
can not be rebuilt by subtraction. Load and reject counts describe files and records, not people, and are
shown as they are.
"""

from __future__ import annotations

from dataclasses import replace

from chc_equity.equity.suppression import one_way_table, suppress
from chc_equity.web.data import CenterSummary, UnknownRate


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
