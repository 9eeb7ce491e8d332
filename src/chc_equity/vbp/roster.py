"""Attribution rosters: who a payer holds the center accountable for, and how that compares with the
center's own active panel.

Two inputs, one shape (:class:`Member`):

- the **CSV template** (docs/vbp.md, "Roster CSV"): one row per member and attribution span;
- a **Da Vinci ATR** (Member Attribution List) ``Group``: ``Group.member[]`` with ``entity`` (a Patient),
  ``period`` (the attribution span) and the ``ext-coverageReference`` extension (the member's Coverage,
  whose ``subscriberId`` is the member id); accepted as a Bundle holding the Group, Patients and Coverages,
  or as a Group with contained resources.

Definitions (pure functions below; docs/vbp.md states them once for users):

- **seen**: at least one visit (an Encounter not cancelled, entered-in-error or planned) starting in the
  look-back window ``(as_of - lookback_months, as_of]`` (default 24 months, the usual "active patient"
  rule of health centers and of most primary-care attribution contracts);
- **active panel**: the patients seen;
- **attributed**: a member whose attribution span contains ``as_of``;
- **member month**: a member counts for a month when attributed on the month's first day (the payer's
  eligibility-file convention), so a span starting on the 2nd counts from the next month.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

ATR = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/"
COVERAGE_EXT = ATR + "ext-coverageReference"
ROSTER_COLUMNS = (
    "payer",
    "member_id",
    "last_name",
    "first_name",
    "birth_date",
    "gender",
    "attribution_start",
    "attribution_end",
    "mrn",
)
REQUIRED = ("payer", "member_id", "birth_date", "attribution_start")
FAR_FUTURE = date(9999, 12, 31)


class RosterError(ValueError):
    """A file that cannot be read at all (not one bad row: those are :class:`Rejected`)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record left out, with where and why (quarantined by the store, never loaded)."""

    source: str
    line: int  # CSV line number (header = 1) or 1-based Group.member index
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Member:
    """One attribution span of one member."""

    payer: str
    member_id: str
    family: str
    given: str
    birth_date: date | None
    gender: str
    start: date
    end: date | None  # None: open-ended
    mrn: str = ""
    identifiers: tuple[str, ...] = ()  # other identifier values the payer sent (Patient.identifier)

    def covers(self, day: date) -> bool:
        return self.start <= day <= (self.end or FAR_FUTURE)


def _day(text: str | None) -> date | None:
    text = (text or "").strip()
    return date.fromisoformat(text[:10]) if text else None


# ----------------------------------------------------------------------------------- CSV template
def template_rows(
    text: str, source: str, columns: Iterable[str], required: Iterable[str], rejects: list[Rejected]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a payer CSV template, header names lower-cased and values stripped; a file without
    one of ``columns`` cannot be read (:class:`RosterError`), a row with an empty ``required`` field is
    appended to ``rejects`` and skipped (the others load). The one reader of every vbp CSV template."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in columns if c not in header]
    if missing:
        raise RosterError(f"{source}: line 1: missing column(s) {', '.join(missing)} (template: docs/vbp.md)")
    reader.fieldnames = header
    required = tuple(required)
    for line, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        bad = next((c for c in required if not row.get(c)), None)
        if bad:
            rejects.append(Rejected(source, line, bad, "empty"))
            continue
        yield line, row


def read_roster_csv(text: str, source: str = "roster.csv") -> tuple[list[Member], list[Rejected]]:
    """Members of the CSV template; bad rows come back as :class:`Rejected` (the good ones load)."""
    members: list[Member] = []
    rejects: list[Rejected] = []
    for line, row in template_rows(text, source, REQUIRED, ("payer", "member_id"), rejects):
        try:
            birth = _day(row.get("birth_date"))
        except ValueError:
            rejects.append(
                Rejected(source, line, "birth_date", f"not a date (YYYY-MM-DD): {row['birth_date']!r}")
            )
            continue
        try:
            start, end = _day(row.get("attribution_start")), _day(row.get("attribution_end"))
        except ValueError:
            rejects.append(Rejected(source, line, "attribution_start/end", "not a date (YYYY-MM-DD)"))
            continue
        if start is None:
            rejects.append(Rejected(source, line, "attribution_start", "empty"))
            continue
        if end is not None and end < start:
            rejects.append(Rejected(source, line, "attribution_end", "before attribution_start"))
            continue
        members.append(
            Member(
                row["payer"],
                row["member_id"],
                row.get("last_name", ""),
                row.get("first_name", ""),
                birth,
                row.get("gender", "").lower(),
                start,
                end,
                row.get("mrn", ""),
            )
        )
    return members, rejects


# ----------------------------------------------------------------------------------- Da Vinci ATR
def _local(resources: Mapping[str, dict[str, Any]], ref: dict[str, Any] | None) -> dict[str, Any] | None:
    if not ref:
        return None
    key = (ref.get("reference") or "").lstrip("#")
    return resources.get(key) or resources.get(key.split("/")[-1])


def _index(resources: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in resources:
        if r.get("id"):
            out[f"{r.get('resourceType')}/{r['id']}"] = r
            out[r["id"]] = r
    return out


def read_atr(resource: dict[str, Any], source: str = "atr.json") -> tuple[list[Member], list[Rejected]]:
    """Members of a Da Vinci ATR Group (alone with contained Patients/Coverages, or in a Bundle)."""
    if resource.get("resourceType") == "Bundle":
        entries = [e.get("resource") or {} for e in resource.get("entry") or []]
        groups = [r for r in entries if r.get("resourceType") == "Group"]
        if not groups:
            raise RosterError(f"{source}: the Bundle holds no Group (Da Vinci ATR member attribution list)")
        index = _index(entries)
        out: tuple[list[Member], list[Rejected]] = ([], [])
        for g in groups:
            m, r = _read_group(g, {**index, **_index(g.get("contained") or [])}, source)
            out[0].extend(m)
            out[1].extend(r)
        return out
    if resource.get("resourceType") != "Group":
        raise RosterError(f"{source}: expected a Group or a Bundle, got {resource.get('resourceType')!r}")
    return _read_group(resource, _index(resource.get("contained") or []), source)


def _payer_name(group: dict[str, Any], coverage: dict[str, Any] | None) -> str:
    entity = group.get("managingEntity") or {}
    payor = ((coverage or {}).get("payor") or [{}])[0]
    ident = entity.get("identifier") or {}
    return entity.get("display") or payor.get("display") or ident.get("value") or group.get("name") or ""


def _member_id(patient: dict[str, Any], coverage: dict[str, Any] | None) -> str:
    if coverage and coverage.get("subscriberId"):
        return str(coverage["subscriberId"])
    for ident in patient.get("identifier") or []:
        codes = [c.get("code") for c in (ident.get("type") or {}).get("coding") or []]
        if "MB" in codes and ident.get("value"):
            return str(ident["value"])
    return ""


def _read_group(group: dict[str, Any], index: Mapping[str, dict[str, Any]], source: str):
    members: list[Member] = []
    rejects: list[Rejected] = []
    for n, m in enumerate(group.get("member") or [], start=1):
        if m.get("inactive"):
            continue
        patient = _local(index, m.get("entity"))
        if not patient or patient.get("resourceType") != "Patient":
            rejects.append(Rejected(source, n, "member.entity", "not a Patient in the Bundle / contained"))
            continue
        ext = next((e for e in m.get("extension") or [] if e.get("url") == COVERAGE_EXT), {})
        coverage = _local(index, ext.get("valueReference"))
        member_id = _member_id(patient, coverage)
        if not member_id:
            rejects.append(
                Rejected(source, n, "member id", "no Coverage.subscriberId nor identifier typed MB")
            )
            continue
        period = m.get("period") or (coverage or {}).get("period") or {}
        try:
            start, end = _day(period.get("start")), _day(period.get("end"))
            birth = _day(patient.get("birthDate"))
        except ValueError:
            rejects.append(Rejected(source, n, "member.period / birthDate", "not a date"))
            continue
        if start is None:
            rejects.append(Rejected(source, n, "member.period.start", "missing"))
            continue
        name = (patient.get("name") or [{}])[0]
        values = tuple(str(i["value"]) for i in patient.get("identifier") or [] if i.get("value"))
        mrn = next(
            (
                str(i.get("value"))
                for i in patient.get("identifier") or []
                if "MR" in [c.get("code") for c in (i.get("type") or {}).get("coding") or []]
            ),
            "",
        )
        members.append(
            Member(
                _payer_name(group, coverage),
                member_id,
                name.get("family", ""),
                " ".join(name.get("given") or []),
                birth,
                patient.get("gender", ""),
                start,
                end,
                mrn,
                values,
            )
        )
    return members, rejects


# ----------------------------------------------------------------------------------- reconciliation
@dataclass
class Reconciliation:
    """One payer's roster against the center's active panel on ``as_of``.

    ``attributed_seen`` / ``attributed_not_seen``: member ids (the second is the outreach list: members
    with no visit in the look-back window, including members matched to no patient of the center);
    ``seen_not_attributed``: patient ids of the active panel not attributed to this payer on ``as_of``
    (restricted to ``insured_by`` when given: the patients whose coverage names this payer).
    """

    payer: str
    as_of: date
    attributed_seen: list[str] = field(default_factory=list)
    attributed_not_seen: list[str] = field(default_factory=list)
    seen_not_attributed: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # attributed members linked to no patient

    def counts(self) -> dict[str, int]:
        return {
            "attributed": len(self.attributed_seen) + len(self.attributed_not_seen),
            "attributed_seen": len(self.attributed_seen),
            "attributed_not_seen": len(self.attributed_not_seen),
            "seen_not_attributed": len(self.seen_not_attributed),
            "unmatched": len(self.unmatched),
        }


def months_back(day: date, months: int) -> date:
    """``day`` minus ``months`` calendar months (the day clipped to the month's length)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    last = date(y + (m == 12), m % 12 + 1, 1).toordinal() - date(y, m, 1).toordinal()
    return date(y, m, min(day.day, last))


def seen_in_window(visits: Mapping[str, Iterable[date]], as_of: date, lookback_months: int = 24) -> set[str]:
    """Patients with a visit in ``(as_of - lookback_months, as_of]``: the active panel."""
    start = months_back(as_of, lookback_months)
    return {pid for pid, days in visits.items() if any(start < d <= as_of for d in days)}


def reconcile(
    members: Iterable[tuple[Member, str | None]],
    seen: set[str],
    *,
    payer: str,
    as_of: date,
    insured_by: set[str] | None = None,
) -> Reconciliation:
    """Sort one payer's members (each with the patient id it matched, or None) against ``seen``."""
    out = Reconciliation(payer, as_of)
    attributed_patients: set[str] = set()
    status: dict[str, bool] = {}
    for member, pid in members:
        if member.payer != payer:
            continue
        if not member.covers(as_of):
            continue
        if pid:
            attributed_patients.add(pid)
        was = status.get(member.member_id, False)
        status[member.member_id] = was or bool(pid and pid in seen)
        if not pid and member.member_id not in out.unmatched:
            out.unmatched.append(member.member_id)
    for mid, ok in sorted(status.items()):
        (out.attributed_seen if ok else out.attributed_not_seen).append(mid)
    pool = seen if insured_by is None else seen & insured_by
    out.seen_not_attributed = sorted(pool - attributed_patients)
    out.unmatched.sort()
    return out


def month_starts(start: date, end: date) -> list[date]:
    """First days of the months from ``start``'s month to ``end``'s month."""
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def member_months(members: Iterable[Member], start: date, end: date) -> dict[tuple[str, date], int]:
    """(payer, month) -> members attributed on the month's first day, for the months of [start, end]
    (a member on two overlapping spans counts once)."""
    months = month_starts(start, end)
    who: dict[tuple[str, date], set[str]] = defaultdict(set)
    for mem in members:
        for m in months:
            if mem.covers(m):
                who[(mem.payer, m)].add(mem.member_id)
    return {k: len(v) for k, v in sorted(who.items())}


def member_month_list(members: Iterable[Member], start: date, end: date) -> dict[str, list[date]]:
    """member id -> months (first days) on which the member is attributed, within [start, end]'s months."""
    months = month_starts(start, end)
    who: dict[str, set[date]] = defaultdict(set)
    for mem in members:
        for m in months:
            if mem.covers(m):
                who[mem.member_id].add(m)
    return {k: sorted(v) for k, v in who.items()}


# ----------------------------------------------------------------------------------- continuous enrollment
def uncovered(spans: Iterable[tuple[date, date | None]], start: date, end: date) -> list[tuple[date, date]]:
    """Stretches of [start, end] that no span covers (inclusive day ranges)."""
    gaps: list[tuple[date, date]] = []
    cursor = start.toordinal()
    for s, e in sorted((s, e or FAR_FUTURE) for s, e in spans):
        if e.toordinal() < cursor:
            continue
        if s.toordinal() > cursor:
            gaps.append((date.fromordinal(cursor), date.fromordinal(min(s.toordinal() - 1, end.toordinal()))))
        cursor = max(cursor, e.toordinal() + 1)
        if cursor > end.toordinal():
            break
    if cursor <= end.toordinal():
        gaps.append((date.fromordinal(cursor), end))
    return [(a, b) for a, b in gaps if a <= end]


def continuously_enrolled(
    spans: Iterable[tuple[date, date | None]],
    start: date,
    end: date,
    *,
    allowed_gap_days: int = 45,
    max_gaps: int = 1,
    anchor: date | None = None,
) -> bool:
    """HEDIS-style continuous enrollment over [start, end]: at most ``max_gaps`` gaps, each of at most
    ``allowed_gap_days`` days, and enrolled on the ``anchor`` date (default: ``end``)."""
    spans = list(spans)
    gaps = uncovered(spans, start, end)
    if len(gaps) > max_gaps or any((b - a).days + 1 > allowed_gap_days for a, b in gaps):
        return False
    day = anchor or end
    return any(s <= day <= (e or FAR_FUTURE) for s, e in spans)
