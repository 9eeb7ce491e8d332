"""Payer gap lists: a payer's open gaps, linked to our patients and merged with our own care gaps.

Inputs (docs/vbp.md, "Payer gap files"):

- the **CSV template**: ``payer, member_id, last_name, first_name, birth_date, measure, status`` (open or
  closed), optional ``detail``;
- a **DEQM** ``$care-gaps`` result: a ``Parameters`` whose ``return`` parameters are document Bundles (or
  one such Bundle): the Patient, the MeasureReports and one ``DetectedIssue`` per gap, whose
  ``modifierExtension`` gapStatus is ``open-gap``, ``closed-gap`` (``prospective-gap`` counts as open;
  ``not-applicable`` is skipped) and whose evidence points at the MeasureReport naming the measure.

A payer's measure code (HEDIS-style abbreviation, eCQM FHIR library name or CMS id) becomes our eCQM id
through ``data/measure_map.csv``; an unknown code is kept and shown as "not one of our measures".

The merge (:func:`merge`) puts every payer gap beside our own status of that patient and measure, from the
measure run (``measure_results``; "open" is the care-gap rule of the CHW worklist, :func:`open_gaps_sql`):

========================  =======================  =====================================================
payer                     center                   agreement
========================  =======================  =====================================================
open                      open                     ``both-open``: on the worklist, payer agrees
open                      closed (met)             ``submit``: the payer misses a closure the EHR has:
                                                   the supplemental-data submission list
open                      not in our denominator   ``payer-only``: review (exclusion, attribution)
closed                    open                     ``payer-closed``: the payer has a closure we lack
                                                   (claim from elsewhere): update the chart
(none)                    open                     ``center-only``: our gap, payer silent
========================  =======================  =====================================================
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from chc_equity.vbp.roster import Rejected, RosterError, template_rows

# the gapStatus modifier extension: Da Vinci DEQM (US, STU3-STU5) and the international DEQM (uv)
DEQM = (
    "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-gapStatus",
    "http://hl7.org/fhir/uv/deqm/StructureDefinition/deqm-gapStatus",
)
OPEN, CLOSED = "open", "closed"
GAP_STATUS = {"open-gap": OPEN, "prospective-gap": OPEN, "closed-gap": CLOSED}
REQUIRED = ("payer", "member_id", "measure", "status")


@dataclass(frozen=True, slots=True)
class PayerGap:
    payer: str
    member_id: str
    family: str
    given: str
    birth_date: date | None
    measure: str  # the payer's code
    status: str  # open / closed
    detail: str = ""
    identifiers: tuple[str, ...] = ()

    @property
    def cms_id(self) -> str | None:
        return measure_map().get(self.measure.strip().upper()) or measure_map().get(self.measure.strip())


@cache
def measure_map() -> dict[str, str]:
    text = resources.files("chc_equity.vbp").joinpath("data/measure_map.csv").read_text()
    out: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        out[row["code"]] = row["cms_id"]
        out[row["code"].upper()] = row["cms_id"]
    return out


def read_gaps_csv(text: str, source: str = "gaps.csv") -> tuple[list[PayerGap], list[Rejected]]:
    gaps, rejects = [], []
    for line, row in template_rows(text, source, REQUIRED, REQUIRED, rejects):
        status = row["status"].lower().replace("-gap", "")
        if status not in (OPEN, CLOSED):
            rejects.append(
                Rejected(source, line, "status", f"expected open or closed, got {row['status']!r}")
            )
            continue
        try:
            birth = date.fromisoformat(row["birth_date"]) if row.get("birth_date") else None
        except ValueError:
            rejects.append(
                Rejected(source, line, "birth_date", f"not a date (YYYY-MM-DD): {row['birth_date']!r}")
            )
            continue
        gaps.append(
            PayerGap(
                row["payer"],
                row["member_id"],
                row.get("last_name", ""),
                row.get("first_name", ""),
                birth,
                row["measure"],
                status,
                row.get("detail", ""),
            )
        )
    return gaps, rejects


def _measure_code(url: str) -> str:
    """``http://.../Measure/BreastCancerScreeningFHIR|1.0`` -> ``BreastCancerScreeningFHIR``."""
    return url.split("|")[0].rstrip("/").split("/")[-1]


