"""The publication plan of one precomputed period: what suppressed and center-bound audiences may see.

Planned once, at precompute, over the union of everything the web app publishes about a measure group
(heat-map cells of every center, the network row, the equity strata of every dimension) with
:func:`chc_equity.equity.joint.plan_group`, and written to ``agg_suppression``:

* one row per measure x group x center (and the network, ``center = '*'``) saying which of met, not met
  and the performance denominator are hidden from viewers;
* ``network_withheld`` on a center's row: users bound to that center get no network number at all for
  this group (network row, rates, p-values, funnel lines, equity strata), because the network minus
  their own center would be a small cell, or would be a single other center (fewer than
  :data:`MIN_CENTERS_FOR_NETWORK` centers).

The equity strata in ``agg_equity`` are already suppressed by the equity package; the plan only ever
hides more, and :func:`apply_to_equity` blanks those rows in place (counts, rate and every statistic).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chc_equity.equity.joint import Hidden, Partition, plan_group, rest_is_small
from chc_equity.equity.stratify import CROSS, Counts
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.measures.summary import Summary

NETWORK = "*"
CENTERS = "center"  # partition name of the heat map's split
# With fewer centers, "the network minus my center" is one other center: never shown to bound users.
MIN_CENTERS_FOR_NETWORK = 3
# Statistics blanked with a stratum's rate (every one of them is a function of the stratum's counts).
STRATUM_STATS = (
    "rate",
    "ci_low",
    "ci_high",
    "rate_difference",
    "diff_ci_low",
    "diff_ci_high",
    "rate_ratio",
    "p_value",
    "q_value",
    "gap_to_equity",
    "unreliable",
)

DDL = """
    CREATE TABLE IF NOT EXISTS agg_suppression (
        period_start DATE NOT NULL, period_end DATE NOT NULL, measure VARCHAR NOT NULL,
        group_id VARCHAR NOT NULL, center VARCHAR NOT NULL, numerator_hidden BOOLEAN NOT NULL,
        not_met_hidden BOOLEAN NOT NULL, denominator_hidden BOOLEAN NOT NULL,
        network_withheld BOOLEAN NOT NULL)"""


def _strata_partition(counts: Counts, rows: list[dict[str, Any]]) -> Partition:
    """Stratum counts with the equity package's own suppression as ``hidden_before``, reference locked."""
    labels = [CROSS.join(s) for s in counts.strata]
    by_label = {r["stratum"]: r for r in rows}
    x_h = [by_label[lab]["numerator"] is None for lab in labels]
    d_h = [by_label[lab]["denominator"] is None for lab in labels]
    y_h = [bool(by_label[lab]["suppressed"]) for lab in labels]
    ref = [bool(by_label[lab]["is_reference"]) for lab in labels]
    return Partition.of(labels, counts.numerators, counts.denominators, (x_h, y_h, d_h), locked=ref)


def publication_plan(
    summaries: list[Summary],
    network: list[Summary],
    equity_data: list[dict[str, Any]],
    strata: dict[tuple[str, str, str], Counts],
    threshold: int = DEFAULT_THRESHOLD,
) -> list[dict[str, Any]]:
    """agg_suppression rows (without period columns); blanks newly hidden strata of ``equity_data``."""
    centers: dict[tuple[str, str], list[Summary]] = defaultdict(list)
    for s in summaries:
        centers[(s.measure, s.group_id)].append(s)
    equity_by: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in equity_data:  # a center's own strata are not published to viewers: not in this plan
        if row["center"] == NETWORK:
            equity_by[(row["measure"], row["group_id"], row["dimension"])].append(row)
    out: list[dict[str, Any]] = []
    for net in network:
        key = (net.measure, net.group_id)
        mine = centers.get(key, [])
        parts = {
            CENTERS: Partition.of(
                [s.center for s in mine],
                [s.numerator for s in mine],
                [s.performance_denominator for s in mine],
            )
        }
        for (measure, group, dim), counts in strata.items():
            if (measure, group) == key:
                parts[dim] = _strata_partition(counts, equity_by[(measure, group, dim)])
        plan = plan_group(parts, threshold)
        base = {"measure": net.measure, "group_id": net.group_id}
        out.append({**base, **_hidden(plan.network, 0), "center": NETWORK, "network_withheld": False})
        for i, s in enumerate(mine):
            withheld = len(mine) < MIN_CENTERS_FOR_NETWORK or rest_is_small(
                s.numerator, s.performance_denominator, net.numerator, net.performance_denominator, threshold
            )
            out.append(
                {
                    **base,
                    **_hidden(plan.partitions[CENTERS], i),
                    "center": s.center,
                    "network_withheld": withheld,
                }
            )
        for dim in parts.keys() - {CENTERS}:
            apply_to_equity(equity_by[(net.measure, net.group_id, dim)], parts[dim], plan.partitions[dim])
    return out


def _hidden(h: Hidden, i: int) -> dict[str, bool]:
    return {
        "numerator_hidden": bool(h.met[i]),
        "not_met_hidden": bool(h.not_met[i]),
        "denominator_hidden": bool(h.denominator[i]),
    }


def apply_to_equity(rows: list[dict[str, Any]], part: Partition, hidden: Hidden) -> None:
    """Blank, in place, the agg_equity rows the joint plan hides beyond the equity package's own plan."""
    index = {label: i for i, label in enumerate(part.labels)}
    for row in rows:
        i = index[row["stratum"]]
        if bool(hidden.met[i]):
            row["numerator"] = None
        if bool(hidden.denominator[i]):
            row["denominator"] = None
        if bool(hidden.rate[i]):
            row.update(dict.fromkeys(STRATUM_STATS))
            row.update(worse=False, better=False, suppressed=True)
