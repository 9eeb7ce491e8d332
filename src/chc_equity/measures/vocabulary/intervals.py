"""CQL interval phrases at day precision and the QICoreCommon choice functions, as SQL predicates.

Measures compare intervals ``... day of`` an interval of dates (usually the Measurement Period), so
every predicate takes the comparison interval as two SQL ``DATE`` expressions ``lo``/``hi`` (closed)
and works on calendar dates, as CQL does at day precision. Arguments named ``start``/``end``/``point``
are FHIR date/dateTime *text* expressions (flat-table columns).

Boundary semantics follow cql-execution (the engine behind the official test cases):

- a FHIR Period maps to ``Interval[start, end]`` (FHIRHelpers.ToInterval): a *closed* null boundary
  is unbounded (``Interval[x, null]`` reaches the end of time), so such an encounter never ends
  "during" the period but does "overlap" it;
- a missing start gives ``Interval(null, end]``, an unknown start that may be arbitrarily early;
- ``toInterval()`` of a missing value is null, so nothing overlaps it.

A dateTime | Period choice (``Observation.effective``, ``Procedure.performed`` ...) is named by the row
alias ``a`` and the column prefix (``effective`` -> ``effective_datetime``, ``effective_period_start``,
``effective_period_end`` and, with ``instant=True``, ``effective_instant``).
"""

from __future__ import annotations

from chc_equity.measures.vocabulary.sql import MeasurementPeriod, day


def _point(a: str, prefix: str, instant: bool) -> str:
    dt = f"{a}.{prefix}_datetime"
    return f"coalesce({dt}, {a}.{prefix}_instant)" if instant else dt


def mp_and_year_before(mp: MeasurementPeriod) -> tuple[str, str]:
    """``Interval[start of "Measurement Period" - 1 year, end of "Measurement Period"]`` as (lo, hi)
    DATE expressions."""
    return f"({mp.start_date} - INTERVAL 1 YEAR)::DATE", mp.end_date


def during_day_of(start: str, end: str, lo: str, hi: str) -> str:
    """``Interval[start, end] during day of Interval[lo, hi]`` (a FHIR Period, e.g. ``Encounter.period``).

    Both boundaries must be known and fall on days within ``[lo, hi]``; a missing end is unbounded and
    so never lies within it (the result is then NULL, false in a WHERE clause).
    """
    return f"({day(start)} >= {lo} AND {day(start)} <= {hi} AND {day(end)} >= {lo} AND {day(end)} <= {hi})"


def during_day_of_mp(start: str, end: str, mp: MeasurementPeriod) -> str:
    """``Interval[start, end] during day of "Measurement Period"``: :func:`during_day_of` the period."""
    return during_day_of(start, end, mp.start_date, mp.end_date)


def point_during_day(point: str, lo: str, hi: str) -> str:
    """``<dateTime> during day of Interval[lo, hi]`` for one point, e.g. ``authoredOn during day of
    "Measurement Period"`` or ``Encounter.period ends during day of ...`` (pass the end). A missing
    point is NULL (false in a WHERE clause)."""
    return f"({day(point)} BETWEEN {lo} AND {hi})"


def period_overlaps_day(start: str, end: str, lo: str, hi: str) -> str:
    """``<Period>.toInterval() overlaps day of Interval[lo, hi]``.

    FHIRHelpers.ToInterval closes a missing end (unbounded above). A missing start gives
    ``Interval(null, end]``, an unknown start which may be arbitrarily early, so only ``end >= lo``
    matters. A Period with neither boundary (or no Period) overlaps nothing (FALSE).
    """
    return (
        f"(CASE WHEN {start} IS NOT NULL THEN {day(start)} <= {hi} AND ({end} IS NULL OR {day(end)} >= {lo}) "
        f"WHEN {end} IS NOT NULL THEN {day(end)} >= {lo} ELSE FALSE END)"
    )


def choice_overlaps_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<a>.<prefix>.toInterval() overlaps day of Interval[lo, hi]`` for a dateTime | Period choice.

    A dateTime is the unit interval ``[t, t]``; a Period follows :func:`period_overlaps_day`.
    """
    period = period_overlaps_day(f"{a}.{prefix}_period_start", f"{a}.{prefix}_period_end", lo, hi)
    point = _point(a, prefix, instant)
    return f"(CASE WHEN {point} IS NOT NULL THEN {day(point)} BETWEEN {lo} AND {hi} ELSE {period} END)"


def choice_during_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<a>.<prefix>.toInterval() during day of Interval[lo, hi]``: a dateTime within it, or a Period
    with both boundaries within it (a missing end is unbounded, a missing start unknown: FALSE)."""
    point = _point(a, prefix, instant)
    ps, pe = f"{a}.{prefix}_period_start", f"{a}.{prefix}_period_end"
    return (
        f"(CASE WHEN {point} IS NOT NULL THEN {day(point)} BETWEEN {lo} AND {hi} "
        f"ELSE coalesce({day(ps)} BETWEEN {lo} AND {hi} AND {day(pe)} BETWEEN {lo} AND {hi}, FALSE) END)"
    )


def choice_end(a: str, prefix: str, *, instant: bool = False) -> str:
    """``end of <a>.<prefix>.toInterval()`` as FHIR text: the dateTime, or the Period's end (null when
    the Period has none, which callers treat as 'never ends during')."""
    return f"coalesce({_point(a, prefix, instant)}, {a}.{prefix}_period_end)"


def choice_ends_during_day(a: str, prefix: str, lo: str, hi: str, *, instant: bool = False) -> str:
    """``<a>.<prefix>.toInterval() ends during day of Interval[lo, hi]``."""
    return point_during_day(choice_end(a, prefix, instant=instant), lo, hi)


def latest(a: str, prefix: str, *, instant: bool = False) -> str:
    """QICoreCommon ``<a>.<prefix>.latest()`` as FHIR text: a dateTime is itself; a Period gives its end
    if it has one, else its start."""
    return f"coalesce({_point(a, prefix, instant)}, {a}.{prefix}_period_end, {a}.{prefix}_period_start)"


def earliest(a: str, prefix: str, *, instant: bool = False) -> str:
    """QICoreCommon ``<a>.<prefix>.earliest()`` as FHIR text: a dateTime is itself; a Period gives its
    start if it has one, else its end."""
    return f"coalesce({_point(a, prefix, instant)}, {a}.{prefix}_period_start, {a}.{prefix}_period_end)"


def age_at_end(birth_date: str, mp: MeasurementPeriod) -> str:
    """``AgeInYearsAt(date from end of "Measurement Period")`` (``birth_date``: FHIR text)."""
    return f"years_between({day(birth_date)}, {mp.end_date})"


def age_at_start(birth_date: str, mp: MeasurementPeriod) -> str:
    """``AgeInYearsAt(date from start of "Measurement Period")`` (``birth_date``: FHIR text)."""
    return f"years_between({day(birth_date)}, {mp.start_date})"
