"""The voucher program's records in the app database: setup, verification, issuing, claims import,
adjudication, appeals and the budget. Functions take a SQLAlchemy session inside the caller's
transaction (``AppDB.write()``), so each operation commits whole or not at all.

Concurrency, the same on SQLite and PostgreSQL:

* adjudication locks the claim line, then the person, then the voucher (``SELECT ... FOR UPDATE`` on
  PostgreSQL; SQLite's writers are already serialized by ``BEGIN IMMEDIATE``), re-reads them, and
  refuses a line that is no longer open or whose version is not the one the user saw: two staff
  deciding the same line at once end with one decision and one :class:`Conflict`. A decision's
  ``(line_id, seq)`` is unique as a last guard.
* an import is one transaction; the file's SHA-256 and each line's ``(provider, claim, line)`` are
  unique, so the same file (or line) imported twice is received once and paid at most once.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chc_equity.appdb.chw import Conflict, NotFound, now
from chc_equity.appdb.models import (
    Voucher,
    VoucherBudgetLine,
    VoucherClaimFile,
    VoucherClaimLine,
    VoucherClaimReject,
    VoucherDecision,
    VoucherFee,
    VoucherLedger,
    VoucherPerson,
    VoucherProvider,
    VoucherVerification,
)
from chc_equity.vouchers import budget as budget_rules
from chc_equity.vouchers import rules
from chc_equity.vouchers.claims_file import ParsedFile, Reject
from chc_equity.vouchers.setup import cents

CRASH_ENV = "CHC_EQUITY_VOUCHER_CRASH_AT"  # tests only: SIGKILL at a named point of an import
CRASH_POINTS = ("import:half", "import:before-commit")
PAID = ("paid", "reduced")
__all__ = ["Conflict", "NotFound", "VoucherError"]


class VoucherError(ValueError):
    """A program rule refused the request (the message says which)."""


def _crash(point: str) -> None:
    assert point in CRASH_POINTS
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# -- setup ----------------------------------------------------------------------------------------------
def load_program(session: Session, raw: dict[str, Any], by: str) -> dict[str, int]:
    """Add or update a program's setup (program.json format); vouchers go through :func:`issue`."""
    for b in raw.get("budget_lines", []):
        session.merge(
            VoucherBudgetLine(
                id=b["id"], grant_year=b["grant_year"], name=b["name"], amount_cents=cents(b["amount"]),
                starts_on=date.fromisoformat(b["starts_on"]), ends_on=date.fromisoformat(b["ends_on"]),
            )
        )  # fmt: skip
    for p in raw.get("providers", []):
        session.merge(
            VoucherProvider(
                id=p["id"], name=p["name"], kind=p["kind"], npi=p["npi"], state=p["state"],
                agreement_start=date.fromisoformat(p["agreement_start"]),
                agreement_end=_d(p.get("agreement_end")),
            )
        )  # fmt: skip
    for f in raw.get("fees", []):
        start = date.fromisoformat(f["effective_from"])
        row = session.scalar(
            select(VoucherFee).where(VoucherFee.code == f["code"], VoucherFee.effective_from == start)
        )
        row = row or VoucherFee(code=f["code"], effective_from=start)
        row.system, row.service_type = f.get("system", "CPT"), f.get("service_type", "medical")
        row.amount_cents, row.effective_to = cents(f["amount"]), _d(f.get("effective_to"))
        row.voucher_unit_limit, row.year_unit_limit = f.get("voucher_unit_limit"), f.get("year_unit_limit")
        session.add(row)
    for p in raw.get("people", []):
        session.merge(
            VoucherPerson(id=p["id"], household=p["household"], relationship=p["relationship"],
                          zip=p["zip"], state=p["state"], birth_date=_d(p.get("birth_date")),
                          sex=p.get("sex"))
        )  # fmt: skip
    session.flush()
    for v in raw.get("verifications", []):
        record_verification(session, v["patient_id"], v["category"], date.fromisoformat(v["verified_on"]), by,
                            insurance=v.get("insurance", "uninsured"), documents=v.get("documents", "setup"),
                            naics=v.get("naics"), h2a=v.get("h2a", False))  # fmt: skip
    return {k: len(raw.get(k, [])) for k in ("budget_lines", "providers", "fees", "people", "verifications")}


