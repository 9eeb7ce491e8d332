"""Linking a payer's members to the center's patients (rosters, gap files, claims).

The rule, in order (docs/vbp.md, "Linking members to patients"):

1. **identifier**: the member id, or the MRN the payer sent, equals an identifier of exactly one patient
   (any ``Patient.identifier`` value, or the ``subscriberId`` / an identifier of one of the patient's
   ``Coverage`` resources);
2. **name + birth date**: the normalized family name, first given name and birth date equal those of
   exactly one patient (normalized: accents removed, case folded, everything but letters dropped);
3. otherwise unlinked (never guessed: two candidates are as unlinked as none).

The hospital feeds (ADT) have their own, fuzzier matcher with a review queue (``vbp.matching``); a payer
file is an eligibility file with member ids on every row, so this exact rule is enough and never merges
two people.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import duckdb


def normalize(text: str | None) -> str:
    t = unicodedata.normalize("NFKD", text or "")
    t = "".join(c for c in t if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^a-z]", "", t)


def first_given(given: str | None) -> str:
    parts = (given or "").split()
    return normalize(parts[0]) if parts else ""


@dataclass(frozen=True, slots=True)
class PatientKey:
    patient_id: str
    identifiers: frozenset[str]
    family: str
    given: str
    birth_date: date | None


class Linker:
    """Indexes of a center's patients by identifier and by (family, given, birth date)."""

    def __init__(self, patients: Iterable[PatientKey]) -> None:
        self.by_id: dict[str, set[str]] = defaultdict(set)
        self.by_name: dict[tuple[str, str, date], set[str]] = defaultdict(set)
        for p in patients:
            for i in p.identifiers:
                if i:
                    self.by_id[i.strip()].add(p.patient_id)
            if p.birth_date and p.family:
                self.by_name[(normalize(p.family), first_given(p.given), p.birth_date)].add(p.patient_id)

    def link(
        self,
        ids: Iterable[str],
        family: str | None,
        given: str | None,
        birth_date: date | None,
    ) -> tuple[str | None, str]:
        """(patient id or None, rule: 'identifier', 'name+birth date', 'ambiguous' or 'none')."""
        found: set[str] = set()
        for i in ids:
            if i and i.strip():
                found |= self.by_id.get(i.strip(), set())
        if len(found) == 1:
            return next(iter(found)), "identifier"
        if len(found) > 1:
            return None, "ambiguous"
        if birth_date and family:
            cands = self.by_name.get((normalize(family), first_given(given), birth_date), set())
            if len(cands) == 1:
                return next(iter(cands)), "name+birth date"
            if cands:
                return None, "ambiguous"
        return None, "none"


def patient_keys(con: duckdb.DuckDBPyConnection, center: str) -> list[PatientKey]:
    """Every Patient of ``center`` from the raw resources: identifiers (its own and its Coverages'),
    first name and birth date (the flat layer deliberately carries no names)."""
    pats = con.execute(
        "SELECT id, resource FROM resources WHERE center = ? AND type = 'Patient'", [center]
    ).fetchall()
    cover: dict[str, set[str]] = defaultdict(set)
    for (raw,) in con.execute(
        "SELECT resource FROM resources WHERE center = ? AND type = 'Coverage'", [center]
    ).fetchall():
        r = json.loads(raw) if isinstance(raw, str) else raw
        ref = ((r.get("beneficiary") or {}).get("reference") or "").split("/")[-1]
        vals = {str(i["value"]) for i in r.get("identifier") or [] if i.get("value")}
        if r.get("subscriberId"):
            vals.add(str(r["subscriberId"]))
        if ref:
            cover[ref] |= vals
    out = []
    for pid, raw in pats:
        r = json.loads(raw) if isinstance(raw, str) else raw
        ids = {str(i["value"]) for i in r.get("identifier") or [] if i.get("value")} | cover.get(pid, set())
        name = (r.get("name") or [{}])[0]
        try:
            birth = date.fromisoformat(r.get("birthDate", "")[:10]) if r.get("birthDate") else None
        except ValueError:
            birth = None
        out.append(
            PatientKey(pid, frozenset(ids), name.get("family", ""), " ".join(name.get("given") or []), birth)
        )
    return out
