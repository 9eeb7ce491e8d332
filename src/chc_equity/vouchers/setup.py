"""A program's setup as data (JSON): budget lines, providers, fee schedule, people, verifications and
vouchers. ``chc-equity vouchers setup`` loads one into the app database; the tests and the synthetic
season build the same records from it, so the pure rules and the database see one program.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from chc_equity.vouchers.rules import Book, Eligibility, Fee, Provider, Voucher


def cents(amount: str | int | float | Decimal) -> int:
    """Dollars (``"90.00"``) to integer cents, refusing fractions of a cent."""
    value = Decimal(str(amount))
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{amount!r} has fractions of a cent")
    return int(value * 100)


def dollars(amount_cents: int) -> str:
    sign = "-" if amount_cents < 0 else ""
    return f"{sign}{abs(amount_cents) // 100:,}.{abs(amount_cents) % 100:02d}"


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Program:
    """The parsed setup: the rule records plus what only the database keeps (names, budget lines)."""

    raw: dict[str, Any]
    providers: list[Provider]
    fees: list[Fee]
    verifications: list[Eligibility]
    vouchers: list[Voucher]

    def book(self) -> Book:
        return Book.of(self.providers, self.verifications, self.vouchers, self.fees)


def parse_program(raw: dict[str, Any]) -> Program:
    providers = [
        Provider(p["id"], date.fromisoformat(p["agreement_start"]), _d(p.get("agreement_end")))
        for p in raw.get("providers", [])
    ]
    fees = [
        Fee(
            code=f["code"],
            amount_cents=cents(f["amount"]),
            effective_from=date.fromisoformat(f["effective_from"]),
            effective_to=_d(f.get("effective_to")),
            voucher_unit_limit=f.get("voucher_unit_limit"),
            year_unit_limit=f.get("year_unit_limit"),
            service_type=f.get("service_type", "medical"),
        )
        for f in raw.get("fees", [])
    ]
    verifications = [
        Eligibility(v["patient_id"], v["category"], date.fromisoformat(v["verified_on"]))
        for v in raw.get("verifications", [])
    ]
    vouchers = [
        Voucher(
            id=v["id"],
            patient_id=v["patient_id"],
            services=frozenset(v["services"]),
            issued_on=date.fromisoformat(v["issued_on"]),
            expires_on=date.fromisoformat(v["expires_on"]),
            max_cents=cents(v["max_amount"]),
            max_units=v.get("max_units"),
            provider_id=v.get("provider_id"),
            voided=bool(v.get("voided", False)),
        )
        for v in raw.get("vouchers", [])
    ]
    return Program(raw, providers, fees, verifications, vouchers)