def record_verification(
    session: Session,
    patient_id: str,
    category: str,
    verified_on: date,
    by: str,
    *,
    insurance: str = "uninsured",
    documents: str = "",
    naics: str | None = None,
    h2a: bool = False,
) -> VoucherVerification:
    """Record a verification (the form runs :func:`rules.classify` first and passes its category)."""
    if session.get(VoucherPerson, patient_id) is None:
        raise NotFound(f"No person {patient_id!r} in the program.")
    if category not in rules.CATEGORIES:
        raise VoucherError(f"category must be one of {', '.join(rules.CATEGORIES)}")
    if insurance not in rules.INSURANCE_ELIGIBLE:
        raise VoucherError("the program serves uninsured and underinsured people only")
    row = VoucherVerification(patient_id=patient_id, category=category, h2a=h2a, naics=naics,
                              insurance=insurance, documents=documents, verified_on=verified_on,
                              verified_by=by)  # fmt: skip
    session.add(row)
    session.flush()
    return row


def verifications(session: Session, patient_id: str) -> list[rules.Eligibility]:
    rows = session.scalars(select(VoucherVerification).where(VoucherVerification.patient_id == patient_id))
    return [rules.Eligibility(r.patient_id, r.category, r.verified_on) for r in rows]


# -- vouchers -------------------------------------------------------------------------------------------
def _rule_voucher(v: Voucher) -> rules.Voucher:
    return rules.Voucher(
        id=v.id, patient_id=v.patient_id, services=frozenset(v.services.split(",")), issued_on=v.issued_on,
        expires_on=v.expires_on, max_cents=v.max_cents, max_units=v.max_units, provider_id=v.provider_id,
        voided=v.voided,
    )  # fmt: skip


def _money(v: Voucher) -> budget_rules.VoucherMoney:
    used_up = v.max_units is not None and v.paid_units >= v.max_units
    return budget_rules.VoucherMoney(v.max_cents, v.paid_cents, v.expires_on, v.voided, used_up)


def voucher_status(v: Voucher, as_of: date) -> str:
    return _money(v).status(as_of)


def _ledger(session: Session, v: Voucher, kind: str, amount: int, on: date, by: str, line_id=None) -> None:
    session.add(VoucherLedger(budget_line_id=v.budget_line_id, voucher_id=v.id, line_id=line_id, kind=kind,
                              amount_cents=amount, on_day=on, by=by, at=now()))  # fmt: skip


def issue(
    session: Session,
    *,
    patient_id: str,
    budget_line_id: str,
    services: list[str],
    issued_on: date,
    expires_on: date,
    max_cents: int,
    by: str,
    max_units: int | None = None,
    provider_id: str | None = None,
    voucher_id: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Voucher, bool]:
    """Issue a voucher, encumbering its maximum on the budget line; returns (voucher, created).

    Refused when the person is not verified eligible on the issue date, a service has no fee schedule
    entry, the dates are backwards or outside the budget line, or the line's remaining amount (as of the
    issue date) is less than the maximum. A retried request with the same key returns the first voucher.
    """
    if idempotency_key:
        first = session.scalar(select(Voucher).where(Voucher.issued_by == by,
                                                     Voucher.idempotency_key == idempotency_key))  # fmt: skip
        if first is not None:
            return first, False
    line = session.scalar(
        select(VoucherBudgetLine).where(VoucherBudgetLine.id == budget_line_id).with_for_update()
    )
    if line is None:
        raise NotFound(f"No budget line {budget_line_id!r}.")
    if session.get(VoucherPerson, patient_id) is None:
        raise NotFound(f"No person {patient_id!r} in the program.")
    if not any(e.covers(issued_on) for e in verifications(session, patient_id)):
        raise VoucherError(f"{patient_id} is not verified eligible on {issued_on}")
    if provider_id and session.get(VoucherProvider, provider_id) is None:
        raise NotFound(f"No participating provider {provider_id!r}.")
    services = sorted({s.strip() for s in services if s.strip()})
    known = set(session.scalars(select(VoucherFee.code).where(VoucherFee.code.in_(services))))
    if not services or set(services) - known:
        raise VoucherError(
            f"no fee schedule entry for: {', '.join(sorted(set(services) - known)) or '(none)'}"
        )
    if not (line.starts_on <= issued_on <= expires_on <= line.ends_on):
        raise VoucherError(f"dates must satisfy {line.starts_on} <= issued <= expires <= {line.ends_on}")
    if max_cents <= 0 or (max_units is not None and max_units <= 0):
        raise VoucherError("maximum amount and units must be positive")
    pos = position(session, budget_line_id, issued_on)
    if max_cents > pos.remaining_cents:
        raise VoucherError(f"budget line {budget_line_id} has {pos.remaining_cents / 100:.2f} remaining")
    if voucher_id is None:
        n = session.scalar(select(func.count()).select_from(Voucher)) or 0
        voucher_id = f"VP{line.grant_year}-{n + 1:06d}"
    row = Voucher(id=voucher_id, patient_id=patient_id, budget_line_id=budget_line_id,
                  provider_id=provider_id, services=",".join(services), issued_on=issued_on,
                  expires_on=expires_on, max_cents=max_cents, max_units=max_units,
                  voided=False, paid_cents=0, paid_units=0, version=1,
                  idempotency_key=idempotency_key, issued_by=by, issued_at=now())  # fmt: skip
    try:
        with session.begin_nested():  # a concurrent request with the same key or id loses here
            session.add(row)
            session.flush()
    except IntegrityError:
        if idempotency_key:
            same_key = (Voucher.issued_by == by, Voucher.idempotency_key == idempotency_key)
            first = session.scalar(select(Voucher).where(*same_key))
            if first is not None:
                return first, False
        raise Conflict(
            f"Voucher {voucher_id} was issued by someone else at the same moment; retry."
        ) from None
    _ledger(session, row, "encumber", max_cents, issued_on, by)
    return row, True


