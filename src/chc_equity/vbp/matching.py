"""Match a hospital's ADT patient to the center's patients: identifiers first, then a documented
demographic rule, and a review queue for what the rule cannot decide.

Why this rule (docs/vbp.md, "Hospital partner data"): a wrong automatic match sends a nurse to call the
wrong person about a hospital stay (a privacy incident), a missed match only loses a follow-up, so the
rule is strict for automatic links and sends doubtful cases to staff.

1. **Identifier.** A PID-3 repetition (value + assigning authority) equal to one of the patient's
   ``Patient.identifier`` (value + system). The authority is compared with the system directly, or
   through ``authorities`` (HL7 namespace -> FHIR system, e.g. ``NORTHCHC -> urn:...:mrn``). A unique hit is
   a match ("identifier"); the demographics are not consulted.
2. **Demographics.** Names are normalised (:func:`normalise`: accents removed, upper case, letters only,
   so ``O'Brien-Smith`` = ``OBRIENSMITH``), compared by Jaro-Winkler similarity (:func:`jaro_winkler`,
   prefix scale 0.1). Candidates are blocked on the birth date, or on a birth date one edit away (a typed
   digit, or day and month swapped). For each candidate:

   * **match** when the birth date is equal, family >= 0.92, given >= 0.90, the sex agrees (or one is
     missing) and the postal code agrees (or one is missing);
   * **review** when family >= 0.85 and given >= 0.75 (or the names are swapped) with an equal birth
     date, or when every name is near-equal (>= 0.95) but the birth date is one edit away;
   * otherwise no match.

   One "match" candidate and no other match or review candidate: automatic match ("demographics"); an
   exact match of both normalised names (and the birth date) also wins over "similar name" candidates
   whose given name is clearly different (similarity < 0.85: twins Grace and Joy), and over candidates
   whose birth date is one edit away and whose names are not exactly equal; never over near-equal given
   names (Aiden and Ayden, 0.89: a typo away from each other) nor over a namesake one digit away.
   Two or more (twins with near-equal given names, duplicate charts) or only review candidates: the
   event goes to the review queue with every candidate, and staff confirm or reject.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

FAMILY_MATCH, GIVEN_MATCH = 0.92, 0.90
FAMILY_REVIEW, GIVEN_REVIEW = 0.85, 0.75
NEAR_EQUAL = 0.95
DISTINCT_GIVEN = 0.85
OUTRANKED = ("similar name, same birth date", "same name, birth date one edit away")


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What the matcher knows of one of the center's patients."""

    patient_id: str
    identifiers: frozenset[tuple[str, str]]  # (system, value)
    family: str
    given: str
    birth_date: date | None
    sex: str  # F M O U or ""
    postal_code: str


@dataclass(frozen=True, slots=True)
class Candidate:
    patient_id: str
    score: float  # mean of family and given similarity (1.0 for an identifier)
    reason: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    status: str  # "matched" | "review" | "unmatched"
    method: str  # "identifier" | "demographics" | ""
    patient_id: str | None
    candidates: tuple[Candidate, ...] = ()


