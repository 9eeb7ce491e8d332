"""One CHW worklist per center: each patient once, with every open item, contact facts and a priority.

A patient is on the worklist when they have at least one open item:

- a **care gap** of any measure (the rule is :func:`chc_equity.network.gaps.open_gaps_sql`, the same as the
  per-measure care-gap lists), with what closes it (``Measure.care_gap``) and, where the measure has one,
  the last relevant value and its date (:data:`LAST_VALUES`: last HbA1c, last blood pressure, last BMI);
- a **positive unaddressed social screen** and an **open community referral**: the social-needs stage's
  staff lists, "screened positive, not referred" and "referred, loop not closed"
  (:func:`chc_equity.sdoh.lists.open_needs`: one rule for the stage, its lists and this worklist; none
  until ``chc-equity sdoh`` has run);
- an **overdue follow-up**: a missed Appointment (``noshow``) in the last :data:`FOLLOW_UP_DAYS` days with
  no visit or booking after it, or an active non-social ServiceRequest whose date has passed.

Contact facts come from the warehouse (name, MRN, phone and interpreter need from the stored Patient
resource through the ``patient_contact`` summary, as the care-gap list does: the flat layer deliberately
carries no names or phone numbers);
the assigned CHW and the last outreach come from whoever calls (the app database, or the FHIR CareTeam /
Communication helpers below) as plain mappings. Every query is restricted to one center in SQL.
The priority score is documented in docs/outreach.md; weights are in ``priority.yaml``.
"""

from __future__ import annotations

import copy
import functools
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml

from chc_equity.exports import csv_writer, set_cell
from chc_equity.network.gaps import NOT_A_VISIT, gap_reason, open_gaps_sql
from chc_equity.sdoh.lists import open_needs
from chc_equity.sdoh.mapping import SOCIAL_REFERRAL
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UPCOMING = ("booked", "pending", "arrived", "proposed")
FOLLOW_UP_DAYS = 90
CHW_TAXONOMY = "172V00000X"
OUTREACH_CATEGORY = "chw-outreach"
ACUTE_CLASSES = ("IMP", "ACUTE", "NONAC", "OBSENC")  # v3 ActCode: inpatient / observation stays
ED_CLASS = "EMER"


@dataclass(frozen=True, slots=True)
class LastValue:
    """The observation a care gap is about: a label, LOINC codes (or a BP panel) and a unit."""

    label: str
    codes: tuple[str, ...]
    unit: str = ""
    blood_pressure: bool = False


LAST_VALUES: dict[str, LastValue] = {
    "CMS122": LastValue("HbA1c", ("4548-4", "4549-2", "17856-6", "97506-0"), "%"),
    "CMS165": LastValue("BP", ("85354-9",), "mmHg", blood_pressure=True),
    "CMS69": LastValue("BMI", ("39156-5",), "kg/m2"),
}
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


GAP_KINDS = ("care-gap", "payer-gap")
# More open items from outside the warehouse's clinical data (e.g. payer gap files, chc_equity.vbp):
# (con, center, period, our open care gaps as (patient, CMS id)) -> (patient, item) pairs. The caller that
# builds the worklist (web app, CLI) passes them in, so this stage does not depend on the later ones.
ItemSource = Callable[
    [duckdb.DuckDBPyConnection, str, tuple[date, date], set[tuple[str, str]]],
    Iterable[tuple[str, "OpenItem"]],
]


@dataclass(frozen=True, slots=True)
class OpenItem:
    """One open item. ``kind``: care-gap, social-screen, referral, follow-up or payer-gap (an open gap on a
    payer's gap file that our records do not close, :mod:`chc_equity.vbp.worklist`); ``code``: the CMS id
    (or the payer's measure code) of a gap, else the kind."""

    kind: str
    code: str
    text: str
    last_value: str | None = None
    last_date: date | None = None

    def describe(self) -> str:
        last = f" (last {self.last_value} on {self.last_date.isoformat()})" if self.last_value else ""
        return f"{self.code}: {self.text}{last}" if self.kind in GAP_KINDS else f"{self.text}{last}"


