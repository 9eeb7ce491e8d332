"""Who is a UDS patient, and the per-patient facts every UDS table is counted from.

Two tables, rebuilt per report:

- ``uds_visits``: one row per countable visit (center, encounter id, patient, day, location) under each
  center's :class:`~chc_equity.uds.config.VisitRule`.
- ``uds_patients``: one row per UDS patient (>= 1 countable visit in the calendar year) with the UDS
  categories of every line of Tables 3A, 3B and 4 as columns (line ids, so the tables are plain counts).

Demographics that the equity layer already maps at UDS granularity (sex at birth, income band, language
proficiency, sexual orientation, gender identity, homelessness) come from
:func:`chc_equity.equity.attributes.ensure_patient_attributes`, so the UDS filing and the equity report
cannot disagree. Categories that UDS needs finer than the equity layer keeps -- detailed Asian / NHPI
races and Hispanic subgroups (3B), age on June 30 (3A), CHIP and dual eligibility (4), shelter type,
migratory vs seasonal agricultural work, veteran status by its PRAPARE LOINC, designated sites -- are
computed here from the flat views (docs/uds.md says why each one).
"""

from __future__ import annotations

from datetime import date

import duckdb

from chc_equity.equity.attributes import ensure_patient_attributes
from chc_equity.uds.config import CenterConfig, UdsConfig

VISITS = "uds_visits"
PATIENTS = "uds_patients"

CDCREC = "urn:oid:2.16.840.1.113883.6.238"
LOINC = "http://loinc.org"
# The UDS+ IG moved from http://hl7.org/fhir/us/uds-plus (1.x) to http://fhir.org/guides/hrsa/uds-plus (2.0.0)
# and renamed some codes; input coded with either is read.
UDSPLUS_BASES = ("http://fhir.org/guides/hrsa/uds-plus", "http://hl7.org/fhir/us/uds-plus")
UDSPLUS_HOUSING = tuple(f"{b}/CodeSystem/udsplus-housing-status-codes" for b in UDSPLUS_BASES)
UDSPLUS_AG = tuple(f"{b}/CodeSystem/udsplus-agriculture-worker-status-codes" for b in UDSPLUS_BASES)
UDSPLUS_INSURANCE = tuple(
    f"{b}/CodeSystem/{name}"
    for b in UDSPLUS_BASES
    for name in ("uds-plus-insurance-codes", "udsplus-insurance-codes")
)
# UDS+ insurance code -> Table 4 category (IG 2.0.0 codes first, then the 1.x spellings). Medicare with a
# private supplement is Medicare (UDS Manual: report the primary medical insurance).
UDSPLUS_INSURANCE_CATEGORY = {
    "none-or-uninsured": "uninsured",
    "medicaid-title-19-21": "medicaid",
    "chip-medicaid": "chip",
    "medicare": "medicare",
    "dually-eligible-medicaid-medicare": "dual",
    "medicare-and-private": "medicare",
    "other-non-chip-public-insurance": "other_public",
    "other-public-insurance-chip": "other_public_chip",
    "private-insurance": "private",
    "medicaid-title-19": "medicaid",
    "dually-eligible": "dual",
}
SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")

# --- Table 3B: race rows and Hispanic columns (CDC Race & Ethnicity code system) ---------------------
OMB_RACE_LINE = {"2028-9": "1", "2076-8": "2", "2054-5": "3", "1002-5": "4", "2106-3": "5"}
ASIAN_DETAIL = {
    "2029-7": "1a",
    "2034-7": "1b",
    "2036-2": "1c",
    "2039-6": "1d",
    "2040-4": "1e",
    "2047-9": "1f",
}
NHPI_DETAIL = {"2079-0": "2a", "2500-7": "2b", "2086-5": "2c", "2087-3": "2c", "2088-1": "2c", "2080-8": "2d"}
OTHER_ASIAN, OTHER_PI = "1g", "2b"
HISPANIC_DETAIL = {
    "2148-5": "a1",
    "2149-3": "a1",
    "2150-1": "a1",
    "2151-9": "a1",  # Mexican, Mexican American, Mexicano, Chicano
    "2180-8": "a2",  # Puerto Rican
    "2182-4": "a3",  # Cuban
}
ANOTHER_HISPANIC, HISPANIC_UNSPECIFIED = "a4", "a5"

