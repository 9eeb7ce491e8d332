"""Proportion of days covered (PDC) for statins, RAS antagonists and diabetes medications, PQA method.

Source: Pharmacy Quality Alliance, *PQA Adherence Measures* technical specifications (PDC-STA, PDC-RASA,
PDC-DR), as used in the CMS Part D Star Ratings (measures D10-D12, "Medication Adherence", CMS Part C & D
Star Ratings Technical Notes). The rules implemented here, per patient and drug class
(docs/vbp.md, "PDC"):

1. Fills: dispenses/claims of a target medication of the class with a date of service in the measurement
   period; the ingredient list is ``data/pdc_classes.csv`` (drug names are matched on ingredient).
2. Denominator: at least two fills on **unique dates of service**, the first (the index prescription start
   date, IPSD) at least 91 days before the end of the period; excluded: any fill of an exclusion drug
   in the period (insulin for PDC-DR, sacubitril/valsartan for PDC-RASA).
3. Treatment period: IPSD to the end of the period (or the day of death, if earlier).
4. Days covered: each fill covers ``days_supply`` days from its date; when fills of the **same** drug
   overlap, the later fill's start is shifted to the day after the earlier one's supply ends; fills of
   different drugs of the class are not shifted (a day covered by either is covered once); supply past the
   end of the treatment period is dropped.
5. PDC = days covered / days in the treatment period; adherent when PDC >= 80 %.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources

THRESHOLD = Fraction(80, 100)
MIN_FILLS = 2
MIN_TREATMENT_DAYS = 91
CLASSES = ("statins", "ras", "diabetes")
CLASS_LABELS = {
    "statins": "Statins (PDC-STA)",
    "ras": "RAS antagonists (PDC-RASA)",
    "diabetes": "Diabetes (PDC-DR)",
}


@dataclass(frozen=True, slots=True)
class Fill:
    """One dispense / pharmacy claim."""

    patient_id: str
    day: date
    days_supply: int
    drug: str  # drug name or description (ingredients are matched in it)


@dataclass(frozen=True, slots=True)
class PdcResult:
    patient_id: str
    drug_class: str
    eligible: bool
    reason: str  # why not eligible ('' when eligible)
    index_date: date | None = None
    treatment_days: int = 0
    covered_days: int = 0
    fills: int = 0

    @property
    def pdc(self) -> Fraction | None:
        return (
            Fraction(self.covered_days, self.treatment_days)
            if self.eligible and self.treatment_days
            else None
        )

    @property
    def adherent(self) -> bool | None:
        p = self.pdc
        return None if p is None else p >= THRESHOLD


@cache
def ingredients() -> dict[str, list[tuple[str, str]]]:
    """class -> [(ingredient, role)] from ``data/pdc_classes.csv`` (role: target or exclude)."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    text = resources.files("chc_equity.vbp").joinpath("data/pdc_classes.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        out[row["class"]].append((row["ingredient"], row["role"]))
    return dict(out)


def _words(drug: str) -> set[str]:
    return set(re.findall(r"[a-z]+", drug.lower()))


def classify(drug: str, drug_class: str) -> tuple[str, str] | None:
    """(role, drug key) of ``drug`` in ``drug_class``: the key is its class ingredients joined (a
    combination product is its own drug); None when it holds none of them."""
    words = _words(drug)
    found = [(i, r) for i, r in ingredients()[drug_class] if i in words]
    if not found:
        return None
    role = "exclude" if any(r == "exclude" for _, r in found) else "target"
    return role, "/".join(sorted(i for i, _ in found))


def covered_days(fills: Iterable[tuple[date, int, str]], first: date, last: date) -> int:
    """Days of [first, last] covered, shifting overlapping fills of the same drug forward (rule 4)."""
    days: set[int] = set()
    by_drug: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for day, supply, key in fills:
        by_drug[key].append((day, supply))
    for rows in by_drug.values():
        next_free = 0
        for day, supply in sorted(rows):
            begin = max(day.toordinal(), next_free)
            end = begin + max(int(supply), 0)  # exclusive
            days.update(range(begin, end))
            next_free = max(next_free, end)
    return sum(1 for d in days if first.toordinal() <= d <= last.toordinal())


