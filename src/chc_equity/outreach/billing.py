"""Which CHW service codes a patient's month supports, from minutes of outreach and CHW encounters.

The rules are data: one YAML per payer under ``rules/`` (``medicare.yaml``: CHI G0019/G0022 and PIN
G0023/G0024 per calendar month; ``medicaid-example.yaml``: CPT 98960-98962 per session), each citing its
sources. The functions here only apply them:

- **monthly programs** (CHI, PIN): minutes of one patient, program and calendar month are added up; the
  base code (60 minutes) is supported once its time threshold is reached, then one add-on unit per
  further 30 minutes reached;
- **session programs** (98960-98962): each session gives units of 30 minutes, the code chosen by the
  number of patients in the session;
- the **time threshold** of a unit follows ``unit_rule``: ``midpoint`` (the CPT time rule: a unit is
  attained when the mid-point is passed: 31 of 60 minutes, 16 of 30) or ``full`` (all of it);
- the **initiating-visit rule**: when a program requires one, only minutes on or after the patient's
  first initiating visit (an encounter with one of ``initiating_visit_codes``) count.

Minutes that support nothing are returned too, with the reason, so a program manager sees what is missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml

from chc_equity.warehouse import FLAT_SCHEMA

UNIT_RULES = ("midpoint", "full")


class RulesError(ValueError):
    """A payer rules file is malformed; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Service:
    """Minutes a CHW spent for one patient on one day, under one program (chi, pin, education ...)."""

    patient_id: str
    day: date
    minutes: int
    program: str
    channel: str | None = None
    group_size: int = 1


@dataclass(frozen=True, slots=True)
class ClaimLine:
    patient_id: str
    month: str  # YYYY-MM
    program: str
    code: str
    units: int
    minutes: int  # minutes of the program in the month that counted


@dataclass(frozen=True, slots=True)
class Unbilled:
    patient_id: str
    month: str
    program: str
    minutes: int
    reason: str


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    title: str
    per: str  # "month" or "session"
    initiating_visit: bool
    base_code: str | None = None
    base_minutes: int = 0
    add_on_code: str | None = None
    add_on_minutes: int = 0
    unit_minutes: int = 0
    codes_by_group_size: tuple[tuple[int, str], ...] = ()
    channels: tuple[str, ...] | None = None
    max_units_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    payer: str
    title: str
    unit_rule: str
    initiating_visit_codes: tuple[str, ...]
    programs: Mapping[str, Program]
    source: str


def _need(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in doc or doc[key] is None:
        raise RulesError(f"{where}: missing field {key!r}")
    return doc[key]


def _program(name: str, doc: Mapping[str, Any], where: str) -> Program:
    where = f"{where}: programs.{name}"
    per = _need(doc, "per", where)
    channels = doc.get("channels")
    common = {
        "name": name,
        "title": str(doc.get("title", name)),
        "per": per,
        "initiating_visit": bool(doc.get("initiating_visit", False)),
        "channels": tuple(channels) if channels else None,
        "max_units_per_day": doc.get("max_units_per_day"),
    }
    try:
        if per == "month":
            base, add = _need(doc, "base", where), _need(doc, "add_on", where)
            return Program(
                **common,
                base_code=str(_need(base, "code", f"{where}.base")),
                base_minutes=int(_need(base, "minutes", f"{where}.base")),
                add_on_code=str(_need(add, "code", f"{where}.add_on")),
                add_on_minutes=int(_need(add, "minutes", f"{where}.add_on")),
            )
        if per == "session":
            sizes = _need(doc, "codes_by_group_size", where)
            table = tuple(
                sorted(
                    (int(_need(s, "max_patients", f"{where}.codes_by_group_size")), str(s["code"]))
                    for s in sizes
                )
            )
            return Program(
                **common, unit_minutes=int(_need(doc, "unit_minutes", where)), codes_by_group_size=table
            )
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, RulesError):
            raise
        raise RulesError(f"{where}: {exc}") from exc
    raise RulesError(f"{where}: field 'per' must be 'month' or 'session', not {per!r}")


def available_payers() -> list[str]:
    folder = resources.files("chc_equity.outreach").joinpath("rules")
    return sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))


