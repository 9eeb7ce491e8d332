"""Equity views for the pages: panels of strata, a chosen reference group, and the "largest inequities".

The statistics are the equity package's (:func:`chc_equity.equity.stats.compare_strata`, the ranking of
:mod:`chc_equity.equity.ranking`); this module only regroups the precomputed ``agg_equity`` rows for a
page and, when the user picks another reference group, compares the *published* counts with it again
(suppressed strata have no counts here, so a recomputed number can never depend on a hidden one).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from chc_equity.equity.labels import UNKNOWN
from chc_equity.equity.ranking import largest_inequities
from chc_equity.equity.stats import compare_strata
from chc_equity.web import plainwords
from chc_equity.web.analytics import EquityStratum

PanelKey = tuple[str, str, str]  # (measure, group_id, dimension)


def panels(rows: list[EquityStratum]) -> dict[PanelKey, list[EquityStratum]]:
    """Rows grouped per measure group x dimension, in the order given."""
    out: dict[PanelKey, list[EquityStratum]] = defaultdict(list)
    for r in rows:
        out[(r.measure, r.group_id, r.dimension)].append(r)
    return dict(out)


def with_reference(rows: list[EquityStratum], label: str | None, *, inverse: bool) -> list[EquityStratum]:
    """The rows compared with stratum ``label`` instead of the largest group, in every panel where that
    stratum is shown (other panels unchanged). Only published counts take part."""
    if not label:
        return rows
    out: list[EquityStratum] = []
    for panel in panels(rows).values():
        labels = [r.stratum for r in panel]
        shown = np.array([r.numerator is not None and r.denominator is not None for r in panel])
        if label not in labels or not shown[labels.index(label)]:
            out.extend(panel)
            continue
        x = [r.numerator if s else 0 for r, s in zip(panel, shown, strict=True)]
        n = [r.denominator if s else 0 for r, s in zip(panel, shown, strict=True)]
        cmp = compare_strata(
            labels, x, n, inverse=inverse, reference="named", reference_label=label, shown=shown,
            unranked=[UNKNOWN] if label != UNKNOWN else [],
        )  # fmt: skip
        for r, st, s in zip(panel, cmp.strata, shown, strict=True):
            if not s:
                out.append(r)
                continue
            out.append(
                replace(
                    r,
                    is_reference=st.is_reference,
                    rate_difference=st.rate_difference,
                    p_value=st.p_value,
                    q_value=st.q_value,
                    gap_to_equity=st.gap_to_equity,
                    worse=st.worse_than_reference,
                )
            )
    return out


def reference_choices(rows: list[EquityStratum]) -> list[str]:
    """Stratum labels that can be a reference (shown somewhere), in first-seen order."""
    return list(dict.fromkeys(r.stratum for r in rows if r.numerator is not None and r.denominator))


@dataclass(frozen=True, slots=True)
class Inequity:
    """One row of the "largest inequities" page: a stratum worse than its reference, and its sentence."""

    row: EquityStratum
    reference: EquityStratum | None
    cms_id: str
    title: str
    inverse: bool
    unit: str
    sentence: str


def rank(
    rows: list[EquityStratum], meta: dict[str, tuple[str, str, bool]], *, where: str = "", limit: int = 50
) -> list[Inequity]:
    """The ranking (one rule: :func:`chc_equity.equity.ranking.largest_inequities`) with a sentence each.

    ``meta``: measure name -> (CMS id, title, inverse).
    """
    top = largest_inequities(
        rows,
        worse=lambda s: s.worse,
        gap=lambda s: s.gap_to_equity,
        q=lambda s: s.q_value,
        suppressed=lambda s: s.suppressed,
        limit=limit,
    )
    out = []
    for r in top:
        cms_id, title, inverse = meta.get(r.measure, (r.measure, r.measure, False))
        unit = plainwords.unit_of(r.measure)
        ref = plainwords.reference_of(rows, r)
        sentence = plainwords.stratum_sentence(r, ref, cms_id=cms_id, inverse=inverse, unit=unit, where=where)
        out.append(Inequity(r, ref, cms_id, title, inverse, unit, sentence))
    return out
