"""Care-gap lists and pre-visit planning: the patient-level reads (callers authorize; never logged).

A *care gap* of a measure is a subject in the denominator, not excluded and not excepted, that has not
met the numerator -- or, for an inverse measure (CMS122 HbA1c > 9 %, CMS75 dental decay: lower is
better), a subject that **is** in the numerator. Rows come from ``measure_results`` (patient-level by
nature), identity from ``flat.patient`` plus name and MRN from the stored Patient resource (the flat view
does not carry them; read through the ``patient_contact`` summary), and the last visit from
``flat.encounter``.

Every query is restricted to one center in SQL; the list is capped at :data:`GAP_LIMIT` rows.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import duckdb

from chc_equity.exports import csv_writer
from chc_equity.network.gaps import NOT_A_VISIT, gap_reason, open_gaps_sql
from chc_equity.warehouse import FLAT_SCHEMA
from chc_equity.web.analytics import Run

GAP_LIMIT = 20_000

# Identity (name, MRN) of a center's patients: the ``patient_contact`` summary of the stored Patient
# resources (defined in chc_equity.serving; a view in the warehouse, a table in a serving snapshot).
IDENTITY_SQL = """
    SELECT r.patient_id, r.name, r.mrn FROM patient_contact r WHERE r.center = ?
