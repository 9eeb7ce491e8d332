"""The program's figures from the app database: budget lines, burn-down and forecast, claims by status,
denial reasons, the re-verification list, UDS Table 4 agricultural-worker lines and Table 5-style visits
for voucher patients, patients by ZIP, cost per patient and days from service to payment.

Staff pages show exact counts (program staff see the program's records anyway). :func:`published`
applies the project's small-cell rule (counts 1-10 hidden, with complements) to what leaves the system
(the CLI's report files).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from statistics import median

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import (
    Voucher,
    VoucherBudgetLine,
    VoucherClaimLine,
    VoucherFee,
    VoucherLedger,
    VoucherPerson,
    VoucherVerification,
)
from chc_equity.vouchers import budget, store
from chc_equity.vouchers.rules import Eligibility, due_for_reverification


@dataclass(frozen=True, slots=True)
class BudgetRow:
    id: str
    name: str
    grant_year: int
    position: budget.Position
    burn_down: list[tuple[str, int, int]]
    forecast_cents: int | None


def budget_rows(session: Session, as_of: date) -> list[BudgetRow]:
    lines = list(session.scalars(select(VoucherBudgetLine).order_by(VoucherBudgetLine.grant_year)))
    by_year: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for line in lines:
        by_year[line.grant_year] += store.payments(session, line.id)
    out = []
    for line in lines:
        pays = store.payments(session, line.id)
        prior = {y: p for y, p in by_year.items() if y < line.grant_year}
        paid = sum(c for d, c in pays if d <= as_of)
        forecast = budget.forecast_season(paid, as_of, prior) if as_of.year == line.grant_year else None
        out.append(BudgetRow(line.id, line.name, line.grant_year, store.position(session, line.id, as_of),
                             budget.burn_down(line.amount_cents, pays), forecast))  # fmt: skip
    return out


def claim_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(VoucherClaimLine.status, func.count()).group_by(VoucherClaimLine.status))
    return {s: n for s, n in rows}


def denial_reasons(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(VoucherClaimLine.reason, func.count())
        .where(VoucherClaimLine.status == "denied")
        .group_by(VoucherClaimLine.reason)
        .order_by(func.count().desc(), VoucherClaimLine.reason)
    )
    return [(r, n) for r, n in rows]


def reverification_due(session: Session, as_of: date, within_days: int = 30) -> list[tuple[str, date]]:
    rows = session.scalars(select(VoucherVerification))
    return due_for_reverification(
        (Eligibility(r.patient_id, r.category, r.verified_on) for r in rows), as_of, within_days
    )


def _paid_lines(session: Session, year: int) -> list[VoucherClaimLine]:
    return list(
        session.scalars(
            select(VoucherClaimLine).where(
                VoucherClaimLine.status.in_(store.PAID),
                VoucherClaimLine.service_date >= date(year, 1, 1),
                VoucherClaimLine.service_date <= date(year, 12, 31),
            )
        )
    )


def _category_at(session: Session, year: int) -> dict[str, str]:
    """Each person's category from their latest verification up to the end of ``year``."""
    rows = session.execute(
        select(VoucherVerification.patient_id, VoucherVerification.category)
        .where(VoucherVerification.verified_on <= date(year, 12, 31))
        .order_by(VoucherVerification.verified_on, VoucherVerification.id)
    )
    return {p: c for p, c in rows}


def served(session: Session, year: int) -> dict[str, str]:
    """The voucher patients of ``year`` (a voucher-paid service in it) and their category (migratory,
    seasonal, or "unknown" when never verified by the end of the year): the UDS universe of the program."""
    category = _category_at(session, year)
    patients = sorted({x.patient_id for x in _paid_lines(session, year)})
    return {p: category.get(p, "unknown") for p in patients}


def uds_table4(session: Session, year: int) -> dict[str, int]:
    """UDS Table 4 lines 14-16 for voucher patients: patients with a voucher-paid service in ``year``,
    migratory (line 14), seasonal (line 15), total agricultural workers and dependents (line 16)."""
    patients = served(session, year)
    counts = Counter(patients.values())
    return {"migratory": counts["migratory"], "seasonal": counts["seasonal"], "total": len(patients)}


def uds_table5(session: Session, year: int) -> list[tuple[str, int, int]]:
    """Table 5-style (service type, visits, patients): a visit is a patient's paid services with one
    provider on one day."""
    types = {c: t for c, t in session.execute(select(VoucherFee.code, VoucherFee.service_type))}
    visits: dict[str, set] = defaultdict(set)
    for x in _paid_lines(session, year):
        visits[types.get(x.code, "other")].add((x.patient_id, x.provider_id, x.service_date))
    return [(t, len(v), len({p for p, _, _ in v})) for t, v in sorted(visits.items())]


