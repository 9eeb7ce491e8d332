"""Join statistics and suppression into rows that may leave the system.

Every per-stratum statistic is a function of the stratum's counts (the Wilson interval or the gap to
equity, given the denominator, gives the numerator back), so when a stratum's rate is suppressed *all*
of its statistics are blanked, not just the count.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from chc_equity.equity.stats import EquityComparison
from chc_equity.equity.suppression import MeasureSuppression

# "unreliable" (denominator under 20) is blanked too: on a hidden stratum it would bound its denominator.
_ALWAYS_KEPT = ("label",)


def publishable_rows(comparison: EquityComparison, suppression: MeasureSuppression) -> list[dict[str, Any]]:
    """Rows of ``comparison`` with suppressed values replaced by ``None`` and a ``suppressed`` flag.

    ``comparison`` must have been computed with ``shown=suppression.shown`` so that the BH family, the
    reference and the summaries only involve published strata; this is checked.
    """
    if tuple(s.label for s in comparison.strata) != suppression.labels:
        raise ValueError("comparison and suppression describe different strata")
    rows: list[dict[str, Any]] = []
    for i, stratum in enumerate(comparison.strata):
        row = asdict(stratum)
        hidden_rate = bool(suppression.rate_suppressed[i])
        if stratum.is_reference and hidden_rate:
            raise ValueError("reference stratum is suppressed: compute the comparison with shown=")
        if hidden_rate and stratum.q_value is not None:
            raise ValueError("suppressed stratum is in the BH family: compute the comparison with shown=")
        if hidden_rate:
            for key in row:
                if key not in _ALWAYS_KEPT:
                    row[key] = None
            # Counts that are themselves published stay (e.g. a denominator whose numerator is hidden).
            if not suppression.denominator_suppressed[i]:
                row["denominator"] = stratum.denominator
            if not suppression.numerator_suppressed[i]:
                row["numerator"] = stratum.numerator
        row["suppressed"] = hidden_rate
        rows.append(row)
    return rows
