"""Truth tables of the CQL vocabulary (``chc_equity.measures.vocabulary``): each function's SQL runs in
DuckDB on one-row inputs covering nulls, missing interval bounds, partial dates and time zones. A row's
expectation is what the official test cases (cql-execution semantics, see the functions' docstrings)
require; ``None`` is SQL NULL, which a WHERE clause treats as false.

Every public vocabulary function is pinned here: a test says which functions it covers (``@covers``)
and calls each of them; ``test_every_public_vocabulary_function_has_a_truth_table`` fails otherwise.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import date, datetime

import duckdb
import pytest

from chc_equity.measures import vocabulary as v
from chc_equity.measures.vocabulary import MACROS, QICORE, Period

MP = Period(date(2026, 1, 1), date(2026, 12, 31))
LO, HI = MP.start_date, MP.end_date


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
    yield con
    con.close()


class Raw(str):
    """A SQL expression used as is (a typed NULL)."""


NO_NUMBER = Raw("CAST(NULL AS DOUBLE)")
NO_BOOLEAN = Raw("CAST(NULL AS BOOLEAN)")


def _literal(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "CAST(NULL AS VARCHAR)"
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int | float):
        return str(value)
    return v.sql_str(str(value))


def evaluate(con, expr: str, **columns: object) -> object:
    """Value of ``expr`` over one row ``a`` with the given columns (text unless int / float / bool)."""
    cols = ", ".join(f"{_literal(x)} AS {k}" for k, x in columns.items()) or "1 AS dummy"
    return con.execute(f"SELECT {expr} FROM (SELECT {cols}) a").fetchone()[0]


COVERED: dict[str, set[str]] = {}  # test function name -> vocabulary functions whose truth table it is


def covers(*functions: Callable[..., object]) -> Callable:
    """Mark a test as the truth table of these vocabulary functions (checked: it must call each)."""

    def mark(test: Callable) -> Callable:
        COVERED[test.__name__] = {f.__name__ for f in functions}
        return test

    return mark


# --- FHIR date/dateTime text -> TIMESTAMP / DATE (macros fhir_ts, fhir_date) -----------------------------


@pytest.mark.parametrize(
    ("text", "ts", "day"),
    [
        (None, None, None),
        ("2026", datetime(2026, 1, 1), date(2026, 1, 1)),  # partial: low end of the precision
        ("2026-03", datetime(2026, 3, 1), date(2026, 3, 1)),
        ("2026-03-15", datetime(2026, 3, 15), date(2026, 3, 15)),
        ("2026-03-15T10:00:00Z", datetime(2026, 3, 15, 10), date(2026, 3, 15)),
        ("2026-03-15T23:30:00-05:00", datetime(2026, 3, 16, 4, 30), date(2026, 3, 16)),  # normalised to UTC
        ("2026-03-15T01:00:00+02:00", datetime(2026, 3, 14, 23), date(2026, 3, 14)),
        ("not a date", None, None),
    ],
)
@covers(v.day)
def test_fhir_ts_and_fhir_date(con, text, ts, day) -> None:
    assert evaluate(con, "fhir_ts(a.t)", t=text) == ts
    assert evaluate(con, "fhir_date(a.t)", t=text) == day
    assert evaluate(con, v.day("a.t"), t=text) == day


# --- during / overlaps / ends day of the Measurement Period ----------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "during"),
    [
        ("2026-02-01", "2026-02-02", True),
        ("2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z", True),  # both boundary days
        ("2025-12-31", "2026-01-05", False),  # starts before
        ("2026-12-30", "2027-01-01", False),  # ends after
        ("2026-02-01", None, None),  # a missing end is unbounded: never during
        (None, "2026-02-01", None),
        ("2026-12-31T20:00:00-05:00", "2026-12-31T22:00:00-05:00", False),  # 2027-01-01 in UTC
        ("2026", "2026-06", True),  # partial dates
    ],
)
@covers(v.during_day_of_mp)
def test_during_day_of_mp(con, start, end, during) -> None:
    assert evaluate(con, v.during_day_of_mp("a.s", "a.e", MP), s=start, e=end) is during


@pytest.mark.parametrize(
    ("point", "during"),
    [
        ("2026-06-01", True),
        ("2026-01-01T00:00:00Z", True),
        ("2025-12-31", False),
        ("2027-01-01", False),
        ("2026-12-31T20:00:00-05:00", False),  # 2027-01-01 in UTC
        ("2026", True),  # a partial date: its first day
        (None, None),
    ],
)
@covers(v.point_during_day)
def test_point_during_day(con, point, during) -> None:
    assert evaluate(con, v.point_during_day("a.p", LO, HI), p=point) is during


@pytest.mark.parametrize(
    ("start", "end", "overlaps"),
    [
        ("2025-06-01", "2026-01-01", True),  # ends on the first day
        ("2026-12-31", "2027-06-01", True),
        ("2025-01-01", "2025-12-31", False),
        ("2027-01-01", "2027-02-01", False),
        ("2025-01-01", None, True),  # missing end: closed, unbounded above
        ("2027-01-01", None, False),
        (None, "2026-03-01", True),  # missing start: only the end matters
        (None, "2025-03-01", False),
        (None, None, False),  # no bounds: overlaps nothing
    ],
)
@covers(v.period_overlaps_day)
def test_period_overlaps_day(con, start, end, overlaps) -> None:
    assert evaluate(con, v.period_overlaps_day("a.s", "a.e", LO, HI), s=start, e=end) is overlaps


@pytest.mark.parametrize(
    ("dt", "instant", "ps", "pe", "overlaps", "during"),
    [
        ("2026-05-01", None, None, None, True, True),
        ("2025-05-01", None, "2026-01-01", "2026-02-01", False, False),  # the dateTime wins
        (None, "2026-05-01T10:00:00Z", None, None, True, True),
        (None, None, "2025-12-01", "2026-01-10", True, False),
        (None, None, "2026-02-01", "2026-02-10", True, True),
        (None, None, "2026-02-01", None, True, False),  # missing end: overlaps, never during
        (None, None, None, None, False, False),
    ],
)
@covers(v.choice_overlaps_day, v.choice_during_day)
def test_choice_overlaps_and_during_day(con, dt, instant, ps, pe, overlaps, during) -> None:
    row = {"x_datetime": dt, "x_instant": instant, "x_period_start": ps, "x_period_end": pe}
    assert evaluate(con, v.choice_overlaps_day("a", "x", LO, HI, instant=True), **row) is overlaps
    assert evaluate(con, v.choice_during_day("a", "x", LO, HI, instant=True), **row) is during


@pytest.mark.parametrize(
    ("dt", "instant", "ps", "pe", "end", "ends_during"),
    [
        ("2026-05-01", "2020-01-01T00:00:00Z", None, None, "2026-05-01", True),  # the dateTime first
        (None, "2026-05-01T10:00:00Z", None, None, "2026-05-01T10:00:00Z", True),
        (None, None, "2025-01-01", "2026-01-01", "2026-01-01", True),
        (None, None, "2026-01-01", "2027-01-01", "2027-01-01", False),
        (None, None, "2026-02-01", None, None, None),  # no end: never ends during
        (None, None, None, None, None, None),
    ],
)
@covers(v.choice_end, v.choice_ends_during_day)
def test_choice_end_and_ends_during_day(con, dt, instant, ps, pe, end, ends_during) -> None:
    row = {"x_datetime": dt, "x_instant": instant, "x_period_start": ps, "x_period_end": pe}
    assert evaluate(con, v.choice_end("a", "x", instant=True), **row) == end
    assert evaluate(con, v.choice_ends_during_day("a", "x", LO, HI, instant=True), **row) is ends_during
    # without ``instant`` the instant column is not read
    assert evaluate(con, v.choice_end("a", "x"), **row) == (dt or pe)


@pytest.mark.parametrize(
    ("dt", "ps", "pe", "latest", "earliest"),
    [
        ("2026-05-01", "2026-01-01", "2026-02-01", "2026-05-01", "2026-05-01"),
        (None, "2026-01-01", "2026-02-01", "2026-02-01", "2026-01-01"),
        (None, "2026-01-01", None, "2026-01-01", "2026-01-01"),  # latest of an open period: its start
        (None, None, "2026-02-01", "2026-02-01", "2026-02-01"),
        (None, None, None, None, None),
    ],
)
@covers(v.latest, v.earliest)
def test_latest_and_earliest(con, dt, ps, pe, latest, earliest) -> None:
    row = {"x_datetime": dt, "x_period_start": ps, "x_period_end": pe, "x_instant": None}
    assert evaluate(con, v.latest("a", "x"), **row) == latest
    assert evaluate(con, v.earliest("a", "x"), **row) == earliest
    # an instant stands for the dateTime when asked for, and is ignored otherwise
    row |= {"x_datetime": None, "x_instant": "2026-07-01T00:00:00Z"}
    assert evaluate(con, v.latest("a", "x", instant=True), **row) == "2026-07-01T00:00:00Z"
    assert evaluate(con, v.earliest("a", "x", instant=True), **row) == "2026-07-01T00:00:00Z"
    assert evaluate(con, v.latest("a", "x"), **row) == (pe or ps)


@pytest.mark.parametrize(
    ("birth", "at_start", "at_end"),
    [
        ("2008-12-31", 17, 18),  # 18th birthday on the last day of the period
        ("2008-01-01", 18, 18),
        ("2008-01-02", 17, 18),
        ("2008", 18, 18),  # a partial birthDate counts from its first day
        (None, None, None),
    ],
)
@covers(v.age_at_start, v.age_at_end)
def test_age_at_start_and_end(con, birth, at_start, at_end) -> None:
    assert evaluate(con, v.age_at_start("a.b", MP), b=birth) == at_start
    assert evaluate(con, v.age_at_end("a.b", MP), b=birth) == at_end


# --- Condition.prevalenceInterval() --------------------------------------------------------------------

ACTIVE = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _condition(clinical: str | None = None, onset: str | None = None, abatement: str | None = None):
    return {
        "clinical_status_system": ACTIVE if clinical else None,
        "clinical_status_code": clinical,
        "onset_datetime": onset,
        "onset_period_start": None,
        "onset_period_end": None,
        "onset_age_value": NO_NUMBER,
        "onset_age_unit": None,
        "abatement_datetime": abatement,
        "abatement_period_end": None,
        "abatement_age_value": NO_NUMBER,
        "abatement_age_unit": None,
        "birth_date": "1980-01-01",
    }


@pytest.mark.parametrize(
    ("clinical", "onset", "abatement", "active", "overlaps", "starts_during", "on_or_before", "before"),
    [
        ("active", "2020-01-01", None, True, True, False, True, True),  # active, no abatement: unbounded
        ("active", None, None, True, True, False, True, True),  # no onset: unbounded below too
        ("resolved", "2020-01-01", None, False, False, False, True, False),  # not active: unknown end
        ("resolved", "2026-03-01", None, False, False, True, True, False),  # ... even with onset inside
        ("resolved", "2020-01-01", "2025-12-31", False, False, False, True, False),
        ("resolved", "2020-01-01", "2026-01-01", False, True, False, True, True),
        (None, "2026-03-01", None, False, False, True, True, False),  # no clinicalStatus: as not active
        ("recurrence", "2027-01-01", None, True, False, False, False, False),  # starts after the period
        ("relapse", "2026-12-31T23:00:00-05:00", None, True, False, False, False, False),  # 2027 in UTC
    ],
)
@covers(
    v.is_active,
    v.prevalence_overlaps_day,
    v.prevalence_overlaps,
    v.prevalence_starts_during_day,
    v.prevalence_starts_on_or_before_day,
    v.prevalence_overlaps_before_day,
)
def test_prevalence_interval(
    con, clinical, onset, abatement, active, overlaps, starts_during, on_or_before, before
) -> None:
    row = _condition(clinical, onset, abatement)
    birth = "a.birth_date"
    assert evaluate(con, v.is_active("a"), **row) is active
    assert evaluate(con, v.prevalence_overlaps_day("a", birth, LO, HI), **row) is overlaps
    assert evaluate(con, v.prevalence_overlaps("a", birth, MP.start_ts, MP.end_ts), **row) is overlaps
    assert evaluate(con, v.prevalence_starts_during_day("a", birth, LO, HI), **row) is starts_during
    assert evaluate(con, v.prevalence_starts_on_or_before_day("a", birth, HI), **row) is on_or_before
    assert evaluate(con, v.prevalence_overlaps_before_day("a", birth, LO, HI), **row) is before


def test_prevalence_interval_from_an_onset_age(con) -> None:
    row = _condition("resolved") | {"onset_age_value": 46.0, "onset_age_unit": "a"}  # 1980 + 46 = 2026
    assert evaluate(con, v.prevalence_starts_during_day("a", "a.birth_date", LO, HI), **row) is True


@pytest.mark.parametrize(
    ("columns", "onset", "abatement"),
    [
        ({}, None, None),
        ({"onset_datetime": "2020-05-06T10:00:00Z"}, datetime(2020, 5, 6, 10), None),
        ({"onset_period_start": "2020-05"}, datetime(2020, 5, 1), None),  # partial: its first instant
        ({"onset_age_value": 40.7, "onset_age_unit": "a"}, datetime(2020, 1, 1), None),  # whole years
        ({"onset_age_value": 3.0, "onset_age_unit": "mo"}, datetime(1980, 4, 1), None),
        ({"onset_age_value": 10.0, "onset_age_unit": "d"}, datetime(1980, 1, 11), None),
        ({"onset_age_value": 3.0, "onset_age_unit": "wk"}, None, None),  # unit not understood
        ({"abatement_datetime": "2024-02-03"}, None, datetime(2024, 2, 3)),
        # abatementPeriod is [low, high): its end is the millisecond before high
        ({"abatement_period_end": "2024-02-03"}, None, datetime(2024, 2, 2, 23, 59, 59, 999000)),
        # abatementAge [birth + age, birth + age + 1 year)
        (
            {"abatement_age_value": 44.0, "abatement_age_unit": "a"},
            None,
            datetime(2024, 12, 31, 23, 59, 59, 999000),
        ),
    ],
)
@covers(v.onset_start_ts, v.onset_start, v.abatement_end_ts, v.abatement_end)
def test_onset_start_and_abatement_end(con, columns, onset, abatement) -> None:
    row = _condition("resolved") | columns
    assert evaluate(con, v.onset_start_ts("a", "a.birth_date"), **row) == onset
    assert evaluate(con, v.onset_start("a", "a.birth_date"), **row) == (onset.date() if onset else None)
    assert evaluate(con, v.abatement_end_ts("a", "a.birth_date"), **row) == abatement
    assert evaluate(con, v.abatement_end("a", "a.birth_date"), **row) == (
        abatement.date() if abatement else None
    )


# --- Status filters and profile retrieves ---------------------------------------------------------------

VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.mark.parametrize(
    ("system", "code", "verified"),
    [
        (None, None, True),  # no verificationStatus: verified() holds
        (VERIFICATION, "confirmed", True),
        (VERIFICATION, "unconfirmed", True),
        (VERIFICATION, "provisional", True),
        (VERIFICATION, "differential", True),
        (VERIFICATION, "refuted", False),
        (VERIFICATION, "entered-in-error", False),
        ("http://example.org/other", "confirmed", False),
    ],
)
@covers(v.verified)
def test_verified(con, system, code, verified) -> None:
    row = {"verification_status_system": system, "verification_status_code": code}
    assert bool(evaluate(con, v.verified("a"), **row)) is verified


FINAL = {"final", "amended", "corrected"}
STATUSES = (
    "final",
    "amended",
    "corrected",
    "preliminary",
    "registered",
    "cancelled",
    "entered-in-error",
    "finished",
    "in-progress",
    "completed",
    "active",
    "on-hold",
    "stopped",
    "draft",
    "revoked",
    None,
)


@pytest.mark.parametrize(
    ("fn", "true_for"),
    [
        (v.is_assessment_performed, FINAL),
        (v.is_laboratory_test_performed, FINAL),
        (v.is_observation_performed, FINAL),
        (v.is_symptom, FINAL | {"preliminary"}),
        (v.is_observation_smoking_status, {"final"}),
        (v.is_encounter_performed, {"finished"}),
        (v.is_intervention_performed, {"completed"}),
        (v.is_procedure_performed, {"completed"}),
        (v.is_immunization_administered, {"completed"}),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
@covers(
    v.is_assessment_performed,
    v.is_laboratory_test_performed,
    v.is_observation_performed,
    v.is_symptom,
    v.is_observation_smoking_status,
    v.is_encounter_performed,
    v.is_intervention_performed,
    v.is_procedure_performed,
    v.is_immunization_administered,
)
def test_status_filters(con, fn: Callable[[str], str], true_for: set[str]) -> None:
    for value in STATUSES:
        expected = None if value is None else value in true_for
        assert evaluate(con, fn("a"), status=value) is expected, value


ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")


@pytest.mark.parametrize(
    ("fn", "statuses"),
    [
        (v.is_intervention_order, {"active", "completed"}),
        (v.is_device_order_personal_use_devices, {"active", "completed"}),
        (v.is_medication_order, {"active", "completed"}),
        (v.is_medication_active, {"active"}),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
@covers(
    v.is_intervention_order,
    v.is_device_order_personal_use_devices,
    v.is_medication_order,
    v.is_medication_active,
)
def test_order_filters(con, fn: Callable[[str], str], statuses: set[str]) -> None:
    for status in STATUSES:
        for intent in (*ORDER_INTENTS, "proposal", "plan", None):
            got = evaluate(con, fn("a"), status=status, intent=intent)
            assert bool(got) is (status in statuses and intent in ORDER_INTENTS), (status, intent)


CODE_COLUMNS = "center VARCHAR, id VARCHAR, system VARCHAR, code VARCHAR"


@pytest.fixture
def flat(con):
    """Empty flat child tables and ``valueset_codes`` for the retrieve predicates (filled per test)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS flat")
    for child in (
        "observation_category",
        "condition_category",
        "observation_code",
        "encounter_type",
        "medication_request_medication_code",
        "medication_code",
        "observation_value_code",
    ):
        con.execute(f"CREATE OR REPLACE TABLE flat.{child} ({CODE_COLUMNS})")
    con.execute("CREATE OR REPLACE TABLE valueset_codes (valueset VARCHAR, system VARCHAR, code VARCHAR)")
    return con


CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.mark.parametrize(
    ("status", "category", "exam", "imaging"),
    [
        ("final", (CATEGORY, "exam"), True, False),
        ("amended", (CATEGORY, "imaging"), False, True),
        ("final", ("http://example.org/other", "exam"), False, False),  # another system
        ("preliminary", (CATEGORY, "exam"), False, False),
        ("final", None, False, False),
    ],
)
@covers(v.is_physical_exam_performed, v.is_diagnostic_study_performed)
def test_category_status_filters(flat, status, category, exam, imaging) -> None:
    if category:
        flat.execute("INSERT INTO flat.observation_category VALUES ('c', 'o1', ?, ?)", list(category))
    row = {"center": "c", "id": "o1", "status": status}
    assert evaluate(flat, v.is_physical_exam_performed("a"), **row) is exam
    assert evaluate(flat, v.is_diagnostic_study_performed("a"), **row) is imaging


@pytest.mark.parametrize(
    ("meta_profile", "do_not_perform", "requested", "not_requested"),
    [
        (None, NO_BOOLEAN, True, False),  # untagged: judged by the profile's own constraint
        (None, False, True, False),
        (None, True, False, True),
        ("", True, False, True),
        (QICORE + "qicore-servicerequest", True, True, False),  # tagged: the tag decides
        (QICORE + "qicore-servicenotrequested", False, False, True),
        ("http://example.org/x," + QICORE + "qicore-servicerequest", NO_BOOLEAN, True, False),
        ("http://example.org/x", False, False, False),  # tagged with neither
    ],
)
@covers(v.service_requested, v.service_not_requested, v.in_profile)
def test_profile_retrieve(con, meta_profile, do_not_perform, requested, not_requested) -> None:
    row = {"meta_profile": meta_profile, "do_not_perform": do_not_perform}
    assert evaluate(con, v.service_requested("a"), **row) is requested
    assert evaluate(con, v.service_not_requested("a"), **row) is not_requested
    listed = (QICORE + "qicore-servicerequest", "http://example.org/x")
    tagged_with_one = bool(set((meta_profile or "").split(",")) & set(listed))  # untagged: the constraint
    assert evaluate(con, v.in_profile("a", listed, "FALSE"), **row) is tagged_with_one


