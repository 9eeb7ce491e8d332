"""Truth tables of the CQL vocabulary (``measures/cql.py``, ``codes.py``, ``library/qicore.py``,
``library/status.py``): each function's SQL runs in DuckDB on one-row inputs covering nulls, missing
interval bounds, partial dates and time zones. A row's expectation is what the official test cases
(cql-execution semantics, see the functions' docstrings) require; ``None`` is SQL NULL, which a WHERE
clause treats as false.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import duckdb
import pytest

from chc_equity.measures import cql
from chc_equity.measures.cql import MACROS, QICORE, Period, sql_str
from chc_equity.measures.library import qicore, status

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
    return sql_str(str(value))


def evaluate(con, expr: str, **columns: object) -> object:
    """Value of ``expr`` over one row ``a`` with the given columns (text unless int / float / bool)."""
    cols = ", ".join(f"{_literal(v)} AS {k}" for k, v in columns.items()) or "1 AS dummy"
    return con.execute(f"SELECT {expr} FROM (SELECT {cols}) a").fetchone()[0]


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
def test_fhir_ts_and_fhir_date(con, text, ts, day) -> None:
    assert evaluate(con, "fhir_ts(a.t)", t=text) == ts
    assert evaluate(con, "fhir_date(a.t)", t=text) == day


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
def test_during_day_of_mp(con, start, end, during) -> None:
    assert evaluate(con, cql.during_day_of_mp("a.s", "a.e", MP), s=start, e=end) is during


@pytest.mark.parametrize(
    ("point", "during"),
    [("2026-06-01", True), ("2025-12-31", False), ("2027-01-01", False), (None, None)],
)
def test_point_and_end_during_day_of_mp(con, point, during) -> None:
    assert evaluate(con, cql.point_during_day_of_mp("a.p", MP), p=point) is during
    assert evaluate(con, cql.ends_during_day_of_mp("a.p", MP), p=point) is during


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
def test_period_overlaps_day(con, start, end, overlaps) -> None:
    assert evaluate(con, qicore.period_overlaps_day("a.s", "a.e", LO, HI), s=start, e=end) is overlaps


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
def test_choice_overlaps_and_during_day(con, dt, instant, ps, pe, overlaps, during) -> None:
    row = {"x_datetime": dt, "x_instant": instant, "x_period_start": ps, "x_period_end": pe}
    assert evaluate(con, qicore.choice_overlaps_day("a", "x", LO, HI, instant=True), **row) is overlaps
    assert evaluate(con, qicore.choice_during_day("a", "x", LO, HI, instant=True), **row) is during


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
def test_latest_and_earliest(con, dt, ps, pe, latest, earliest) -> None:
    row = {"x_datetime": dt, "x_period_start": ps, "x_period_end": pe}
    assert evaluate(con, cql.latest("a.x_datetime", "a.x_period_start", "a.x_period_end"), **row) == latest
    earliest_sql = cql.earliest("a.x_datetime", "a.x_period_start", "a.x_period_end")
    assert evaluate(con, earliest_sql, **row) == earliest
    assert evaluate(con, qicore.choice_latest("a", "x"), x_instant=None, **row) == latest


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
def test_age_at_start_and_end(con, birth, at_start, at_end) -> None:
    assert evaluate(con, cql.age_at_start("a.b", MP), b=birth) == at_start
    assert evaluate(con, cql.age_at_end("a.b", MP), b=birth) == at_end


# --- Condition.prevalenceInterval() --------------------------------------------------------------------

ACTIVE = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _condition(clinical: str | None = None, onset: str | None = None, abatement: str | None = None):
    return {
        "clinical_status_system": ACTIVE if clinical else None, "clinical_status_code": clinical,
        "onset_datetime": onset, "onset_period_start": None, "onset_period_end": None,
        "onset_age_value": NO_NUMBER, "onset_age_unit": None,
        "abatement_datetime": abatement, "abatement_period_end": None,
        "abatement_age_value": NO_NUMBER, "abatement_age_unit": None, "birth_date": "1980-01-01",
    }


@pytest.mark.parametrize(
    ("clinical", "onset", "abatement", "overlaps", "starts_during"),
    [
        ("active", "2020-01-01", None, True, False),  # active, no abatement: unbounded above
        ("active", None, None, True, False),  # no onset: unbounded below too
        ("resolved", "2020-01-01", None, False, False),  # not active, no abatement: unknown end
        ("resolved", "2026-03-01", None, True, True),  # ... overlaps only when the onset is inside
        ("resolved", "2020-01-01", "2025-12-31", False, False),
        ("resolved", "2020-01-01", "2026-01-01", True, False),
        (None, "2026-03-01", None, True, True),  # no clinicalStatus: as not active
        ("recurrence", "2027-01-01", None, False, False),  # starts after the period
    ],
)
def test_prevalence_interval(con, clinical, onset, abatement, overlaps, starts_during) -> None:
    row = _condition(clinical, onset, abatement)
    assert evaluate(con, qicore.prevalence_overlaps_day("a", "a.birth_date", LO, HI), **row) is overlaps
    assert evaluate(con, qicore.prevalence_starts_during_day("a", "a.birth_date", LO, HI), **row) is (
        starts_during
    )


def test_prevalence_interval_from_an_onset_age(con) -> None:
    row = _condition("resolved") | {"onset_age_value": 46.0, "onset_age_unit": "a"}  # 1980 + 46 = 2026
    assert evaluate(con, qicore.prevalence_starts_during_day("a", "a.birth_date", LO, HI), **row) is True


# --- Status filters and profile retrieves ---------------------------------------------------------------

VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.mark.parametrize(
    ("system", "code", "verified"),
    [
        (None, None, True),  # no verificationStatus: verified() holds
        (VERIFICATION, "confirmed", True),
        (VERIFICATION, "provisional", True),
        (VERIFICATION, "refuted", False),
        (VERIFICATION, "entered-in-error", False),
        ("http://example.org/other", "confirmed", False),
    ],
)
def test_verified(con, system, code, verified) -> None:
    row = {"verification_status_system": system, "verification_status_code": code}
    assert bool(evaluate(con, status.verified("a"), **row)) is verified


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (status.is_encounter_performed, "finished", True),
        (status.is_encounter_performed, "in-progress", False),
        (status.is_laboratory_test_performed, "amended", True),
        (status.is_laboratory_test_performed, "preliminary", False),
        (status.is_symptom, "preliminary", True),
        (status.is_observation_smoking_status, "amended", False),
        (status.is_procedure_performed, "completed", True),
        (status.is_medication_dispensed, "on-hold", True),
        (status.is_encounter_performed, None, None),
    ],
)
def test_status_filters(con, fn: Callable[[str], str], value, expected) -> None:
    assert evaluate(con, fn("a"), status=value) is expected


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
def test_profile_retrieve(con, meta_profile, do_not_perform, requested, not_requested) -> None:
    row = {"meta_profile": meta_profile, "do_not_perform": do_not_perform}
    assert evaluate(con, cql.service_requested("a"), **row) is requested
    assert evaluate(con, cql.service_not_requested("a"), **row) is not_requested


@pytest.mark.parametrize("text", ["plain", "O'Brien", "''", "a'; DROP TABLE x; --"])
def test_sql_str_round_trips(con, text: str) -> None:
    assert con.execute(f"SELECT {sql_str(text)}").fetchone()[0] == text


@pytest.mark.parametrize(
    ("start", "end", "during"),
    [
        ("2025-07-01", "2025-07-01", True),  # Interval[start of MP - 6 months, end of MP]
        ("2025-06-30", "2025-07-01", False),
        ("2026-12-31", "2026-12-31", True),
        ("2025-08-01", None, None),
    ],
)
def test_during_day_of_an_interval(con, start, end, during) -> None:
    lo = f"CAST({MP.start_date} - INTERVAL 6 MONTH AS DATE)"
    assert evaluate(con, cql.during_day_of("a.s", "a.e", lo, HI), s=start, e=end) is during


VALUE_COLUMNS = (
    "value_quantity_value", "value_quantity_unit", "value_quantity_code", "value_boolean", "value_string",
    "value_integer", "value_datetime", "value_period_start", "value_period_end", "value_code_text",
)


@pytest.mark.parametrize(
    ("present", "has_value", "is_quantity"),
    [
        ((), False, False),
        (("value_quantity_value",), True, True),
        (("value_quantity_unit",), True, True),  # a Quantity without a number is still a Quantity
        (("value_string",), True, False),
        (("value_code_text",), True, False),
    ],
)
def test_observation_value(con, present, has_value, is_quantity) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS flat")
    con.execute("CREATE OR REPLACE TABLE flat.observation_value_code (center VARCHAR, id VARCHAR)")
    row = {c: ("x" if c in present else None) for c in VALUE_COLUMNS} | {"center": "c", "id": "o1"}
    assert evaluate(con, qicore.observation_has_value("a"), **row) is has_value
    assert evaluate(con, qicore.observation_value_is_quantity("a"), **row) is is_quantity
    con.execute("INSERT INTO flat.observation_value_code VALUES ('c', 'o1')")  # a coded value counts
    assert evaluate(con, qicore.observation_has_value("a"), **row) is True
