"""Social-needs metrics in pure DuckDB SQL over the flat views: ``sdoh_patient``, ``sdoh_referral``,
``sdoh_patient_domain`` and ``sdoh_metrics`` (definitions in docs/sdoh.md, "Metrics").

Population: *eligible* patients are those aged 18+ at the period end (the equity layer's age band)
with a visit in the period (an Encounter dated in the period, not cancelled / entered-in-error /
planned), as MIPS #487 counts them. Every other metric is about eligible patients, so that each rate's
denominator is a subset of the eligible ones and stratifies on the same attributes.

Evidence, all dated in the period:

- **screen answers** from three shapes of the same data (Gravity SDOH Clinical Care): QuestionnaireResponse
  items (item LOINC from ``item.code``, else the last segment of the linkId, as in the Gravity PRAPARE
  example ``/93042-0/71802-3``), screening-response Observations (``Observation.code`` = the item,
  ``value`` = the answer), and panel Observations whose components are the items (PRAPARE 93025-5);
- **recorded problems**: Conditions (health concerns, problem-list items or encounter diagnoses: a Z
  code recorded only as an encounter diagnosis is a Condition too) coded with a mapped ICD-10-CM prefix
  or SNOMED code, or categorised with a Gravity SDOH category;
- **referrals**: ServiceRequests with a mapped Gravity category or reason code, or the social-service
  category SNOMED 410606002 (domain unspecified), and the latest Task whose focus is each of them.

Everything is set-based SQL (joins and aggregates, no per-patient Python), so it scales with DuckDB.
"""

from __future__ import annotations

from datetime import date

import duckdb

from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.attributes import ensure_patient_attributes
from chc_equity.sdoh import mapping
from chc_equity.sdoh.mapping import PRAPARE_PANEL, SOCIAL_REFERRAL
from chc_equity.sdoh.tier import tier_sql
from chc_equity.views.build import quote_literal
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA
M = mapping.TABLE
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
# PRAPARE's material-security item is a multi-select: a patient with no such need checks nothing, and a
# form (LHC-Forms, Gravity's example) then has no answer to it. A PRAPARE QuestionnaireResponse that
# answers other "Money and resources" items but not this one asked it and found no need.
MATERIAL_NEEDS = "93031-3"
MONEY_GROUP = ("82589-3", "67875-5", "76437-3", "63586-2", "93030-5")
NOT_A_VISIT = ("cancelled", "entered-in-error", "planned")
CONTACT_TASK = ("in-progress", "completed")  # the community organization has engaged the patient
# Task.statusReason codes meaning "rejected at capacity": Gravity's capacity-status codes
# (SDOHCC-CodeSystemTemporaryCodes); a reason text or display mentioning "capacity" counts as well.
AT_CAPACITY = ("no-capacity", "no-capacity-has-waitlist")
CONNECTION_DAYS = 60  # MIPS #498: contact with a community service provider within 60 days

PATIENT = "sdoh_patient"
PATIENT_DOMAIN = "sdoh_patient_domain"
REFERRAL = "sdoh_referral"
METRICS = "sdoh_metrics"
ORGANIZATIONS = "sdoh_organization"
ACCEPTED = ("accepted", "in-progress", "completed")  # latest Task status: the organization took it on
ANY = "any"  # the domain value of a metric over all domains
ALL_SITES = "All"
NO_DOMAIN = "unspecified"  # a social referral without a mapped domain
NETWORK = "*"  # the center value of network rows (all centers together), as chc_equity.network.NETWORK


def _day(expr: str) -> str:
    return f"try_cast(left({expr}, 10) AS DATE)"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


TEMP_TABLES = (
    "_sdoh_eligible", "_sdoh_hrsn", "_sdoh_answer", "_sdoh_numeric", "_sdoh_asked", "_sdoh_positive",
    "_sdoh_recorded",
    "_sdoh_sr_domain", "_sdoh_task",
)  # fmt: skip


def _eligible(alias: str) -> str:
    """JOIN restricting ``alias`` (with center, patient_id) to eligible patients."""
    return f"JOIN _sdoh_eligible el ON el.center = {alias}.center AND el.patient_id = {alias}.patient_id"


