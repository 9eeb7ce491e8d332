"""The one definition of an open care gap, shared by the web's care-gap lists, the CHW worklist, the
pediatric lists and the payer-gap merge.

A *care gap* of a measure is a subject in the denominator, not excluded and not excepted, that has not
met the numerator -- or, for an inverse measure (CMS122 HbA1c > 9 %, CMS75 dental decay: lower is
better), a subject that **is** in the numerator. Gaps are read for a precomputed run (``agg_measure``
names the measures, titles and directions of that run), so every list agrees with the pages' counts.
"""

from __future__ import annotations

import functools

from chc_equity.measures.engine import RESULTS_TABLE

# Encounters that did not (or will not) happen are not visits.
NOT_A_VISIT = ("cancelled", "entered-in-error")


@functools.cache
def _actions() -> dict[str, str]:
    """CMS id -> what closes the gap (``Measure.care_gap``, written next to each measure's logic)."""
    from chc_equity.measures.registry import all_measures

    return {m.measure.cms_id: m.measure.care_gap for m in all_measures()}


def gap_reason(cms_id: str, title: str, inverse: bool) -> str:
    """Why the patient is on the list and what would close the gap, in a CHW's words."""
    why = "In the numerator of an inverse measure (lower is better)" if inverse else "Not yet met"
    return f"{why}: {_actions().get(cms_id) or title}"


def open_gaps_sql(measure_filter: str = "TRUE") -> str:
    """The open care gaps of one center in a precomputed run, as a query.

    Columns: patient_id, group_id, cms_id, title, inverse. Parameters, in order: period_start,
    period_end (of the precomputed run), center, period_start, period_end, then those of
    ``measure_filter`` (a condition on ``r.*``, the ``measure_results`` row).
    """
    return f"""
        WITH meta AS (
            SELECT DISTINCT measure, group_id, cms_id, title, inverse FROM agg_measure
             WHERE period_start = ? AND period_end = ?
        )
        SELECT r.patient_id, r.group_id, m.cms_id, m.title, m.inverse
          FROM {RESULTS_TABLE} r JOIN meta m USING (measure, group_id)
         WHERE r.center = ? AND r.period_start = ? AND r.period_end = ?
           AND r.denominator AND NOT r.denominator_exclusion AND NOT r.denominator_exception
           AND (CASE WHEN m.inverse THEN r.numerator ELSE NOT r.numerator END)
           AND {measure_filter}
    """
