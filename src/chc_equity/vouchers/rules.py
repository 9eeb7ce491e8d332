"""The voucher program's rules as pure functions: who is eligible, and what a claim line is paid.

Nothing here reads a database or a file, so every rule can be tested line by line with hand-computed
amounts (tests/test_vouchers_rules.py). Money is integer cents throughout: a sum of paid lines is exact
and the budget reconciles to the cent.

Adjudication checks a line in a fixed order and the first rule it breaks is its denial reason (one
reason per line, so a provider knows what to fix). Limits are applied last and may *reduce* a line
(pay the units or the amount still available, reason recorded) rather than deny it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path

FILING_LIMIT_DAYS = 90  # a claim must reach the program within 90 days of the service
REVERIFY_DAYS = 365  # eligibility is verified again every year
LOOKBACK_DAYS = 730  # "principal employment in agriculture in the last 24 months"
CATEGORIES = ("migratory", "seasonal")
INSURANCE_ELIGIBLE = ("uninsured", "underinsured")


class Reason(StrEnum):
    """Why a line was denied or reduced (the codes a provider sees on the remittance)."""

    PROVIDER_NOT_PARTICIPATING = "PROVIDER_NOT_PARTICIPATING"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    LATE_FILING = "LATE_FILING"
    VOUCHER_NOT_FOUND = "VOUCHER_NOT_FOUND"
    VOUCHER_VOIDED = "VOUCHER_VOIDED"
    VOUCHER_NOT_YET_VALID = "VOUCHER_NOT_YET_VALID"
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    WRONG_PROVIDER = "WRONG_PROVIDER"
    SERVICE_NOT_AUTHORIZED = "SERVICE_NOT_AUTHORIZED"
    NO_FEE_SCHEDULE = "NO_FEE_SCHEDULE"
    DUPLICATE = "DUPLICATE"
    FEE_ABOVE_SCHEDULE = "FEE_ABOVE_SCHEDULE"
    VOUCHER_UNIT_LIMIT = "VOUCHER_UNIT_LIMIT"
    YEAR_UNIT_LIMIT = "YEAR_UNIT_LIMIT"
    VOUCHER_UNITS_EXHAUSTED = "VOUCHER_UNITS_EXHAUSTED"
    VOUCHER_AMOUNT_EXHAUSTED = "VOUCHER_AMOUNT_EXHAUSTED"


REASON_TEXT: dict[Reason, str] = {
    Reason.PROVIDER_NOT_PARTICIPATING: "Provider unknown or without an agreement on the service date",
    Reason.NOT_ELIGIBLE: "Patient not verified eligible on the service date",
    Reason.LATE_FILING: f"Received more than {FILING_LIMIT_DAYS} days after the service",
    Reason.VOUCHER_NOT_FOUND: "No such voucher for this patient",
    Reason.VOUCHER_VOIDED: "Voucher voided",
    Reason.VOUCHER_NOT_YET_VALID: "Service before the voucher's issue date",
    Reason.VOUCHER_EXPIRED: "Service after the voucher's expiry date",
    Reason.WRONG_PROVIDER: "Voucher issued for another provider",
    Reason.SERVICE_NOT_AUTHORIZED: "Service not authorized on the voucher",
    Reason.NO_FEE_SCHEDULE: "No fee schedule entry for the code on the service date",
    Reason.DUPLICATE: "Same patient, provider, date and service already paid",
    Reason.FEE_ABOVE_SCHEDULE: "Billed above the fee schedule (agreement: bill at the scheduled fee)",
    Reason.VOUCHER_UNIT_LIMIT: "Units over the code's limit per voucher",
    Reason.YEAR_UNIT_LIMIT: "Units over the code's limit per patient and year",
    Reason.VOUCHER_UNITS_EXHAUSTED: "Voucher's maximum units used",
    Reason.VOUCHER_AMOUNT_EXHAUSTED: "Voucher's maximum amount used",
}


# -- eligibility --------------------------------------------------------------------------------------
@cache
def agriculture_naics() -> tuple[str, ...]:
    """NAICS prefixes that HRSA counts as agriculture (crop and animal production, aquaculture, their
    support activities): data in ``naics_agriculture.csv``, so a program can review them."""
    path = Path(__file__).with_name("naics_agriculture.csv")
    with path.open(newline="") as f:
        return tuple(row["naics_prefix"] for row in csv.DictReader(f))


def is_agriculture(naics: str) -> bool:
    return any(naics.startswith(p) for p in agriculture_naics())


@dataclass(frozen=True, slots=True)
class WorkFacts:
    """What a worker tells and shows the eligibility worker (one interview)."""

    naics: str  # the principal employment's industry
    last_ag_work: date  # last day of agricultural work
    temporary_home_for_work: bool  # moved and lives in a temporary home for that work
    h2a: bool  # H-2A temporary agricultural guest worker
    insurance: str  # uninsured | underinsured | insured
    documents: tuple[str, ...]  # documents seen (pay stub, employer letter, H-2A visa ...)


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    category: str | None  # migratory | seasonal | None (not eligible)
    problems: tuple[str, ...]


def classify(facts: WorkFacts, on: date) -> EligibilityResult:
    """The program's eligibility rule: principal employment in agriculture (HRSA NAICS list) within
    the last 24 months, uninsured or underinsured, at least one document seen. Migratory when the worker
    established a temporary home for the work, or is an H-2A guest worker; seasonal otherwise."""
    problems = []
    if not is_agriculture(facts.naics):
        problems.append(f"NAICS {facts.naics} is not agriculture as HRSA defines it")
    if facts.last_ag_work > on or (on - facts.last_ag_work).days > LOOKBACK_DAYS:
        problems.append("no agricultural work in the last 24 months")
    if facts.insurance not in INSURANCE_ELIGIBLE:
        problems.append(f"insurance status {facts.insurance!r}: the program serves the un/underinsured")
    if not facts.documents:
        problems.append("no document seen")
    if problems:
        return EligibilityResult(None, tuple(problems))
    migratory = facts.temporary_home_for_work or facts.h2a
    return EligibilityResult("migratory" if migratory else "seasonal", ())


@dataclass(frozen=True, slots=True)
class Eligibility:
    """A verification: the person is eligible from ``verified_on`` for a year (then re-verified)."""

    patient_id: str
    category: str
    verified_on: date

    @property
    def valid_until(self) -> date:
        return self.verified_on + timedelta(days=REVERIFY_DAYS - 1)

    def covers(self, day: date) -> bool:
        return self.verified_on <= day <= self.valid_until


def due_for_reverification(verifications: Iterable[Eligibility], on: date, within_days: int = 30):
    """The reminder list: each person's latest verification that ends within ``within_days`` of
    ``on`` (or has ended), as ``(patient_id, valid_until)`` sorted by date."""
    latest: dict[str, Eligibility] = {}
    for v in verifications:
        if v.patient_id not in latest or v.verified_on > latest[v.patient_id].verified_on:
            latest[v.patient_id] = v
    due = [(p, v.valid_until) for p, v in latest.items() if v.valid_until <= on + timedelta(within_days)]
    return sorted(due, key=lambda x: (x[1], x[0]))


# -- the program's records, as the rules see them -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    agreement_start: date
    agreement_end: date | None = None

    def participates(self, day: date) -> bool:
        return self.agreement_start <= day and (self.agreement_end is None or day <= self.agreement_end)


@dataclass(frozen=True, slots=True)
class Fee:
    """One effective-dated fee schedule entry for a service code (CPT, HCPCS, CDT or an NDC class)."""

    code: str
    amount_cents: int  # per unit
    effective_from: date
    effective_to: date | None = None
    voucher_unit_limit: int | None = None
    year_unit_limit: int | None = None
    service_type: str = "medical"

    def effective(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True, slots=True)
class Voucher:
    id: str
    patient_id: str
    services: frozenset[str]
    issued_on: date
    expires_on: date
    max_cents: int
    max_units: int | None = None
    provider_id: str | None = None  # None: any participating provider
    voided: bool = False


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """One line of a provider's claim, as imported."""

    provider_id: str
    claim_no: str
    claim_line: int
    voucher_id: str
    patient_id: str
    service_date: date
    code: str
    units: int
    billed_cents: int
    received_on: date

    @property
    def service_key(self) -> tuple[str, str, date, str]:
        """What makes two lines the same service (duplicate detection)."""
        return (self.patient_id, self.provider_id, self.service_date, self.code)


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # paid | reduced | denied
    paid_units: int
    paid_cents: int
    reason: Reason | None = None

    @property
    def denied(self) -> bool:
        return self.status == "denied"