def _same(a: str, b: str) -> str:
    """Join predicate: the same (center, patient, domain) in ``a`` and ``b``."""
    return f"{a}.center = {b}.center AND {a}.patient_id = {b}.patient_id AND {a}.domain = {b}.domain"


def _steps(ps: str, pe: str, cf: str) -> list[str]:
    """The SQL statements, in order: ``ps``/``pe`` are DATE literals, ``cf`` a predicate on ``center``."""
    pr = tier_sql("positive_domains")
    hrsn = ", ".join(f"({quote_literal(d)}, {quote_literal(g)})" for d, g in mapping.HRSN.items())
    core = _in(mapping.prapare_core_items())
    n_core = len(mapping.prapare_core_items())
    groups = len(mapping.HRSN_GROUPS)
    qr_item = "coalesce(i.item_code, regexp_extract(i.link_id, '([0-9]+-[0-9])$', 1))"
    obs_day = _day("coalesce(o.effective_datetime, o.effective_period_start, o.effective_instant, o.issued)")
    return [
        # --- who counts: adults with a visit in the period; site and age band from the equity layer
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_eligible AS
        SELECT DISTINCT e.center, e.patient_id, a.site, a.age_band
          FROM {F}.encounter e JOIN {ATTRIBUTES} a ON a.center = e.center AND a.patient_id = e.patient_id
         WHERE e.{cf} AND coalesce(e.status, 'finished') NOT IN {_in(NOT_A_VISIT)}
           AND {_day("e.period_start")} BETWEEN {ps} AND {pe}
           AND a.age_band NOT IN ('0-17', 'Unknown')""",
        "CREATE OR REPLACE TEMP TABLE _sdoh_hrsn (domain VARCHAR, hrsn VARCHAR)",
        f"INSERT INTO _sdoh_hrsn VALUES {hrsn}",
        # --- every screen answer in the period, whatever its shape
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_answer AS
        WITH raw AS (
          SELECT q.center, q.patient_id, q.id AS source_id, {_day("q.authored")} AS day,
                 {qr_item} AS item,
                 i.answer_system AS system, i.answer_code AS code,
                 coalesce(q.questionnaire ILIKE '%prapare%', false) AS prapare
            FROM {F}.questionnaire_response q
            JOIN {F}.questionnaire_response_item i ON i.center = q.center AND i.id = q.id
           WHERE q.{cf} AND coalesce(q.status, 'completed') IN ('completed', 'amended')
          UNION ALL  -- PRAPARE's multi-select left empty: asked, no need checked (see MATERIAL_NEEDS)
          SELECT q.center, q.patient_id, q.id, {_day("q.authored")}, '{MATERIAL_NEEDS}', NULL, NULL, true
            FROM {F}.questionnaire_response q
           WHERE q.{cf} AND coalesce(q.status, 'completed') IN ('completed', 'amended')
             AND q.questionnaire ILIKE '%prapare%'
             AND EXISTS (SELECT 1 FROM {F}.questionnaire_response_item i WHERE i.center = q.center
                          AND i.id = q.id AND {qr_item} IN {_in(MONEY_GROUP)})
             AND NOT EXISTS (SELECT 1 FROM {F}.questionnaire_response_item i WHERE i.center = q.center
                              AND i.id = q.id AND {qr_item} = '{MATERIAL_NEEDS}')
          UNION ALL
          SELECT o.center, o.patient_id, o.id, {obs_day},
                 k.code, coalesce(v.system, o.data_absent_reason_system),
                 coalesce(v.code, o.data_absent_reason_code), false
            FROM {F}.observation o
            JOIN {F}.observation_code k ON k.center = o.center AND k.id = o.id AND k.system = '{LOINC}'
            LEFT JOIN {F}.observation_value_code v ON v.center = o.center AND v.id = o.id
           WHERE o.{cf} AND coalesce(o.status, 'final') IN ('final', 'amended', 'corrected')
          UNION ALL
          SELECT o.center, o.patient_id, o.id, {obs_day},
                 c.code, coalesce(c.value_code_system, c.data_absent_reason_system),
                 coalesce(c.value_code, c.data_absent_reason_code),
                 EXISTS (SELECT 1 FROM {F}.observation_code p WHERE p.center = o.center AND p.id = o.id
                          AND p.system = '{LOINC}' AND p.code = '{PRAPARE_PANEL}')
            FROM {F}.observation o
            JOIN {F}.observation_component c
              ON c.center = o.center AND c.id = o.id AND c.code_system = '{LOINC}'
           WHERE o.{cf} AND coalesce(o.status, 'final') IN ('final', 'amended', 'corrected')
        )
        SELECT DISTINCT r.* FROM raw r
          JOIN _sdoh_eligible el ON el.center = r.center AND el.patient_id = r.patient_id
         WHERE r.day BETWEEN {ps} AND {pe}
           AND r.item IN (SELECT item FROM {M} WHERE kind = 'question')""",
        # --- per patient x domain: asked, declined, positive (screens); recorded; referred
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_asked AS
        SELECT a.center, a.patient_id, q.domain, q.screener, a.item, a.day, a.prapare,
               EXISTS (SELECT 1 FROM {M} d WHERE d.kind = 'decline'
                        AND d.system = a.system AND d.code = a.code) AS declined
          FROM _sdoh_answer a JOIN {M} q ON q.kind = 'question' AND q.item = a.item""",
        # numbers answered to PRAPARE's income and household-size items (for the poverty rule)
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_numeric AS
        WITH raw AS (
          SELECT q.center, q.patient_id, {_day("q.authored")} AS day, {qr_item} AS item,
                 coalesce(try_cast(i.answer_decimal AS DOUBLE), try_cast(i.answer_integer AS DOUBLE),
                          try_cast(i.answer_quantity_value AS DOUBLE)) AS value
            FROM {F}.questionnaire_response q
            JOIN {F}.questionnaire_response_item i ON i.center = q.center AND i.id = q.id
           WHERE q.{cf} AND coalesce(q.status, 'completed') IN ('completed', 'amended')
          UNION ALL
          SELECT o.center, o.patient_id, {obs_day}, k.code,
                 coalesce(try_cast(o.value_quantity_value AS DOUBLE), try_cast(o.value_integer AS DOUBLE))
            FROM {F}.observation o
            JOIN {F}.observation_code k ON k.center = o.center AND k.id = o.id AND k.system = '{LOINC}'
           WHERE o.{cf} AND coalesce(o.status, 'final') IN ('final', 'amended', 'corrected')
          UNION ALL
          SELECT o.center, o.patient_id, {obs_day}, c.code,
                 coalesce(try_cast(c.value_quantity_value AS DOUBLE), try_cast(c.value_integer AS DOUBLE))
            FROM {F}.observation o
            JOIN {F}.observation_component c
              ON c.center = o.center AND c.id = o.id AND c.code_system = '{LOINC}'
           WHERE o.{cf} AND coalesce(o.status, 'final') IN ('final', 'amended', 'corrected')
        )
        SELECT r.center, r.patient_id, r.day,
               max(r.value) FILTER (WHERE r.item = '{mapping.INCOME_ITEM}') AS income,
               max(r.value) FILTER (WHERE r.item = '{mapping.HOUSEHOLD_ITEM}') AS household
          FROM raw r {_eligible("r")}
         WHERE r.day BETWEEN {ps} AND {pe} AND r.value IS NOT NULL
           AND r.item IN ('{mapping.INCOME_ITEM}', '{mapping.HOUSEHOLD_ITEM}')
         GROUP BY ALL""",
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_positive AS
        SELECT a.center, a.patient_id, m.domain, a.item, a.code, a.day, m.risk_points, m.screener
          FROM _sdoh_answer a JOIN {M} m ON m.kind = 'answer' AND m.result = 'positive'
           AND m.item = a.item AND m.system = a.system AND m.code = a.code
        UNION ALL  -- HITS: the items' points summed per screening day, positive over the threshold
        SELECT center, patient_id, domain, 'HITS', NULL, day, 0, screener FROM (
          SELECT a.center, a.patient_id, a.day, m.domain, m.screener, a.item, max(m.score) AS points
            FROM _sdoh_answer a JOIN {M} m ON m.kind = 'score'
             AND m.item = a.item AND m.system = a.system AND m.code = a.code
           GROUP BY ALL)
         GROUP BY center, patient_id, domain, day, screener
        HAVING sum(points) > {mapping.HITS_POSITIVE_ABOVE}
        UNION ALL  -- income below the household's poverty guideline (latest guideline year <= the day's)
        SELECT n.center, n.patient_id, 'income', '{mapping.INCOME_ITEM}', 'below-poverty', n.day, 1,
               '{mapping.PRAPARE_CORE}'
          FROM _sdoh_numeric n
          JOIN sdoh_fpl f ON f.year = coalesce(
                 (SELECT max(year) FROM sdoh_fpl WHERE year <= year(n.day)), (SELECT min(year) FROM sdoh_fpl))
         WHERE n.income IS NOT NULL AND n.household >= 1
           AND n.income
               < {mapping.POVERTY_RATIO} * (f.first_person + (n.household - 1) * f.each_additional)""",
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_recorded AS
        WITH cond AS (
          SELECT c.center, c.patient_id, c.id
            FROM {F}.condition c {_eligible("c")}
           WHERE c.{cf} AND coalesce(c.verification_status_code, '') NOT IN ('entered-in-error', 'refuted')
             AND {_day("coalesce(c.recorded_date, c.onset_datetime, c.onset_period_start)")} <= {pe}
             AND ({_day("coalesce(c.recorded_date, c.onset_datetime, c.onset_period_start)")} >= {ps}
                  OR coalesce(c.clinical_status_code, 'active') IN ('active', 'recurrence', 'relapse'))
        ),
        coded AS (
          SELECT c.center, c.patient_id, k.system, upper(replace(k.code, '.', '')) AS code_key
            FROM cond c JOIN {F}.condition_code k ON k.center = c.center AND k.id = c.id
        ),
        icd AS (
          SELECT c.center, c.patient_id, m.domain
            FROM coded c JOIN {M} m
              ON m.kind = 'icd10' AND c.system = m.system AND starts_with(c.code_key, m.code_key)
          QUALIFY rank() OVER (PARTITION BY c.center, c.patient_id, c.code_key
                               ORDER BY length(m.code_key) DESC) = 1
        )
        SELECT DISTINCT center, patient_id, domain FROM (
          SELECT center, patient_id, domain FROM icd
          UNION ALL
          SELECT c.center, c.patient_id, m.domain
            FROM coded c JOIN {M} m ON m.kind = 'snomed' AND c.system = m.system AND c.code_key = m.code_key
          UNION ALL
          SELECT c.center, c.patient_id, m.domain
            FROM cond c JOIN {F}.condition_category k ON k.center = c.center AND k.id = c.id
            JOIN {M} m ON m.kind = 'category' AND k.system = m.system AND k.code = m.code
        )""",
        # --- referrals authored in the period: one row per (referral, domain); domain NULL = unspecified
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_sr_domain AS
        WITH sr AS (
          SELECT s.center, s.id, s.patient_id, {_day("s.authored_on")} AS authored
            FROM {F}.service_request s {_eligible("s")}
           WHERE s.{cf} AND coalesce(s.status, 'active') NOT IN ('entered-in-error', 'draft')
             AND coalesce(s.do_not_perform, false) = false
             AND {_day("s.authored_on")} BETWEEN {ps} AND {pe}
        ),
        dom AS (
          SELECT s.center, s.id, m.domain
            FROM sr s JOIN {F}.service_request_category k ON k.center = s.center AND k.id = s.id
            JOIN {M} m ON m.kind = 'category' AND k.system = m.system AND k.code = m.code
          UNION
          SELECT s.center, s.id, m.domain
            FROM sr s JOIN {F}.service_request_reason_code k ON k.center = s.center AND k.id = s.id
            JOIN {M} m ON m.kind IN ('icd10', 'snomed') AND k.system = m.system
             AND (upper(replace(k.code, '.', '')) = m.code_key
                  OR (m.kind = 'icd10' AND starts_with(upper(replace(k.code, '.', '')), m.code_key)))
        ),
        social AS (
          SELECT s.* FROM sr s
           WHERE EXISTS (SELECT 1 FROM dom d WHERE d.center = s.center AND d.id = s.id)
              OR EXISTS (SELECT 1 FROM {F}.service_request_category k
                          WHERE k.center = s.center AND k.id = s.id
                            AND k.system = '{SNOMED}' AND k.code = '{SOCIAL_REFERRAL}')
        )
        SELECT s.center, s.id, s.patient_id, s.authored, d.domain
          FROM social s LEFT JOIN dom d ON d.center = s.center AND d.id = s.id""",
        f"""CREATE OR REPLACE TEMP TABLE _sdoh_task AS
        WITH t AS (
          SELECT t.center, t.focus_id, t.id, t.status, t.status_reason_text, t.owner_id,
                 {_day("t.execution_period_start")} AS started, {_day("t.execution_period_end")} AS ended,
                 {_day("t.last_modified")} AS modified
            FROM {F}.task t
           WHERE t.{cf} AND t.focus_id IN (SELECT id FROM _sdoh_sr_domain)
          QUALIFY row_number() OVER (PARTITION BY t.center, t.focus_id
            ORDER BY coalesce(t.last_modified, t.authored_on) DESC NULLS LAST, t.id DESC) = 1
        )
        SELECT t.*,
               t.status = 'rejected' AND (
                 EXISTS (SELECT 1 FROM {F}.task_status_reason r WHERE r.center = t.center AND r.id = t.id
                          AND (r.code IN {_in(AT_CAPACITY)} OR lower(r.display) LIKE '%capacity%'))
                 OR lower(coalesce(t.status_reason_text, '')) LIKE '%capacity%') AS at_capacity,
               EXISTS (SELECT 1 FROM {F}.task_output o WHERE o.center = t.center AND o.id = t.id
                        AND (o.value_reference IS NOT NULL OR o.value_string IS NOT NULL)) AS has_output
          FROM t""",
        f"""CREATE OR REPLACE TABLE {REFERRAL} AS
        SELECT r.center, r.patient_id, el.site, r.id AS referral_id,
               coalesce(r.domain, '{NO_DOMAIN}') AS domain, r.authored,
               coalesce(t.status, 'requested') AS task_status,
               coalesce(t.at_capacity, false) AS rejected_at_capacity,
               coalesce(t.status = 'completed' AND t.has_output, false) AS closed,
               CASE WHEN t.status = 'completed' AND t.has_output
                    THEN datediff('day', r.authored, coalesce(t.ended, t.modified)) END AS days_to_closure,
               CASE WHEN t.status IN {_in(CONTACT_TASK)} THEN coalesce(t.started, t.modified) END
                 AS contact_day,
               coalesce(p.performer_id, t.owner_id) AS organization_id,
               coalesce(o.name, coalesce(p.performer_id, t.owner_id)) AS organization_name,
               {ps} AS period_start, {pe} AS period_end
          FROM _sdoh_sr_domain r
          JOIN _sdoh_eligible el ON el.center = r.center AND el.patient_id = r.patient_id
          LEFT JOIN _sdoh_task t ON t.center = r.center AND t.focus_id = r.id
          LEFT JOIN (SELECT center, id, min(performer_id) AS performer_id FROM {F}.service_request_performer
                      WHERE {cf} AND performer_reference LIKE 'Organization/%' GROUP BY ALL) p
            ON p.center = r.center AND p.id = r.id
          LEFT JOIN (SELECT center, id, any_value(name) AS name
                       FROM {F}.organization WHERE {cf} GROUP BY ALL) o
            ON o.center = r.center AND o.id = coalesce(p.performer_id, t.owner_id)""",
        f"""CREATE OR REPLACE TABLE {PATIENT_DOMAIN} AS
        WITH keys AS (
          SELECT center, patient_id, domain FROM _sdoh_asked
          UNION SELECT center, patient_id, domain FROM _sdoh_recorded
          UNION SELECT center, patient_id, domain FROM {REFERRAL} WHERE domain <> '{NO_DOMAIN}'
        ),
        asked AS (
          SELECT center, patient_id, domain, bool_or(NOT declined) AS answered,
                 bool_or(declined) AS any_declined
            FROM _sdoh_asked GROUP BY ALL
        ),
        pos AS (SELECT center, patient_id, domain, min(day) AS first_positive
                  FROM _sdoh_positive GROUP BY ALL),
        ref AS (SELECT DISTINCT center, patient_id, domain FROM {REFERRAL}),
        rescreen AS (  -- the latest answer to the domain after its first positive (a re-screen)
          SELECT a.center, a.patient_id, a.domain, max(a.day) AS last_day
            FROM _sdoh_asked a JOIN pos p ON {_same("a", "p")}
           WHERE NOT a.declined AND a.day > p.first_positive
           GROUP BY ALL
        )
        SELECT k.center, k.patient_id, el.site, k.domain, h.hrsn,
               coalesce(a.answered, false) AS answered,
               coalesce(a.any_declined AND NOT a.answered, false) AS declined,
               p.first_positive IS NOT NULL AS positive, p.first_positive,
               rc.patient_id IS NOT NULL AS recorded,
               p.first_positive IS NOT NULL OR rc.patient_id IS NOT NULL AS need,
               rf.patient_id IS NOT NULL AS referred,
               rs.last_day IS NOT NULL AS rescreened,
               rs.last_day IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM _sdoh_positive x WHERE {_same("x", "rs")} AND x.day = rs.last_day) AS resolved
          FROM keys k
          JOIN _sdoh_eligible el ON el.center = k.center AND el.patient_id = k.patient_id
          LEFT JOIN _sdoh_hrsn h ON h.domain = k.domain
          LEFT JOIN asked a ON {_same("a", "k")}
          LEFT JOIN pos p ON {_same("p", "k")}
          LEFT JOIN _sdoh_recorded rc ON {_same("rc", "k")}
          LEFT JOIN ref rf ON {_same("rf", "k")}
          LEFT JOIN rescreen rs ON {_same("rs", "k")}""",
        f"""CREATE OR REPLACE TABLE {PATIENT} AS
        WITH d AS (
          SELECT center, patient_id,
                 count(DISTINCT hrsn) FILTER (WHERE answered) AS hrsn_answered,
                 count(DISTINCT hrsn) FILTER (WHERE declined) AS hrsn_declined,
                 bool_or(answered) AS answered_any,
                 count(*) FILTER (WHERE positive) AS positive_domains,
                 bool_or(positive) AS positive_any,
                 min(first_positive) FILTER (WHERE hrsn IS NOT NULL) AS first_hrsn_positive,
                 bool_or(need) AS need_any, bool_or(need AND referred) AS referred_any,
                 string_agg(domain, ';' ORDER BY domain) FILTER (WHERE positive) AS positive_list
            FROM {PATIENT_DOMAIN} GROUP BY ALL
        ),
        prapare AS (
          SELECT center, patient_id, count(DISTINCT item) AS core_items
            FROM _sdoh_asked WHERE prapare AND item IN {core} GROUP BY ALL
        ),
        points AS (
          SELECT center, patient_id, sum(risk_points) AS score
            FROM (SELECT DISTINCT center, patient_id, item, code, risk_points
                    FROM _sdoh_positive WHERE risk_points > 0)
           GROUP BY ALL
        ),
        connected AS (
          SELECT DISTINCT d.center, d.patient_id
            FROM d JOIN {REFERRAL} r ON r.center = d.center AND r.patient_id = d.patient_id
           WHERE d.first_hrsn_positive IS NOT NULL AND r.contact_day IS NOT NULL
             AND r.contact_day BETWEEN d.first_hrsn_positive AND d.first_hrsn_positive + {CONNECTION_DAYS}
             AND (r.domain = '{NO_DOMAIN}' OR EXISTS (
                   SELECT 1 FROM {PATIENT_DOMAIN} x WHERE x.center = r.center AND x.patient_id = r.patient_id
                      AND x.domain = r.domain AND x.positive AND x.hrsn IS NOT NULL))
        )
        SELECT el.center, el.patient_id, el.site, el.age_band,
               coalesce(d.answered_any, false) AS screened_any,
               coalesce(d.hrsn_answered, 0) = {groups} AS screened,
               coalesce(d.hrsn_answered, 0) < {groups} AND coalesce(d.hrsn_declined, 0) > 0 AS declined,
               coalesce(pp.core_items, 0) AS prapare_items,
               coalesce(pp.core_items, 0) = {n_core} AS prapare_complete,
               CASE WHEN pp.core_items IS NOT NULL THEN least(coalesce(pt.score, 0), 22)::INTEGER END
                 AS prapare_risk_score,
               CASE WHEN coalesce(d.answered_any, false) THEN coalesce(d.positive_domains, 0) END
                 AS positive_domains,
               coalesce(d.positive_any, false) AS positive_any,
               d.positive_list AS positive_domain_list,
               d.first_hrsn_positive IS NOT NULL AS hrsn_positive,
               c.patient_id IS NOT NULL AS connected_60d,
               coalesce(d.need_any, false) AS need_any,
               coalesce(d.referred_any, false) AS referred_any,
               {ps} AS period_start, {pe} AS period_end
          FROM _sdoh_eligible el
          LEFT JOIN d ON d.center = el.center AND d.patient_id = el.patient_id
          LEFT JOIN prapare pp ON pp.center = el.center AND pp.patient_id = el.patient_id
          LEFT JOIN points pt ON pt.center = el.center AND pt.patient_id = el.patient_id
          LEFT JOIN connected c ON c.center = el.center AND c.patient_id = el.patient_id""",
        f"CREATE OR REPLACE TABLE {PATIENT} AS SELECT *, {pr} AS social_risk_tier FROM {PATIENT}",
    ]


# metric name -> (unit, what the numerator and denominator count); documented in docs/sdoh.md
METRIC_NAMES = (
    "eligible", "screened", "declined", "prapare_complete", "positive", "documented", "referred",
    "connected_60d", "rescreen_resolution", "closure", "rejected_at_capacity", "days_to_closure_median",
    "days_to_closure_p90",
)  # fmt: skip


def _metrics_sql(ps: str, pe: str, network: bool) -> str:
    """One row per (center, site, domain, metric); site 'All' is the center; domain 'any' all domains.
    With ``network``, also the network rows (center :data:`NETWORK`, site 'All': every center together,
    a patient of two centers counted in each, as the eCQM network rows count them)."""
    net = ", ()" if network else ""
    gs = f"GROUPING SETS ((center, site), (center){net})"
    site = f"CASE WHEN grouping(site) = 1 THEN '{ALL_SITES}' ELSE site END"
    ctr = f"CASE WHEN grouping(center) = 1 THEN '{NETWORK}' ELSE center END"
    pd_any = f"""SELECT center, site, patient_id, '{ANY}' AS domain, bool_or(answered) AS answered,
                   bool_or(positive) AS positive, bool_or(positive AND recorded) AS documented,
                   bool_or(need) AS need, bool_or(need AND referred) AS referred,
                   bool_or(rescreened) AS rescreened,
                   bool_or(rescreened) AND bool_and(resolved OR NOT rescreened) AS resolved
              FROM {PATIENT_DOMAIN} GROUP BY ALL"""
    pd_dom = f"""SELECT center, site, patient_id, domain, answered, positive,
                   positive AND recorded AS documented, need, need AND referred AS referred, rescreened,
                   resolved
              FROM {PATIENT_DOMAIN}"""
    cols = "closed, rejected_at_capacity, days_to_closure"
    ref_any = f"SELECT DISTINCT center, site, referral_id, '{ANY}' AS domain, {cols} FROM {REFERRAL}"
    ref_dom = f"""SELECT center, site, referral_id, domain, {cols} FROM {REFERRAL}
                   WHERE domain <> '{NO_DOMAIN}'"""
    gd = f"GROUPING SETS ((center, site, domain), (center, domain){', (domain)' if network else ''})"
    return f"""
    CREATE OR REPLACE TABLE {METRICS} AS
    WITH pd AS ({pd_any} UNION ALL {pd_dom}),
    rf AS ({ref_any} UNION ALL {ref_dom}),
    rows AS (
      SELECT {ctr} AS center, {site} AS site, '{ANY}' AS domain, 'eligible' AS metric,
             count(*) AS numerator, NULL::BIGINT AS denominator, NULL::DOUBLE AS value
        FROM {PATIENT} GROUP BY {gs}
      UNION ALL
      SELECT {ctr}, {site}, '{ANY}', 'screened', count(*) FILTER (WHERE screened),
             count(*) FILTER (WHERE NOT declined), NULL FROM {PATIENT} GROUP BY {gs}
      UNION ALL
      SELECT {ctr}, {site}, '{ANY}', 'declined', count(*) FILTER (WHERE declined), count(*), NULL
        FROM {PATIENT} GROUP BY {gs}
      UNION ALL
      SELECT {ctr}, {site}, '{ANY}', 'prapare_complete', count(*) FILTER (WHERE prapare_complete),
             count(*) FILTER (WHERE prapare_items > 0), NULL FROM {PATIENT} GROUP BY {gs}
      UNION ALL
      SELECT {ctr}, {site}, '{ANY}', 'connected_60d',
             count(*) FILTER (WHERE hrsn_positive AND connected_60d), count(*) FILTER (WHERE hrsn_positive),
             NULL FROM {PATIENT} GROUP BY {gs}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'positive', count(*) FILTER (WHERE positive AND answered),
             count(*) FILTER (WHERE answered), NULL FROM pd GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'documented', count(*) FILTER (WHERE documented),
             count(*) FILTER (WHERE positive), NULL FROM pd GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'referred', count(*) FILTER (WHERE referred),
             count(*) FILTER (WHERE need), NULL FROM pd GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'rescreen_resolution', count(*) FILTER (WHERE resolved),
             count(*) FILTER (WHERE rescreened), NULL FROM pd GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'closure', count(*) FILTER (WHERE closed), count(*), NULL
        FROM rf GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'rejected_at_capacity', count(*) FILTER (WHERE rejected_at_capacity),
             count(*), NULL FROM rf GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'days_to_closure_median', NULL, count(days_to_closure),
             quantile_cont(days_to_closure, 0.5) FROM rf GROUP BY {gd}
      UNION ALL
      SELECT {ctr}, {site}, domain, 'days_to_closure_p90', NULL, count(days_to_closure),
             quantile_cont(days_to_closure, 0.9) FROM rf GROUP BY {gd}
    )
    SELECT center, site, {ps} AS period_start, {pe} AS period_end, domain, metric, numerator, denominator,
           CASE WHEN value IS NOT NULL THEN value WHEN denominator > 0 THEN numerator / denominator END
             AS value
      FROM rows
     ORDER BY center, site, domain, metric"""


def build(
    con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date, center: str | None = None
) -> None:
    """(Re)build ``sdoh_patient``, ``sdoh_patient_domain``, ``sdoh_referral``, ``sdoh_metrics`` and
    ``sdoh_organization`` for the
    period (all centers, or one). Builds the equity layer's ``patient_attributes`` first when stale."""
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    ensure_patient_attributes(con, period_start=period_start, period_end=period_end)
    mapping.load(con)
    ps, pe = f"DATE '{period_start.isoformat()}'", f"DATE '{period_end.isoformat()}'"
    cf = f"center = {quote_literal(center)}" if center else "center IS NOT NULL"
    for sql in _steps(ps, pe, cf):
        con.execute(sql)
    con.execute(_metrics_sql(ps, pe, network=center is None))
    build_organizations(con)
    for t in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}")


