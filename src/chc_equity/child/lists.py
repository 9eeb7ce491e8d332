"""Patient-level lists for pediatric staff and care coordinators (docs/child.md, "Lists").

- ``child_gap`` (built here, after the measures and their aggregates): every open care gap of a
  pediatric measure (:func:`chc_equity.child.pediatric.child_measures`) for a child, by the one
  definition of an open gap (:func:`chc_equity.network.gaps.open_gaps_sql`, as the CHW worklist uses it),
  with the child's age band and language, the family's language and the first parent / guardian
  contact (:mod:`chc_equity.child.guardians`);
- open referrals (read from ``child_referral``): not closed, not cancelled, 30 / 60 / 90 days or more at
  the period end, oldest first, with the guardian's contact.

Callers authorize: the web shows these only to roles allowed to see the center's patients (never a
viewer, never another center's staff). Names and MRNs are joined at read time from ``patient_contact``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb

from chc_equity.child import guardians, pediatric, referrals
from chc_equity.child.bands import children_sql
from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.warehouse import FLAT_SCHEMA

GAPS = "child_gap"
GAP_COLUMNS = (
    "mrn", "name", "age_band", "cms_id", "reason", "child_language", "family_language", "guardian_name",
    "guardian_relationship", "guardian_phone",
)  # fmt: skip
OPEN_COLUMNS = (
    "mrn", "name", "age_band", "referral_type", "organization_name", "authored_day", "open_days",
    "task_status", "family_language", "guardian_name", "guardian_phone",
)  # fmt: skip


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return bool(row and row[0][0])


def build_gaps(con: duckdb.DuckDBPyConnection, *, period_start: date, period_end: date) -> int:
    """(Re)build ``child_gap`` for the period; needs ``measure_results`` and ``agg_measure`` of it (else the
    table is empty). Returns the number of rows."""
    from chc_equity.network.gaps import gap_reason, open_gaps_sql

    cols = """center VARCHAR, patient_id VARCHAR, cms_id VARCHAR, group_id VARCHAR, title VARCHAR,
              reason VARCHAR, age_band VARCHAR, child_language VARCHAR, family_language VARCHAR,
              guardian_name VARCHAR, guardian_relationship VARCHAR, guardian_phone VARCHAR"""
    con.execute(f"CREATE OR REPLACE TABLE {GAPS} ({cols})")
    if not (_has(con, "agg_measure") and _has(con, "measure_results")):
        return 0
    from chc_equity.measures.registry import find

    measures = [m.measure.name for m in find([cms for _, cms, _, _ in pediatric.child_measures()])]
    centers = [r[0] for r in con.execute("SELECT DISTINCT center FROM measure_results ORDER BY 1").fetchall()]
    pe = f"DATE '{period_end.isoformat()}'"
    rows: list[tuple[Any, ...]] = []
    for center in centers:
        found = con.execute(
            f"""WITH gaps AS ({open_gaps_sql("r.measure IN (SELECT unnest(?))")}),
                kids AS ({children_sql(FLAT_SCHEMA, pe)})
            SELECT g.patient_id, g.cms_id, g.group_id, g.title, g.inverse, k.age_band, a.language,
                   gd.family_language, gd.name, gd.relationship, gd.phone
              FROM gaps g
              JOIN kids k ON k.center = ? AND k.patient_id = g.patient_id
              LEFT JOIN {ATTRIBUTES} a ON a.center = ? AND a.patient_id = g.patient_id
              LEFT JOIN {guardians.TABLE} gd ON gd.center = ? AND gd.patient_id = g.patient_id AND gd.rank = 1
             ORDER BY g.cms_id, g.group_id, g.patient_id""",
            [period_start, period_end, center, period_start, period_end, measures, center, center, center],
        ).fetchall()
        for pid, cms, group, title, inverse, band, lang, fam, gname, grel, gphone in found:
            reason = gap_reason(cms, title, bool(inverse))
            rows.append(
                (center, pid, cms, group, title, reason, band, lang, fam or "Unknown", gname, grel, gphone)
            )
    if rows:
        con.executemany(f"INSERT INTO {GAPS} VALUES ({', '.join('?' * 12)})", rows)
    return len(rows)


def gap_rows(
    con: duckdb.DuckDBPyConnection, center: str, cms_id: str | None = None
) -> list[dict[str, Any]] | None:
    """A center's pediatric care gaps (None when not computed), with name and MRN."""
    if not _has(con, GAPS):
        return None
    where, params = ("AND g.cms_id = ?", [cms_id]) if cms_id else ("", [])
    cur = con.execute(
        f"""SELECT i.mrn, i.name, g.age_band, g.cms_id, g.reason, g.child_language, g.family_language,
                   g.guardian_name, g.guardian_relationship, g.guardian_phone
              FROM {GAPS} g LEFT JOIN patient_contact i ON i.center = g.center AND i.patient_id = g.patient_id
             WHERE g.center = ? {where}
             ORDER BY g.cms_id, g.age_band, i.name, g.patient_id""",
        [center, *params],
    )
    return [dict(zip(GAP_COLUMNS, r, strict=True)) for r in cur.fetchall()]


def open_referral_rows(
    con: duckdb.DuckDBPyConnection, center: str, min_days: int = 30
) -> list[dict[str, Any]] | None:
    """A center's open referrals aged ``min_days`` or more at the period end, oldest first (None when
    not computed)."""
    if not _has(con, referrals.REFERRAL):
        return None
    gd = (
        f"LEFT JOIN {guardians.TABLE} gd ON gd.center = r.center AND gd.patient_id = r.patient_id "
        "AND gd.rank = 1"
    )
    if not _has(con, guardians.TABLE):
        gd = "LEFT JOIN (SELECT NULL AS family_language, NULL AS name, NULL AS phone) gd ON false"
    cur = con.execute(
        f"""SELECT i.mrn, i.name, r.age_band, r.referral_type, r.organization_name,
                   CAST(r.authored_day AS VARCHAR), r.open_days, r.task_status,
                   gd.family_language, gd.name, gd.phone
              FROM {referrals.REFERRAL} r
              LEFT JOIN patient_contact i ON i.center = r.center AND i.patient_id = r.patient_id
              {gd}
             WHERE r.center = ? AND NOT r.cancelled AND NOT r.closed AND r.open_days >= ?
             ORDER BY r.open_days DESC, i.name, r.referral_id""",
        [center, min_days],
    )
    return [dict(zip(OPEN_COLUMNS, r, strict=True)) for r in cur.fetchall()]
