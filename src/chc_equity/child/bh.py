"""Behavioral-health follow-up of children and adolescents (docs/child.md, "Behavioral-health follow-up").

**ED follow-up** (``child_bh_followup``), our own SQL modelled on the public HEDIS FUM description
("Follow-Up After Emergency Department Visit for Mental Illness"), codes in :mod:`chc_equity.child.codes`:

- *event*: a finished ED visit (Encounter class EMER, or typed CPT 99281-99285) of a patient aged 6-17
  on the visit day, dated from the period start to December 1, with a diagnosis of mental illness
  (ICD-10-CM F03-F99) or intentional self-harm (X71-X83, T14.91) -- as an encounter reason code or a
  Condition the encounter lists as a diagnosis;
- one event per 31 days: a visit within 30 days after an earlier counted visit is not a new event;
- *excluded*: an inpatient stay (class IMP / ACUTE / NONAC) starting on the visit day or within 30 days
  after it (FUM counts those under its inpatient measure);
- *follow-up*: another finished outpatient or telehealth encounter (class AMB / VR / HH) with such a
  diagnosis, on the visit day or up to 7 (30) days after it.

**Positive depression screens without a follow-up plan** (``child_depression_open``): CMS2's own
defines, rendered by the measures engine (:func:`chc_equity.measures.defines.split_with`), so the rule
stays CMS2's: patients 12-17 whose most recent adolescent (or adult) screening near a qualifying
encounter is positive and who have no "Follow Up Intervention" CMS2 accepts.
"""

from __future__ import annotations

from datetime import date

import duckdb

from chc_equity.child import codes
from chc_equity.child.bands import age_sql, band_sql
from chc_equity.views.build import quote_literal
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA
FOLLOWUP = "child_bh_followup"
DEPRESSION_OPEN = "child_depression_open"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _day(expr: str) -> str:
    return f"try_cast(left({expr}, 10) AS DATE)"


def _bh_code(code: str) -> str:
    """Whether an ICD-10-CM code (dots removed, upper case) is mental illness or intentional self-harm."""
    lo, hi = codes.MENTAL_ILLNESS_RANGE
    slo, shi = codes.SELF_HARM_RANGE
    return (
        f"(left({code}, 3) BETWEEN '{lo}' AND '{hi}' OR left({code}, 3) BETWEEN '{slo}' AND '{shi}' "
        f"OR {code} IN {_in(codes.SELF_HARM_CODES)})"
    )


