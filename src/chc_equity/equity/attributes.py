"""One row of stratification attributes per patient: the equity layer's (and UDS's) demographic mapping.

:func:`build_patient_attributes` reads only the flat tables (``flat.patient``, ``flat.patient_race``,
``flat.observation`` ...) and writes table ``patient_attributes`` with one VARCHAR column per dimension in
:data:`DIMENSIONS`. Every value is a display label; a missing, unmapped or declined fact is ``'Unknown'``
(never NULL), because dropping such patients would shrink denominators and hide exactly the groups that
data-collection gaps fall on (see :mod:`chc_equity.equity.labels`).

Time anchoring: facts recorded as Observations (income, housing, veteran, occupation, sexual orientation,
PRAPARE) take the **most recent** record dated on or before ``period_end`` ("in or before the period"),
so a later re-screening never rewrites a past period's strata. Ages are whole years at ``period_end``.
The exact mapping of every dimension is documented in docs/equity.md; the code lists live here so that
the UDS tables and the equity report cannot drift apart.
"""

from __future__ import annotations

from datetime import date

import duckdb

from chc_equity.equity.labels import UNKNOWN
from chc_equity.sdoh.tier import tier_sql

TABLE = "patient_attributes"

DIMENSIONS: dict[str, str] = {
    "race": "Race (OMB)",
    "race_detailed": "Race (detailed)",
    "ethnicity": "Ethnicity (OMB)",
    "ethnicity_detailed": "Ethnicity (detailed, incl. Hispanic subgroups)",
    "race_ethnicity": "Race and ethnicity",
    "language": "Preferred language",
    "lep": "Limited English proficiency",
    "income": "Income (% of federal poverty level)",
    "insurance": "Insurance",
    "sex": "Sex assigned at birth",
    "sexual_orientation": "Sexual orientation",
    "gender_identity": "Gender identity",
    "age_band": "Age band",
    "agricultural_worker": "Agricultural worker",
    "homeless": "Experiencing homelessness",
    "veteran": "Veteran",
    "sdoh_risk": "PRAPARE social risk",
    "postal_code": "Postal code",
    "center": "Health center",
    "site": "Site",
}

# --- code lists (system-independent where the code itself is unambiguous) ---------------------------
OMB_RACE = {
    "1002-5": "American Indian or Alaska Native",
    "2028-9": "Asian",
    "2054-5": "Black or African American",
    "2076-8": "Native Hawaiian or Other Pacific Islander",
    "2106-3": "White",
}
HISPANIC = "Hispanic or Latino"
NOT_HISPANIC = "Not Hispanic or Latino"
OMB_ETHNICITY = {"2135-2": HISPANIC, "2186-5": NOT_HISPANIC}
MORE_THAN_ONE = "More than one race"
# Generator (and common public-health) combined race/ethnicity: Hispanic of any race, else race.
RACE_ETHNICITY_NON_HISPANIC = {
    "White": "White non-Hispanic",
    "Black or African American": "Black non-Hispanic",
    "Asian": "Asian non-Hispanic",
}
OTHER_NON_HISPANIC = "Other non-Hispanic"

LANGUAGES = {  # BCP-47 primary subtag / ISO 639-2 code -> name (names match the generator's)
    "en": "English", "eng": "English",
    "es": "Spanish", "spa": "Spanish",
    "pt": "Portuguese", "por": "Portuguese",
    "ht": "Haitian Creole", "hat": "Haitian Creole",
    "vi": "Vietnamese", "vie": "Vietnamese",
    "zh": "Chinese", "zho": "Chinese", "chi": "Chinese", "yue": "Chinese", "cmn": "Chinese",
    "kea": "Cape Verdean Creole",
    "fr": "French", "fre": "French", "fra": "French",
    "ar": "Arabic", "ara": "Arabic",
    "ru": "Russian", "rus": "Russian",
    "ko": "Korean", "kor": "Korean",
    "so": "Somali", "som": "Somali",
    "km": "Khmer", "khm": "Khmer",
    "tl": "Tagalog", "tgl": "Tagalog", "fil": "Tagalog",
    "pl": "Polish", "pol": "Polish",
    "it": "Italian", "ita": "Italian",
    "el": "Greek", "gre": "Greek", "ell": "Greek",
    "hi": "Hindi", "hin": "Hindi",
    "bn": "Bengali", "ben": "Bengali",
    "ne": "Nepali", "nep": "Nepali",
    "sw": "Swahili", "swa": "Swahili",
    "am": "Amharic", "amh": "Amharic",
    "ja": "Japanese", "jpn": "Japanese",
    "de": "German", "ger": "German", "deu": "German",
    "ase": "American Sign Language", "sgn": "Sign language",
}  # fmt: skip
UNKNOWN_LANGUAGE_CODES = ("und", "unk", "mis", "zxx", "asku", "unknown")

