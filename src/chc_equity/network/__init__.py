"""Network analytics: centers x measures, funnel-plot limits, center-vs-network tests, and the
``agg_*`` tables the web pages read (:func:`precompute`, run after each load / ``measures run``)."""

from chc_equity.network.precompute import AGG_TABLES, NETWORK, PrecomputeResult, ensure_tables, precompute
from chc_equity.network.stats import CenterComparison, compare_centers, funnel_grid, funnel_limits

__all__ = [
    "AGG_TABLES",
    "NETWORK",
    "CenterComparison",
    "PrecomputeResult",
    "compare_centers",
    "ensure_tables",
    "funnel_grid",
    "funnel_limits",
    "precompute",
]
