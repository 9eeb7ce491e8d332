"""FHIR R4 MeasureReports from ``measure_results``: summary per (center, measure), individual per patient.

The pure builders (:func:`summary_report`, :func:`individual_report`) turn counts into MeasureReport
dicts; :func:`summary_reports` / :func:`individual_reports` read the results table. What they follow:

- ``measure`` is the official Measure canonical with its version (``https://madie.cms.gov/Measure/<name>
  |<version>``); group, population and stratifier ids are the Measure resource's ("Group_1",
  "InitialPopulation_1", "Stratification_1_2"), so a receiver can line them up with the Measure.
- Population counts use the eCQM convention of the engine: an excluded subject still counts in the
  denominator. ``measureScore`` is numerator / (denominator - exclusions - exceptions) and is omitted
  when that is 0 (the IG's rule for an undefined score). Episode measures (CMS22, CMS177) count
  encounters, so an individual report may count more than 1.
- Stratifiers are boolean CQL definitions ("Stratification 1"), so each has two strata, ``true`` (the
  subjects that meet it) and ``false`` (the rest of the group), each with its own populations and score.
- Summary reports are the center's own report to itself or to a payer: they carry exact counts and
  suppress nothing. Anything published beyond the center must go through ``chc_equity.equity.suppression``.
- Individual reports are written only for patients with at least one row in the results (that is,
  patients in some group's initial population); every other patient's populations are all 0.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.measures.model import POPULATION_COLUMNS, Group, Measure

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
POPULATION_BASIS_URL = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-populationBasis"
DISPLAY = {
    "initial-population": "Initial Population",
    "denominator": "Denominator",
    "denominator-exclusion": "Denominator Exclusion",
    "denominator-exception": "Denominator Exception",
    "numerator": "Numerator",
    "numerator-exclusion": "Numerator Exclusion",
}
IMPROVEMENT_DISPLAY = {
    "increase": "Increased score indicates improvement",
    "decrease": "Decreased score indicates improvement",
}
# Namespace for deterministic report ids: the same inputs give the same id, so re-exports replace.
_ID_NAMESPACE = uuid.UUID("6f1b0d9e-2f53-4c1e-9d4a-0c8e6b7f3a21")
_FHIR_ID = re.compile(r"[^A-Za-z0-9\-.]")

Counts = Mapping[str, int]  # population code -> count


@dataclass(frozen=True)
class GroupCounts:
    """Counts of one group: the whole group and, per stratifier name, the subjects in the stratum."""

    total: Counts
    strata: Mapping[str, Counts] = field(default_factory=dict)


def fhir_id(text: str) -> str:
    """``text`` as a valid FHIR id ([A-Za-z0-9-.]{1,64}): other characters become '-', then truncated."""
    return _FHIR_ID.sub("-", text)[:64] or "unknown"


def population_id(code: str, group: Group) -> str:
    """The Measure resource's population id: ("denominator-exclusion", Group_1) -> DenominatorExclusion_1."""
    return "".join(part.capitalize() for part in code.split("-")) + f"_{group.number}"


def score(counts: Counts) -> float | None:
    """eCQM proportion score; None when the performance denominator is 0."""
    denominator = (
        counts.get("denominator", 0)
        - counts.get("denominator-exclusion", 0)
        - counts.get("denominator-exception", 0)
    )
    return counts.get("numerator", 0) / denominator if denominator > 0 else None


def _populations(group: Group, counts: Counts) -> list[dict[str, Any]]:
    return [
        {
            "id": population_id(code, group),
            "code": {"coding": [{"system": POPULATION_SYSTEM, "code": code, "display": DISPLAY[code]}]},
            "count": int(counts.get(code, 0)),
        }
        for code in group.populations
    ]


def _scored(entry: dict[str, Any], counts: Counts) -> dict[str, Any]:
    value = score(counts)
    if value is not None:
        entry["measureScore"] = {"value": round(value, 6)}
    return entry


def _group(measure: Measure, group: Group, counts: GroupCounts) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": group.id}
    if measure.basis != "boolean":
        entry["extension"] = [{"url": POPULATION_BASIS_URL, "valueCode": measure.basis}]
    entry["population"] = _populations(group, counts.total)
    _scored(entry, counts.total)
    stratifiers = []
    for sid, name in zip(group.stratifier_ids, group.stratifiers, strict=True):
        inside = counts.strata.get(name, {})
        outside = {code: counts.total.get(code, 0) - inside.get(code, 0) for code in group.populations}
        stratifiers.append(
            {
                "id": sid,
                "code": [{"text": name}],
                "stratum": [
                    _scored({"value": {"text": text}, "population": _populations(group, c)}, c)
                    for text, c in (("true", inside), ("false", outside))
                ],
            }
        )
    if stratifiers:
        entry["stratifier"] = stratifiers
    return entry