SOPT_SYSTEMS = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")
# Principal insurance when several coverages are active and none is ordered: UDS counts dual
# Medicare-Medicaid patients under Medicare, and any insurance over self-pay.
INSURANCE_PRIORITY = ("Medicare", "Medicaid", "Other public", "Private", "Uninsured", UNKNOWN)

SEXUAL_ORIENTATION = {  # LOINC 76690-7 answers (SNOMED, HL7 null flavors, data-absent-reason) -> UDS 3B
    "20430005": "Straight or heterosexual",
    "38628009": "Lesbian or gay",
    "42035005": "Bisexual",
    "OTH": "Something else",
    "UNK": "Don't know",
    "asked-unknown": "Don't know",
    "ASKU": "Chose not to disclose",
    "asked-declined": "Chose not to disclose",
}
GENDER_IDENTITY = {  # US Core genderIdentity (SNOMED / HL7 null flavors) -> UDS 3B
    "446141000124107": "Female",
    "446151000124109": "Male",
    "407377005": "Transgender man",
    "706116008": "Transgender man",
    "407376001": "Transgender woman",
    "706117004": "Transgender woman",
    "33791000087105": "Nonbinary",
    "446131000124102": "Other",
    "OTH": "Other",
    "ASKU": "Chose not to disclose",
    "asked-declined": "Chose not to disclose",
}
BIRTH_SEX = {"F": "Female", "M": "Male", "248152002": "Female", "248153007": "Male"}

YES_CODES = ("373066001", "LA33-6")
NO_CODES = ("373067005", "LA32-8")
HOMELESS_CODES = ("32911000", "LA30190-5")  # SNOMED Homeless; PRAPARE "I do not have housing"
HOMELESS_ICD10 = ("Z59.0", "Z59.00", "Z59.01", "Z59.02")
AG_WORKER_CODES = ("10660007",)  # SNOMED Agricultural migrant worker (occupation)