def normalise(name: str) -> str:
    """Accents removed, upper case, letters and digits only (hyphens, apostrophes, spaces dropped)."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).upper()


def jaro(a: str, b: str) -> float:
    """Jaro similarity (matches within half the longer length, transpositions halved)."""
    if a == b:
        return 1.0 if a else 0.0
    if not a or not b:
        return 0.0
    window = max(max(len(a), len(b)) // 2 - 1, 0)
    used = [False] * len(b)
    matched_a = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not used[j] and b[j] == ch:
                used[j] = True
                matched_a.append(ch)
                break
    m = len(matched_a)
    if m == 0:
        return 0.0
    matched_b = [b[j] for j in range(len(b)) if used[j]]
    transpositions = sum(x != y for x, y in zip(matched_a, matched_b, strict=True)) / 2
    return (m / len(a) + m / len(b) + (m - transpositions) / m) / 3


def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1) -> float:
    """Jaro-Winkler similarity: Jaro boosted by the common prefix (at most 4 characters)."""
    j = jaro(a, b)
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return j + prefix * prefix_scale * (1 - j)


def _dates_one_edit(d: date) -> set[date]:
    """Every valid date one typing slip from ``d``: one digit of YYYYMMDD changed, or day and month
    swapped (at most 73 dates, looked up in the index instead of scanning a year of patients)."""
    text = d.strftime("%Y%m%d")
    out = set()
    for i, ch in enumerate(text):
        for digit in "0123456789":
            if digit != ch:
                out.add(text[:i] + digit + text[i + 1 :])
    if d.day <= 12 and d.day != d.month:
        out.add(f"{d.year:04d}{d.day:02d}{d.month:02d}")
    dates = set()
    for t in out:
        try:
            dates.add(date(int(t[:4]), int(t[4:6]), int(t[6:])))
        except ValueError:
            continue
    return dates


def _agree(x: str, y: str) -> bool:
    return not x or not y or x == y


class Matcher:
    """An index of one center's patients by identifier and by birth date, built once per import."""

    def __init__(self, patients: Iterable[PatientRecord], authorities: Mapping[str, str] | None = None):
        self.authorities = dict(authorities or {})
        self.by_identifier: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.by_birth: dict[date, list[PatientRecord]] = defaultdict(list)
        self.patients: dict[str, PatientRecord] = {}
        for p in patients:
            self.patients[p.patient_id] = p
            for system, value in p.identifiers:
                self.by_identifier[(system, value)].add(p.patient_id)
            if p.birth_date:
                self.by_birth[p.birth_date].append(p)

    def _by_identifiers(self, identifiers: Iterable[tuple[str, str]]) -> set[str]:
        hits: set[str] = set()
        for authority, value in identifiers:
            system = self.authorities.get(authority, authority)
            hits |= self.by_identifier.get((system, value), set())
        return hits

    def match(self, identifiers: Iterable[tuple[str, str]], family: str, given: str,
              birth_date: date | None, sex: str, postal_code: str) -> MatchResult:  # fmt: skip
        """The rule of the module docstring, for one incoming patient."""
        hits = self._by_identifiers(identifiers)
        if len(hits) == 1:
            (pid,) = hits
            return MatchResult("matched", "identifier", pid, (Candidate(pid, 1.0, "identifier"),))
        if len(hits) > 1:  # one identifier on two charts: duplicate records, a person must decide
            cands = tuple(Candidate(pid, 1.0, "identifier on several charts") for pid in sorted(hits))
            return MatchResult("review", "identifier", None, cands)
        if birth_date is None:
            return MatchResult("unmatched", "", None)
        fam, giv = normalise(family), normalise(given)
        matches, reviews, exact, close = [], [], set(), set()
        for day in (birth_date, *sorted(_dates_one_edit(birth_date))):
            for p in self.by_birth.get(day, ()):
                pf, pg = normalise(p.family), normalise(p.given)
                f_sim, g_sim = jaro_winkler(fam, pf), jaro_winkler(giv, pg)
                score = round((f_sim + g_sim) / 2, 4)
                swapped = jaro_winkler(fam, pg) >= GIVEN_MATCH and jaro_winkler(giv, pf) >= FAMILY_MATCH
                same_day = p.birth_date == birth_date
                if (same_day and f_sim >= FAMILY_MATCH and g_sim >= GIVEN_MATCH and _agree(sex, p.sex)
                        and _agree(postal_code[:5], p.postal_code[:5])):  # fmt: skip
                    matches.append(Candidate(p.patient_id, score, "name and birth date"))
                    if (fam, giv) == (pf, pg):
                        exact.add(p.patient_id)
                elif same_day and ((f_sim >= FAMILY_REVIEW and g_sim >= GIVEN_REVIEW) or swapped):
                    swap = swapped and f_sim < FAMILY_REVIEW
                    why = "names swapped" if swap else "similar name, same birth date"
                    reviews.append(Candidate(p.patient_id, score, why))
                    if swap or g_sim >= DISTINCT_GIVEN:
                        close.add(p.patient_id)
                elif not same_day and f_sim >= NEAR_EQUAL and g_sim >= NEAR_EQUAL:
                    reviews.append(Candidate(p.patient_id, score, "same name, birth date one edit away"))
                    if (fam, giv) == (pf, pg):
                        close.add(p.patient_id)
        candidates = tuple(sorted(matches + reviews, key=lambda c: (-c.score, c.patient_id)))
        # A twin or sibling whose given name is clearly different does not block an exact match.
        if len(matches) == 1 and (not reviews or (matches[0].patient_id in exact and all(
                c.reason in OUTRANKED and c.patient_id not in close
                for c in reviews))):  # fmt: skip
            return MatchResult("matched", "demographics", matches[0].patient_id, candidates)
        if candidates:
            return MatchResult("review", "demographics", None, candidates)
        return MatchResult("unmatched", "", None)