def void(
    session: Session, voucher_id: str, by: str, on: date, expected_version: int | None = None
) -> Voucher:
    """Void a voucher: its unpaid maximum goes back to the budget line (claims after this are denied)."""
    v = session.scalar(select(Voucher).where(Voucher.id == voucher_id).with_for_update())
    if v is None:
        raise NotFound(f"No voucher {voucher_id!r}.")
    if expected_version is not None and v.version != expected_version:
        raise Conflict("The voucher changed since you loaded it; reload and retry.")
    if v.voided:
        return v
    v.voided, v.version = True, v.version + 1
    _ledger(session, v, "release", max(v.max_cents - v.paid_cents, 0), on, by)
    return v


# -- claims import --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportResult:
    file_id: int
    new_lines: int
    already_received: int
    rejects: int
    replay: bool  # the same file (same bytes) was imported before: nothing added


def import_claims(session: Session, parsed: ParsedFile, by: str) -> ImportResult:
    """Add a claims file's lines (status ``open``) and rejects, in the caller's transaction.

    The same bytes again: nothing added (``replay``). A line already received (same provider, claim and
    line number, from any file) is counted, not added again; repeated within the file it is a reject.
    """
    first = session.scalar(select(VoucherClaimFile).where(VoucherClaimFile.sha256 == parsed.sha256))
    if first is not None:
        return ImportResult(first.id, 0, 0, 0, True)
    file = VoucherClaimFile(sha256=parsed.sha256, name=parsed.name[:200], lines=0, already_received=0,
                            rejects=0, imported_by=by, imported_at=now())  # fmt: skip
    session.add(file)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("This file is being imported by someone else right now; retry.") from None
    providers = sorted({x.provider_id for _, x in parsed.lines})
    seen = {
        tuple(r)
        for r in session.execute(
            select(
                VoucherClaimLine.provider_id, VoucherClaimLine.claim_no, VoucherClaimLine.claim_line
            ).where(VoucherClaimLine.provider_id.in_(providers))
        )
    }
    in_file: dict[tuple[str, str, int], int] = {}
    rejects: list[Reject] = list(parsed.rejects)
    new = again = 0
    half = len(parsed.lines) // 2
    for i, (n, x) in enumerate(parsed.lines):
        key = (x.provider_id, x.claim_no, x.claim_line)
        if key in in_file:
            rejects.append(
                Reject(n, "claim_line", f"claim {x.claim_no} line {x.claim_line} repeats line {in_file[key]}")
            )
            continue
        in_file[key] = n
        if key in seen:
            again += 1
            continue
        session.add(
            VoucherClaimLine(
                file_id=file.id, file_line=n, provider_id=x.provider_id, claim_no=x.claim_no,
                claim_line=x.claim_line, voucher_id=x.voucher_id, patient_id=x.patient_id,
                service_date=x.service_date, code=x.code, units=x.units, billed_cents=x.billed_cents,
                received_on=x.received_on, status="open", paid_units=0, paid_cents=0, version=1,
            )
        )  # fmt: skip
        new += 1
        if i == half:
            session.flush()
            _crash("import:half")
    for r in sorted(rejects, key=lambda r: r.line):
        session.add(VoucherClaimReject(file_id=file.id, file_line=r.line, field=r.field, reason=r.reason))
    file.lines, file.already_received, file.rejects = new, again, len(rejects)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent import of another file with the same lines committed first
        raise Conflict("Some of these claim lines were imported meanwhile; retry the import.") from None
    _crash("import:before-commit")
    return ImportResult(file.id, new, again, len(rejects), False)