LOINC = "http://loinc.org"
# Veteran: PRAPARE 93034-7 "discharged from the armed forces" (93035-4 is PRAPARE's farm-work item).
INCOME, HOUSING, OCCUPATION, VETERAN, ORIENTATION, PRAPARE = (
    "99500-1", "71802-3", "11341-5", "93034-7", "76690-7", "93025-5",
)  # fmt: skip
INCOME_BANDS = ("<=100%", "101-150%", "151-200%", ">200%")
AGE_BANDS = ("0-17", "18-39", "40-64", "65+")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _case(expr: str, mapping: dict[str, str], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE {default} END"


def _insurance_sql(code: str) -> str:
    """PHVS Source of Payment Typology: the leading digit is the payer family (1 Medicare, 2 Medicaid/CHIP,
    3-4 other government, 5-7 private/managed care, 8 no payer = uninsured, 95 workers' comp = private)."""
    return (
        f"CASE WHEN {code} LIKE '95%' THEN 'Private' "
        f"WHEN {code} LIKE '1%' THEN 'Medicare' WHEN {code} LIKE '2%' THEN 'Medicaid' "
        f"WHEN {code} LIKE '3%' OR {code} LIKE '4%' THEN 'Other public' "
        f"WHEN {code} LIKE '5%' OR {code} LIKE '6%' OR {code} LIKE '7%' THEN 'Private' "
        f"WHEN {code} LIKE '8%' THEN 'Uninsured' ELSE {_lit(UNKNOWN)} END"
    )


def attributes_sql(
    period_start: date | None,
    period_end: date | None,
    patients: str | None = None,
    *,
    bounds: tuple[str, str] | None = None,
) -> str:
    """The SELECT that yields one attribute row per (center, patient_id) of ``flat.patient``.

    ``patients`` (a relation of ``center, patient_id``) restricts it to those patients; every attribute
    is a function of one patient's rows (and of the center's locations), so their rows are exactly those
    of the unrestricted SELECT. ``bounds`` replaces the period's dates by two SQL expressions of their
    ISO text (``'2026-01-01'``), e.g. columns of a row of periods: ``measures.series`` builds the
    attributes of every period of a series in one statement.
    """
    if bounds is None:
        if period_start is None or period_end is None:
            raise ValueError("attributes_sql needs the period's dates or its bounds")
        bounds = (_lit(period_start.isoformat()), _lit(period_end.isoformat()))
    ps, pe = bounds

    def only(center: str, patient: str) -> str:
        if patients is None:
            return "TRUE"
        return f"({center}, {patient}) IN (SELECT center, patient_id FROM {patients})"

    u = _lit(UNKNOWN)
    social = _in([INCOME, HOUSING, OCCUPATION, VETERAN, ORIENTATION, PRAPARE])
    omb_race_in = _in(list(OMB_RACE))
    lang_code = "lower(split_part(trim(coalesce(p.preferred_language_code, p.first_language_code)), '-', 1))"
    ins_rank = _case("ins", {k: str(i) for i, k in enumerate(INSURANCE_PRIORITY)}, "99")
    return f"""
WITH
race AS (
  SELECT center, id AS patient_id,
    list_sort(list_distinct(list(code) FILTER (WHERE category = 'ombCategory' AND code IN {omb_race_in})))
      AS omb,
    list_sort(list_distinct(list(coalesce(display, code)) FILTER (WHERE category = 'detailed'))) AS detailed
  FROM flat.patient_race WHERE {only("center", "id")} GROUP BY ALL
),
eth AS (
  SELECT center, id AS patient_id,
    list_distinct(list(code) FILTER (WHERE category = 'ombCategory' AND code IN ('2135-2', '2186-5'))) AS omb,
    list_sort(list_distinct(list(coalesce(display, code)) FILTER (WHERE category = 'detailed'))) AS detailed
  FROM flat.patient_ethnicity WHERE {only("center", "id")} GROUP BY ALL
),
obs AS (  -- social-history observations on or before the period end, one row per value coding
  SELECT o.center, o.id, o.patient_id, oc.code AS loinc,
    left(coalesce(o.effective_datetime, o.effective_period_end, o.effective_period_start,
                  o.effective_instant, o.issued), 10) AS day,
    o.value_quantity_value AS qty, o.data_absent_reason_code AS absent
  FROM flat.observation o JOIN flat.observation_code oc USING (center, id)
  WHERE oc.system = '{LOINC}' AND oc.code IN {social}
    AND coalesce(o.status, 'final') NOT IN ('entered-in-error', 'cancelled')
    AND (day IS NULL OR day <= {pe}) AND {only("o.center", "o.patient_id")}
),
latest AS (
  SELECT * FROM obs
  QUALIFY row_number() OVER (PARTITION BY center, patient_id, loinc ORDER BY day DESC NULLS LAST, id DESC) = 1
),
latest_values AS (
  SELECT l.center, l.patient_id, l.loinc, l.qty, l.absent, l.id,
    list(vc.code) FILTER (WHERE vc.code IS NOT NULL) AS codes
  FROM latest l LEFT JOIN flat.observation_value_code vc ON vc.center = l.center AND vc.id = l.id
  GROUP BY ALL
),
social AS (
  SELECT center, patient_id,
    max(qty) FILTER (WHERE loinc = '{INCOME}') AS income_pct,
    max(CASE WHEN list_has_any(codes, {_list(HOMELESS_CODES)}) THEN 1 ELSE 0 END)
      FILTER (WHERE loinc = '{HOUSING}') AS housing_latest,
    max(CASE WHEN list_has_any(codes, {_list(YES_CODES)}) THEN 'Yes'
             WHEN list_has_any(codes, {_list(NO_CODES)}) THEN 'No' END) FILTER (WHERE loinc = '{VETERAN}')
      AS veteran,
    max(coalesce({_case("codes[1]", SEXUAL_ORIENTATION)}, {_case("absent", SEXUAL_ORIENTATION)}))
      FILTER (WHERE loinc = '{ORIENTATION}') AS orientation,
    max(id) FILTER (WHERE loinc = '{PRAPARE}') AS prapare_id
  FROM latest_values GROUP BY ALL
),
ever AS (  -- any record in or before the period (not just the latest)
  SELECT o.center, o.patient_id,
    bool_or(o.loinc IN ('{HOUSING}', '{VETERAN}', '{OCCUPATION}')) AS screened,
    bool_or(o.loinc = '{OCCUPATION}' AND vc.code IN {_in(AG_WORKER_CODES)}) AS ag_worker,
    bool_or(o.loinc = '{HOUSING}' AND vc.code IN {_in(HOMELESS_CODES)} AND o.day >= {ps})
      AS homeless_in_period
  FROM obs o LEFT JOIN flat.observation_value_code vc ON vc.center = o.center AND vc.id = o.id
  GROUP BY ALL
),
homeless_dx AS (
  SELECT DISTINCT c.center, c.patient_id
  FROM flat.condition c JOIN flat.condition_code cc USING (center, id)
  WHERE cc.code IN {_in(HOMELESS_ICD10 + HOMELESS_CODES[:1])}
    AND coalesce(c.verification_status_code, 'confirmed') NOT IN ('refuted', 'entered-in-error')
    AND left(coalesce(c.onset_datetime, c.onset_period_start, c.recorded_date), 10) <= {pe}
    AND coalesce(left(coalesce(c.abatement_datetime, c.abatement_period_end), 10), {ps}) >= {ps}
    AND {only("c.center", "c.patient_id")}
),
prapare AS (
  SELECT s.center, s.patient_id, count(oc.id) AS positives
  FROM social s LEFT JOIN flat.observation_component oc
    ON oc.center = s.center AND oc.id = s.prapare_id AND oc.value_code IN {_in(YES_CODES)}
  WHERE s.prapare_id IS NOT NULL GROUP BY ALL
),
coverage AS (
  SELECT center, patient_id, {_insurance_sql("type_code")} AS ins, coverage_order, period_start, id
  FROM flat.coverage
  WHERE coalesce(status, 'active') = 'active'
    AND (type_system IN {_in(SOPT_SYSTEMS)}
         OR (type_system IS NULL AND regexp_matches(type_code, '^[0-9]+$')))
    AND (period_start IS NULL OR left(period_start, 10) <= {pe})
    AND (period_end IS NULL OR left(period_end, 10) >= {ps}) AND {only("center", "patient_id")}
),
insurance AS (
  SELECT center, patient_id, ins FROM coverage
  QUALIFY row_number() OVER (PARTITION BY center, patient_id
    ORDER BY coverage_order NULLS LAST, {ins_rank}, period_start DESC NULLS LAST, id) = 1
),
visits AS (
  SELECT e.center, e.patient_id, el.location_id, left(e.period_start, 10) AS day
  FROM flat.encounter e JOIN flat.encounter_location el USING (center, id)
  WHERE el.location_id IS NOT NULL
    AND coalesce(e.status, 'finished') NOT IN ('cancelled', 'entered-in-error', 'planned')
    AND (day IS NULL OR day <= {pe}) AND {only("e.center", "e.patient_id")}
),
site AS (
  SELECT v.center, v.patient_id, coalesce(max(loc.name), v.location_id) AS site
  FROM visits v LEFT JOIN flat.location loc ON loc.center = v.center AND loc.id = v.location_id
  GROUP BY v.center, v.patient_id, v.location_id
  QUALIFY row_number() OVER (PARTITION BY v.center, v.patient_id
    ORDER BY count(*) DESC, max(v.day) DESC NULLS LAST, v.location_id) = 1
),
base AS (
  SELECT p.center, p.id AS patient_id,
    CASE len(coalesce(r.omb, [])) WHEN 0 THEN {u} WHEN 1 THEN {_case("r.omb[1]", OMB_RACE, u)}
         ELSE {_lit(MORE_THAN_ONE)} END AS race,
    CASE WHEN len(coalesce(r.detailed, [])) = 1 THEN r.detailed[1]
         WHEN len(coalesce(r.detailed, [])) > 1 THEN {_lit(MORE_THAN_ONE)} END AS race_detailed_raw,
    CASE WHEN list_contains(e.omb, '2135-2') OR len(coalesce(e.detailed, [])) > 0 THEN {_lit(HISPANIC)}
         WHEN list_contains(e.omb, '2186-5') THEN {_lit(NOT_HISPANIC)} ELSE {u} END AS ethnicity,
    CASE WHEN len(coalesce(e.detailed, [])) = 1 THEN e.detailed[1]
         WHEN len(coalesce(e.detailed, [])) > 1 THEN 'More than one Hispanic origin' END AS eth_detailed_raw,
    {lang_code} AS lang_code,
    TRY_CAST(CASE length(p.birth_date) WHEN 4 THEN p.birth_date || '-01-01' WHEN 7 THEN p.birth_date || '-01'
             ELSE left(p.birth_date, 10) END AS DATE) AS birth,
    year({pe}::DATE) - year(birth)
      - CASE WHEN strftime({pe}::DATE, '%m%d') < strftime(birth, '%m%d') THEN 1 ELSE 0 END AS age,
    coalesce({_case("p.birth_sex", BIRTH_SEX)}, {_case("p.sex", BIRTH_SEX)},
             CASE p.gender WHEN 'female' THEN 'Female' WHEN 'male' THEN 'Male' END, {u}) AS sex,
    coalesce({_case("p.gender_identity_code", GENDER_IDENTITY)}, {u}) AS gender_identity,
    nullif(left(regexp_replace(coalesce(p.postal_code, ''), '[^0-9A-Za-z]', '', 'g'), 5), '') AS zip
  FROM flat.patient p
  LEFT JOIN race r ON r.center = p.center AND r.patient_id = p.id
  LEFT JOIN eth e ON e.center = p.center AND e.patient_id = p.id
  WHERE {only("p.center", "p.id")}
)
SELECT b.center, b.patient_id,
  b.race,
  coalesce(b.race_detailed_raw, b.race) AS race_detailed,
  b.ethnicity,
  coalesce(b.eth_detailed_raw, b.ethnicity) AS ethnicity_detailed,
  CASE WHEN b.ethnicity = {_lit(HISPANIC)} THEN 'Hispanic'
       WHEN b.ethnicity = {u} OR b.race = {u} THEN {u}
       ELSE coalesce({_case("b.race", RACE_ETHNICITY_NON_HISPANIC)}, {_lit(OTHER_NON_HISPANIC)}) END
    AS race_ethnicity,
  CASE WHEN b.lang_code IS NULL OR b.lang_code = '' OR b.lang_code IN {_in(UNKNOWN_LANGUAGE_CODES)} THEN {u}
       ELSE coalesce({_case("b.lang_code", LANGUAGES)}, b.lang_code) END AS language,
  CASE WHEN language = {u} THEN {u} WHEN language = 'English' THEN 'English proficient'
       ELSE 'Limited English proficiency' END AS lep,
  CASE WHEN s.income_pct IS NULL THEN {u} WHEN s.income_pct <= 100 THEN '<=100%'
       WHEN s.income_pct <= 150 THEN '101-150%' WHEN s.income_pct <= 200 THEN '151-200%'
       ELSE '>200%' END AS income,
  coalesce(i.ins, {u}) AS insurance,
  b.sex,
  coalesce(s.orientation, {u}) AS sexual_orientation,
  b.gender_identity,
  CASE WHEN b.age IS NULL OR b.age < 0 THEN {u} WHEN b.age < 18 THEN '0-17' WHEN b.age < 40 THEN '18-39'
       WHEN b.age < 65 THEN '40-64' ELSE '65+' END AS age_band,
  CASE WHEN coalesce(ev.ag_worker, false) THEN 'Yes' WHEN coalesce(ev.screened, false) THEN 'No'
       ELSE {u} END AS agricultural_worker,
  CASE WHEN coalesce(s.housing_latest, 0) = 1 OR coalesce(ev.homeless_in_period, false)
            OR hd.patient_id IS NOT NULL THEN 'Yes'
       WHEN s.housing_latest = 0 THEN 'No' ELSE {u} END AS homeless,
  coalesce(s.veteran, {u}) AS veteran,
  {tier_sql("pr.positives")} AS sdoh_risk,
  coalesce(b.zip, {u}) AS postal_code,
  coalesce(b.center, {u}) AS center,
  coalesce(st.site, {u}) AS site
FROM base b
LEFT JOIN social s ON s.center = b.center AND s.patient_id = b.patient_id
LEFT JOIN ever ev ON ev.center = b.center AND ev.patient_id = b.patient_id
LEFT JOIN homeless_dx hd ON hd.center = b.center AND hd.patient_id = b.patient_id
LEFT JOIN prapare pr ON pr.center = b.center AND pr.patient_id = b.patient_id
LEFT JOIN insurance i ON i.center = b.center AND i.patient_id = b.patient_id
LEFT JOIN site st ON st.center = b.center AND st.patient_id = b.patient_id
"""


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def build_patient_attributes(con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date) -> str:
    """Create or replace table ``patient_attributes`` for the period; returns the table name.

    One row per ``(center, patient_id)`` of ``flat.patient``; columns ``center, patient_id`` and every
    key of :data:`DIMENSIONS` (all VARCHAR, never NULL). Built whole (a few seconds at 100k patients) for
    a new period or a table older than the data; after a load, :func:`refresh_patient_attributes` replaces
    only the touched patients' rows of the period the table holds.
    """
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    select = attributes_sql(period_start, period_end)
    con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT {_COLUMNS} FROM ({select})")
    con.execute(f"COMMENT ON TABLE {TABLE} IS {_lit(_data_tag(con, period_start, period_end))}")
    return TABLE


_COLUMNS = ", ".join(["center", "patient_id", *(d for d in DIMENSIONS if d != "center")])


def built_for(con: duckdb.DuckDBPyConnection) -> tuple[date, date, int | None] | None:
    """(period start, period end, newest load id) that ``patient_attributes`` was last brought up to date
    with, read from its tag; None when the table does not exist or carries no tag."""
    row = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = ? AND schema_name = current_schema() "
        "AND database_name = current_database()",
        [TABLE],
    ).fetchone()
    if row is None or not row[0]:
        return None
    fields = dict(part.split("=", 1) for part in str(row[0]).split(";") if "=" in part)
    try:
        start, end = (date.fromisoformat(d) for d in fields["period"].split("/"))
        last = None if fields["last_load"] == "None" else int(fields["last_load"])
    except (KeyError, ValueError):
        return None
    return start, end, last