# --- Table 4 ----------------------------------------------------------------------------------------
INCOME_LINE = {"<=100%": "1", "101-150%": "2", "151-200%": "3", ">200%": "4", "Unknown": "5"}
HOUSING_LOINC, OCCUPATION_LOINC = "71802-3", "11341-5"
FARMWORK_LOINC, VETERAN_LOINC = "93035-4", "93034-7"  # PRAPARE items (LOINC names, see docs/uds.md)
YES_CODES = ("373066001", "LA33-6", "Y")
MIGRATORY_CODES = ("10660007", "migratory")  # SNOMED Agricultural migrant worker; UDS+ code
SEASONAL_CODES = ("seasonal",)  # UDS+ code
SHELTER_LINE = {
    "homeless-shelter": "17",
    "transitional": "18",
    "doubling-up": "19",
    "street": "20",
    "other": "21",
    "permanent-supportive-housing": "21a",
    "unknown": "22",
}
SCHOOL_LOCATION_CODES = ("SCHOOL",)  # v3 ServiceDeliveryLocationRoleType [R], any system
PUBLIC_HOUSING_LOCATION_CODES = ("public-housing",)  # UDS+ service-delivery code

# --- 3B sexual orientation / gender identity lines from the equity labels ---------------------------
ORIENTATION_LINE = {
    "Lesbian or gay": "13",
    "Straight or heterosexual": "14",
    "Bisexual": "15",
    "Something else": "16",
    "Don't know": "17",
    "Chose not to disclose": "18",
    "Unknown": "18a",
}
GENDER_LINE = {
    "Male": "20",
    "Female": "21",
    "Transgender man": "22",
    "Transgender woman": "23",
    "Nonbinary": "24",
    "Other": "24",
    "Chose not to disclose": "25",
    "Unknown": "25a",
}


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")" if values else "(NULL)"


