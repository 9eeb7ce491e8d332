"""The farmworker voucher program's pages (role ``program_staff`` only): verify eligibility, issue
vouchers, import claims files, adjudicate and appeal claim lines, see the budget.

Pages under ``/vouchers``; every rule is in ``chc_equity.vouchers`` (store + rules), so a page only
parses its form, opens one app-database transaction and shows the outcome. A refused request renders
the page again with the rule's message and its status (400 rule, 404 unknown, 409 conflict, 422 form).
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from chc_equity.appdb.models import Voucher as VoucherRow
from chc_equity.appdb.models import (
    VoucherBudgetLine,
    VoucherClaimFile,
    VoucherClaimLine,
    VoucherPerson,
    VoucherProvider,
)
from chc_equity.vouchers import report, rules, store
from chc_equity.vouchers.claims_file import ClaimsFileError, read_claims
from chc_equity.vouchers.setup import dollars
from chc_equity.web.roles import VOUCHER_ROLES, Principal
from chc_equity.web.security import csrf_protect, require_role

pages = APIRouter(include_in_schema=False)
STAFF = require_role(*VOUCHER_ROLES)
Staff = Annotated[Principal, Depends(STAFF)]
MAX_UPLOAD = 20 * 1024 * 1024
STATUSES = ("open", "paid", "reduced", "denied")


def _today() -> date:
    return date.today()


def _status_of(exc: Exception) -> int:
    if isinstance(exc, store.Conflict):
        return 409
    if isinstance(exc, store.NotFound):
        return 404
    return 400


def _render(request: Request, template: str, user: Principal, status: int = 200, **context) -> Response:
    context.update(user=user, csrf_token=user.csrf_token, dollars=dollars, status=status)
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def _program_page(
    request: Request, user: Principal, message: str | None = None, status: int = 200
) -> Response:
    today = _today()
    with request.app.state.db.read() as s:
        context = dict(
            budgets=report.budget_rows(s, today),
            counts=report.claim_counts(s),
            reasons=report.denial_reasons(s),
            due=report.reverification_due(s, today),
            figures=report.program_figures(s, today.year),
            table4=report.uds_table4(s, today.year),
            by_type=report.services(s, today.year, "type"),
            by_provider=report.services(s, today.year, "provider"),
            budget_lines=[(b.id, b.name) for b in s.scalars(select(VoucherBudgetLine))],
            providers=[
                (p.id, p.name) for p in s.scalars(select(VoucherProvider).order_by(VoucherProvider.id))
            ],
            vouchers=list(s.scalars(select(VoucherRow).order_by(VoucherRow.issued_at.desc()).limit(50))),
        )
    return _render(request, "vouchers.html", user, status, message=message, today=today,
                   key=secrets.token_urlsafe(16), status_of=store.voucher_status, **context)  # fmt: skip


@pages.get("/vouchers")
def program_page(request: Request, user: Staff) -> Response:
    """Budget lines (paid, encumbered, remaining, warnings, burn-down), claims, denial reasons, the
    re-verification list, and the forms to verify eligibility and issue a voucher."""
    return _program_page(request, user)


@pages.post("/vouchers/verify", dependencies=[Depends(csrf_protect)])
def verify_page(
    request: Request,
    user: Staff,
    patient_id: Annotated[str, Form(min_length=1, max_length=64)],
    household: Annotated[str, Form(min_length=1, max_length=64)],
    relationship: Annotated[str, Form(pattern="^(worker|dependent)$")],
    zip_code: Annotated[str, Form(pattern=r"^\d{5}$")],
    state: Annotated[str, Form(pattern="^[A-Z]{2}$")],
    naics: Annotated[str, Form(pattern=r"^\d{3,6}$")],
    last_ag_work: Annotated[date, Form()],
    insurance: Annotated[str, Form(pattern="^(uninsured|underinsured|insured)$")],
    documents: Annotated[str, Form(max_length=500)] = "",
    temporary_home: Annotated[bool, Form()] = False,
    h2a: Annotated[bool, Form()] = False,
    birth_date: Annotated[date | None, Form()] = None,
    sex: Annotated[str, Form(pattern="^(F|M)?$")] = "",
) -> Response:
    """Record who the person is and what was seen; the eligibility rule decides the category. Birth
    date and sex at birth are optional here but needed for UDS reporting (docs/vouchers.md); a later
    verification that leaves them blank keeps what was recorded."""
    today = _today()
    docs = tuple(d.strip() for d in documents.split(",") if d.strip())
    result = rules.classify(rules.WorkFacts(naics, last_ag_work, temporary_home, h2a, insurance, docs), today)
    if result.category is None:
        return _program_page(request, user, "Not eligible: " + "; ".join(result.problems), status=400)
    try:
        with request.app.state.db.write() as s:
            person = s.get(VoucherPerson, patient_id) or VoucherPerson(id=patient_id)
            person.household, person.relationship = household, relationship
            person.zip, person.state = zip_code, state
            person.birth_date = birth_date or person.birth_date
            person.sex = sex or person.sex
            s.add(person)
            s.flush()
            store.record_verification(s, patient_id, result.category, today, user.username,
                                      insurance=insurance, documents=", ".join(docs), naics=naics,
                                      h2a=h2a)  # fmt: skip
    except (store.VoucherError, store.NotFound) as exc:
        return _program_page(request, user, str(exc), status=_status_of(exc))
    return _program_page(request, user, f"{patient_id} verified {result.category} until "
                         f"{rules.Eligibility(patient_id, result.category, today).valid_until}.")  # fmt: skip


@pages.post("/vouchers/issue", dependencies=[Depends(csrf_protect)])
def issue_page(
    request: Request,
    user: Staff,
    patient_id: Annotated[str, Form(min_length=1, max_length=64)],
    budget_line_id: Annotated[str, Form(min_length=1, max_length=64)],
    services: Annotated[str, Form(min_length=1, max_length=500)],
    issued_on: Annotated[date, Form()],
    expires_on: Annotated[date, Form()],
    max_amount: Annotated[str, Form(pattern=r"^\d{1,7}(\.\d{1,2})?$")],
    idempotency_key: Annotated[str, Form(min_length=8, max_length=200)],
    provider_id: Annotated[str, Form(max_length=64)] = "",
    max_units: Annotated[int | None, Form(ge=1, le=10_000)] = None,
) -> Response:
    """Issue a voucher (its hidden key makes a double submit harmless)."""
    from chc_equity.vouchers.setup import cents

    try:
        with request.app.state.db.write() as s:
            v, created = store.issue(
                s, patient_id=patient_id, budget_line_id=budget_line_id, services=services.split(","),
                issued_on=issued_on, expires_on=expires_on, max_cents=cents(max_amount), by=user.username,
                max_units=max_units, provider_id=provider_id or None, idempotency_key=idempotency_key,
            )  # fmt: skip
            voucher_id = v.id
    except (store.VoucherError, store.NotFound, store.Conflict) as exc:
        return _program_page(request, user, str(exc), status=_status_of(exc))
    word = "Issued" if created else "Already issued"
    return _program_page(request, user, f"{word} voucher {voucher_id}.")


@pages.get("/vouchers/households")
def households_page(
    request: Request, user: Staff, household: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """The household view: each member's category, verification, vouchers and what was paid."""
    with request.app.state.db.read() as s:
        listing = report.households(s, household or None)
    return _render(
        request, "voucher_households.html", user, listing=listing, household=household, today=_today()
    )


