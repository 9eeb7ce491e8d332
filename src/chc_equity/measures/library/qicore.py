"""CQL library ``QICoreCommon`` (4.0.000) interval functions, as SQL predicates at day precision.

Measures compare these intervals ``... day of`` an interval of dates (usually the Measurement Period),
so every predicate here takes the comparison interval as two SQL ``DATE`` expressions ``lo``/``hi``
(closed) and works on calendar dates, as CQL does at day precision.

Boundary semantics follow cql-execution (the engine behind the official test cases):

- a *closed* null boundary is unbounded (``Interval[x, null]`` reaches the end of time);
- an *open* null boundary is unknown: ``Interval[x, null)`` overlaps ``[lo, hi]`` only when that is
  true for every possible end, i.e. when ``lo <= x <= hi``;
- ``toInterval()`` of a missing value is null, so nothing overlaps it.
"""

from __future__ import annotations

from chc_equity.measures.cql import Period, sql_str


def mp_dates(mp: Period) -> tuple[str, str]:
    """The Measurement Period as (start, end) DATE literals."""
    return mp.start_date, mp.end_date


def mp_and_year_before(mp: Period) -> tuple[str, str]:
    """``Interval[start of "Measurement Period" - 1 year, end of "Measurement Period"]`` as DATEs."""
    return f"({mp.start_date} - INTERVAL 1 YEAR)::DATE", mp.end_date


def _d(expr: str) -> str:
    return f"fhir_date({expr})"


def period_overlaps_day(start: str, end: str, lo: str, hi: str) -> str:
    """``<Period>.toInterval() overlaps day of Interval[lo, hi]`` for FHIR text columns ``start``/``end``.

    FHIRHelpers.ToInterval closes a missing end (unbounded above). A missing start gives
    ``Interval(null, end]``, an unknown start which may be arbitrarily early, so only ``end >= lo``
    matters. A Period with neither boundary (or no Period) overlaps nothing.
    """
    return (
        f"(CASE WHEN {start} IS NOT NULL THEN {_d(start)} <= {hi} AND ({end} IS NULL OR {_d(end)} >= {lo}) "
        f"WHEN {end} IS NOT NULL THEN {_d(end)} >= {lo} ELSE FALSE END)"
    )


def choice_overlaps_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<alias>.<prefix>.toInterval() overlaps day of Interval[lo, hi]`` for a dateTime | Period choice.

    ``prefix`` names the flat columns (``effective`` -> ``effective_datetime``, ``effective_period_start``,
    ``effective_period_end`` and, with ``instant``, ``effective_instant``). A dateTime is the unit
    interval ``[t, t]``; a Period follows :func:`period_overlaps_day`.
    """
    dt = f"{a}.{prefix}_datetime"
    point = f"coalesce({dt}, {a}.{prefix}_instant)" if instant else dt
    period = period_overlaps_day(f"{a}.{prefix}_period_start", f"{a}.{prefix}_period_end", lo, hi)
    return f"(CASE WHEN {point} IS NOT NULL THEN {_d(point)} BETWEEN {lo} AND {hi} ELSE {period} END)"


def choice_end(a: str, prefix: str, *, instant: bool = False) -> str:
    """``end of <alias>.<prefix>.toInterval()`` as FHIR text: the dateTime, or the Period's end
    (null when the Period has none, which callers treat as 'never ends during')."""
    dt = f"{a}.{prefix}_datetime"
    point = f"coalesce({dt}, {a}.{prefix}_instant)" if instant else dt
    return f"coalesce({point}, {a}.{prefix}_period_end)"


def choice_ends_during_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<alias>.<prefix>.toInterval() ends during day of Interval[lo, hi]``."""
    return f"({_d(choice_end(a, prefix, instant=instant))} BETWEEN {lo} AND {hi})"