def load_rules(payer: str | Path) -> Rules:
    """A packaged payer (``medicare``, ``medicaid-example``) or a YAML file of the same shape."""
    if isinstance(payer, Path) or str(payer).endswith((".yaml", ".yml")):
        path = Path(payer)
        where, text = str(path), path.read_text(encoding="utf-8")
    else:
        if payer not in available_payers():
            raise RulesError(f"unknown payer {payer!r}; packaged: {', '.join(available_payers())}")
        entry = resources.files("chc_equity.outreach").joinpath("rules", f"{payer}.yaml")
        where, text = f"rules/{payer}.yaml", entry.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(doc, Mapping):
        raise RulesError(f"{where}: a rules file is a YAML mapping")
    rule = doc.get("unit_rule", "midpoint")
    if rule not in UNIT_RULES:
        raise RulesError(f"{where}: field 'unit_rule' must be one of {UNIT_RULES}, not {rule!r}")
    programs = _need(doc, "programs", where)
    return Rules(
        payer=str(_need(doc, "payer", where)),
        title=str(doc.get("title", "")),
        unit_rule=rule,
        initiating_visit_codes=tuple(str(c) for c in doc.get("initiating_visit_codes") or ()),
        programs={name: _program(name, p, where) for name, p in programs.items()},
        source=where,
    )


# ----------------------------------------------------------------------------------- unit arithmetic
def threshold(unit_minutes: int, unit_rule: str) -> int:
    """Minutes needed to attain one unit of ``unit_minutes`` (midpoint: more than half)."""
    return unit_minutes // 2 + 1 if unit_rule == "midpoint" else unit_minutes


def units(minutes: int, unit_minutes: int, unit_rule: str) -> int:
    """Whole units attained by ``minutes`` of a code billed per ``unit_minutes``."""
    need = threshold(unit_minutes, unit_rule)
    return 0 if minutes < need else (minutes - need) // unit_minutes + 1


def monthly_codes(total: int, program: Program, unit_rule: str) -> list[tuple[str, int]]:
    """(code, units) a month of ``total`` minutes supports: the base code, then add-on units."""
    if program.base_code is None or program.add_on_code is None:
        raise ValueError(f"program {program.name} is not billed per month")
    if total < threshold(program.base_minutes, unit_rule):
        return []
    out = [(program.base_code, 1)]
    extra = units(total - program.base_minutes, program.add_on_minutes, unit_rule)
    if extra:
        out.append((program.add_on_code, extra))
    return out


def _session_code(program: Program, size: int) -> str | None:
    return next((code for max_n, code in program.codes_by_group_size if size <= max_n), None)


# ----------------------------------------------------------------------------------- the monthly list
def bill(
    services: Iterable[Service],
    rules: Rules,
    initiating_visits: Mapping[str, Iterable[date]] | None = None,
) -> tuple[list[ClaimLine], list[Unbilled]]:
    """Claim-ready lines per patient, month and code, and the minutes that support nothing (why)."""
    first_visit = {pid: min(days) for pid, days in (initiating_visits or {}).items() if days}
    claims: list[ClaimLine] = []
    unbilled: list[Unbilled] = []
    monthly: dict[tuple[str, str, str], int] = defaultdict(int)
    sessions: dict[tuple[str, str, str, date], list[Service]] = defaultdict(list)
    for s in sorted(services, key=lambda s: (s.patient_id, s.day, s.program)):
        month = s.day.strftime("%Y-%m")
        program = rules.programs.get(s.program)
        if program is None:
            unbilled.append(
                Unbilled(
                    s.patient_id,
                    month,
                    s.program,
                    s.minutes,
                    f"no {s.program!r} program in {rules.payer} rules",
                )
            )
            continue
        if program.channels is not None and s.channel not in program.channels:
            unbilled.append(
                Unbilled(
                    s.patient_id,
                    month,
                    s.program,
                    s.minutes,
                    f"channel {s.channel or 'unknown'} is not billable for {program.title}",
                )
            )
            continue
        if program.initiating_visit:
            start = first_visit.get(s.patient_id)
            if start is None or s.day < start:
                why = "before the initiating visit" if start else "no initiating visit"
                unbilled.append(Unbilled(s.patient_id, month, s.program, s.minutes, why))
                continue
        if program.per == "month":
            monthly[(s.patient_id, month, s.program)] += s.minutes
        else:
            sessions[(s.patient_id, month, s.program, s.day)].append(s)
    for (pid, month, name), total in sorted(monthly.items()):
        program = rules.programs[name]
        codes = monthly_codes(total, program, rules.unit_rule)
        if not codes:
            need = threshold(program.base_minutes, rules.unit_rule)
            unbilled.append(Unbilled(pid, month, name, total, f"{total} minutes < {need} needed"))
        claims += [ClaimLine(pid, month, name, code, n, total) for code, n in codes]
    per_month: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (pid, month, name, _day), day_sessions in sorted(sessions.items()):
        program = rules.programs[name]
        day_units = 0
        for s in day_sessions:
            code = _session_code(program, s.group_size)
            n = units(s.minutes, program.unit_minutes, rules.unit_rule)
            if code is None:
                unbilled.append(
                    Unbilled(pid, month, name, s.minutes, f"group of {s.group_size} is too large")
                )
                continue
            if program.max_units_per_day is not None:
                n = min(n, program.max_units_per_day - day_units)
            if n <= 0:
                need = threshold(program.unit_minutes, rules.unit_rule)
                reason = f"{s.minutes} minutes < {need} needed" if day_units == 0 else "daily unit limit"
                unbilled.append(Unbilled(pid, month, name, s.minutes, reason))
                continue
            day_units += n
            acc = per_month[(pid, month, name, code)]
            acc[0] += n
            acc[1] += s.minutes
    claims += [
        ClaimLine(pid, month, name, code, n, m) for (pid, month, name, code), (n, m) in per_month.items()
    ]
    claims.sort(key=lambda c: (c.patient_id, c.month, c.program, c.code))
    return claims, unbilled