def followup_sql(ps: str, pe: str, cf: str) -> str:
    """``CREATE TABLE child_bh_followup``: one row per counted ED visit (event) of a child."""
    last_month, last_day = codes.FUM_LAST_DAY
    last = f"make_date(year({pe}), {last_month}, {last_day})"
    lo_age, hi_age = codes.FUM_AGES
    d7, d30 = codes.FUM_DAYS
    age = age_sql("p.birth_date", "e.day")
    return f"""CREATE OR REPLACE TABLE {FOLLOWUP} AS
    WITH enc AS (
      SELECT e.center, e.id, e.patient_id, e.class_code, {_day("e.period_start")} AS day,
             e.class_code IN {_in(codes.ED_CLASS)} OR EXISTS (
               SELECT 1 FROM {F}.encounter_type t WHERE t.center = e.center AND t.id = e.id
                  AND t.code IN {_in(codes.ED_CPT)}) AS ed
        FROM {F}.encounter e
       WHERE e.{cf} AND coalesce(e.status, 'finished') = 'finished'
    ),
    dx AS (  -- mental illness / self-harm diagnoses of each encounter (reason codes or listed Conditions)
      SELECT DISTINCT r.center, r.id
        FROM {F}.encounter_reason_code r
       WHERE r.{cf} AND r.system = '{codes.ICD10}' AND {_bh_code("upper(replace(r.code, '.', ''))")}
      UNION
      SELECT DISTINCT d.center, d.id
        FROM {F}.encounter_diagnosis d
        JOIN {F}.condition_code k ON k.center = d.center AND k.id = d.condition_id
       WHERE d.{cf} AND k.system = '{codes.ICD10}' AND {_bh_code("upper(replace(k.code, '.', ''))")}
    ),
    visits AS (
      SELECT e.*, {age} AS age
        FROM enc e JOIN {F}.patient p ON p.center = e.center AND p.id = e.patient_id
       WHERE e.ed AND e.day BETWEEN {ps} AND {last}
         AND EXISTS (SELECT 1 FROM dx WHERE dx.center = e.center AND dx.id = e.id)
         AND {age} BETWEEN {lo_age} AND {hi_age}
    ),
    ordered AS (
      SELECT *, row_number() OVER (PARTITION BY center, patient_id ORDER BY day, id) AS k FROM visits
    ),
    events AS (  -- one event per 31 days: walk each patient's visits in order (recursive CTE)
      WITH RECURSIVE walk(center, patient_id, k, day, id, anchor, counted) AS (
        SELECT center, patient_id, k, day, id, day, true FROM ordered WHERE k = 1
        UNION ALL
        SELECT o.center, o.patient_id, o.k, o.day, o.id,
               CASE WHEN o.day > w.anchor + INTERVAL 30 DAY THEN o.day ELSE w.anchor END,
               o.day > w.anchor + INTERVAL 30 DAY
          FROM walk w JOIN ordered o ON o.center = w.center AND o.patient_id = w.patient_id AND o.k = w.k + 1
      )
      SELECT center, patient_id, id FROM walk WHERE counted
    ),
    followups AS (
      SELECT v.center, v.id,
             min(f.day) FILTER (WHERE f.day BETWEEN v.day AND v.day + INTERVAL {d7} DAY) AS day7,
             min(f.day) FILTER (WHERE f.day BETWEEN v.day AND v.day + INTERVAL {d30} DAY) AS day30
        FROM visits v
        JOIN enc f ON f.center = v.center AND f.patient_id = v.patient_id AND f.id <> v.id
         AND NOT f.ed AND f.class_code IN {_in(codes.OUTPATIENT_CLASS)}
         AND EXISTS (SELECT 1 FROM dx WHERE dx.center = f.center AND dx.id = f.id)
       GROUP BY ALL
    )
    SELECT v.center, v.patient_id, v.id AS encounter_id, v.day AS ed_day, v.age,
           {band_sql("v.age")} AS age_band,
           EXISTS (SELECT 1 FROM enc i WHERE i.center = v.center AND i.patient_id = v.patient_id
                    AND i.class_code IN {_in(codes.INPATIENT_CLASS)}
                    AND i.day BETWEEN v.day AND v.day + INTERVAL {d30} DAY) AS excluded,
           f.day7 IS NOT NULL AS followup_7d, f.day30 IS NOT NULL AS followup_30d,
           datediff('day', v.day, f.day30) AS days_to_followup,
           {ps} AS period_start, {pe} AS period_end
      FROM visits v
      JOIN events ev ON ev.center = v.center AND ev.id = v.id
      LEFT JOIN followups f ON f.center = v.center AND f.id = v.id"""


def depression_open_statements(
    con: duckdb.DuckDBPyConnection, period_start: date, period_end: date
) -> list[str]:
    """Statements building ``child_depression_open`` from CMS2's defines (the measures engine renders
    them; the final query is ours: positive most recent screening, no follow-up, age 12-17)."""
    from chc_equity.measures.defines import split_with, with_query
    from chc_equity.measures.engine import Context, prepare, render
    from chc_equity.measures.registry import find
    from chc_equity.measures.vocabulary import Period

    prepare(con)
    [module] = find(["CMS2"])
    ctx = Context(Period(period_start, period_end))
    rendered = render(module, ctx)
    ctes, _ = split_with(rendered.criteria)
    names = [c.name for c in ctes]
    keep = ctes[: names.index("positive_and_follow_up") + 1]
    final = """SELECT DISTINCT s.center, s.patient_id, ip.age, max(s.eff_start) AS screened_at
      FROM most_recent_depression_screening s
      JOIN initial_population ip ON ip.center = s.center AND ip.patient_id = s.patient_id
     WHERE s.positive AND ip.age BETWEEN 12 AND 17
       AND NOT EXISTS (SELECT 1 FROM positive_and_follow_up f WHERE f.center = s.center
                        AND f.patient_id = s.patient_id AND f.tool = s.tool)
     GROUP BY ALL"""
    libs = [f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}" for d in rendered.library]
    return [*libs, f"CREATE OR REPLACE TABLE {DEPRESSION_OPEN} AS {with_query(keep, final)}"]


def build(
    con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date, center: str | None = None
) -> None:
    """(Re)build ``child_bh_followup`` and ``child_depression_open``."""
    ps, pe = f"DATE '{period_start.isoformat()}'", f"DATE '{period_end.isoformat()}'"
    cf = f"center = {quote_literal(center)}" if center else "center IS NOT NULL"
    con.execute(followup_sql(ps, pe, cf))
    for sql in depression_open_statements(con, period_start, period_end):
        con.execute(sql)
    if center is not None:
        con.execute(f"DELETE FROM {DEPRESSION_OPEN} WHERE center <> ?", [center])