"""


@dataclass(frozen=True, slots=True)
class Gap:
    cms_id: str
    group_id: str
    title: str
    reason: str
    patient_id: str  # internal key: used to group rows, never put in a URL
    name: str | None
    mrn: str | None
    birth_date: str | None
    last_visit: date | None


@dataclass(slots=True)
class PatientGaps:
    """Pre-visit planning: one scheduled patient and every open gap."""

    patient_id: str
    name: str | None
    mrn: str | None
    birth_date: str | None
    visit_times: list[str]
    gaps: list[Gap] = field(default_factory=list)


def _gap_rows(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    center: str,
    measure_filter: str,
    params: list[object],
) -> list[tuple]:
    """Gap rows joined with identity and last visit; ``measure_filter`` restricts r.* (parameters follow)."""
    sql = f"""
        WITH gaps AS ({open_gaps_sql(measure_filter)}),
        visits AS (
            SELECT patient_id, max(try_cast(left(period_start, 10) AS DATE)) AS last_visit
              FROM {FLAT_SCHEMA}.encounter
             WHERE center = ? AND status NOT IN {NOT_A_VISIT}
               AND try_cast(left(period_start, 10) AS DATE) <= ?
               AND patient_id IN (SELECT patient_id FROM gaps)
             GROUP BY patient_id
        ),
        ident AS ({IDENTITY_SQL} AND r.patient_id IN (SELECT patient_id FROM gaps))
        SELECT g.cms_id, g.group_id, g.title, g.inverse, g.patient_id, i.name, i.mrn,
               CAST(p.birth_date AS VARCHAR), v.last_visit
          FROM gaps g
          LEFT JOIN {FLAT_SCHEMA}.patient p ON p.center = ? AND p.id = g.patient_id
          LEFT JOIN visits v USING (patient_id)
          LEFT JOIN ident i USING (patient_id)
         ORDER BY g.cms_id, g.group_id, v.last_visit DESC NULLS LAST, i.name, g.patient_id
         LIMIT {GAP_LIMIT}
    """
    return con.execute(
        sql,
        [
            run.period_start,
            run.period_end,
            center,
            run.period_start,
            run.period_end,
            *params,
            center,
            run.period_end,
            center,
            center,
        ],
    ).fetchall()


def _gaps(rows: Iterable[tuple]) -> list[Gap]:
    return [
        Gap(cms, group, title, gap_reason(cms, title, inverse), pid, name or None, mrn, birth, last)
        for cms, group, title, inverse, pid, name, mrn, birth, last in rows
    ]


@dataclass(frozen=True, slots=True)
class GroupFilter:
    """Care gaps of one equity group only: a measure group and one stratum of one dimension.

    The stratum is the label the equity pages show (``patient_attributes``, unknown values as
    ``Unknown``), so a "largest inequities" row links to exactly the patients behind its gap.
    """

    group_id: str
    dimension: str
    stratum: str

    def __post_init__(self) -> None:
        from chc_equity.equity.attributes import DIMENSIONS

        if self.dimension not in DIMENSIONS:  # a column name in SQL: only the known ones
            raise ValueError(f"unknown dimension {self.dimension!r}")


def care_gaps(
    con: duckdb.DuckDBPyConnection, run: Run, center: str, measure: str, group: GroupFilter | None = None
) -> list[Gap]:
    """Open gaps of one measure (all its groups, or one equity group) at one center, most recently seen
    patients first."""
    if group is None:
        return _gaps(_gap_rows(con, run, center, "r.measure = ?", [measure]))
    from chc_equity.equity.attributes import TABLE
    from chc_equity.equity.labels import UNKNOWN

    where = (
        f"r.measure = ? AND r.group_id = ? AND r.patient_id IN (SELECT a.patient_id FROM {TABLE} a "
        f"WHERE a.center = ? AND coalesce(a.{group.dimension}, '{UNKNOWN}') = ?)"
    )
    return _gaps(_gap_rows(con, run, center, where, [measure, group.group_id, center, group.stratum]))


def scheduled_patients(con: duckdb.DuckDBPyConnection, center: str, day: date) -> dict[str, list[str]]:
    """Patients of ``center`` with an encounter starting on ``day``: patient -> visit times (HH:MM)."""
    rows = con.execute(
        f"""
        SELECT patient_id, list(DISTINCT substr(period_start, 12, 5) ORDER BY substr(period_start, 12, 5))
          FROM {FLAT_SCHEMA}.encounter
         WHERE center = ? AND status NOT IN {NOT_A_VISIT} AND try_cast(left(period_start, 10) AS DATE) = ?
         GROUP BY patient_id
        """,
        [center, day],
    ).fetchall()
    return {pid: [t for t in times if t] for pid, times in rows}


def previsit(con: duckdb.DuckDBPyConnection, run: Run, center: str, day: date) -> list[PatientGaps]:
    """Every scheduled patient of ``day`` with all open gaps of the period (patients without gaps too)."""
    scheduled = scheduled_patients(con, center, day)
    if not scheduled:
        return []
    ids = sorted(scheduled)
    rows = _gap_rows(con, run, center, "r.patient_id IN (SELECT unnest(?))", [ids])
    gaps = _gaps(rows)
    identity = con.execute(
        f"""
        SELECT i.patient_id, i.name, i.mrn, CAST(p.birth_date AS VARCHAR)
          FROM ({IDENTITY_SQL} AND r.patient_id IN (SELECT unnest(?))) i
          LEFT JOIN {FLAT_SCHEMA}.patient p ON p.center = ? AND p.id = i.patient_id
        """,
        [center, ids, center],
    ).fetchall()
    people = {
        pid: PatientGaps(pid, name or None, mrn, birth, scheduled[pid]) for pid, name, mrn, birth in identity
    }
    for pid in ids:
        people.setdefault(pid, PatientGaps(pid, None, None, None, scheduled[pid]))
    for gap in gaps:
        people[gap.patient_id].gaps.append(gap)
    return sorted(people.values(), key=lambda p: (p.visit_times[:1], p.name or "", p.patient_id))


CSV_COLUMNS = ("center", "cms_id", "group", "mrn", "name", "birth_date", "last_visit", "reason")


def gaps_csv(center: str, gaps: list[Gap]) -> str:
    """The care-gap list as CSV (one row per gap; the internal patient key is not exported)."""
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for g in gaps:
        writer.writerow(
            [
                center,
                g.cms_id,
                g.group_id,
                g.mrn or "",
                g.name or "",
                g.birth_date or "",
                g.last_visit.isoformat() if g.last_visit else "",
                g.reason,
            ]
        )
    return buffer.getvalue()