# -- adjudication ---------------------------------------------------------------------------------------
def _rule_line(x: VoucherClaimLine) -> rules.ClaimLine:
    return rules.ClaimLine(x.provider_id, x.claim_no, x.claim_line, x.voucher_id, x.patient_id,
                           x.service_date, x.code, x.units, x.billed_cents, x.received_on)  # fmt: skip


def _book_and_usage(session: Session, x: VoucherClaimLine) -> tuple[rules.Book, rules.Usage]:
    provider = session.get(VoucherProvider, x.provider_id)
    providers = (
        [rules.Provider(provider.id, provider.agreement_start, provider.agreement_end)] if provider else []
    )
    voucher = session.get(Voucher, x.voucher_id)
    fees = [
        rules.Fee(f.code, f.amount_cents, f.effective_from, f.effective_to, f.voucher_unit_limit,
                  f.year_unit_limit, f.service_type)
        for f in session.scalars(select(VoucherFee).where(VoucherFee.code == x.code))
    ]  # fmt: skip
    book = rules.Book.of(providers, verifications(session, x.patient_id),
                         [_rule_voucher(voucher)] if voucher else [], fees)  # fmt: skip
    usage = rules.Usage()
    paid = session.scalars(
        select(VoucherClaimLine).where(VoucherClaimLine.patient_id == x.patient_id,
                                       VoucherClaimLine.status.in_(PAID), VoucherClaimLine.id != x.id)
    )  # fmt: skip
    for p in paid:
        usage.add(_rule_line(p), rules.Decision(p.status, p.paid_units, p.paid_cents))
    return book, usage


