"""The "largest inequities" ranking: strata significantly worse than their reference, largest gap first.

One rule for the static report and the web app's "largest inequities" pages. A stratum qualifies when
the equity package flagged it worse than its reference (q < 0.05 after the Benjamini-Hochberg
correction over the measure's strata: :mod:`chc_equity.equity.significance`) and it is not suppressed;
the order is the gap to equity (how many more patients -- or encounters, for episode measures -- of the
group would have to meet the measure for its rate to equal the reference's), then the q-value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def largest_inequities(
    rows: Iterable[T],
    *,
    worse: Callable[[T], bool | None],
    gap: Callable[[T], int | None],
    q: Callable[[T], float | None],
    suppressed: Callable[[T], bool | None],
    limit: int | None = None,
) -> list[T]:
    """``rows`` flagged worse and shown, largest gap to equity first (ties: smaller q first)."""
    kept = [r for r in rows if worse(r) and not suppressed(r)]
    kept.sort(key=lambda r: (-(gap(r) or 0), q(r) if q(r) is not None else 1.0))
    return kept if limit is None else kept[:limit]