@dataclass
class WorklistRow:
    patient_id: str  # internal key: never exported, never in a URL
    name: str | None = None
    mrn: str | None = None
    age: int | None = None
    language: str | None = None
    interpreter: bool | None = None
    phone: str | None = None
    site: str | None = None
    next_visit: str | None = None
    last_visit: date | None = None
    assigned_chw: str | None = None
    last_outreach: date | None = None
    last_outcome: str | None = None
    social_risk: str | None = None
    recent_acute: bool = False
    items: list[OpenItem] = field(default_factory=list)
    priority: float = 0.0
    band: str = "low"

    @property
    def measures(self) -> list[str]:
        return sorted({i.code for i in self.items if i.kind == "care-gap"})

    def count(self, kind: str) -> int:
        return sum(1 for i in self.items if i.kind == kind)

    def tally(self) -> tuple[int, int, int]:
        """(care gaps, social items, follow-ups) in one pass (the score's inputs); a payer's open gap counts
        as a care gap."""
        gaps = social = follow = 0
        for i in self.items:
            if i.kind in GAP_KINDS:
                gaps += 1
            elif i.kind == "follow-up":
                follow += 1
            else:
                social += 1
        return gaps, social, follow


# ----------------------------------------------------------------------------------- priority score
@dataclass(frozen=True, slots=True)
class Priority:
    """Weights of the priority score (``priority.yaml``; docs/outreach.md)."""

    weights: Mapping[str, Any]
    days_since_contact_cap: int
    recent_acute_days: int
    bands: Mapping[str, float]


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@functools.cache
def _packaged_priority() -> dict[str, Any]:
    text = resources.files("chc_equity.outreach").joinpath("priority.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_priority(path: str | Path | None = None) -> Priority:
    """The packaged weights, with a program's YAML (``path``) merged over them key by key."""
    cfg = copy.deepcopy(_packaged_priority())
    if path is not None:
        over = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(over, Mapping):
            raise ValueError(f"{path}: the priority file must be a YAML mapping (weights:, bands: ...)")
        unknown = set(over) - set(cfg)
        if unknown:
            raise ValueError(f"{path}: unknown priority keys {sorted(unknown)} (known: {sorted(cfg)})")
        cfg = _merge(cfg, over)
    return Priority(
        weights=cfg["weights"],
        days_since_contact_cap=int(cfg["days_since_contact_cap"]),
        recent_acute_days=int(cfg["recent_acute_days"]),
        bands=cfg["bands"],
    )


def score(row: WorklistRow, cfg: Priority, as_of: date) -> float:
    """The weighted priority of one row (higher = contact first)."""
    w = cfg.weights
    last_contact = row.last_outreach or row.last_visit
    days = (as_of - last_contact).days if last_contact else cfg.days_since_contact_cap
    days = max(0, min(days, cfg.days_since_contact_cap))
    gaps, social, follow = row.tally()
    return round(
        w["open_gap"] * gaps
        + w["social_item"] * social
        + w["overdue_follow_up"] * follow
        + (w["social_risk"].get(row.social_risk, 0.0) if row.social_risk else 0.0)
        + (w["recent_acute"] if row.recent_acute else 0.0)
        + w["per_day_since_contact"] * days,
        3,
    )


def band(value: float, cfg: Priority) -> str:
    return "high" if value >= cfg.bands["high"] else "medium" if value >= cfg.bands["medium"] else "low"


# ----------------------------------------------------------------------------------- queries
def _fhir_date(column: str) -> str:
    return f"try_cast(left({column}, 10) AS DATE)"


def _care_gaps(con: duckdb.DuckDBPyConnection, center: str, period: tuple[date, date]) -> list[tuple]:
    start, end = period
    return con.execute(open_gaps_sql(), [start, end, center, start, end]).fetchall()


def _last_values(
    con: duckdb.DuckDBPyConnection, center: str, as_of: date, spec: LastValue
) -> dict[str, tuple[str, date]]:
    """patient -> (value text, date) of the most recent final observation with one of ``spec.codes``."""
    at = "coalesce(o.effective_datetime, o.effective_instant, o.effective_period_end, o.issued)"
    value = (
        f"""(SELECT concat(
                    CAST(round(max(c.value_quantity_value) FILTER (WHERE c.code = '{SYSTOLIC}')) AS INTEGER),
                    '/',
                    CAST(round(max(c.value_quantity_value) FILTER (WHERE c.code = '{DIASTOLIC}')) AS INTEGER))
               FROM {F}.observation_component c WHERE c.center = o.center AND c.id = o.id)"""
        if spec.blood_pressure
        else "CAST(o.value_quantity_value AS VARCHAR)"
    )
    rows = con.execute(
        f"""
        SELECT o.patient_id, {value}, {_fhir_date(at)} AS day
          FROM {F}.observation o
         WHERE o.center = ? AND o.status IN ('final', 'amended', 'corrected')
           AND EXISTS (SELECT 1 FROM {F}.observation_code k WHERE k.center = o.center AND k.id = o.id
                        AND k.system = '{LOINC}' AND k.code IN (SELECT unnest(?)))
           AND {_fhir_date(at)} <= ?
        QUALIFY row_number() OVER (PARTITION BY o.patient_id ORDER BY {at} DESC, o.id DESC) = 1
        """,
        [center, list(spec.codes), as_of],
    ).fetchall()
    return {pid: (f"{v} {spec.unit}".strip(), day) for pid, v, day in rows if v not in (None, "/")}


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [F, name]
    ).fetchone()
    return bool(row and row[0])


