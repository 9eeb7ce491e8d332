"""One sentence, in a quality manager's words, under each equity chart: generated from the numbers shown.

Pure functions of the rows a page already shows (suppressed rows say nothing), so the sentence can never
tell more than the table under it. They know two things a generic sentence gets wrong:

* inverse measures (lower is better, e.g. CMS122 HbA1c > 9 %): a worse group has the *higher* rate and
  closing the gap means fewer in the numerator;
* episode measures (population basis Encounter, e.g. CMS22, CMS177): the counts are encounters, not
  patients (:func:`unit_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from chc_equity.measures.registry import all_measures
from chc_equity.web.analytics import EquityStratum


@cache
def _basis() -> dict[str, str]:
    out: dict[str, str] = {}
    for module in all_measures():
        m = module.measure
        out[m.name] = out[m.cms_id] = m.basis
    return out


def unit_of(measure: str) -> str:
    """What a measure counts, plural: "patients", or "encounters" for an episode (Encounter-based) one."""
    basis = _basis().get(measure, "boolean")
    return "patients" if basis == "boolean" else f"{basis.lower()}s"


def direction(inverse: bool) -> str:
    return "lower is better" if inverse else "higher is better"


def _points(diff: float) -> str:
    pts = round(abs(diff) * 100)
    return f"{pts} point" + ("" if pts == 1 else "s")


def _group(label: str, unit: str) -> str:
    """ "Black non-Hispanic patients"; "Encounters of Hispanic patients"; Unknown as "... whose value is
    unknown"."""
    if label == "Unknown":
        return f"{unit.capitalize()} whose value is unknown"
    return f"{label} {unit}" if unit == "patients" else f"{unit.capitalize()} of {label} patients"


def _compared(label: str, unit: str) -> str:
    if label == "Unknown":
        return f"{unit} whose value is unknown"
    return f"{label} patients" if unit == "patients" else f"those of {label} patients"


def stratum_sentence(
    row: EquityStratum,
    reference: EquityStratum | None,
    *,
    cms_id: str,
    inverse: bool,
    unit: str,
    where: str = "",
    reference_rule: str = "the largest group",
) -> str:
    """The one-sentence reading of a stratum against its reference ("" when there is nothing to say).

    ``where``: " at c03" or "" (network). Example (higher is better): "Black non-Hispanic patients at c03
    are 17 points less likely to meet CMS165 than Hispanic patients (the reference group: the largest
    group); 61 more patients would need to meet it to close the gap."
    """
    if reference is None or row.is_reference or row.rate is None or reference.rate is None:
        return ""
    diff = row.rate - reference.rate
    who = _group(row.stratum, unit) + where
    ref_phrase = _compared(reference.stratum, unit)
    tail = f" ({'the reference group: ' + reference_rule})"
    if round(abs(diff) * 100) == 0:
        return f"{who} meet {cms_id} at about the same rate as {ref_phrase}{tail}."
    if inverse:  # the numerator is the bad outcome
        more = "more" if diff > 0 else "less"
        lead = f"{who} are {_points(diff)} {more} likely to be in {cms_id}'s numerator (lower is better)"
    else:
        more = "more" if diff > 0 else "less"
        lead = f"{who} are {_points(diff)} {more} likely to meet {cms_id}"
    sentence = f"{lead} than {ref_phrase}{tail}"
    worse = diff > 0 if inverse else diff < 0
    gap = row.gap_to_equity
    if worse and gap:
        if inverse:
            sentence += f"; {gap:,} fewer {unit} would need to be in the numerator to close the gap"
        else:
            sentence += f"; {gap:,} more {unit} would need to meet it to close the gap"
    if worse and not row.worse:
        sentence += " (not statistically significant: q ≥ 0.05)"
    return sentence + "."


def headline(rows: Sequence[EquityStratum], *, cms_id: str, inverse: bool, unit: str, where: str = "") -> str:
    """The sentence under a forest plot: its largest significant gap, else what the chart shows."""
    from chc_equity.equity.ranking import largest_inequities

    worst = largest_inequities(
        rows,
        worse=lambda s: s.worse,
        gap=lambda s: s.gap_to_equity,
        q=lambda s: s.q_value,
        suppressed=lambda s: s.suppressed,
    )
    if worst:
        top = worst[0]
        ref = reference_of(rows, top)
        return stratum_sentence(top, ref, cms_id=cms_id, inverse=inverse, unit=unit, where=where)
    shown = [s for s in rows if s.rate is not None]
    if not shown:
        return f"No group{where} can be shown: every count is suppressed or missing."
    return (
        f"No group{where} is significantly worse than its reference group on {cms_id} "
        f"(q < 0.05; {direction(inverse)}); the chart shows each group's rate with its 95% interval."
    )


def reference_of(rows: Sequence[EquityStratum], row: EquityStratum) -> EquityStratum | None:
    """The reference stratum of ``row``'s measure group and dimension among ``rows``."""
    return next(
        (
            s
            for s in rows
            if s.is_reference
            and (s.measure, s.group_id, s.dimension) == (row.measure, row.group_id, row.dimension)
        ),
        None,
    )
