"""Staff lists of the social-needs stage: "screened positive but not referred" and "referred but not
closed", per center, with the patient's name and MRN (issue 14, build item 4).

Patient-level, so only for the staff roles (the web guard says which; never a viewer). Read from the
stage's patient-level tables and the ``patient_contact`` summary (all three are in the serving set), one
center at a time, so a list can never hold another center's rows. ``patients`` (a CHW limited to a
panel) restricts the rows further.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb

from chc_equity.exports import csv_writer
from chc_equity.sdoh.metrics import NO_DOMAIN, PATIENT, PATIENT_DOMAIN, REFERRAL

POSITIVE_NOT_REFERRED = "positive-not-referred"
REFERRED_NOT_CLOSED = "referred-not-closed"


@dataclass(frozen=True, slots=True)
class StaffList:
    key: str
    title: str
    columns: tuple[str, ...]
    sql: str  # one parameter: the center


LISTS: dict[str, StaffList] = {
    POSITIVE_NOT_REFERRED: StaffList(
        POSITIVE_NOT_REFERRED,
        "Screened positive, not referred",
        ("patient_id", "name", "mrn", "phone", "site", "domains", "first_positive"),
        f"""SELECT d.patient_id, c.name, c.mrn, c.phone, any_value(d.site) AS site,
                   string_agg(d.domain, '; ' ORDER BY d.domain) AS domains,
                   min(d.first_positive) AS first_positive
              FROM {PATIENT_DOMAIN} d
              LEFT JOIN patient_contact c ON c.center = d.center AND c.patient_id = d.patient_id
             WHERE d.center = ? AND d.positive AND NOT d.referred
             GROUP BY ALL ORDER BY first_positive, d.patient_id""",
    ),
    REFERRED_NOT_CLOSED: StaffList(
        REFERRED_NOT_CLOSED,
        "Referred, loop not closed",
        ("patient_id", "name", "mrn", "phone", "site", "domain", "referred_on", "days_open", "task_status",
         "organization", "referral_id"),
        f"""SELECT r.patient_id, c.name, c.mrn, c.phone, r.site,
                   CASE WHEN r.domain = '{NO_DOMAIN}' THEN NULL ELSE r.domain END AS domain,
                   r.authored AS referred_on, datediff('day', r.authored, r.period_end) AS days_open,
                   r.task_status, r.organization_name, r.referral_id
              FROM {REFERRAL} r
              LEFT JOIN patient_contact c ON c.center = r.center AND c.patient_id = r.patient_id
             WHERE r.center = ? AND NOT r.closed
             ORDER BY r.authored, r.patient_id, r.referral_id, r.domain""",
    ),
}  # fmt: skip


def available(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the stage's patient-level tables are there (``chc-equity sdoh`` has run)."""
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name IN (?, ?)",
        [PATIENT_DOMAIN, REFERRAL],
    ).fetchone()
    return bool(row and row[0] == 2)


def rows(
    con: duckdb.DuckDBPyConnection, key: str, center: str, patients: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The list ``key`` for ``center`` (only ``patients`` when given), as dicts of its columns."""
    spec = LISTS[key]
    out = [dict(zip(spec.columns, r, strict=True)) for r in con.execute(spec.sql, [center]).fetchall()]
    if patients is not None:
        allowed = set(patients)
        out = [r for r in out if r["patient_id"] in allowed]
    return out


@dataclass(frozen=True, slots=True)
class OpenNeeds:
    """What the CHW worklist shows of one center's social needs: the staff lists' rows, so the worklist
    and the Social needs lists can never disagree (one rule, here and in :mod:`chc_equity.sdoh.metrics`).

    - ``unreferred``: (patient, first positive day, domains) of the "screened positive, not referred" list;
    - ``open_referrals``: (patient, referred on, latest Task status, organization) of each referral whose
      loop is not closed (one per referral, whatever its domains);
    - ``tiers``: patient -> social-risk tier (``sdoh_patient.social_risk_tier``, :mod:`chc_equity.sdoh.tier`).
    """

    unreferred: list[tuple[str, Any, str]]
    open_referrals: list[tuple[str, Any, str, str | None]]
    tiers: dict[str, str]


def open_needs(con: duckdb.DuckDBPyConnection, center: str) -> OpenNeeds | None:
    """The open social needs of ``center`` as the social-needs stage computed them (None: not run)."""
    if not available(con) or not _has(con, PATIENT):
        return None
    unreferred = [
        (r["patient_id"], r["first_positive"], r["domains"]) for r in rows(con, POSITIVE_NOT_REFERRED, center)
    ]
    seen: set[str] = set()
    referrals = []
    for r in rows(con, REFERRED_NOT_CLOSED, center):
        if r["referral_id"] not in seen:
            seen.add(r["referral_id"])
            referrals.append((r["patient_id"], r["referred_on"], r["task_status"], r["organization"]))
    sql = f"SELECT patient_id, social_risk_tier FROM {PATIENT} WHERE center = ?"
    tiers = dict(con.execute(sql, [center]).fetchall())
    return OpenNeeds(unreferred, referrals, tiers)


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?"
    row = con.execute(sql, [table]).fetchone()
    return bool(row and row[0])


def to_csv(key: str, data: list[dict[str, Any]]) -> str:
    """The list as CSV, every cell through :mod:`chc_equity.exports` (no formula can run)."""
    buf = io.StringIO()
    w = csv_writer(buf)
    cols = LISTS[key].columns
    w.writerow(cols)
    w.writerows([r[c] if r[c] is not None else "" for c in cols] for r in data)
    return buf.getvalue()
