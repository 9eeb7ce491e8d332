"""Cost and use of attributed members: PMPM, ED visits and admissions per 1,000 member months, by payer
and month, and by equity stratum (small cells suppressed).

Claims come from a claims CSV (template in docs/vbp.md: ``claim_id, payer, member_id, service_date,
setting, paid_amount``; setting ``ed``, ``inpatient``, ``outpatient``, ``pharmacy`` or ``other``) or from
the warehouse's FHIR ``Claim`` resources (views ``claim`` and ``claim_item``; Synthea writes them): the
amount is ``Claim.total`` (Synthea's charge: a cost proxy, not what the payer paid), the setting comes from
the class of the Encounter the claim's item points at (``EMER`` -> ed, ``IMP``/``ACUTE`` -> inpatient).

A claim counts for a payer and month when its member is attributed to that payer on the month's first day
(the member-month rule of :mod:`chc_equity.vbp.roster`), so cost and member months cover the same people.
An ED visit or an admission is one claim with that setting (one per claim id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from chc_equity.equity.suppression import DEFAULT_THRESHOLD, one_way_table, suppress
from chc_equity.vbp.roster import Rejected, template_rows

SETTINGS = ("ed", "inpatient", "outpatient", "pharmacy", "other")
REQUIRED = ("claim_id", "payer", "member_id", "service_date", "setting", "paid_amount")


@dataclass(frozen=True, slots=True)
class Claim:
    claim_id: str
    payer: str
    member_id: str
    service_date: date
    setting: str
    paid: Decimal


def read_claims_csv(text: str, source: str = "claims.csv") -> tuple[list[Claim], list[Rejected]]:
    out, rejects = [], []
    for line, row in template_rows(text, source, REQUIRED, REQUIRED, rejects):
        setting = row["setting"].lower()
        if setting not in SETTINGS:
            rejects.append(Rejected(source, line, "setting", f"expected one of {', '.join(SETTINGS)}"))
            continue
        try:
            day = date.fromisoformat(row["service_date"][:10])
        except ValueError:
            rejects.append(Rejected(source, line, "service_date", f"not a date: {row['service_date']!r}"))
            continue
        try:
            paid = Decimal(row["paid_amount"].replace("$", "").replace(",", ""))
        except InvalidOperation:
            rejects.append(Rejected(source, line, "paid_amount", f"not a number: {row['paid_amount']!r}"))
            continue
        out.append(Claim(row["claim_id"], row["payer"], row["member_id"], day, setting, paid))
    return out, rejects


@dataclass(frozen=True, slots=True)
class CostRow:
    payer: str
    month: date
    member_months: int
    paid: Decimal
    ed_visits: int
    admissions: int

    @property
    def pmpm(self) -> Decimal | None:
        return (self.paid / self.member_months).quantize(Decimal("0.01")) if self.member_months else None

    def per_1000(self, n: int) -> Decimal | None:
        if not self.member_months:
            return None
        return (Decimal(n) * 1000 / self.member_months).quantize(Decimal("0.1"))


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def attributed_claims(claims: Iterable[Claim], months: Mapping[tuple[str, str], set[date]]) -> list[Claim]:
    """Claims whose member is attributed to the claim's payer in the claim's month
    (``months``: (payer, member id) -> month first days)."""
    return [c for c in claims if _month(c.service_date) in months.get((c.payer, c.member_id), ())]


def cost_use(claims: Iterable[Claim], months: Mapping[tuple[str, str], set[date]]) -> list[CostRow]:
    """Per payer and month: member months, paid, ED visits, admissions (attributed claims only)."""
    mm: dict[tuple[str, date], int] = defaultdict(int)
    for (payer, _), ms in months.items():
        for m in ms:
            mm[(payer, m)] += 1
    paid: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    ed: dict[tuple[str, date], set[str]] = defaultdict(set)
    adm: dict[tuple[str, date], set[str]] = defaultdict(set)
    for c in attributed_claims(claims, months):
        k = (c.payer, _month(c.service_date))
        paid[k] += c.paid
        if c.setting == "ed":
            ed[k].add(c.claim_id)
        elif c.setting == "inpatient":
            adm[k].add(c.claim_id)
    return [
        CostRow(p, m, n, paid.get((p, m), Decimal(0)), len(ed.get((p, m), ())), len(adm.get((p, m), ())))
        for (p, m), n in sorted(mm.items())
    ]


@dataclass(frozen=True, slots=True)
class StratumRow:
    stratum: str
    members: int | None  # people (None: suppressed)
    member_months: int | None
    pmpm: Decimal | None
    ed_per_1000: Decimal | None
    admissions_per_1000: Decimal | None


def by_stratum(
    claims: Iterable[Claim],
    months: Mapping[tuple[str, str], set[date]],
    strata: Mapping[tuple[str, str], str],
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[StratumRow]:
    """Cost and use per equity stratum (``strata``: (payer, member) -> label, e.g. race and ethnicity
    from ``patient_attributes``; missing -> "Unknown"). The number of members per stratum is a count of
    people: a stratum under ``threshold`` is suppressed with complementary suppression (equity layer),
    and so is every figure of a suppressed stratum."""
    people: dict[str, set[tuple[str, str]]] = defaultdict(set)
    mm: dict[str, int] = defaultdict(int)
    for key, ms in months.items():
        s = strata.get(key, "Unknown")
        people[s].add(key)
        mm[s] += len(ms)
    paid: dict[str, Decimal] = defaultdict(Decimal)
    ed: dict[str, set[str]] = defaultdict(set)
    adm: dict[str, set[str]] = defaultdict(set)
    for c in attributed_claims(claims, months):
        s = strata.get((c.payer, c.member_id), "Unknown")
        paid[s] += c.paid
        (ed if c.setting == "ed" else adm if c.setting == "inpatient" else defaultdict(set))[s].add(
            c.claim_id
        )
    labels = sorted(people)
    if not labels:
        return []
    sup = suppress(one_way_table([len(people[s]) for s in labels], labels), threshold)
    out = []
    for i, s in enumerate(labels):
        if sup.suppressed[i]:
            out.append(StratumRow(s, None, None, None, None, None))
            continue
        n = mm[s]
        out.append(
            StratumRow(
                s,
                len(people[s]),
                n,
                (paid[s] / n).quantize(Decimal("0.01")) if n else None,
                (Decimal(len(ed[s])) * 1000 / n).quantize(Decimal("0.1")) if n else None,
                (Decimal(len(adm[s])) * 1000 / n).quantize(Decimal("0.1")) if n else None,
            )
        )
    return out


def total_cost(claims: Iterable[Claim], months: Mapping[tuple[str, str], set[date]], payer: str) -> Fraction:
    """What one payer paid for its attributed members' claims (the estimator's actual cost)."""
    total = sum((c.paid for c in attributed_claims(claims, months) if c.payer == payer), Decimal(0))
    return Fraction(total)