def read_care_gaps(resource: dict[str, Any], payer: str, source: str = "care-gaps.json"):
    """Gaps of a DEQM ``$care-gaps`` result (Parameters of document Bundles, or one Bundle)."""
    kind = resource.get("resourceType")
    if kind == "Parameters":
        bundles = [p.get("resource") for p in resource.get("parameter") or [] if p.get("resource")]
    elif kind == "Bundle":
        bundles = [resource]
    else:
        raise RosterError(f"{source}: expected the Parameters or Bundle of $care-gaps, got {kind!r}")
    gaps: list[PayerGap] = []
    rejects: list[Rejected] = []
    n = 0
    for b in bundles:
        entries = [e.get("resource") or {} for e in b.get("entry") or []]
        index = {f"{r.get('resourceType')}/{r.get('id')}": r for r in entries}
        patients = [r for r in entries if r.get("resourceType") == "Patient"]
        for issue in (r for r in entries if r.get("resourceType") == "DetectedIssue"):
            n += 1
            ext = next((e for e in issue.get("modifierExtension") or [] if e.get("url") in DEQM), {})
            codes = [c.get("code") for c in (ext.get("valueCodeableConcept") or {}).get("coding") or []]
            status = next((GAP_STATUS[c] for c in codes if c in GAP_STATUS), None)
            if status is None:
                if "not-applicable" not in codes:
                    rejects.append(Rejected(source, n, "DetectedIssue.modifierExtension", "no gapStatus"))
                continue
            ref = (issue.get("patient") or {}).get("reference", "")
            patient = index.get(ref) or (patients[0] if len(patients) == 1 else None)
            report = next(
                (
                    index.get(e.get("reference", ""))
                    for ev in issue.get("evidence") or []
                    for e in ev.get("detail") or []
                    if index.get(e.get("reference", ""))
                ),
                None,
            )
            if not patient or not report or not report.get("measure"):
                rejects.append(
                    Rejected(source, n, "DetectedIssue", "no Patient or MeasureReport with a measure")
                )
                continue
            idents = tuple(str(i["value"]) for i in patient.get("identifier") or [] if i.get("value"))
            member = next(
                (
                    str(i["value"])
                    for i in patient.get("identifier") or []
                    if "MB" in [c.get("code") for c in (i.get("type") or {}).get("coding") or []]
                ),
                idents[0] if idents else "",
            )
            name = (patient.get("name") or [{}])[0]
            try:
                birth = date.fromisoformat(patient["birthDate"][:10]) if patient.get("birthDate") else None
            except ValueError:
                birth = None
            gaps.append(
                PayerGap(
                    payer,
                    member,
                    name.get("family", ""),
                    " ".join(name.get("given") or []),
                    birth,
                    _measure_code(report["measure"]),
                    status,
                    issue.get("id", ""),
                    idents,
                )
            )
    return gaps, rejects


# ----------------------------------------------------------------------------------- merge
@dataclass(frozen=True, slots=True)
class Disagreement:
    patient_id: str | None
    member_id: str
    cms_id: str | None
    payer_measure: str
    payer_status: str | None  # open / closed / None (not on the payer's file)
    center_status: str | None  # open / closed / None (not in our denominator)
    agreement: str


def agreement(payer: str | None, center: str | None) -> str:
    if payer == OPEN:
        return {OPEN: "both-open", CLOSED: "submit"}.get(center or "", "payer-only")
    if payer == CLOSED:
        return "payer-closed" if center == OPEN else "both-closed"
    return "center-only" if center == OPEN else "none"


def merge(
    gaps: Iterable[tuple[PayerGap, str | None]],
    center: Mapping[tuple[str, str], str],
    *,
    attributed: Iterable[str] = (),
) -> list[Disagreement]:
    """Every payer gap (with the patient it linked to) beside our status of that patient and measure
    (``center``: (patient, CMS id) -> open/closed for patients in our denominator), plus our open gaps of
    the ``attributed`` patients that the payer does not list (center-only). Both-closed pairs are left out."""
    out: list[Disagreement] = []
    listed: set[tuple[str, str]] = set()
    for g, pid in gaps:
        cms = g.cms_id
        ours = center.get((pid, cms)) if pid and cms else None
        if pid and cms:
            listed.add((pid, cms))
        a = agreement(g.status, ours)
        if a != "both-closed":
            out.append(Disagreement(pid, g.member_id, cms, g.measure, g.status, ours, a))
    members = set(attributed)
    for (pid, cms), status in sorted(center.items()):
        if status == OPEN and pid in members and (pid, cms) not in listed:
            out.append(Disagreement(pid, "", cms, "", None, OPEN, "center-only"))
    order = {"submit": 0, "payer-closed": 1, "both-open": 2, "payer-only": 3, "center-only": 4}
    return sorted(
        out, key=lambda d: (order.get(d.agreement, 9), d.patient_id or "", d.cms_id or "", d.member_id)
    )