def _deny(reason: Reason) -> Decision:
    return Decision("denied", 0, 0, reason)


@dataclass
class Book:
    """Everything adjudication reads: providers, verifications, vouchers, the fee schedule."""

    providers: dict[str, Provider]
    eligibility: dict[str, list[Eligibility]]
    vouchers: dict[str, Voucher]
    fees: dict[str, list[Fee]]

    @classmethod
    def of(
        cls,
        providers: Iterable[Provider],
        eligibility: Iterable[Eligibility],
        vouchers: Iterable[Voucher],
        fees: Iterable[Fee],
    ) -> Book:
        elig: dict[str, list[Eligibility]] = defaultdict(list)
        for e in eligibility:
            elig[e.patient_id].append(e)
        by_code: dict[str, list[Fee]] = defaultdict(list)
        for f in fees:
            by_code[f.code].append(f)
        return cls({p.id: p for p in providers}, dict(elig), {v.id: v for v in vouchers}, dict(by_code))

    def fee(self, code: str, day: date) -> Fee | None:
        return next((f for f in self.fees.get(code, ()) if f.effective(day)), None)

    def eligible(self, patient_id: str, day: date) -> bool:
        return any(e.covers(day) for e in self.eligibility.get(patient_id, ()))


@dataclass
class Usage:
    """What has been paid so far: the running totals the limits and duplicate checks read."""

    voucher_cents: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    voucher_units: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    voucher_code_units: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    year_code_units: dict[tuple[str, int, str], int] = field(default_factory=lambda: defaultdict(int))
    services: set[tuple[str, str, date, str]] = field(default_factory=set)

    def add(self, line: ClaimLine, decision: Decision, sign: int = 1) -> None:
        """Count a paid (or reduced) line; ``sign=-1`` takes it back (an appeal re-opens it)."""
        if decision.denied:
            return
        v = line.voucher_id
        self.voucher_cents[v] += sign * decision.paid_cents
        self.voucher_units[v] += sign * decision.paid_units
        self.voucher_code_units[(v, line.code)] += sign * decision.paid_units
        key = (line.patient_id, line.service_date.year, line.code)
        self.year_code_units[key] += sign * decision.paid_units
        if sign > 0:
            self.services.add(line.service_key)
        else:
            self.services.discard(line.service_key)