def _claims_page(
    request: Request,
    user: Principal,
    status_filter: str | None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    with request.app.state.db.read() as s:
        q = select(VoucherClaimLine).order_by(VoucherClaimLine.id.desc()).limit(500)
        if status_filter:
            q = q.where(VoucherClaimLine.status == status_filter)
        lines = list(s.scalars(q))
        files = list(s.scalars(select(VoucherClaimFile).order_by(VoucherClaimFile.id.desc()).limit(20)))
        counts = report.claim_counts(s)
    return _render(request, "voucher_claims.html", user, status, lines=lines, files=files, counts=counts,
                   statuses=STATUSES, status_filter=status_filter, message=message,
                   reason_text=rules.REASON_TEXT)  # fmt: skip


@pages.get("/vouchers/claims")
def claims_page(
    request: Request,
    user: Staff,
    status: Annotated[str | None, Query(pattern="^(open|paid|reduced|denied)$")] = None,
) -> Response:
    """Claim lines (newest first, or one status), the files imported, and the upload form."""
    return _claims_page(request, user, status)


@pages.post("/vouchers/claims/import", dependencies=[Depends(csrf_protect)])
async def import_page(request: Request, user: Staff) -> Response:
    """Import a claims file (CSV or .xlsx, the documented template) in one transaction."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        text = "Choose a claims file (.csv, .xlsx, .json or .ndjson)."
        return _claims_page(request, user, None, text, status=422)
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return _claims_page(request, user, None, "The file is larger than 20 MB.", status=413)
    try:
        parsed = read_claims(upload.filename, data)
        with request.app.state.db.write() as s:
            result = store.import_claims(s, parsed, user.username)
    except ClaimsFileError as exc:
        return _claims_page(request, user, None, str(exc), status=422)
    except store.Conflict as exc:
        return _claims_page(request, user, None, str(exc), status=409)
    if result.replay:
        text = f"{parsed.name} was imported before: nothing added."
    else:
        text = (f"Imported {parsed.name}: {result.new_lines} new line(s), {result.already_received} already "
                f"received, {result.rejects} rejected.")  # fmt: skip
        if parsed.rejects:
            text += " " + "; ".join(f"line {r.line} {r.field}: {r.reason}" for r in parsed.rejects[:5])
    return _claims_page(request, user, "open", text)


@pages.post("/vouchers/claims/adjudicate-open", dependencies=[Depends(csrf_protect)])
def adjudicate_open_page(
    request: Request, user: Staff, confirm: Annotated[str, Form(pattern="^yes$")]
) -> Response:
    """Run the rules on every open line, in the order received."""
    try:
        with request.app.state.db.write() as s:
            n = store.adjudicate_open(s, user.username, _today())
    except store.Conflict as exc:
        return _claims_page(request, user, "open", str(exc), status=409)
    return _claims_page(request, user, None, f"Adjudicated {n} line(s).")


@pages.post("/vouchers/claims/{record_id}/adjudicate", dependencies=[Depends(csrf_protect)])
def adjudicate_page(
    request: Request,
    record_id: int,
    user: Staff,
    version: Annotated[int, Form(ge=1)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Adjudicate one line (the version you saw: 409 when someone decided it meanwhile)."""
    try:
        with request.app.state.db.write() as s:
            x = store.adjudicate_line(s, record_id, user.username, _today(), version, note.strip() or None)
            text = f"Line {x.id}: {x.status} {dollars(x.paid_cents)}" + (f" ({x.reason})" if x.reason else "")
    except (store.Conflict, store.NotFound) as exc:
        return _claims_page(request, user, None, str(exc), status=_status_of(exc))
    return _claims_page(request, user, None, text)


@pages.post("/vouchers/claims/{record_id}/appeal", dependencies=[Depends(csrf_protect)])
def appeal_page(
    request: Request,
    record_id: int,
    user: Staff,
    version: Annotated[int, Form(ge=1)],
    note: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    """Re-open a decided line on appeal (what it was paid goes back to its voucher)."""
    try:
        with request.app.state.db.write() as s:
            store.appeal(s, record_id, user.username, _today(), note, version)
    except (store.Conflict, store.NotFound, store.VoucherError) as exc:
        return _claims_page(request, user, None, str(exc), status=_status_of(exc))
    return RedirectResponse("/vouchers/claims?status=open", status_code=303)