def pdc(
    patient_id: str,
    fills: Iterable[Fill],
    drug_class: str,
    start: date,
    end: date,
    *,
    death: date | None = None,
) -> PdcResult:
    """The PQA PDC of one patient and class over the measurement period [start, end]."""
    target: list[tuple[date, int, str]] = []
    for f in fills:
        if not start <= f.day <= end:
            continue
        c = classify(f.drug, drug_class)
        if c is None:
            continue
        if c[0] == "exclude":
            return PdcResult(patient_id, drug_class, False, f"exclusion drug filled ({f.drug})")
        target.append((f.day, f.days_supply, c[1]))
    dates = sorted({d for d, _, _ in target})
    if len(dates) < MIN_FILLS:
        return PdcResult(
            patient_id, drug_class, False, f"fewer than {MIN_FILLS} fills on unique dates", fills=len(target)
        )
    index = dates[0]
    if (end - index).days + 1 < MIN_TREATMENT_DAYS:
        return PdcResult(
            patient_id,
            drug_class,
            False,
            f"first fill less than {MIN_TREATMENT_DAYS} days before the period end",
            index,
            fills=len(target),
        )
    last = min(end, death) if death else end
    if last < index:
        return PdcResult(patient_id, drug_class, False, "died before the first fill", index)
    total = (last - index).days + 1
    return PdcResult(
        patient_id, drug_class, True, "", index, total, covered_days(target, index, last), len(target)
    )


def pdc_all(
    fills: Iterable[Fill],
    start: date,
    end: date,
    *,
    classes: Iterable[str] = CLASSES,
    deaths: Mapping[str, date] | None = None,
) -> list[PdcResult]:
    """Every patient with a fill of a class, for every class (ineligible ones too, with the reason)."""
    deaths = deaths or {}
    by_patient: dict[str, list[Fill]] = defaultdict(list)
    for f in fills:
        by_patient[f.patient_id].append(f)
    out = []
    for cls in classes:
        for pid, rows in sorted(by_patient.items()):
            if any(classify(f.drug, cls) for f in rows if start <= f.day <= end):
                out.append(pdc(pid, rows, cls, start, end, death=deaths.get(pid)))
    return out


def below_threshold(results: Iterable[PdcResult]) -> list[PdcResult]:
    """Eligible patients under 80 %, lowest PDC first (the pharmacist / MA outreach list)."""
    low = [r for r in results if r.eligible and r.adherent is False]
    return sorted(low, key=lambda r: (r.pdc, r.drug_class, r.patient_id))


def summary(results: Iterable[PdcResult]) -> dict[str, tuple[int, int]]:
    """class -> (eligible patients, adherent patients)."""
    out: dict[str, list[int]] = {c: [0, 0] for c in CLASSES}
    for r in results:
        if r.eligible:
            out.setdefault(r.drug_class, [0, 0])
            out[r.drug_class][0] += 1
            out[r.drug_class][1] += bool(r.adherent)
    return {k: (v[0], v[1]) for k, v in out.items()}


FILL_COLUMNS = ("payer", "member_id", "fill_date", "days_supply", "drug")


def read_fills_csv(text: str, source: str = "pharmacy.csv"):
    """Pharmacy claims CSV (docs/vbp.md): ``payer, member_id, fill_date, days_supply, drug`` (optional
    ``claim_id``, ``ndc``). Returns ([(Fill without patient, member id)], [Rejected])."""
    from chc_equity.vbp.roster import Rejected, template_rows

    out: list = []
    rejects: list[Rejected] = []
    for line, row in template_rows(text, source, FILL_COLUMNS, FILL_COLUMNS, rejects):
        try:
            day = date.fromisoformat(row["fill_date"][:10])
        except ValueError:
            rejects.append(Rejected(source, line, "fill_date", f"not a date: {row['fill_date']!r}"))
            continue
        if not row["days_supply"].isdigit() or int(row["days_supply"]) == 0:
            rejects.append(
                Rejected(source, line, "days_supply", f"not a positive whole number: {row['days_supply']!r}")
            )
            continue
        out.append((Fill("", day, int(row["days_supply"]), row["drug"]), row["member_id"]))
    return out, rejects