def _follow_ups(con: duckdb.DuckDBPyConnection, center: str, as_of: date) -> list[tuple]:
    """(patient, day, text): missed visits not rebooked, and active orders whose date has passed."""
    since = date.fromordinal(as_of.toordinal() - FOLLOW_UP_DAYS)
    rows: list[tuple] = []
    if _table_exists(con, "appointment"):
        rows += con.execute(
            f"""
            SELECT a.patient_id, {_fhir_date("a.start_time")} AS day, 'Missed visit, not rebooked'
              FROM {F}.appointment a
             WHERE a.center = ? AND a.status = 'noshow'
               AND {_fhir_date("a.start_time")} BETWEEN ? AND ?
               AND NOT EXISTS (SELECT 1 FROM {F}.appointment b WHERE b.center = a.center
                                AND b.patient_id = a.patient_id AND b.start_time > a.start_time
                                AND b.status IN {(*UPCOMING, "fulfilled")})
               AND NOT EXISTS (SELECT 1 FROM {F}.encounter e WHERE e.center = a.center
                                AND e.patient_id = a.patient_id AND e.status NOT IN {NOT_A_VISIT}
                                AND e.period_start > a.start_time)
            """,
            [center, since, as_of],
        ).fetchall()
    at = "coalesce(s.occurrence_datetime, s.occurrence_period_end)"
    rows += con.execute(
        f"""
        SELECT s.patient_id, {_fhir_date(at)}, 'Ordered follow-up is overdue'
          FROM {F}.service_request s
         WHERE s.center = ? AND s.status = 'active' AND NOT coalesce(s.do_not_perform, false)
           AND {_fhir_date(at)} BETWEEN ? AND ?
           AND NOT EXISTS (SELECT 1 FROM {F}.service_request_category k WHERE k.center = s.center
                            AND k.id = s.id AND k.code = '{SOCIAL_REFERRAL}')
        """,
        [center, since, date.fromordinal(as_of.toordinal() - 1)],
    ).fetchall()
    return rows


def _visits(con: duckdb.DuckDBPyConnection, center: str, as_of: date, acute_days: int) -> dict[str, tuple]:
    """patient -> (last visit, site of the latest located visit, recent ED visit or discharge)."""
    recent = date.fromordinal(as_of.toordinal() - acute_days)
    rows = con.execute(
        f"""
        SELECT e.patient_id,
               max({_fhir_date("e.period_start")}),
               arg_max(l.location_id, e.period_start) FILTER (WHERE l.location_id IS NOT NULL),
               bool_or((e.class_code = '{ED_CLASS}' AND {_fhir_date("e.period_start")} >= ?)
                    OR (e.class_code IN {ACUTE_CLASSES} AND {_fhir_date("e.period_end")} >= ?))
          FROM {F}.encounter e
          LEFT JOIN {F}.encounter_location l ON l.center = e.center AND l.id = e.id
         WHERE e.center = ? AND e.status NOT IN {NOT_A_VISIT} AND e.status <> 'planned'
           AND {_fhir_date("e.period_start")} <= ?
         GROUP BY e.patient_id
        """,
        [recent, recent, center, as_of],
    ).fetchall()
    return {pid: (last, site, bool(acute)) for pid, last, site, acute in rows}


def _next_visits(con: duckdb.DuckDBPyConnection, center: str, as_of: date) -> dict[str, str]:
    if not _table_exists(con, "appointment"):
        return {}
    rows = con.execute(
        f"""
        SELECT patient_id, min(start_time) FROM {F}.appointment
         WHERE center = ? AND status IN {UPCOMING} AND {_fhir_date("start_time")} >= ?
         GROUP BY patient_id
        """,
        [center, as_of],
    ).fetchall()
    return {pid: start[:16].replace("T", " ") for pid, start in rows}