def _lock_line(session: Session, line_id: int, expected_version: int | None) -> VoucherClaimLine:
    x = session.scalar(
        select(VoucherClaimLine)
        .where(VoucherClaimLine.id == line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if x is None:
        raise NotFound("No such claim line.")
    if expected_version is not None and x.version != expected_version:
        raise Conflict(f"Claim line {line_id} was changed by {x.decided_by or 'someone'} meanwhile; reload.")
    # the person, then the voucher: every adjudication of one person's lines runs one at a time
    session.execute(select(VoucherPerson.id).where(VoucherPerson.id == x.patient_id).with_for_update())
    session.execute(select(Voucher.id).where(Voucher.id == x.voucher_id).with_for_update())
    return x


def _record(session: Session, x: VoucherClaimLine, action: str, by: str, note: str | None) -> None:
    x.version += 1
    x.decided_by, x.decided_at = by, now()
    session.add(VoucherDecision(line_id=x.id, seq=x.version, action=action, status=x.status,
                                paid_units=x.paid_units, paid_cents=x.paid_cents, reason=x.reason, note=note,
                                decided_by=by, decided_at=x.decided_at))  # fmt: skip
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"Claim line {x.id} was decided by someone else at the same time; reload.") from None


def adjudicate_line(
    session: Session,
    line_id: int,
    by: str,
    on: date,
    expected_version: int | None = None,
    note: str | None = None,
) -> VoucherClaimLine:
    """Run the rules on one open line and record the decision (paid amount or denial reason)."""
    x = _lock_line(session, line_id, expected_version)
    if x.status != "open":
        raise Conflict(
            f"Claim line {line_id} is already {x.status} (by {x.decided_by}); appeal to re-open it."
        )
    book, usage = _book_and_usage(session, x)
    d = rules.adjudicate(_rule_line(x), book, usage)
    x.status, x.paid_units, x.paid_cents = d.status, d.paid_units, d.paid_cents
    x.reason = d.reason.value if d.reason else None
    if not d.denied:
        v = session.get(Voucher, x.voucher_id)
        v.paid_cents += d.paid_cents
        v.paid_units += d.paid_units
        _ledger(session, v, "pay", d.paid_cents, on, by, x.id)
    _record(session, x, "adjudicate", by, note)
    return x


def adjudicate_open(session: Session, by: str, on: date, file_id: int | None = None) -> int:
    """Adjudicate every open line (of one file, or all) in the order received; returns how many."""
    q = select(VoucherClaimLine.id).where(VoucherClaimLine.status == "open").order_by(VoucherClaimLine.id)
    if file_id is not None:
        q = q.where(VoucherClaimLine.file_id == file_id)
    ids = list(session.scalars(q))
    for line_id in ids:
        adjudicate_line(session, line_id, by, on)
    return len(ids)


def appeal(session: Session, line_id: int, by: str, on: date, note: str, expected_version: int | None = None):
    """Re-open a decided line (the provider appealed): what it was paid goes back to its voucher, the
    line is ``open`` again for adjudication, and the appeal is a decision with its note."""
    if not note.strip():
        raise VoucherError("an appeal needs a note saying why")
    x = _lock_line(session, line_id, expected_version)
    if x.status == "open":
        raise Conflict(f"Claim line {line_id} is already open.")
    if x.status in PAID and x.paid_cents:
        v = session.get(Voucher, x.voucher_id)
        v.paid_cents -= x.paid_cents
        v.paid_units -= x.paid_units
        _ledger(session, v, "unpay", x.paid_cents, on, by, x.id)
    x.status, x.paid_units, x.paid_cents, x.reason = "open", 0, 0, None
    _record(session, x, "appeal", by, note.strip())
    return x


def history(session: Session, line_id: int) -> list[VoucherDecision]:
    q = select(VoucherDecision).where(VoucherDecision.line_id == line_id).order_by(VoucherDecision.seq)
    return list(session.scalars(q))


# -- budget ---------------------------------------------------------------------------------------------
def position(session: Session, budget_line_id: str, as_of: date) -> budget_rules.Position:
    line = session.get(VoucherBudgetLine, budget_line_id)
    if line is None:
        raise NotFound(f"No budget line {budget_line_id!r}.")
    # plain columns, not ORM objects: issuing reads every voucher of the line once per voucher issued
    rows = session.execute(
        select(Voucher.max_cents, Voucher.paid_cents, Voucher.expires_on, Voucher.voided, Voucher.max_units,
               Voucher.paid_units).where(Voucher.budget_line_id == budget_line_id)
    )  # fmt: skip
    money = (
        budget_rules.VoucherMoney(m, p, e, v, mu is not None and pu >= mu) for m, p, e, v, mu, pu in rows
    )
    return budget_rules.position(line.amount_cents, money, as_of)


def ledger_totals(session: Session, budget_line_id: str) -> dict[str, int]:
    rows = session.execute(
        select(VoucherLedger.kind, func.sum(VoucherLedger.amount_cents))
        .where(VoucherLedger.budget_line_id == budget_line_id)
        .group_by(VoucherLedger.kind)
    )
    out: dict[str, int] = defaultdict(int)
    out.update({k: int(s) for k, s in rows})
    return out


def reconcile(session: Session, budget_line_id: str, as_of: date) -> list[str]:
    """Problems (none when the books agree): paid + encumbered + remaining = budget with remaining >= 0,
    and three independent records of what was paid agree -- the ledger, the vouchers' running totals,
    the paid claim lines -- as do the ledger's encumbrances and the vouchers' maxima."""
    pos = position(session, budget_line_id, as_of)
    line = session.get(VoucherBudgetLine, budget_line_id)
    led = ledger_totals(session, budget_line_id)
    ids = select(Voucher.id).where(Voucher.budget_line_id == budget_line_id)
    lines_paid = session.scalar(
        select(func.coalesce(func.sum(VoucherClaimLine.paid_cents), 0)).where(
            VoucherClaimLine.status.in_(PAID), VoucherClaimLine.voucher_id.in_(ids)
        )
    )
    issued = session.scalar(
        select(func.coalesce(func.sum(Voucher.max_cents), 0)).where(Voucher.budget_line_id == budget_line_id)
    )
    problems = []
    if pos.paid_cents + pos.encumbered_cents + pos.remaining_cents != line.amount_cents:
        problems.append("paid + encumbered + remaining != budget")
    if pos.remaining_cents < 0:
        problems.append(f"remaining is negative: {pos.remaining_cents}")
    if led["pay"] - led["unpay"] != pos.paid_cents:
        problems.append(f"ledger paid {led['pay'] - led['unpay']} != vouchers paid {pos.paid_cents}")
    if lines_paid != pos.paid_cents:
        problems.append(f"claim lines paid {lines_paid} != vouchers paid {pos.paid_cents}")
    if led["encumber"] != issued:
        problems.append(f"ledger encumbered {led['encumber']} != vouchers issued {issued}")
    return problems


def payments(session: Session, budget_line_id: str) -> list[tuple[date, int]]:
    """(day, cents) of every payment and reversal on the line, for the burn-down."""
    rows = session.execute(
        select(VoucherLedger.on_day, VoucherLedger.kind, VoucherLedger.amount_cents).where(
            VoucherLedger.budget_line_id == budget_line_id, VoucherLedger.kind.in_(("pay", "unpay"))
        )
    )
    return [(d, c if k == "pay" else -c) for d, k, c in rows]