@pytest.mark.parametrize(
    ("meta_profile", "do_not_perform", "requested", "not_requested"),
    [
        (None, NO_BOOLEAN, True, False),
        (None, True, False, True),
        (QICORE + "qicore-medicationrequest", True, True, False),
        (QICORE + "qicore-medicationnotrequested", False, False, True),
        (QICORE + "qicore-servicerequest", False, False, False),  # another resource's profile
    ],
)
@covers(v.medication_requested, v.medication_not_requested)
def test_medication_profile_retrieve(con, meta_profile, do_not_perform, requested, not_requested) -> None:
    row = {"meta_profile": meta_profile, "do_not_perform": do_not_perform}
    assert evaluate(con, v.medication_requested("a"), **row) is requested
    assert evaluate(con, v.medication_not_requested("a"), **row) is not_requested


@pytest.mark.parametrize(
    ("meta_profile", "status", "code", "cancelled", "blood_pressure"),
    [
        (None, "cancelled", None, True, False),
        (None, "final", (v.LOINC, v.BP_PANEL), False, True),  # untagged: the fixed code
        (None, "final", (v.LOINC, "39156-5"), False, False),  # a BMI is no blood pressure
        (QICORE + "qicore-observationcancelled", "final", None, True, False),
        (v.USCORE + "us-core-blood-pressure", "final", None, False, True),
        (QICORE + "qicore-simple-observation", "cancelled", (v.LOINC, v.BP_PANEL), False, False),
    ],
)
@covers(v.observation_cancelled, v.blood_pressure_observation)
def test_observation_profile_retrieves(flat, meta_profile, status, code, cancelled, blood_pressure) -> None:
    if code:
        flat.execute("INSERT INTO flat.observation_code VALUES ('c', 'o1', ?, ?)", list(code))
    row = {"center": "c", "id": "o1", "meta_profile": meta_profile, "status": status}
    assert evaluate(flat, v.observation_cancelled("a"), **row) is cancelled
    assert evaluate(flat, v.blood_pressure_observation("a"), **row) is blood_pressure