def _people(con: duckdb.DuckDBPyConnection, center: str, ids: list[str]) -> dict[str, tuple]:
    """patient -> (name, mrn, birth date, language, phone, interpreter required)."""
    rows = con.execute(
        f"""
        SELECT c.patient_id, c.name, c.mrn, CAST(p.birth_date AS VARCHAR),
               coalesce(p.preferred_language_code, p.first_language_code), c.phone, c.interpreter
          FROM patient_contact c
          LEFT JOIN {F}.patient p ON p.center = c.center AND p.id = c.patient_id
         WHERE c.center = ? AND c.patient_id IN (SELECT unnest(?))
        """,
        [center, ids],
    ).fetchall()
    return {pid: rest for pid, *rest in rows}


def _age(birth: str | None, as_of: date) -> int | None:
    if not birth or len(birth) < 4 or not birth[:4].isdigit():
        return None
    month, day = (int(birth[5:7]), int(birth[8:10])) if len(birth) >= 10 else (1, 1)
    return as_of.year - int(birth[:4]) - ((as_of.month, as_of.day) < (month, day))


# ----------------------------------------------------------------------------------- the worklist
def collect(
    con: duckdb.DuckDBPyConnection,
    center: str,
    *,
    period: tuple[date, date],
    as_of: date,
    recent_acute_days: int = 30,
    sources: Sequence[ItemSource] = (),
) -> list[WorklistRow]:
    """The warehouse part of the worklist: every patient of ``center`` with an open item and the facts
    about them, without the CHW-dependent columns and the priority (see :func:`prioritise`); ``sources``
    add items from elsewhere (:data:`ItemSource`).

    This is the expensive part (SQL over the flat tables and the ``patient_contact`` summary); it depends
    only on the warehouse, so :class:`chc_equity.outreach.page.WorklistStore` keeps it between loads.
    """
    rows: dict[str, WorklistRow] = {}

    def row(pid: str) -> WorklistRow:
        r = rows.get(pid)
        if r is None:
            r = rows[pid] = WorklistRow(pid)
        return r

    gaps = _care_gaps(con, center, period)
    wanted = {g[2] for g in gaps if g[2] in LAST_VALUES}
    last = {cms: _last_values(con, center, as_of, LAST_VALUES[cms]) for cms in sorted(wanted)}
    for pid, group, cms, title, inverse in gaps:
        value, day = last.get(cms, {}).get(pid, (None, None))
        if cms in LAST_VALUES and value:
            value = f"{LAST_VALUES[cms].label} {value}"
        code = cms if group == "Group_1" else f"{cms} {group.replace('_', ' ')}"
        row(pid).items.append(OpenItem("care-gap", code, gap_reason(cms, title, inverse), value, day))
    ours = {(pid, cms) for pid, group, cms, _title, _inverse in gaps if group == "Group_1"}
    for source in sources:
        for pid, item in source(con, center, period, ours):
            row(pid).items.append(item)
    needs = open_needs(con, center)  # the social-needs stage's rule (None: `chc-equity sdoh` not run)
    risk: dict[str, str] = needs.tiers if needs else {}
    for pid, day, domains in needs.unreferred if needs else ():
        text = f"Positive social needs screen ({domains.replace('_', ' ')}), no referral yet"
        row(pid).items.append(OpenItem("social-screen", "social-screen", text, None, day))
    for pid, day, status, organization in needs.open_referrals if needs else ():
        to = f" to {organization}" if organization else ""
        text = f"Community referral{to} not closed (task {status})"
        row(pid).items.append(OpenItem("referral", "referral", text, None, day))
    for pid, day, text in _follow_ups(con, center, as_of):
        row(pid).items.append(OpenItem("follow-up", "follow-up", text, None, day))
    if not rows:
        return []
    ids = sorted(rows)
    people = _people(con, center, ids)
    visits = _visits(con, center, as_of, recent_acute_days)
    upcoming = _next_visits(con, center, as_of)
    for pid in ids:
        r = rows[pid]
        name, mrn, birth, language, phone, interpreter = people.get(pid, (None,) * 6)
        r.name, r.mrn, r.age, r.language, r.phone = name or None, mrn, _age(birth, as_of), language, phone
        r.interpreter = interpreter
        r.last_visit, r.site, r.recent_acute = visits.get(pid, (None, None, False))
        r.next_visit = upcoming.get(pid)
        r.social_risk = risk.get(pid)
    return [rows[pid] for pid in ids]