def adjudicate(line: ClaimLine, book: Book, usage: Usage) -> Decision:
    """Adjudicate one line against the book and what was paid before it (``usage``, not changed)."""
    provider = book.providers.get(line.provider_id)
    if provider is None or not provider.participates(line.service_date):
        return _deny(Reason.PROVIDER_NOT_PARTICIPATING)
    if not book.eligible(line.patient_id, line.service_date):
        return _deny(Reason.NOT_ELIGIBLE)
    if (line.received_on - line.service_date).days > FILING_LIMIT_DAYS:
        return _deny(Reason.LATE_FILING)
    voucher = book.vouchers.get(line.voucher_id)
    if voucher is None or voucher.patient_id != line.patient_id:
        return _deny(Reason.VOUCHER_NOT_FOUND)
    if voucher.voided:
        return _deny(Reason.VOUCHER_VOIDED)
    if line.service_date < voucher.issued_on:
        return _deny(Reason.VOUCHER_NOT_YET_VALID)
    if line.service_date > voucher.expires_on:
        return _deny(Reason.VOUCHER_EXPIRED)
    if voucher.provider_id is not None and voucher.provider_id != line.provider_id:
        return _deny(Reason.WRONG_PROVIDER)
    if line.code not in voucher.services:
        return _deny(Reason.SERVICE_NOT_AUTHORIZED)
    fee = book.fee(line.code, line.service_date)
    if fee is None:
        return _deny(Reason.NO_FEE_SCHEDULE)
    if line.service_key in usage.services:
        return _deny(Reason.DUPLICATE)
    if line.billed_cents > fee.amount_cents * line.units:
        return _deny(Reason.FEE_ABOVE_SCHEDULE)
    return _apply_limits(line, voucher, fee, usage)


def _apply_limits(line: ClaimLine, voucher: Voucher, fee: Fee, usage: Usage) -> Decision:
    """Units first (each limit may cut the line), then the voucher's remaining amount."""
    units, reason = line.units, None
    limits = []
    if fee.voucher_unit_limit is not None:
        used = usage.voucher_code_units[(voucher.id, line.code)]
        limits.append((fee.voucher_unit_limit - used, Reason.VOUCHER_UNIT_LIMIT))
    if fee.year_unit_limit is not None:
        used = usage.year_code_units[(line.patient_id, line.service_date.year, line.code)]
        limits.append((fee.year_unit_limit - used, Reason.YEAR_UNIT_LIMIT))
    if voucher.max_units is not None:
        limits.append((voucher.max_units - usage.voucher_units[voucher.id], Reason.VOUCHER_UNITS_EXHAUSTED))
    for left, why in limits:
        if units > max(left, 0):
            units, reason = max(left, 0), why
    if units == 0:
        return _deny(reason or Reason.VOUCHER_UNITS_EXHAUSTED)
    cents = min(line.billed_cents, fee.amount_cents * units)
    left_cents = voucher.max_cents - usage.voucher_cents[voucher.id]
    if left_cents <= 0:
        return _deny(Reason.VOUCHER_AMOUNT_EXHAUSTED)
    if cents > left_cents:
        cents, reason = left_cents, Reason.VOUCHER_AMOUNT_EXHAUSTED
    return Decision("paid" if reason is None else "reduced", units, cents, reason)


def adjudicate_all(lines: Sequence[ClaimLine], book: Book, usage: Usage | None = None) -> list[Decision]:
    """Adjudicate lines in the order given (the order they were received), each seeing the ones before."""
    usage = usage if usage is not None else Usage()
    out = []
    for line in lines:
        decision = adjudicate(line, book, usage)
        usage.add(line, decision)
        out.append(decision)
    return out