@pytest.mark.parametrize(
    ("profile", "meta_profile", "coding", "expected"),
    [
        ("us-core-bmi", None, ("code", v.LOINC, "39156-5"), True),  # untagged: the fixed code
        ("us-core-bmi", None, ("code", v.LOINC, "59576-9"), False),  # a BMI percentile is no BMI
        ("pediatric-bmi-for-age", None, ("code", v.LOINC, "59576-9"), True),
        ("us-core-body-height", None, ("code", v.LOINC, "29463-7"), False),  # a weight is no height
        ("us-core-body-height", v.USCORE + "us-core-body-height", None, True),  # tagged: the tag
        ("us-core-bmi", QICORE + "qicore-simple-observation", ("code", v.LOINC, "39156-5"), False),
        ("us-core-smokingstatus", None, ("category", v.OBSERVATION_CATEGORY, "social-history"), True),
        ("us-core-smokingstatus", None, ("code", v.LOINC, "72166-2"), False),  # fixes a category only
    ],
)
@covers(v.us_core_observation)
def test_us_core_observation_profile_retrieve(flat, profile, meta_profile, coding, expected) -> None:
    """``[USCoreBMIProfile]`` and the other US Core Observation profiles that fix a code (or, smoking
    status, a category): the tag when the resource declares profiles, else the fixed code."""
    if coding:
        table, system, code = coding
        flat.execute(f"INSERT INTO flat.observation_{table} VALUES ('c', 'o1', ?, ?)", [system, code])
    row = {"center": "c", "id": "o1", "meta_profile": meta_profile}
    assert evaluate(flat, v.us_core_observation("a", profile), **row) is expected


CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


@pytest.mark.parametrize(
    ("meta_profile", "category", "expected"),
    [
        (None, (CONDITION_CATEGORY, "problem-list-item"), True),
        (None, ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern"), True),
        (None, (CONDITION_CATEGORY, "encounter-diagnosis"), False),
        (None, None, False),
        (QICORE + "qicore-condition-problems-health-concerns", None, True),
        (v.USCORE + "us-core-condition-problems-health-concerns", None, True),
        (QICORE + "qicore-condition-encounter-diagnosis", (CONDITION_CATEGORY, "problem-list-item"), False),
    ],
)
@covers(v.condition_problem_or_health_concern)
def test_condition_problem_or_health_concern(flat, meta_profile, category, expected) -> None:
    if category:
        flat.execute("INSERT INTO flat.condition_category VALUES ('c', 'c1', ?, ?)", list(category))
    row = {"center": "c", "id": "c1", "meta_profile": meta_profile}
    assert evaluate(flat, v.condition_problem_or_health_concern("a"), **row) is expected


@pytest.mark.parametrize("text", ["plain", "O'Brien", "''", "a'; DROP TABLE x; --"])
@covers(v.sql_str)
def test_sql_str_round_trips(con, text: str) -> None:
    assert con.execute(f"SELECT {v.sql_str(text)}").fetchone()[0] == text


@pytest.mark.parametrize(
    ("start", "end", "during"),
    [
        ("2025-07-01", "2025-07-01", True),  # Interval[start of MP - 6 months, end of MP]
        ("2025-06-30", "2025-07-01", False),
        ("2026-12-31", "2026-12-31", True),
        ("2025-08-01", None, None),
    ],
)
@covers(v.during_day_of)
def test_during_day_of_an_interval(con, start, end, during) -> None:
    lo = f"CAST({MP.start_date} - INTERVAL 6 MONTH AS DATE)"
    assert evaluate(con, v.during_day_of("a.s", "a.e", lo, HI), s=start, e=end) is during


@pytest.mark.parametrize(
    ("day", "inside"),
    [("2025-01-01", True), ("2024-12-31", False), ("2026-12-31", True), ("2027-01-01", False)],
)
@covers(v.mp_and_year_before)
def test_mp_and_year_before(con, day, inside) -> None:
    lo, hi = v.mp_and_year_before(MP)
    assert evaluate(con, f"fhir_date(a.d) BETWEEN {lo} AND {hi}", d=day) is inside


VALUE_COLUMNS = (
    "value_quantity_value",
    "value_quantity_unit",
    "value_quantity_code",
    "value_boolean",
    "value_string",
    "value_integer",
    "value_datetime",
    "value_period_start",
    "value_period_end",
    "value_code_text",
)


@pytest.mark.parametrize(
    ("present", "has_value", "is_quantity"),
    [
        ((), False, False),
        (("value_quantity_value",), True, True),
        (("value_quantity_unit",), True, True),  # a Quantity without a number is still a Quantity
        (("value_string",), True, False),
        (("value_code_text",), True, False),
        (("value_boolean",), True, False),
        (("value_period_end",), True, False),
    ],
)
@covers(v.observation_has_value, v.observation_value_is_quantity)
def test_observation_value(flat, present, has_value, is_quantity) -> None:
    row = {c: ("x" if c in present else None) for c in VALUE_COLUMNS} | {"center": "c", "id": "o1"}
    assert evaluate(flat, v.observation_has_value("a"), **row) is has_value
    assert evaluate(flat, v.observation_value_is_quantity("a"), **row) is is_quantity
    flat.execute("INSERT INTO flat.observation_value_code VALUES ('c', 'o1', 's', 'x')")  # a coded value
    assert evaluate(flat, v.observation_has_value("a"), **row) is True


# --- value sets, codes and retrieves ---------------------------------------------------------------------

OFFICE_VISIT = "2.16.840.1.113883.3.464.1003.101.12.1001"
OFFICE_VISIT_URL = "http://cts.nlm.nih.gov/fhir/ValueSet/" + OFFICE_VISIT
CPT = "http://www.ama-assn.org/go/cpt"


@covers(v.vs, v.table)
def test_value_set_literal_and_retrieve_table(con) -> None:
    for key in (OFFICE_VISIT, "urn:oid:" + OFFICE_VISIT, OFFICE_VISIT_URL, "Office Visit"):
        assert con.execute(f"SELECT {v.vs(key)}").fetchone()[0] == OFFICE_VISIT_URL
    with pytest.raises(KeyError):
        v.vs("No Such Value Set")
    assert v.table("Encounter") == "flat.encounter"
    assert v.table("MedicationRequest") == "flat.medication_request"
    with pytest.raises(KeyError):
        v.table("Claim")


@pytest.mark.parametrize(
    ("codings", "in_set", "has_99213"),
    [
        ([], False, False),
        ([(CPT, "99213")], True, True),
        ([("http://example.org/other", "99213")], False, False),  # same code, other system
        ([("http://snomed.info/sct", "1"), (CPT, "99213")], True, True),  # any coding matches
        ([(CPT, "99999")], False, False),
    ],
)
@covers(v.in_valueset, v.has_code, v.code_in, v.code_is)
def test_value_set_and_code_filters(flat, codings, in_set, has_99213) -> None:
    flat.execute("INSERT INTO valueset_codes VALUES (?, ?, '99213')", [OFFICE_VISIT_URL, CPT])
    for system, code in codings:
        flat.execute("INSERT INTO flat.encounter_type VALUES ('c', 'e1', ?, ?)", [system, code])
        flat.execute("INSERT INTO flat.encounter_type VALUES ('other', 'e1', ?, ?)", [CPT, "99213"])
    row = {"center": "c", "id": "e1"}
    assert evaluate(flat, v.in_valueset("encounter_type", "a", OFFICE_VISIT), **row) is in_set
    assert evaluate(flat, v.code_in("Encounter", "a", OFFICE_VISIT), **row) is in_set
    assert evaluate(flat, v.has_code("encounter_type", "a", CPT, "99213"), **row) is has_99213
    assert evaluate(flat, v.code_is("Encounter", "a", CPT, "99213"), **row) is has_99213


@pytest.mark.parametrize(
    ("direct", "referenced", "expected"),
    [(False, False, False), (True, False, True), (False, True, True)],
)
def test_medication_code_in_by_reference(flat, direct, referenced, expected) -> None:
    """``[MedicationRequest: X]`` matches medicationCodeableConcept or the referenced Medication's code."""
    flat.execute("INSERT INTO valueset_codes VALUES (?, ?, 'x')", [OFFICE_VISIT_URL, CPT])
    if direct:
        flat.execute("INSERT INTO flat.medication_request_medication_code VALUES ('c', 'm1', ?, 'x')", [CPT])
    if referenced:
        flat.execute("INSERT INTO flat.medication_code VALUES ('c', 'med1', ?, 'x')", [CPT])
    row = {"center": "c", "id": "m1", "medication_id": "med1"}
    assert evaluate(flat, v.code_in("MedicationRequest", "a", OFFICE_VISIT), **row) is expected


def _rows(con, sql: str) -> list[tuple]:
    return sorted(con.execute(sql).fetchall())


@covers(v.performed_encounters)
def test_performed_encounters(flat) -> None:
    flat.execute("""CREATE OR REPLACE TABLE flat.encounter AS SELECT * FROM (VALUES
        ('c', 'p1', 'e1', 'finished', '2026-03-01', '2026-03-01'),
        ('c', 'p1', 'e2', 'in-progress', '2026-03-01', '2026-03-01'),  -- not performed
        ('c', 'p2', 'e3', 'finished', '2026-12-31', '2027-01-01'),     -- ends after the period
        ('c', 'p3', 'e4', 'finished', '2026-05-01', NULL),             -- no end: never during
        ('c', 'p4', 'e5', 'finished', '2026-05-01', '2026-05-02')      -- another type
        ) t(center, patient_id, id, status, period_start, period_end)""")
    for enc in ("e1", "e2", "e3", "e4"):
        flat.execute("INSERT INTO flat.encounter_type VALUES ('c', ?, ?, '99213')", [enc, CPT])
    types = v.code_is("Encounter", "e", CPT, "99213")
    assert _rows(flat, v.performed_encounters(types, MP)) == [("c", "p1", "e1")]


@covers(v.conditions_overlapping_day)
def test_conditions_overlapping_day(flat) -> None:
    flat.execute("INSERT INTO valueset_codes VALUES (?, ?, 'dx')", [OFFICE_VISIT_URL, CPT])
    conditions = [  # id, patient, clinical status, onset, verification status, code
        ("c1", "p1", "active", "2020-01-01", None, "dx"),
        ("c2", "p1", "active", "2021-01-01", None, "dx"),  # same patient: one row
        ("c3", "p2", "active", "2020-01-01", "refuted", "dx"),  # not verified
        ("c4", "p3", "resolved", "2020-01-01", None, "dx"),  # not active, no abatement: unknown end
        ("c5", "p4", "active", "2020-01-01", None, "other"),  # not in the value set
        ("c6", "p5", "active", "2020-01-01", None, "dx"),  # patient not in the relation
    ]
    flat.execute(f"CREATE OR REPLACE TABLE flat.condition_code ({CODE_COLUMNS})")
    flat.execute("""CREATE OR REPLACE TABLE flat.condition (center VARCHAR, id VARCHAR, patient_id VARCHAR,
        clinical_status_system VARCHAR, clinical_status_code VARCHAR, verification_status_system VARCHAR,
        verification_status_code VARCHAR, onset_datetime VARCHAR, onset_period_start VARCHAR,
        onset_period_end VARCHAR, onset_age_value DOUBLE, onset_age_unit VARCHAR, abatement_datetime VARCHAR,
        abatement_period_end VARCHAR, abatement_age_value DOUBLE, abatement_age_unit VARCHAR)""")
    for cid, patient, clinical, onset, verification, code in conditions:
        flat.execute(
            "INSERT INTO flat.condition VALUES ('c', ?, ?, ?, ?, ?, ?, ?, "
            "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            [cid, patient, ACTIVE, clinical, VERIFICATION if verification else None, verification, onset],
        )
        flat.execute("INSERT INTO flat.condition_code VALUES ('c', ?, ?, ?)", [cid, CPT, code])
    patients = (
        "(SELECT * FROM (VALUES ('c', 'p1', '1980-01-01'), ('c', 'p2', '1980-01-01'), "
        "('c', 'p3', '1980-01-01'), ('c', 'p4', '1980-01-01')) t(center, id, birth_date))"
    )
    assert _rows(flat, v.conditions_overlapping_day(OFFICE_VISIT, patients, LO, HI)) == [("c", "p1")]


# --- every public function has its truth table ------------------------------------------------------------


def test_every_public_vocabulary_function_has_a_truth_table() -> None:
    public = {n for n in v.__all__ if callable(getattr(v, n)) and not inspect.isclass(getattr(v, n))}
    covered = set().union(*COVERED.values())
    assert not public - covered, f"vocabulary functions without a truth table: {sorted(public - covered)}"
    assert not covered - public, f"@covers names what is not public vocabulary: {sorted(covered - public)}"
    for test_name, names in COVERED.items():
        # the test (its parameters or body, not the @covers line) must use each function it claims
        source = re.sub(r"@covers\((?:.|\n)*?\)\n(?=def |@)", "", inspect.getsource(globals()[test_name]))
        unused = [n for n in names if not re.search(rf"\bv\.{n}\b", source)]
        assert not unused, f"{test_name} claims to cover {unused} but does not use them"