def _map(expr: str, mapping: dict[str, str], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


def _type_match(keys: tuple[str, ...]) -> str:
    """SQL predicate on ``t.system``/``t.code``: entries are 'system|code' or a bare code."""
    with_system = [k for k in keys if "|" in k]
    bare = [k for k in keys if "|" not in k]
    parts = []
    if with_system:
        parts.append(f"(t.system || '|' || t.code) IN {_in(with_system)}")
    if bare:
        parts.append(f"t.code IN {_in(bare)}")
    return "(" + " OR ".join(parts) + ")" if parts else "false"


def visits_sql(center: str, rule_cfg: CenterConfig, year: int) -> str:
    """Countable visits of one center in ``year`` under its rule (one row per encounter)."""
    rule = rule_cfg.visits
    start, end = _lit(f"{year}-01-01"), _lit(f"{year}-12-31")
    provider = (
        "AND len(json_extract(r.resource, '$.participant[*].individual')) > 0"
        if rule.require_provider
        else ""
    )
    provider_join = (
        "JOIN resources r ON r.center = e.center AND r.type = 'Encounter' AND r.id = e.id"
        if rule.require_provider
        else ""
    )
    include = (
        f"AND EXISTS (SELECT 1 FROM flat.encounter_type t WHERE t.center = e.center AND t.id = e.id "
        f"AND {_type_match(rule.include_types)})"
        if rule.include_types
        else ""
    )
    return f"""
SELECT e.center, e.id AS encounter_id, e.patient_id, left(e.period_start, 10)::DATE AS day,
       (SELECT min(el.location_id) FROM flat.encounter_location el
         WHERE el.center = e.center AND el.id = e.id) AS location_id
FROM flat.encounter e {provider_join}
WHERE e.center = {_lit(center)} AND e.patient_id IS NOT NULL
  AND e.status IN {_in(rule.statuses)} AND e.class_code IN {_in(rule.classes)}
  AND left(e.period_start, 10) BETWEEN {start} AND {end}
  AND NOT coalesce((SELECT bool_and({_type_match(rule.exclude_types)}) FROM flat.encounter_type t
                     WHERE t.center = e.center AND t.id = e.id), false)
  {include} {provider}
"""


def build_visits(con: duckdb.DuckDBPyConnection, year: int, centers: list[str], config: UdsConfig) -> str:
    """Create ``uds_visits`` for ``centers`` (each under its own rule); returns the table name."""
    con.execute(
        f"CREATE OR REPLACE TABLE {VISITS} (center VARCHAR, encounter_id VARCHAR, patient_id VARCHAR, "
        "day DATE, location_id VARCHAR)"
    )
    for center in centers:
        con.execute(f"INSERT INTO {VISITS} {visits_sql(center, config.for_center(center), year)}")
    return VISITS


def _site_flags_sql(centers: list[str], config: UdsConfig) -> str:
    """(center, location_id, school, public_housing) for every location a visit happened at."""
    school = (
        " OR ".join(
            f"(v.center = {_lit(c)} AND v.location_id IN {_in(config.for_center(c).school_based_sites)})"
            for c in centers
        )
        or "false"
    )
    housing = (
        " OR ".join(
            f"(v.center = {_lit(c)} AND v.location_id IN {_in(config.for_center(c).public_housing_sites)})"
            for c in centers
        )
        or "false"
    )
    return f"""
SELECT DISTINCT v.center, v.location_id,
  ({school}) OR EXISTS (SELECT 1 FROM flat.location_type lt WHERE lt.center = v.center
      AND lt.id = v.location_id AND upper(lt.code) IN {_in(SCHOOL_LOCATION_CODES)}) AS school,
  ({housing}) OR EXISTS (SELECT 1 FROM flat.location_type lt WHERE lt.center = v.center
      AND lt.id = v.location_id AND lt.code IN {_in(PUBLIC_HOUSING_LOCATION_CODES)}) AS public_housing
FROM {VISITS} v WHERE v.location_id IS NOT NULL
"""


def patients_sql(year: int, centers: list[str], config: UdsConfig) -> str:
    """The SELECT behind ``uds_patients`` (needs ``uds_visits`` and ``patient_attributes``)."""
    end = _lit(f"{year}-12-31")
    age_day = _lit(f"{year}-{config.age_as_of}")  # June 30 unless the config says otherwise
    ins_rank = _map(
        "cat",
        {
            "medicare": "0",
            "medicaid": "1",
            "chip": "2",
            "dual": "0",
            "other_public": "3",
            "other_public_chip": "4",
            "private": "5",
            "uninsured": "6",
        },
        "7",
    )
    return f"""
WITH
pts AS (
  SELECT center, patient_id, count(*) AS visits, max(day) AS last_visit FROM {VISITS} GROUP BY ALL
),
sites AS ({_site_flags_sql(centers, config)}),
site_flags AS (
  SELECT v.center, v.patient_id, bool_or(coalesce(s.school, false)) AS school_based,
         bool_or(coalesce(s.public_housing, false)) AS public_housing
  FROM {VISITS} v LEFT JOIN sites s ON s.center = v.center AND s.location_id = v.location_id
  GROUP BY ALL
),
race AS (
  SELECT center, id AS patient_id,
    list_distinct(list(code) FILTER (WHERE system = {_lit(CDCREC)} AND category = 'ombCategory'
                                     AND code IN {_in(list(OMB_RACE_LINE))})) AS omb,
    list_distinct(list(code) FILTER (WHERE system = {_lit(CDCREC)} AND category = 'detailed')) AS detailed
  FROM flat.patient_race GROUP BY ALL
),
race_line AS (
  SELECT center, patient_id,
    list_distinct(list_concat(coalesce(omb, []),
      CASE WHEN list_has_any(detailed, {list(ASIAN_DETAIL)}) THEN ['2028-9'] ELSE [] END,
      CASE WHEN list_has_any(detailed, {list(NHPI_DETAIL)}) THEN ['2076-8'] ELSE [] END)) AS cats,
    list_distinct(list_transform(detailed, lambda d: {_map("d", ASIAN_DETAIL)})) AS asian,
    list_distinct(list_transform(detailed, lambda d: {_map("d", NHPI_DETAIL)})) AS nhpi
  FROM race
),
eth AS (
  SELECT center, id AS patient_id,
    list_distinct(list(code) FILTER (WHERE category = 'ombCategory')) AS omb,
    list_distinct(list(code) FILTER (WHERE category = 'detailed')) AS detailed
  FROM flat.patient_ethnicity WHERE system = {_lit(CDCREC)} GROUP BY ALL
),
obs AS (  -- coded social facts on or before the year end, with their value codings
  SELECT o.center, o.patient_id, o.id, oc.code AS loinc, vc.system AS vsys, vc.code AS vcode,
    left(coalesce(o.effective_datetime, o.effective_period_end, o.effective_period_start,
                  o.effective_instant, o.issued), 10) AS day
  FROM flat.observation o JOIN flat.observation_code oc USING (center, id)
  LEFT JOIN flat.observation_value_code vc ON vc.center = o.center AND vc.id = o.id
  WHERE oc.system = {_lit(LOINC)}
    AND oc.code IN {_in([HOUSING_LOINC, OCCUPATION_LOINC, FARMWORK_LOINC, VETERAN_LOINC])}
    AND coalesce(o.status, 'final') NOT IN ('entered-in-error', 'cancelled')
    AND (day IS NULL OR day <= {end})
),
vet_obs AS (
  SELECT center, patient_id, id, bool_or(vcode IN {_in(YES_CODES)}) AS yes, max(day) AS day FROM obs
  WHERE loinc = {_lit(VETERAN_LOINC)} GROUP BY ALL
),
latest_vet AS (
  SELECT center, patient_id, yes AS veteran FROM vet_obs
  QUALIFY row_number() OVER (PARTITION BY center, patient_id ORDER BY day DESC NULLS LAST, id DESC) = 1
),
ag AS (
  SELECT center, patient_id,
    bool_or(vcode IN {_in(MIGRATORY_CODES)}) AS migratory,
    bool_or(vcode IN {_in(SEASONAL_CODES)} AND (vsys IN {_in(UDSPLUS_AG)} OR vsys IS NULL)) AS seasonal,
    bool_or(loinc = {_lit(FARMWORK_LOINC)} AND vcode IN {_in(YES_CODES)}) AS farmwork
  FROM obs GROUP BY ALL
),
shelter AS (  -- most recent UDS+ housing-status code in the year
  SELECT center, patient_id, {_map("vcode", SHELTER_LINE)} AS line FROM obs
  WHERE vsys IN {_in(UDSPLUS_HOUSING)} AND day >= {_lit(f"{year}-01-01")}
  QUALIFY row_number() OVER (PARTITION BY center, patient_id ORDER BY day DESC NULLS LAST, id DESC) = 1
),
cov AS (  -- coverages in force on the day of the last countable visit (else any in the year)
  SELECT c.center, c.patient_id, c.id, c.coverage_order,
    CASE WHEN c.type_system IN {_in(UDSPLUS_INSURANCE)} THEN {_map("c.type_code", UDSPLUS_INSURANCE_CATEGORY)}
      WHEN c.type_system IN {
        _in(SOPT_SYSTEMS)
    } OR (c.type_system IS NULL AND regexp_matches(c.type_code, '^[0-9]+$'))
      THEN CASE WHEN c.type_code LIKE '95%' THEN 'private' WHEN c.type_code LIKE '1%' THEN 'medicare'
                WHEN c.type_code LIKE '23%' THEN 'chip' WHEN c.type_code LIKE '2%' THEN 'medicaid'
                WHEN c.type_code LIKE '31%' THEN 'private'
                WHEN c.type_code LIKE '3%' OR c.type_code LIKE '4%' THEN 'other_public'
                WHEN c.type_code LIKE '5%' OR c.type_code LIKE '6%' OR c.type_code LIKE '7%' THEN 'private'
                WHEN c.type_code LIKE '8%' THEN 'uninsured' END END AS cat,
    (c.period_start IS NULL OR left(c.period_start, 10)::DATE <= p.last_visit)
      AND (c.period_end IS NULL OR left(c.period_end, 10)::DATE >= p.last_visit) AS at_last_visit
  FROM flat.coverage c JOIN pts p ON p.center = c.center AND p.patient_id = c.patient_id
  WHERE coalesce(c.status, 'active') = 'active'
    AND (c.period_start IS NULL OR left(c.period_start, 10) <= {end})
    AND (c.period_end IS NULL OR left(c.period_end, 10) >= {_lit(f"{year}-01-01")})
),
cov_pick AS (
  SELECT center, patient_id, bool_or(at_last_visit) AS any_at_visit FROM cov GROUP BY ALL
),
cov_used AS (
  SELECT c.* FROM cov c JOIN cov_pick k USING (center, patient_id)
  WHERE c.cat IS NOT NULL AND (c.at_last_visit OR NOT k.any_at_visit)
),
insurance AS (
  SELECT center, patient_id,
    CASE WHEN bool_or(cat = 'dual') OR (bool_or(cat = 'medicare') AND bool_or(cat IN ('medicaid', 'chip')))
         THEN 'dual' ELSE arg_min(cat, ({ins_rank}, coalesce(coverage_order, 999), id)) END AS insurance
  FROM cov_used GROUP BY ALL
)
SELECT p.center, p.patient_id, p.visits, p.last_visit,
  TRY_CAST(CASE WHEN length(fp.birth_date) >= 10 THEN left(fp.birth_date, 10) END AS DATE) AS birth,
  CASE WHEN birth IS NULL OR birth > {end}::DATE THEN NULL
       ELSE date_sub('year', birth, {age_day}::DATE) END AS age,
  a.sex, a.income, {_map("a.income", INCOME_LINE, "'5'")} AS income_line,
  a.lep = 'Limited English proficiency' AS lep,
  {_map("a.sexual_orientation", ORIENTATION_LINE, "'18a'")} AS orientation_line,
  {_map("a.gender_identity", GENDER_LINE, "'25a'")} AS gender_line,
  CASE WHEN len(coalesce(r.cats, [])) = 0 THEN '7' WHEN len(r.cats) > 1 THEN '6'
       WHEN r.cats[1] = '2028-9' THEN CASE WHEN len(list_filter(r.asian, lambda x: x IS NOT NULL)) = 1
            THEN list_filter(r.asian, lambda x: x IS NOT NULL)[1] ELSE {_lit(OTHER_ASIAN)} END
       WHEN r.cats[1] = '2076-8' THEN CASE WHEN len(list_filter(r.nhpi, lambda x: x IS NOT NULL)) = 1
            THEN list_filter(r.nhpi, lambda x: x IS NOT NULL)[1] ELSE {_lit(OTHER_PI)} END
       ELSE {_map("r.cats[1]", OMB_RACE_LINE)} END AS race_line,
  CASE WHEN list_contains(e.omb, '2135-2') OR len(coalesce(e.detailed, [])) > 0 THEN
         CASE WHEN len(coalesce(e.detailed, [])) = 0 THEN {_lit(HISPANIC_UNSPECIFIED)}
              WHEN len(list_distinct(list_transform(e.detailed, lambda d: {
        _map("d", HISPANIC_DETAIL, "'a4'")
    }))) = 1
              THEN list_transform(e.detailed, lambda d: {_map("d", HISPANIC_DETAIL, "'a4'")})[1]
              ELSE {_lit(ANOTHER_HISPANIC)} END
       WHEN list_contains(e.omb, '2186-5') THEN 'b' ELSE 'c' END AS ethnicity_col,
  coalesce(i.insurance, 'none') AS insurance,
  CASE WHEN coalesce(ag.migratory, false) THEN '14' WHEN coalesce(ag.seasonal, false) THEN '15'
       WHEN coalesce(ag.farmwork, false) THEN '16' END AS agricultural_line,
  CASE WHEN a.homeless = 'Yes' OR sh.line IS NOT NULL THEN coalesce(sh.line, '22') END AS homeless_line,
  coalesce(sf.school_based, false) AS school_based,
  coalesce(v.veteran, false) AS veteran,
  coalesce(sf.public_housing, false) AS public_housing
FROM pts p
JOIN flat.patient fp ON fp.center = p.center AND fp.id = p.patient_id
JOIN patient_attributes a ON a.center = p.center AND a.patient_id = p.patient_id
LEFT JOIN race_line r ON r.center = p.center AND r.patient_id = p.patient_id
LEFT JOIN eth e ON e.center = p.center AND e.patient_id = p.patient_id
LEFT JOIN insurance i ON i.center = p.center AND i.patient_id = p.patient_id
LEFT JOIN ag ON ag.center = p.center AND ag.patient_id = p.patient_id
LEFT JOIN shelter sh ON sh.center = p.center AND sh.patient_id = p.patient_id
LEFT JOIN latest_vet v ON v.center = p.center AND v.patient_id = p.patient_id
LEFT JOIN site_flags sf ON sf.center = p.center AND sf.patient_id = p.patient_id
"""


def build_uds_patients(
    con: duckdb.DuckDBPyConnection, year: int, centers: list[str] | None, config: UdsConfig
) -> list[str]:
    """Build ``uds_visits``, ``patient_attributes`` and ``uds_patients``; returns the centers covered."""
    if centers is None:
        centers = [
            r[0] for r in con.execute("SELECT DISTINCT center FROM flat.patient ORDER BY 1").fetchall()
        ]
    build_visits(con, year, centers, config)
    ensure_patient_attributes(con, period_start=date(year, 1, 1), period_end=date(year, 12, 31))
    con.execute(f"CREATE OR REPLACE TABLE {PATIENTS} AS {patients_sql(year, centers, config)}")
    return centers
