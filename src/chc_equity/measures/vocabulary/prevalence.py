"""QICoreCommon ``Condition.prevalenceInterval()`` and the CQL phrases measures apply to it.

``prevalenceInterval()`` (QICoreCommon 4.0.000)::

    if C.clinicalStatus ~ "active" or C.clinicalStatus ~ "recurrence" or C.clinicalStatus ~ "relapse" then
      Interval[start of C.onset.toInterval(), end of C.abatementInterval()]
    else
      (end of C.abatementInterval()) abatementDate
        return if abatementDate is null then
          Interval[start of C.onset.toInterval(), abatementDate)
        else
          Interval[start of C.onset.toInterval(), abatementDate]

``c`` is the flat.condition row alias; ``birth`` the patient's birthDate (an onset or abatement given as
an Age counts from it). Comparisons ``... day of Interval[lo, hi]`` take ``lo``/``hi`` as SQL DATEs.
"""

from __future__ import annotations

from chc_equity.measures.vocabulary.sql import sql_str

CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def is_active(c: str) -> str:
    """``clinicalStatus ~ active | recurrence | relapse`` (the branch test of prevalenceInterval)."""
    return (
        f"coalesce({c}.clinical_status_system = {sql_str(CLINICAL_SYSTEM)} "
        f"AND {c}.clinical_status_code IN ('active', 'recurrence', 'relapse'), FALSE)"
    )


def _age_date(birth: str, age_value: str, age_unit: str) -> str:
    """``Patient.birthDate + (age as Quantity)`` for an Age in years (or months / days) as a TIMESTAMP."""
    return (
        f"CAST((CASE WHEN {age_unit} IN ('a', 'year', 'years', 'yr') "
        f"THEN fhir_date({birth}) + to_years(CAST(trunc({age_value}) AS INTEGER)) "
        f"WHEN {age_unit} IN ('mo', 'month', 'months') "
        f"THEN fhir_date({birth}) + to_months(CAST(trunc({age_value}) AS INTEGER)) "
        f"WHEN {age_unit} IN ('d', 'day', 'days') "
        f"THEN fhir_date({birth}) + to_days(CAST(trunc({age_value}) AS INTEGER)) END) AS TIMESTAMP)"
    )


def onset_start_ts(c: str, birth: str) -> str:
    """``start of <c>.onset.toInterval()`` as a TIMESTAMP (null when unknown or unbounded)."""
    return (
        f"coalesce(fhir_ts({c}.onset_datetime), fhir_ts({c}.onset_period_start), "
        f"{_age_date(birth, f'{c}.onset_age_value', f'{c}.onset_age_unit')})"
    )


def abatement_end_ts(c: str, birth: str) -> str:
    """``end of <c>.abatementInterval()`` as a TIMESTAMP, null when there is no usable abatement.

    abatementPeriod is ``Interval[low, high)`` and abatementAge ``[birth + age, birth + age + 1 year)``:
    the end of a half-open interval is the instant (millisecond) before its high bound.
    """
    age_start = _age_date(birth, f"{c}.abatement_age_value", f"{c}.abatement_age_unit")
    return (
        f"coalesce(fhir_ts({c}.abatement_datetime), "
        f"fhir_ts({c}.abatement_period_end) - INTERVAL 1 MILLISECOND, "
        f"{age_start} + INTERVAL 1 YEAR - INTERVAL 1 MILLISECOND)"
    )


def onset_start(c: str, birth: str) -> str:
    """:func:`onset_start_ts` as a DATE (for ``day of`` comparisons)."""
    return f"CAST({onset_start_ts(c, birth)} AS DATE)"


def abatement_end(c: str, birth: str) -> str:
    """:func:`abatement_end_ts` as a DATE (for ``day of`` comparisons)."""
    return f"CAST({abatement_end_ts(c, birth)} AS DATE)"


def _prevalence_overlaps(c: str, start: str, end: str, lo: str, hi: str) -> str:
    """Closed ``Interval[start, end]`` overlaps ``[lo, hi]`` when the end is known (active, or abated);
    ``Interval[start, null)`` (not active, no abatement) has an unknown end, and cql-execution answers
    null -- never true -- for its overlap, whatever the onset: the official case CMS347
    DENEXPop2Fail-RhabdomyolysisStatusInactive (onset inside the period) expects exactly that."""
    return (
        f"(CASE WHEN {is_active(c)} OR {end} IS NOT NULL "
        f"THEN coalesce({start} <= {hi}, TRUE) AND coalesce({end} >= {lo}, TRUE) "
        f"ELSE FALSE END)"
    )


def prevalence_overlaps_day(c: str, birth: str, lo: str, hi: str) -> str:
    """``<c>.prevalenceInterval() overlaps day of Interval[lo, hi]`` (``birth``: the patient's birthDate).

    Active (or recurrence / relapse): ``Interval[onset start, abatement end]``, both closed, so a missing
    boundary is unbounded. Otherwise with an abatement: the same closed interval. Otherwise (not active
    and no abatement, including no clinicalStatus): ``Interval[onset start, null)``, whose unknown end
    makes the overlap null, i.e. not true, even for an onset within ``[lo, hi]`` (cql-execution; see
    :func:`_prevalence_overlaps`).
    """
    return _prevalence_overlaps(c, onset_start(c, birth), abatement_end(c, birth), lo, hi)


def prevalence_overlaps(c: str, birth: str, lo_ts: str, hi_ts: str) -> str:
    """``<c>.prevalenceInterval() overlaps Interval[lo_ts, hi_ts]`` at full (millisecond) precision;
    ``lo_ts``/``hi_ts`` are inclusive TIMESTAMP expressions (for a half-open interval pass the instant
    before its high bound). Same boundary rules as :func:`prevalence_overlaps_day`."""
    return _prevalence_overlaps(c, onset_start_ts(c, birth), abatement_end_ts(c, birth), lo_ts, hi_ts)


def prevalence_starts_during_day(c: str, birth: str, lo: str, hi: str) -> str:
    """``<c>.prevalenceInterval() starts during day of Interval[lo, hi]``: a known onset start within it
    (a missing start is the minimum date, before any such interval)."""
    return f"coalesce({onset_start(c, birth)} BETWEEN {lo} AND {hi}, FALSE)"


def prevalence_starts_on_or_before_day(c: str, birth: str, hi: str) -> str:
    """``<c>.prevalenceInterval() starts on or before day of <hi>``: a missing onset is a closed null
    low boundary, i.e. the minimum date, which is on or before anything."""
    return f"coalesce({onset_start(c, birth)} <= {hi}, TRUE)"


def prevalence_overlaps_before_day(c: str, birth: str, lo: str, hi: str) -> str:
    """``<c>.prevalenceInterval() overlaps before day of Interval[lo, hi]``: overlaps it and starts
    before ``lo`` (a missing onset is the minimum date, so it starts before)."""
    return f"({prevalence_overlaps_day(c, birth, lo, hi)} AND coalesce({onset_start(c, birth)} < {lo}, TRUE))"