def prioritise(
    base: Iterable[WorklistRow],
    *,
    as_of: date,
    assignments: Mapping[str, str] | None = None,
    last_outreach: Mapping[str, tuple[date, str]] | None = None,
    priority: Priority | None = None,
) -> list[WorklistRow]:
    """Copies of ``base`` rows with the assigned CHW, the last outreach, the priority score and band,
    highest priority first (``base`` is left untouched, so a cached one can be reused)."""
    cfg = priority or load_priority()
    assignments = assignments or {}
    last_outreach = last_outreach or {}
    out = []
    for b in base:
        r = object.__new__(WorklistRow)  # a shallow copy, fast: items are shared and never changed
        r.__dict__.update(b.__dict__)
        r.assigned_chw = assignments.get(b.patient_id)
        r.last_outreach, r.last_outcome = last_outreach.get(b.patient_id, (None, None))
        r.priority = score(r, cfg, as_of)
        r.band = band(r.priority, cfg)
        out.append(r)
    return sort_rows(out, "priority")


def build_worklist(
    con: duckdb.DuckDBPyConnection,
    center: str,
    *,
    period: tuple[date, date],
    as_of: date,
    assignments: Mapping[str, str] | None = None,
    last_outreach: Mapping[str, tuple[date, str]] | None = None,
    priority: Priority | None = None,
    sources: Sequence[ItemSource] = (),
) -> list[WorklistRow]:
    """Every patient of ``center`` with at least one open item, once, highest priority first.

    ``period`` is the precomputed measure run whose care gaps count; ``as_of`` is "today" (next visits
    are on or after it, recency is counted to it). ``assignments`` maps patient id -> CHW and
    ``last_outreach`` patient id -> (date, outcome), from the app database or :func:`fhir_assignments` /
    :func:`fhir_last_outreach`.
    """
    cfg = priority or load_priority()
    base = collect(
        con, center, period=period, as_of=as_of, recent_acute_days=cfg.recent_acute_days, sources=sources
    )
    return prioritise(base, as_of=as_of, assignments=assignments, last_outreach=last_outreach, priority=cfg)


# ----------------------------------------------------------------------------------- CHWs from FHIR
def fhir_assignments(con: duckdb.DuckDBPyConnection, center: str) -> dict[str, str]:
    """patient -> CHW (Practitioner id) from active CareTeams whose participant role is NUCC 172V00000X."""
    if not _table_exists(con, "care_team_member"):
        return {}
    rows = con.execute(
        f"""
        SELECT patient_id, arg_max(practitioner_id, coalesce(period_start, '')) FROM {F}.care_team_member
         WHERE center = ? AND status = 'active' AND role_code = '{CHW_TAXONOMY}'
           AND practitioner_id IS NOT NULL AND patient_id IS NOT NULL
         GROUP BY patient_id
        """,
        [center],
    ).fetchall()
    return dict(rows)


def fhir_last_outreach(con: duckdb.DuckDBPyConnection, center: str) -> dict[str, tuple[date, str]]:
    """patient -> (date, outcome) of the latest CHW outreach Communication (completed = reached)."""
    rows = con.execute(
        f"""
        SELECT c.patient_id, {_fhir_date("c.sent")},
               CASE WHEN c.status = 'completed' THEN 'reached'
                    ELSE coalesce((SELECT min(r.code) FROM {F}.communication_status_reason r
                                    WHERE r.center = c.center AND r.id = c.id), c.status) END
          FROM {F}.communication c
         WHERE c.center = ? AND c.sent IS NOT NULL
           AND EXISTS (SELECT 1 FROM {F}.communication_category k WHERE k.center = c.center
                        AND k.id = c.id AND k.code = '{OUTREACH_CATEGORY}')
        QUALIFY row_number() OVER (PARTITION BY c.patient_id ORDER BY c.sent DESC, c.id DESC) = 1
        """,
        [center],
    ).fetchall()
    return {pid: (day, outcome) for pid, day, outcome in rows}


# ----------------------------------------------------------------------------------- filter, sort, export
@dataclass(frozen=True, slots=True)
class Filters:
    """What a CHW narrows the list to; ``None`` means no restriction. ``assigned``: True = has a CHW,
    False = unassigned. ``search`` matches name or MRN, case-insensitive."""

    site: str | None = None
    language: str | None = None
    measure: str | None = None
    priority: str | None = None
    assigned: bool | None = None
    chw: str | None = None
    search: str | None = None

    def keep(self, r: WorklistRow) -> bool:
        if self.site is not None and r.site != self.site:
            return False
        if self.language is not None and (r.language or "").lower() != self.language.lower():
            return False
        if self.measure is not None:
            cms = self.measure.upper()
            if not any(i.kind == "care-gap" and i.code.split()[0] == cms for i in r.items):
                return False
        if self.priority is not None and r.band != self.priority:
            return False
        if self.assigned is not None and (r.assigned_chw is not None) != self.assigned:
            return False
        if self.chw is not None and r.assigned_chw != self.chw:
            return False
        if self.search:
            needle = self.search.lower()
            return needle in (r.name or "").lower() or needle in (r.mrn or "").lower()
        return True