def _report(
    measure: Measure,
    report_type: str,
    groups: Mapping[str, GroupCounts],
    *,
    center: str,
    period_start: date,
    period_end: date,
    generated: datetime,
    subject: str | None = None,
) -> dict[str, Any]:
    key = "|".join(
        (report_type, center, measure.canonical, str(period_start), str(period_end), subject or "")
    )
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": str(uuid.uuid5(_ID_NAMESPACE, key)),
        "status": "complete",
        "type": report_type,
        "measure": measure.canonical,
    }
    if subject is not None:
        report["subject"] = {"reference": f"Patient/{fhir_id(subject)}"}
    empty = GroupCounts({})
    report |= {
        "date": generated.isoformat(timespec="seconds"),
        "reporter": {"reference": f"Organization/{fhir_id(center)}"},
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "improvementNotation": {
            "coding": [
                {
                    "system": IMPROVEMENT_SYSTEM,
                    "code": measure.improvement_notation,
                    "display": IMPROVEMENT_DISPLAY[measure.improvement_notation],
                }
            ]
        },
        "group": [_group(measure, g, groups.get(g.id, empty)) for g in measure.groups],
    }
    return report


def summary_report(
    measure: Measure,
    groups: Mapping[str, GroupCounts],
    *,
    center: str,
    period_start: date,
    period_end: date,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """A summary MeasureReport of ``measure`` for ``center`` from per-group counts (unsuppressed)."""
    return _report(
        measure, "summary", groups, center=center, period_start=period_start, period_end=period_end,
        generated=generated or datetime.now(UTC),
    )


def individual_report(
    measure: Measure,
    groups: Mapping[str, GroupCounts],
    *,
    center: str,
    patient_id: str,
    period_start: date,
    period_end: date,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """An individual MeasureReport of one patient (counts are 0/1, or encounters for episode measures)."""
    return _report(
        measure, "individual", groups, center=center, period_start=period_start, period_end=period_end,
        generated=generated or datetime.now(UTC), subject=patient_id,
    )


# ---------------------------------------------------------------------------------------------- I/O


_CODES = tuple(POPULATION_COLUMNS)
_COUNT_SQL = ", ".join(f"count(*) FILTER (WHERE {POPULATION_COLUMNS[c]})" for c in _CODES)


def _where(measure: Measure, period_start: date, period_end: date, centers: Sequence[str] | None):
    where = "measure = ? AND period_start = ? AND period_end = ?"
    params: list[object] = [measure.name, period_start, period_end]
    if centers:
        where += " AND center IN (SELECT unnest(?))"
        params.append(list(centers))
    return where, params


def _collect(
    con: duckdb.DuckDBPyConnection, measure: Measure, keys: str, where: str, params: list[object]
) -> dict[tuple, dict[str, GroupCounts]]:
    """Counts by ``keys`` (SQL column list) x group, totals and strata, in one pass each."""
    totals = con.execute(
        f"SELECT {keys}, group_id, {_COUNT_SQL} FROM {RESULTS_TABLE} WHERE {where} GROUP BY ALL ORDER BY ALL",
        params,
    ).fetchall()
    n = keys.count(",") + 1
    strata: dict[tuple, dict[str, dict[str, int]]] = {}
    if any(g.stratifiers for g in measure.groups):
        rows = con.execute(
            f"SELECT {keys}, group_id, stratum, {_COUNT_SQL} "
            f"FROM (SELECT *, unnest(strata) AS stratum FROM {RESULTS_TABLE} WHERE {where}) GROUP BY ALL",
            params,
        ).fetchall()
        for row in rows:
            counts = dict(zip(_CODES, row[n + 2 :], strict=True))
            strata.setdefault(tuple(row[: n + 1]), {})[row[n + 1]] = counts
    out: dict[tuple, dict[str, GroupCounts]] = {}
    for row in totals:
        key, group_id = tuple(row[:n]), row[n]
        total = dict(zip(_CODES, row[n + 1 :], strict=True))
        out.setdefault(key, {})[group_id] = GroupCounts(total, strata.get((*key, group_id), {}))
    return out


def report_centers(con: duckdb.DuckDBPyConnection, centers: Sequence[str] | None = None) -> list[str]:
    """Centers to report on: ``centers`` when given, else every center of ``flat.patient`` (a center
    whose initial population is empty still gets a report, with zero counts)."""
    if centers:
        return sorted(set(centers))
    try:
        rows = con.execute("SELECT DISTINCT center FROM flat.patient ORDER BY center").fetchall()
    except duckdb.CatalogException:
        rows = con.execute(f"SELECT DISTINCT center FROM {RESULTS_TABLE} ORDER BY center").fetchall()
    return [r[0] for r in rows]


def summary_reports(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[Measure],
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    generated: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """One summary MeasureReport per (center, measure), centers as :func:`report_centers` lists them."""
    generated = generated or datetime.now(UTC)
    listed = report_centers(con, centers)
    for measure in measures:
        where, params = _where(measure, period_start, period_end, listed)
        counts = _collect(con, measure, "center", where, params)
        for center in listed:
            groups = counts.get((center,), {})
            yield summary_report(
                measure, groups, center=center, period_start=period_start, period_end=period_end,
                generated=generated,
            )


def individual_reports(
    con: duckdb.DuckDBPyConnection,
    measure: Measure,
    *,
    period_start: date,
    period_end: date,
    centers: Sequence[str] | None = None,
    generated: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """One individual MeasureReport per (center, patient) with results for ``measure``."""
    generated = generated or datetime.now(UTC)
    where, params = _where(measure, period_start, period_end, centers)
    for (center, patient_id), groups in _collect(con, measure, "center, patient_id", where, params).items():
        yield individual_report(
            measure, groups, center=center, patient_id=patient_id, period_start=period_start,
            period_end=period_end, generated=generated,
        )
