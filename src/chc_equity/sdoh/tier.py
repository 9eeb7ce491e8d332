"""The social-risk tier: the one rule, used by the sdoh stage, the CHW worklist and the equity attributes.

A tier counts social-need domains found positive on a patient's screen: 3 or more is ``high``, 1-2
``moderate``, none ``low``; a patient with no screen is ``unscreened``. The synthetic generator plants
its ``sdoh_risk`` strata with the same thresholds (``synth/people.py``), so the planted disparities and
the measured tiers line up.
"""

from __future__ import annotations

HIGH = 3
MODERATE = 1
UNSCREENED = "unscreened"


def tier(positive_domains: int | None) -> str:
    """Tier of a patient whose latest screen has ``positive_domains`` positive domains (None: unscreened)."""
    if positive_domains is None:
        return UNSCREENED
    return "high" if positive_domains >= HIGH else "moderate" if positive_domains >= MODERATE else "low"


def tier_sql(expr: str) -> str:
    """The same rule as a SQL CASE over the expression ``expr`` (NULL: unscreened)."""
    return (
        f"CASE WHEN ({expr}) IS NULL THEN '{UNSCREENED}' WHEN ({expr}) >= {HIGH} THEN 'high' "
        f"WHEN ({expr}) >= {MODERATE} THEN 'moderate' ELSE 'low' END"
    )
