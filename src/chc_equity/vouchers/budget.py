"""Budget arithmetic for a grant year's budget line: paid + encumbered + remaining = budget.

A voucher *encumbers* its maximum amount when issued (the money is promised), and each paid line moves
money from encumbered to paid. The encumbrance is released when the voucher is voided, used up, or no
claim can reach it any more (its expiry plus the filing limit: claims for services before expiry may
arrive after it). ``remaining`` is what can still be promised; issuing refuses a voucher that does not fit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import fmean

from chc_equity.vouchers.rules import FILING_LIMIT_DAYS

WARN_AT = 0.80
CRITICAL_AT = 0.95


@dataclass(frozen=True, slots=True)
class VoucherMoney:
    """A voucher as the budget sees it."""

    max_cents: int
    paid_cents: int
    expires_on: date
    voided: bool = False
    used_up: bool = False  # its maximum units are all used

    def status(self, as_of: date) -> str:
        """issued | partially_used | used | expired | voided."""
        if self.voided:
            return "voided"
        if self.used_up or self.paid_cents >= self.max_cents:
            return "used"
        if as_of > self.expires_on:
            return "expired"
        return "partially_used" if self.paid_cents > 0 else "issued"

    def encumbered(self, as_of: date) -> int:
        """What is still promised: nothing once voided, used, or past expiry plus the filing limit."""
        if self.status(as_of) in ("voided", "used"):
            return 0
        if as_of > self.expires_on + timedelta(days=FILING_LIMIT_DAYS):
            return 0
        return max(self.max_cents - self.paid_cents, 0)


@dataclass(frozen=True, slots=True)
class Position:
    budget_cents: int
    paid_cents: int
    encumbered_cents: int

    @property
    def remaining_cents(self) -> int:
        return self.budget_cents - self.paid_cents - self.encumbered_cents

    @property
    def committed_share(self) -> float:
        return (self.paid_cents + self.encumbered_cents) / self.budget_cents if self.budget_cents else 0.0

    @property
    def warning(self) -> str | None:
        """``critical`` from 95 % committed, ``warning`` from 80 %, else None."""
        share = self.committed_share
        return "critical" if share >= CRITICAL_AT else "warning" if share >= WARN_AT else None


def position(budget_cents: int, vouchers: Iterable[VoucherMoney], as_of: date) -> Position:
    vouchers = list(vouchers)
    paid = sum(v.paid_cents for v in vouchers)
    encumbered = sum(v.encumbered(as_of) for v in vouchers)
    return Position(budget_cents, paid, encumbered)


def burn_down(budget_cents: int, payments: Iterable[tuple[date, int]]) -> list[tuple[str, int, int]]:
    """Per month (``YYYY-MM``): paid that month and what remains of the budget after it."""
    by_month: dict[str, int] = defaultdict(int)
    for day, cents in payments:
        by_month[day.strftime("%Y-%m")] += cents
    out, left = [], budget_cents
    for month in sorted(by_month):
        left -= by_month[month]
        out.append((month, by_month[month], left))
    return out


def forecast_season(
    paid_to_date: int, as_of: date, prior_years: Mapping[int, Iterable[tuple[date, int]]]
) -> int | None:
    """Paid by the end of the season, from the share of each prior year's season total that had been
    paid by the same day of the year (their mean); None without a prior year with payments."""
    shares = []
    for year, payments in prior_years.items():
        payments = list(payments)
        total = sum(c for _, c in payments)
        if total <= 0:
            continue
        same_day = (
            as_of.replace(year=year) if not (as_of.month == 2 and as_of.day == 29) else date(year, 2, 28)
        )
        shares.append(sum(c for d, c in payments if d <= same_day) / total)
    if not shares or fmean(shares) <= 0:
        return None
    return round(paid_to_date / fmean(shares))
