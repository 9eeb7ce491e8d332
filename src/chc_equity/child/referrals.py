"""Clinical referral loops of children: behavioral-health and specialist referrals, their Task lifecycle
and the consultant report that closes them (docs/child.md, "Referral loops").

The loop is CMS50's ("Closing the Referral Loop: Receipt of Specialist Report", FHIR edition): a
referral (ServiceRequest with a referral code, :data:`~chc_equity.child.codes.REFERRAL_CODES`) is
closed by a **completed Task coded in the "Consultant Report" value set whose ``basedOn`` references
it** (CMS50's ``TaskGetRequestID``) and whose ``executionPeriod`` ends *after* the referral's
``authoredOn`` and during the measurement period. As in CMS50 a referral counts when it falls in the
first ten months of the period (so that two months remain for the report); unlike CMS50, which scores
the patient's first referral only, every referral is a unit here (care coordinators track each one).

The lifecycle Task (``focus`` = the referral, not a consultant report) tells what happened meanwhile:
a referral is *cancelled* when its ServiceRequest is revoked or its latest lifecycle Task is cancelled
/ entered in error; cancelled referrals stay in ``child_referral`` (flagged) but out of every rate and
list. Open referrals are counted by age at the period end (30 / 60 / 90 days or more).

Reuses the social-needs stage's Task conventions (latest Task per focus, by lastModified) and the
equity layer's ``stratify`` (Wilson intervals, q-values, suppression) for the strata.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from chc_equity.child import codes
from chc_equity.child.bands import ALL_AGES, children_sql
from chc_equity.child.pediatric import typed
from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.outreach.indicators import stratify
from chc_equity.views.build import quote_literal
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA
REFERRAL = "child_referral"
METRICS = "child_referral_metrics"
EQUITY = "child_referral_equity"
ANY = "any"
ALL_ORGS = "All"
NETWORK = "*"
OPEN_AGES = (30, 60, 90)
DIMENSIONS = ("language", "race_ethnicity", "insurance", "age_band")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _day(expr: str) -> str:
    return f"try_cast(left({expr}, 10) AS DATE)"


def _ts(expr: str) -> str:
    """FHIR dateTime text as a TIMESTAMPTZ (a date alone: its midnight, UTC)."""
    return f"try_cast({expr} AS TIMESTAMPTZ)"


def referral_sql(ps: str, pe: str, cf: str) -> str:
    """``CREATE TABLE child_referral``: one row per clinical referral of a child authored in the period."""
    typed = ", ".join(f"({quote_literal(c)}, {quote_literal(t)})" for c, t in codes.REFERRAL_CODES.items())
    report_codes = " OR ".join(
        f"(k.system = {quote_literal(s)} AND k.code = {quote_literal(c)})" for s, c in codes.CONSULTANT_REPORT
    )
    window_end = f"({pe} - INTERVAL {codes.WINDOW_MONTHS_BEFORE_END} MONTH)::DATE"
    return f"""CREATE OR REPLACE TABLE {REFERRAL} AS
    WITH kids AS ({children_sql(F, pe, cf)}),
    typed (code, referral_type) AS (VALUES {typed}),
    sr AS (
      SELECT s.center, s.id, s.patient_id, s.status, s.authored_on, {_day("s.authored_on")} AS authored_day
        FROM {F}.service_request s
       WHERE s.{cf} AND coalesce(s.do_not_perform, false) = false
         AND coalesce(s.status, 'active') NOT IN ('entered-in-error', 'draft')
         AND {_day("s.authored_on")} BETWEEN {ps} AND {pe}
    ),
    kind AS (  -- behavioral health wins over specialist when a request carries both kinds of code
      SELECT sr.center, sr.id,
             CASE WHEN bool_or(t.referral_type = '{codes.BEHAVIORAL_HEALTH}') THEN '{codes.BEHAVIORAL_HEALTH}'
                  ELSE '{codes.SPECIALIST}' END AS referral_type
        FROM sr
        LEFT JOIN {F}.service_request_code k ON k.center = sr.center AND k.id = sr.id
         AND k.system = '{codes.SNOMED}'
        LEFT JOIN typed t ON t.code = k.code
       WHERE t.code IS NOT NULL OR EXISTS (
               SELECT 1 FROM {F}.service_request_category c WHERE c.center = sr.center AND c.id = sr.id
                  AND c.system = '{codes.SNOMED}' AND c.code = '{codes.PATIENT_REFERRAL}')
       GROUP BY ALL
    ),
    report AS (  -- CMS50 [Task: "Consultant Report"], completed, with its basedOn requests
      SELECT t.center, t.id, b.based_on_id, t.execution_period_end AS ended
        FROM {F}.task t
        JOIN {F}.task_based_on b ON b.center = t.center AND b.id = t.id
       WHERE t.{cf} AND t.status = 'completed'
         AND EXISTS (SELECT 1 FROM {F}.task_code k WHERE k.center = t.center AND k.id = t.id
                      AND ({report_codes}))
    ),
    lifecycle AS (  -- the latest Task whose focus is the referral (not a consultant report)
      SELECT t.center, t.focus_id, t.status, t.owner_id
        FROM {F}.task t
       WHERE t.{cf} AND t.focus_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM {F}.task_code k WHERE k.center = t.center AND k.id = t.id
                          AND ({report_codes}))
      QUALIFY row_number() OVER (PARTITION BY t.center, t.focus_id
        ORDER BY coalesce(t.last_modified, t.authored_on) DESC NULLS LAST, t.id DESC) = 1
    ),
    closing AS (  -- the first report that closes each referral
      SELECT sr.center, sr.id, min({_day("r.ended")}) AS report_day,
             arg_min(r.id, {_ts("r.ended")}) AS report_id
        FROM sr JOIN report r ON r.center = sr.center AND r.based_on_id = sr.id
       WHERE {_ts("r.ended")} > {_ts("sr.authored_on")}
         AND {_day("r.ended")} BETWEEN {ps} AND {pe}
       GROUP BY ALL
    ),
    org AS (
      SELECT center, id, min(performer_id) AS performer_id FROM {F}.service_request_performer
       WHERE {cf} AND performer_reference LIKE 'Organization/%' GROUP BY ALL
    ),
    base AS (
      SELECT sr.center, sr.patient_id, kids.age_band, sr.id AS referral_id, k.referral_type,
             sr.authored_day, sr.status AS request_status, coalesce(l.status, 'requested') AS task_status,
             sr.status = 'revoked'
               OR coalesce(l.status IN ('cancelled', 'entered-in-error'), false) AS cancelled,
             sr.authored_day <= {window_end} AS in_window,
             c.report_id, c.report_day,
             coalesce(o.performer_id, l.owner_id) AS organization_id
        FROM sr
        JOIN kind k ON k.center = sr.center AND k.id = sr.id
        JOIN kids ON kids.center = sr.center AND kids.patient_id = sr.patient_id
        LEFT JOIN lifecycle l ON l.center = sr.center AND l.focus_id = sr.id
        LEFT JOIN closing c ON c.center = sr.center AND c.id = sr.id
        LEFT JOIN org o ON o.center = sr.center AND o.id = sr.id
    )
    SELECT b.* EXCLUDE (report_id, report_day),
           coalesce(n.name, b.organization_id, 'Unknown') AS organization_name,
           CASE WHEN NOT b.cancelled THEN b.report_id END AS report_id,
           CASE WHEN NOT b.cancelled THEN b.report_day END AS report_day,
           NOT b.cancelled AND b.report_day IS NOT NULL AS closed,
           CASE WHEN NOT b.cancelled THEN datediff('day', b.authored_day, b.report_day) END
             AS days_to_closure,
           CASE WHEN NOT b.cancelled AND b.report_day IS NULL THEN datediff('day', b.authored_day, {pe}) END
             AS open_days,
           {ps} AS period_start, {pe} AS period_end
      FROM base b
      LEFT JOIN (SELECT center, id, any_value(name) AS name FROM {F}.organization WHERE {cf} GROUP BY ALL) n
        ON n.center = b.center AND n.id = b.organization_id"""


def metrics_sql(network: bool) -> str:
    """``child_referral_metrics``: per center (and the network, ``*``), referral type (and ``any``),
    receiving organization (and ``All``) and age band (and ``0-17``): referrals in the CMS50 window,
    closed, closure rate, median / 90th percentile days to closure, and open referrals (any authored day
    in the period) aged 30 / 60 / 90 days or more at the period end. Cancelled referrals count nowhere."""
    dims = ("center", "referral_type", "organization_id", "age_band")
    sets = []
    for keep_center in (True, False) if network else (True,):
        for t in (True, False):
            for o in (True, False):
                for a in (True, False):
                    cols = [d for d, k in zip(dims, (keep_center, t, o, a), strict=True) if k]
                    sets.append("(" + ", ".join(cols) + ")")
    opens = ",\n".join(
        f"count(*) FILTER (WHERE NOT closed AND open_days >= {d}) AS open_{d}" for d in OPEN_AGES
    )
    return f"""CREATE OR REPLACE TABLE {METRICS} AS
    SELECT CASE WHEN grouping(center) = 1 THEN '{NETWORK}' ELSE center END AS center,
           CASE WHEN grouping(referral_type) = 1 THEN '{ANY}' ELSE referral_type END AS referral_type,
           CASE WHEN grouping(organization_id) = 1 THEN '{ALL_ORGS}' ELSE organization_id END
             AS organization_id,
           CASE WHEN grouping(organization_id) = 1 THEN '{ALL_ORGS}' ELSE any_value(organization_name) END
             AS organization_name,
           CASE WHEN grouping(age_band) = 1 THEN '{ALL_AGES}' ELSE age_band END AS age_band,
           count(*) FILTER (WHERE in_window) AS referrals,
           count(*) FILTER (WHERE in_window AND closed) AS closed,
           CASE WHEN count(*) FILTER (WHERE in_window) > 0
                THEN count(*) FILTER (WHERE in_window AND closed) / count(*) FILTER (WHERE in_window) END
             AS closure_rate,
           quantile_cont(days_to_closure, 0.5) FILTER (WHERE in_window) AS days_to_closure_median,
           quantile_cont(days_to_closure, 0.9) FILTER (WHERE in_window) AS days_to_closure_p90,
           {opens},
           any_value(period_start) AS period_start, any_value(period_end) AS period_end
      FROM {REFERRAL} WHERE NOT cancelled
     GROUP BY GROUPING SETS ({", ".join(sets)})
     ORDER BY 1, 2, 3, 5"""


def equity_table(
    con: duckdb.DuckDBPyConnection, *, threshold: int = DEFAULT_THRESHOLD, network: bool = True
) -> pd.DataFrame:
    """Closure (referrals in the CMS50 window) by equity stratum per center and referral type (and the
    network, ``*``): the equity layer's strata, intervals, q-values and suppression below ``threshold``.
    The age band is the child's (0-2 ... 12-17), not the equity layer's ``0-17``."""
    ref = con.execute(
        f"SELECT center, patient_id, referral_id, referral_type, closed, age_band FROM {REFERRAL} "
        "WHERE in_window AND NOT cancelled"
    ).df()
    attrs = con.execute(
        f"SELECT center, patient_id, language, race_ethnicity, insurance FROM {ATTRIBUTES}"
    ).df()
    ref = ref.merge(attrs, on=["center", "patient_id"], how="left")
    # one key per (center, patient) so that a patient of two centers keeps each center's attributes
    ref["key"] = ref["center"] + "/" + ref["patient_id"]
    scopes = [(c, g) for c, g in ref.groupby("center", sort=True)]
    if network and ref["center"].nunique() > 1:
        scopes.append((NETWORK, ref))
    frames = []
    for center, g in scopes:
        for rtype, gt in [(ANY, g), *sorted(g.groupby("referral_type"))]:
            units = pd.DataFrame(
                {"patient_id": gt["key"].to_numpy(), "hit": gt["closed"].astype(bool).to_numpy()}
            )
            a = gt[["key", *DIMENSIONS]].drop_duplicates("key").rename(columns={"key": "patient_id"})
            for dim in DIMENSIONS:
                t = stratify(units, a[["patient_id", dim]], dim, numerator="hit", threshold=threshold)
                frames.append(t.assign(center=center, referral_type=rtype))
    cols = ["center", "referral_type", "dimension", "stratum", "numerator", "denominator", "rate", "ci_low",
            "ci_high", "p_value", "q_value", "is_reference", "worse_than_reference",
            "suppressed"]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    return typed(out)


def build(
    con: duckdb.DuckDBPyConnection,
    *,
    period_start: date,
    period_end: date,
    center: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> None:
    """(Re)build ``child_referral``, ``child_referral_metrics`` and ``child_referral_equity``."""
    ps, pe = f"DATE '{period_start.isoformat()}'", f"DATE '{period_end.isoformat()}'"
    cf = f"center = {quote_literal(center)}" if center else "center IS NOT NULL"
    con.execute(referral_sql(ps, pe, cf))
    con.execute(metrics_sql(network=center is None))
    df = equity_table(con, threshold=threshold, network=center is None)
    con.register("_child_referral_equity_df", df)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {EQUITY} AS SELECT * FROM _child_referral_equity_df")
    finally:
        con.unregister("_child_referral_equity_df")
