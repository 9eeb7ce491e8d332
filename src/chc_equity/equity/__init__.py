"""Health-equity statistics: disparity measures against a reference group and small-cell suppression.

Pure core with plain-Python/numpy inputs; the stratification layer feeds it counts per stratum.
Typical use for one measure x dimension::

    sup = suppress_measure(labels, numerators, denominators)
    cmp = compare_strata(labels, numerators, denominators, inverse=False, shown=sup.shown)
    rows = publishable_rows(cmp, sup)
"""

from chc_equity.equity.disparity import (
    between_group_variance,
    gap_to_equity,
    index_of_disparity,
    max_min_ratio,
)
from chc_equity.equity.labels import UNKNOWN, stratum_label
from chc_equity.equity.publish import publishable_rows
from chc_equity.equity.stats import DisparitySummary, EquityComparison, StratumStats, compare_strata
from chc_equity.equity.suppression import (
    LinearTable,
    MeasureSuppression,
    Suppression,
    one_way_table,
    suppress,
    suppress_measure,
    two_way_table,
)

__all__ = [
    "UNKNOWN",
    "DisparitySummary",
    "EquityComparison",
    "LinearTable",
    "MeasureSuppression",
    "StratumStats",
    "Suppression",
    "between_group_variance",
    "compare_strata",
    "gap_to_equity",
    "index_of_disparity",
    "max_min_ratio",
    "one_way_table",
    "publishable_rows",
    "stratum_label",
    "suppress",
    "suppress_measure",
    "two_way_table",
]