# ----------------------------------------------------------------------------------- from the warehouse
# Encounter.type codes of CHW encounters -> (program, patients in the session).
ENCOUNTER_PROGRAMS: dict[str, tuple[str, int]] = {
    "G0019": ("chi", 1),
    "G0022": ("chi", 1),
    "G0023": ("pin", 1),
    "G0024": ("pin", 1),
    "98960": ("education", 1),
    "98961": ("education", 4),
    "98962": ("education", 8),
}


def encounter_services(con: duckdb.DuckDBPyConnection, center: str) -> list[Service]:
    """CHW encounters of ``center`` (Encounter.type one of :data:`ENCOUNTER_PROGRAMS`) as services; the
    minutes are Encounter.length when given in minutes, else the period's length."""
    f = FLAT_SCHEMA
    rows = con.execute(
        f"""
        SELECT e.patient_id, try_cast(left(e.period_start, 10) AS DATE), t.code,
               coalesce(CASE WHEN e.length_code = 'min' OR e.length_unit IN ('min', 'minutes')
                             THEN CAST(e.length_value AS INTEGER) END,
                        CAST(date_diff('minute', try_cast(e.period_start AS TIMESTAMPTZ),
                                       try_cast(e.period_end AS TIMESTAMPTZ)) AS INTEGER)),
               e.class_code
          FROM {f}.encounter e JOIN {f}.encounter_type t ON t.center = e.center AND t.id = e.id
         WHERE e.center = ? AND e.status IN ('finished', 'in-progress') AND t.code IN (SELECT unnest(?))
         ORDER BY 1, 2
        """,
        [center, list(ENCOUNTER_PROGRAMS)],
    ).fetchall()
    out = []
    for pid, day, code, minutes, klass in rows:
        if pid is None or day is None or not minutes or minutes <= 0:
            continue
        program, size = ENCOUNTER_PROGRAMS[code]
        channel = {"HH": "home-visit", "VR": "phone"}.get(klass, "in-clinic")
        out.append(Service(pid, day, int(minutes), program, channel, size))
    return out


def initiating_visits(con: duckdb.DuckDBPyConnection, center: str, rules: Rules) -> dict[str, list[date]]:
    """patient -> days of finished encounters typed with one of the rules' initiating-visit codes."""
    if not rules.initiating_visit_codes:
        return {}
    f = FLAT_SCHEMA
    rows = con.execute(
        f"""
        SELECT e.patient_id, list(DISTINCT try_cast(left(e.period_start, 10) AS DATE))
          FROM {f}.encounter e JOIN {f}.encounter_type t ON t.center = e.center AND t.id = e.id
         WHERE e.center = ? AND e.status = 'finished' AND t.code IN (SELECT unnest(?))
           AND coalesce(e.class_code, '') NOT IN ('EMER', 'IMP', 'ACUTE', 'NONAC', 'OBSENC')
         GROUP BY e.patient_id
        """,
        [center, list(rules.initiating_visit_codes)],
    ).fetchall()
    return {pid: [d for d in days if d is not None] for pid, days in rows}


CLAIM_COLUMNS = ("mrn", "month", "program", "code", "units", "minutes")
UNBILLED_COLUMNS = ("mrn", "month", "program", "minutes", "reason")