def filter_rows(rows: Iterable[WorklistRow], filters: Filters) -> list[WorklistRow]:
    return [r for r in rows if filters.keep(r)]


_LOW = date.min
SORTS: dict[str, tuple[Callable[[WorklistRow], Any], bool]] = {
    "priority": (lambda r: (r.priority, len(r.items)), True),
    "name": (lambda r: (r.name or "").lower(), False),
    "mrn": (lambda r: r.mrn or "", False),
    "age": (lambda r: r.age if r.age is not None else -1, True),
    "last_visit": (lambda r: r.last_visit or _LOW, True),
    "next_visit": (lambda r: r.next_visit or "9999", False),
    "last_outreach": (lambda r: r.last_outreach or _LOW, False),
    "open_items": (lambda r: len(r.items), True),
}


def sort_rows(rows: list[WorklistRow], by: str = "priority", *, reverse: bool = False) -> list[WorklistRow]:
    """Sort by one of :data:`SORTS` (its natural direction; ``reverse`` flips it); ties by MRN."""
    if by not in SORTS:
        raise ValueError(f"unknown sort {by!r}; choose one of {', '.join(SORTS)}")
    key, descending = SORTS[by]
    ordered = sorted(rows, key=lambda r: r.mrn or r.patient_id)
    return sorted(ordered, key=key, reverse=descending != reverse)


COLUMNS = (
    "priority",
    "band",
    "name",
    "mrn",
    "age",
    "language",
    "interpreter",
    "phone",
    "site",
    "next_visit",
    "last_visit",
    "assigned_chw",
    "last_outreach",
    "last_outcome",
    "social_risk",
    "open_items",
    "measures",
    "items",
)


def export_row(r: WorklistRow) -> list[Any]:
    """One export line (the internal patient key is never exported)."""
    return [
        r.priority,
        r.band,
        r.name or "",
        r.mrn or "",
        r.age if r.age is not None else "",
        r.language or "",
        {True: "yes", False: "no"}.get(r.interpreter, "") if r.interpreter is not None else "",
        r.phone or "",
        r.site or "",
        r.next_visit or "",
        r.last_visit.isoformat() if r.last_visit else "",
        r.assigned_chw or "",
        r.last_outreach.isoformat() if r.last_outreach else "",
        r.last_outcome or "",
        r.social_risk or "",
        len(r.items),
        " ".join(r.measures),
        "; ".join(i.describe() for i in r.items),
    ]


def worklist_csv(rows: Iterable[WorklistRow]) -> str:
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(export_row(r) for r in rows)
    return buffer.getvalue()


def worklist_xlsx(rows: Iterable[WorklistRow]) -> bytes:
    """The Excel workbook (one sheet, header frozen), cells made safe by :mod:`chc_equity.exports`."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "worklist"
    for c, name in enumerate(COLUMNS, start=1):
        set_cell(ws, 1, c, name)
    for i, r in enumerate(rows, start=2):
        for c, value in enumerate(export_row(r), start=1):
            set_cell(ws, i, c, value)
    ws.freeze_panes = "A2"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def write_worklist(rows: Iterable[WorklistRow], path: str | Path) -> Path:
    """CSV or Excel (by the suffix: .csv, .xlsx), cells made safe by :mod:`chc_equity.exports`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        path.write_text(worklist_csv(rows), encoding="utf-8")
    elif suffix == ".xlsx":
        path.write_bytes(worklist_xlsx(rows))
    else:
        raise ValueError(f"{path}: the worklist is written as .csv or .xlsx, not {suffix or 'no suffix'}")
    return path


__all__ = [
    "COLUMNS",
    "LAST_VALUES",
    "Filters",
    "OpenItem",
    "Priority",
    "WorklistRow",
    "band",
    "build_worklist",
    "collect",
    "prioritise",
    "fhir_assignments",
    "fhir_last_outreach",
    "filter_rows",
    "load_priority",
    "score",
    "sort_rows",
    "worklist_csv",
    "worklist_xlsx",
    "write_worklist",
]
