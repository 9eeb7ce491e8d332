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
from chc_equity.sdoh.metrics import NO_DOMAIN, PATIENT_DOMAIN, REFERRAL

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
         "organization_id"),
        f"""SELECT r.patient_id, c.name, c.mrn, c.phone, r.site,
                   CASE WHEN r.domain = '{NO_DOMAIN}' THEN NULL ELSE r.domain END AS domain,
                   r.authored AS referred_on, datediff('day', r.authored, r.period_end) AS days_open,
                   r.task_status, r.organization_id
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


def to_csv(key: str, data: list[dict[str, Any]]) -> str:
    """The list as CSV, every cell through :mod:`chc_equity.exports` (no formula can run)."""
    buf = io.StringIO()
    w = csv_writer(buf)
    cols = LISTS[key].columns
    w.writerow(cols)
    w.writerows([r[c] if r[c] is not None else "" for c in cols] for r in data)
    return buf.getvalue()
