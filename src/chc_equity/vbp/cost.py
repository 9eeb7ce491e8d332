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


@dataclass(frozen=True, slots=True)
class MonthRow:
    """A payer's month as a viewer sees it (None: hidden)."""

    payer: str
    month: date
    member_months: int | None
    pmpm: Decimal | None
    ed_per_1000: Decimal | None
    admissions_per_1000: Decimal | None


YEAR = "*"  # a payer's whole period: its months, and the strata of every dimension, add up to it


def _per_1000(n: int, mm: int) -> Decimal | None:
    return (Decimal(n) * 1000 / mm).quantize(Decimal("0.1")) if mm else None


def published(
    claims: Iterable[Claim],
    months: Mapping[tuple[str, str], set[date]],
    strata: Mapping[str, Mapping[tuple[str, str], str]],
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> tuple[list[MonthRow], dict[str, list[StratumRow]]]:
    """One payer's months and strata (``strata``: dimension -> (payer, member) -> label; missing ->
    "Unknown") with small counts hidden, planned together.

    Counts here: members per stratum (people), member months, ED visits and admissions. A rate per 1,000
    member months next to its member months gives the visits back (rounded to 0.1, exactly while member
    months are under 10,000), so a rate is hidden with its visits. The months and the strata of every
    dimension split the same year, so member months, ED visits and admissions are each planned by one
    crossed plan (:func:`chc_equity.equity.joint.plan_crossed`: the year is the "network", months its
    "centers", the strata its strata; the year's totals are not published as such): a stratum under
    ``threshold`` members (one-way plan of the members, as before) or a month under ``threshold`` member
    months starts hidden, then complements follow; visits of a month or stratum whose member months are
    hidden are hidden too (as their rate). Every figure of a hidden stratum is hidden; a month whose
    member months are hidden is left out.
    """
    from chc_equity.equity.joint import plan_crossed

    claims = attributed_claims(claims, months)
    month_rows = cost_use(claims, months)
    stats: dict[tuple[str, str], list] = {}  # (dimension, label) -> [people, mm, paid, ed, adm]
    for dim, labels_of in strata.items():
        people: dict[str, set[tuple[str, str]]] = defaultdict(set)
        mm: dict[str, int] = defaultdict(int)
        for key, ms in months.items():
            people[labels_of.get(key, "Unknown")].add(key)
            mm[labels_of.get(key, "Unknown")] += len(ms)
        for label in sorted(people):
            stats[(dim, label)] = [len(people[label]), mm[label], Decimal(0), set(), set()]
        for c in claims:
            row = stats[(dim, labels_of.get((c.payer, c.member_id), "Unknown"))]
            row[2] += c.paid
            if c.setting == "ed":
                row[3].add(c.claim_id)
            elif c.setting == "inpatient":
                row[4].add(c.claim_id)
    small_people: set = set()
    for dim in strata:
        labels = [lab for d, lab in stats if d == dim]
        if labels:
            sup = suppress(one_way_table([stats[(dim, lab)][0] for lab in labels], labels), threshold)
            small_people |= {(YEAR, dim, lab) for i, lab in enumerate(labels) if sup.suppressed[i]}
    counts: dict = {}  # point -> (member months, ED visits, admissions)
    for r in month_rows:
        counts[(r.month.isoformat(), None, None)] = (r.member_months, r.ed_visits, r.admissions)
    counts[(YEAR, None, None)] = tuple(sum(v[i] for v in list(counts.values())) for i in range(3))
    for (dim, label), (_, mm_s, _, ed_s, adm_s) in stats.items():
        counts[(YEAR, dim, label)] = (mm_s, len(ed_s), len(adm_s))

    def plan(i: int, before: set) -> set:
        points = {k: (v[i], v[i]) for k, v in counts.items()}
        return plan_crossed(points, YEAR, threshold, hidden_before=before, network_published=False)

    hidden_mm = plan(0, small_people)
    hidden_ed, hidden_adm = plan(1, hidden_mm), plan(2, hidden_mm)
    shown_months = []
    for r in month_rows:
        k = (r.month.isoformat(), None, None)
        if k in hidden_mm:
            continue
        ed = None if k in hidden_ed else _per_1000(r.ed_visits, r.member_months)
        adm = None if k in hidden_adm else _per_1000(r.admissions, r.member_months)
        shown_months.append(MonthRow(r.payer, r.month, r.member_months, r.pmpm, ed, adm))
    out: dict[str, list[StratumRow]] = {dim: [] for dim in strata}
    for (dim, label), (n_people, n, paid, ed_s, adm_s) in stats.items():
        k = (YEAR, dim, label)
        if k in hidden_mm:
            out[dim].append(StratumRow(label, None, None, None, None, None))
            continue
        pmpm = (paid / n).quantize(Decimal("0.01")) if n else None
        ed = None if k in hidden_ed else _per_1000(len(ed_s), n)
        adm = None if k in hidden_adm else _per_1000(len(adm_s), n)
        out[dim].append(StratumRow(label, n_people, n, pmpm, ed, adm))
    return shown_months, out


def by_stratum(
    claims: Iterable[Claim],
    months: Mapping[tuple[str, str], set[date]],
    strata: Mapping[tuple[str, str], str],
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[StratumRow]:
    """Cost and use per equity stratum of one dimension (``strata``: (payer, member) -> label, e.g. race
    and ethnicity from ``patient_attributes``; missing -> "Unknown"), suppressed by :func:`published`."""
    return published(claims, months, {"stratum": strata}, threshold=threshold)[1]["stratum"]


def total_cost(claims: Iterable[Claim], months: Mapping[tuple[str, str], set[date]], payer: str) -> Fraction:
    """What one payer paid for its attributed members' claims (the estimator's actual cost)."""
    total = sum((c.paid for c in attributed_claims(claims, months) if c.payer == payer), Decimal(0))
    return Fraction(total)