def patients_by_zip(session: Session, year: int) -> list[tuple[str, int]]:
    patients = {x.patient_id for x in _paid_lines(session, year)}
    zips = {p: z for p, z in session.execute(select(VoucherPerson.id, VoucherPerson.zip))}
    return sorted(Counter(zips.get(p, "unknown") for p in patients).items())


def program_figures(session: Session, year: int) -> dict[str, object]:
    """Workers served, purchased-service cost, cost per patient, services by provider, and the median
    days from service to payment (first paying decision)."""
    lines = _paid_lines(session, year)
    patients = {x.patient_id for x in lines}
    cost = sum(x.paid_cents for x in lines)
    by_provider = Counter(x.provider_id for x in lines)
    days = list(_days_to_payment(session, lines).values())
    return {
        "patients": len(patients),
        "paid_lines": len(lines),
        "cost_cents": cost,
        "cost_per_patient_cents": round(cost / len(patients)) if patients else None,
        "by_provider": sorted(by_provider.items()),
        "median_days_to_payment": median(days) if days else None,
        "vouchers": session.scalar(select(func.count()).select_from(Voucher)) or 0,
    }


def _days_to_payment(session: Session, lines: list[VoucherClaimLine]) -> dict[int, int]:
    """Line id -> days from its service date to its first payment in the ledger."""
    ids = [x.id for x in lines]
    if not ids:
        return {}
    rows = session.execute(
        select(VoucherLedger.line_id, func.min(VoucherLedger.on_day))
        .where(VoucherLedger.line_id.in_(ids), VoucherLedger.kind == "pay")
        .group_by(VoucherLedger.line_id)
    )
    first_paid = {i: d for i, d in rows}
    return {x.id: (first_paid[x.id] - x.service_date).days for x in lines if x.id in first_paid}


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """Voucher-paid services of one group (a service type, a provider, or both) in a year."""

    label: str
    visits: int  # a patient's paid services with one provider on one day
    patients: int
    paid_cents: int
    median_days_to_payment: float | None


def services(session: Session, year: int, by: str) -> list[ServiceRow]:
    """The dashboard's services ``by`` "type" (the fee schedule's service type) or "provider"."""
    if by not in ("type", "provider"):
        raise ValueError(f"services by {by!r}: 'type' or 'provider'")
    types = {c: t for c, t in session.execute(select(VoucherFee.code, VoucherFee.service_type))}
    lines = _paid_lines(session, year)
    days = _days_to_payment(session, lines)
    groups: dict[str, list[VoucherClaimLine]] = defaultdict(list)
    for x in lines:
        groups[types.get(x.code, "other") if by == "type" else x.provider_id].append(x)
    out = []
    for label, xs in sorted(groups.items()):
        waits = [days[x.id] for x in xs if x.id in days]
        out.append(ServiceRow(label, len({(x.patient_id, x.provider_id, x.service_date) for x in xs}),
                              len({x.patient_id for x in xs}), sum(x.paid_cents for x in xs),
                              median(waits) if waits else None))  # fmt: skip
    return out


def published(rows: list[tuple[str, int]]) -> list[tuple[str, int | None]]:
    """``(label, count)`` rows with their total as a one-way table, small cells hidden (None) with
    complements so that no hidden count can be rebuilt from the total (equity/suppression.py)."""
    from chc_equity.equity.suppression import one_way_table, suppress

    if not rows:
        return []
    table = one_way_table([n for _, n in rows], [label for label, _ in rows])
    values = suppress(table).published()
    return list(zip([*(label for label, _ in rows), "total"], values, strict=True))