def refresh_patient_attributes(
    con: duckdb.DuckDBPyConnection, *, centers: list[str], subjects: str | None = None
) -> None:
    """Replace the rows of ``centers`` (only the patients in table ``subjects`` of ``center, patient_id``,
    when given) in the existing ``patient_attributes``, for the period it holds, and tag it with the newest
    load: the incremental counterpart of :func:`build_patient_attributes` (equal rows for those patients),
    used by the refresh after a load. One transaction."""
    built = built_for(con)
    if built is None:
        raise ValueError(f"{TABLE} has no period tag to refresh")
    start, end, _ = built
    listed = ", ".join(_lit(c) for c in centers)
    scope = subjects or f"(SELECT center, id AS patient_id FROM flat.patient WHERE center IN ({listed}))"
    where = f"center IN ({listed})"
    if subjects:
        where += f" AND (center, patient_id) IN (SELECT center, patient_id FROM {subjects})"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {TABLE} WHERE {where}")
        con.execute(f"INSERT INTO {TABLE} SELECT {_COLUMNS} FROM ({attributes_sql(start, end, scope)})")
        con.execute(f"COMMENT ON TABLE {TABLE} IS {_lit(_data_tag(con, start, end))}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def tag_patient_attributes(con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date) -> None:
    """Tag ``patient_attributes`` as up to date for the period and the newest load, for a writer that
    filled it from elsewhere (``chc_equity.spark.attach``: the same rows, computed on Spark)."""
    con.execute(f"COMMENT ON TABLE {TABLE} IS {_lit(_data_tag(con, period_start, period_end))}")


def _data_tag(con: duckdb.DuckDBPyConnection, period_start: date, period_end: date) -> str:
    """What the table was built from: the period and the newest load (every load changes flat tables)."""
    has_loads = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'loads' AND schema_name = 'main'"
    ).fetchone()[0]
    last = con.execute("SELECT max(load_id) FROM loads").fetchone()[0] if has_loads else None
    return f"period={period_start.isoformat()}/{period_end.isoformat()};last_load={last}"


def ensure_patient_attributes(con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date) -> str:
    """Build ``patient_attributes`` unless it already exists for exactly this period and the newest load
    (table comment), so the equity, network and UDS steps share one build per load and never read a
    table older than the data.

    Only the current database counts: the web app's UDS build runs in an in-memory database that
    ATTACHes the warehouse, and a warehouse table of the same name there is not what an unqualified
    ``patient_attributes`` resolves to.
    """
    row = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = ? AND schema_name = current_schema() "
        "AND database_name = current_database()",
        [TABLE],
    ).fetchone()
    if row is not None and row[0] == _data_tag(con, period_start, period_end):
        return TABLE
    return build_patient_attributes(con, period_start=period_start, period_end=period_end)