def choice_latest(a: str, prefix: str, *, instant: bool = False) -> str:
    """``<alias>.<prefix>.latest()`` as FHIR text: the end if the Period has one, else its start."""
    dt = f"{a}.{prefix}_datetime"
    point = f"coalesce({dt}, {a}.{prefix}_instant)" if instant else dt
    return f"coalesce({point}, {a}.{prefix}_period_end, {a}.{prefix}_period_start)"


# ---------------------------------------------------------------------------------------------------
# Condition.prevalenceInterval()
# ---------------------------------------------------------------------------------------------------

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


def _has_onset(c: str) -> str:
    return (
        f"({c}.onset_datetime IS NOT NULL OR {c}.onset_period_start IS NOT NULL "
        f"OR {c}.onset_period_end IS NOT NULL OR {c}.onset_age_value IS NOT NULL)"
    )


def _prevalence_overlaps(c: str, start: str, end: str, lo: str, hi: str) -> str:
    return (
        f"(CASE WHEN {is_active(c)} OR {end} IS NOT NULL "
        f"THEN coalesce({start} <= {hi}, TRUE) AND coalesce({end} >= {lo}, TRUE) "
        f"ELSE {_has_onset(c)} AND coalesce({start} BETWEEN {lo} AND {hi}, FALSE) END)"
    )


def prevalence_overlaps_day(c: str, birth: str, lo: str, hi: str) -> str:
    """``<c>.prevalenceInterval() overlaps day of Interval[lo, hi]`` (``birth``: the patient's birthDate).

    Active (or recurrence / relapse): ``Interval[onset start, abatement end]``, both closed, so a missing
    boundary is unbounded. Otherwise with an abatement: the same closed interval. Otherwise (not active
    and no abatement, including no clinicalStatus): ``Interval[onset start, null)``; its unknown end makes
    the overlap true only when the onset itself falls within ``[lo, hi]``.
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


def choice_during_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<alias>.<prefix>.toInterval() during day of Interval[lo, hi]``: a dateTime within it, or a
    Period with both boundaries within it (a missing end is unbounded, a missing start unknown)."""
    dt = f"{a}.{prefix}_datetime"
    point = f"coalesce({dt}, {a}.{prefix}_instant)" if instant else dt
    ps, pe = f"{a}.{prefix}_period_start", f"{a}.{prefix}_period_end"
    return (
        f"(CASE WHEN {point} IS NOT NULL THEN {_d(point)} BETWEEN {lo} AND {hi} "
        f"ELSE coalesce({_d(ps)} BETWEEN {lo} AND {hi} AND {_d(pe)} BETWEEN {lo} AND {hi}, FALSE) END)"
    )


def prevalence_overlaps_before_day(c: str, birth: str, lo: str, hi: str) -> str:
    """``<c>.prevalenceInterval() overlaps before day of Interval[lo, hi]``: overlaps it and starts
    before ``lo`` (a missing onset is the minimum date, so it starts before)."""
    return (
        f"({prevalence_overlaps_day(c, birth, lo, hi)} "
        f"AND coalesce({onset_start(c, birth)} < {lo}, TRUE))"
    )


def observation_has_value(o: str) -> str:
    """``<o>.value is not null``: the Observation has a value of any type."""
    columns = ("value_quantity_value", "value_quantity_unit", "value_quantity_code", "value_boolean",
               "value_string", "value_integer", "value_datetime", "value_period_start", "value_period_end",
               "value_code_text")
    present = " OR ".join(f"{o}.{col} IS NOT NULL" for col in columns)
    return (
        f"({present} OR EXISTS (SELECT 1 FROM flat.observation_value_code v_ "
        f"WHERE v_.center = {o}.center AND v_.id = {o}.id))"
    )


def observation_value_is_quantity(o: str) -> str:
    """``<o>.value is Quantity``."""
    return (
        f"({o}.value_quantity_value IS NOT NULL OR {o}.value_quantity_unit IS NOT NULL "
        f"OR {o}.value_quantity_code IS NOT NULL)"
    )