def published_patients(
    table4: dict[str, int], by_zip: list[tuple[str, int]]
) -> tuple[list[tuple[str, int | None]], list[tuple[str, int | None]]]:
    """The two patient-count files of the report, suppressed *together*: UDS Table 4 (``migratory``,
    ``seasonal`` and their ``total``) and patients by ZIP (and their ``total``) count the same patients
    -- those with a voucher-paid service in the year -- so the ZIP file's total minus Table 4's is the
    patients of unknown category, and each file's own complements are not enough (a small unknown
    count, or a hidden Table 4 line, would follow from the two totals).

    One :class:`~chc_equity.equity.suppression.LinearTable` holds migratory ``m``, seasonal ``s``,
    unknown ``u`` (never published: hidden from the start), the Table 4 total ``m + s``, every ZIP and
    the ZIP total ``T = m + s + u = sum of the ZIPs``; :func:`~chc_equity.equity.suppression.suppress`
    hides the small cells and complements them until no hidden count is pinned down (exact audit).
    Returns (Table 4 rows, ZIP rows), each ending with its ``total``, hidden counts None.
    """
    from chc_equity.equity.suppression import LinearTable, suppress

    m, s_, total = table4["migratory"], table4["seasonal"], table4["total"]
    zips = [n for _, n in by_zip]
    if sum(zips) != total:
        raise ValueError("patients by ZIP do not add up to the Table 4 universe")
    k = len(zips)
    values = [m, s_, total - m - s_, m + s_, *zips, total]  # 0 m, 1 s, 2 u, 3 t4, 4.. zips, -1 T
    last = 4 + k
    eqs = [(3, (0, 1)), (last, (0, 1, 2))] + ([(last, tuple(range(4, 4 + k)))] if k else [])
    names = ("migratory", "seasonal", "unknown", "table4 total", *(z for z, _ in by_zip), "total")
    table = LinearTable(np.asarray(values, dtype=np.int64), tuple(eqs), names)
    before = np.zeros(len(values), dtype=bool)
    before[2] = True  # the unknown category is not in either file
    shown = suppress(table, hidden_before=before).published()
    t4 = [("migratory", shown[0]), ("seasonal", shown[1]), ("total", shown[3])]
    return t4, [*((z, shown[4 + i]) for i, (z, _) in enumerate(by_zip)), ("total", shown[last])]


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    relationship: str
    zip: str
    state: str
    category: str | None
    verified_on: date | None
    valid_until: date | None
    vouchers: int
    paid_cents: int


def households(session: Session, household: str | None = None) -> dict[str, list[Member]]:
    """Each household's members with their latest verification, vouchers and what was paid for them
    (the household view); one household when ``household`` is given."""
    q = select(VoucherPerson).order_by(
        VoucherPerson.household, VoucherPerson.relationship.desc(), VoucherPerson.id
    )
    if household:
        q = q.where(VoucherPerson.household == household)
    people = list(session.scalars(q))
    ids = [p.id for p in people]
    latest: dict[str, VoucherVerification] = {}
    for v in session.scalars(
        select(VoucherVerification)
        .where(VoucherVerification.patient_id.in_(ids))
        .order_by(VoucherVerification.verified_on, VoucherVerification.id)
    ):
        latest[v.patient_id] = v
    vouchers = dict(
        session.execute(
            select(Voucher.patient_id, func.count())
            .where(Voucher.patient_id.in_(ids))
            .group_by(Voucher.patient_id)
        ).all()
    )
    paid = dict(
        session.execute(
            select(Voucher.patient_id, func.sum(Voucher.paid_cents))
            .where(Voucher.patient_id.in_(ids))
            .group_by(Voucher.patient_id)
        ).all()
    )
    out: dict[str, list[Member]] = defaultdict(list)
    for p in people:
        v = latest.get(p.id)
        e = Eligibility(p.id, v.category, v.verified_on) if v else None  # None: never verified
        out[p.household].append(
            Member(p.id, p.relationship, p.zip, p.state, e.category if e else None,
                   e.verified_on if e else None, e.valid_until if e else None, vouchers.get(p.id, 0),
                   int(paid.get(p.id) or 0))
        )  # fmt: skip
    return dict(out)


REMITTANCE_COLUMNS = (
    "claim_no", "claim_line", "voucher_id", "patient_id", "service_date", "service_code", "units",
    "billed_amount", "status", "paid_units", "paid_amount", "reason", "reason_text",
)  # fmt: skip


def remittance(session: Session, provider_id: str) -> list[tuple]:
    """One provider's remittance advice: each of its decided lines with the amount paid or the reason
    code and its words -- the provider's own lines only (a provider sees nothing of another's)."""
    from chc_equity.vouchers.rules import REASON_TEXT, Reason
    from chc_equity.vouchers.setup import dollars

    q = (
        select(VoucherClaimLine)
        .where(VoucherClaimLine.provider_id == provider_id, VoucherClaimLine.status != "open")
        .order_by(VoucherClaimLine.claim_no, VoucherClaimLine.claim_line)
    )

    def amount(cents: int) -> str:
        return dollars(cents).replace(",", "")

    return [
        (x.claim_no, x.claim_line, x.voucher_id, x.patient_id, x.service_date.isoformat(), x.code, x.units,
         amount(x.billed_cents), x.status, x.paid_units, amount(x.paid_cents), x.reason or "",
         REASON_TEXT[Reason(x.reason)] if x.reason else "")
        for x in session.scalars(q)
    ]  # fmt: skip