def build_organizations(con: duckdb.DuckDBPyConnection) -> None:
    """``{ORGANIZATIONS}`` from ``{REFERRAL}``: per center and receiving organization (the referral's
    performer, else its Task's owner), referrals received, accepted (latest Task accepted, in progress
    or completed), rejected at capacity, closed with an outcome, and median days to closure. A referral
    counts once whatever its domains; one without an organization is left out."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {ORGANIZATIONS} AS
        WITH r AS (
          SELECT DISTINCT center, referral_id, organization_id, organization_name, task_status,
                 rejected_at_capacity, closed, days_to_closure, period_start, period_end
            FROM {REFERRAL} WHERE organization_id IS NOT NULL
        )
        SELECT center, organization_id, any_value(organization_name) AS organization_name,
               any_value(period_start) AS period_start,
               any_value(period_end) AS period_end, count(*) AS received,
               count(*) FILTER (WHERE task_status IN {_in(ACCEPTED)}) AS accepted,
               count(*) FILTER (WHERE rejected_at_capacity) AS rejected_at_capacity,
               count(*) FILTER (WHERE closed) AS closed,
               quantile_cont(days_to_closure, 0.5) AS days_to_closure_median
          FROM r GROUP BY center, organization_id ORDER BY center, organization_id"""
    )
