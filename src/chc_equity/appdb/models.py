"""The app database's tables as typed SQLAlchemy 2 models: what people write (users, CHWs, outreach).

The schema itself is owned by the Alembic migrations in ``migrations/versions``; these models describe
the same tables for queries. A test (tests/test_appdb.py) checks that the migrated schema and the models
agree, so the two cannot drift apart silently.

Times are stored two ways on purpose: the auth tables keep the float epoch seconds they always had (the
session and throttle arithmetic is in seconds); the CHW and outreach tables use timezone-aware
timestamps, which PostgreSQL stores natively and people read in reports.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# -- users, sessions, login throttling (moved from <warehouse>.auth.sqlite) -------------------------
class User(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    center: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class UserSession(Base):
    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (
        Index("login_failures_key", "username", "ip", "at"),
        Index("login_failures_ip", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)


# -- CHWs, panels, outreach ----------------------------------------------------------------------------
class CenterSetting(Base):
    """Per-center program settings; ``panel_only``: a CHW sees only the patients assigned to them."""

    __tablename__ = "center_settings"

    center: Mapped[str] = mapped_column(String(200), primary_key=True)
    panel_only: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Chw(Base):
    """A community health worker of one center: added in the app or imported from the warehouse.

    ``username`` links the record to the web user (role ``chw``) who works as this CHW; an imported
    CHW has none until a program manager links one. ``source``/``source_id`` make imports idempotent.
    """

    __tablename__ = "chws"
    __table_args__ = (UniqueConstraint("center", "source", "source_id", name="chws_source_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    center: Mapped[str] = mapped_column(String(200), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # "app" | "fhir"
    source_id: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    """The CHW a patient is assigned to (one per patient and center; re-assigning replaces it)."""

    __tablename__ = "assignments"
    __table_args__ = (Index("assignments_chw", "chw_id"),)

    center: Mapped[str] = mapped_column(String(200), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    chw_id: Mapped[str] = mapped_column(ForeignKey("chws.id", ondelete="CASCADE"))
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Outreach(Base):
    """One outreach attempt, in its current version (every version is also in ``outreach_revisions``).

    ``idempotency_key`` is unique per author, so a retried create returns the first record instead of
    adding a second one; ``source``/``source_id`` do the same for records imported from FHIR.
    """

    __tablename__ = "outreach"
    __table_args__ = (
        UniqueConstraint("created_by", "idempotency_key", name="outreach_idempotency_key"),
        UniqueConstraint("source", "source_id", name="outreach_source_key"),
        Index("outreach_patient", "center", "patient_id", "contact_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str] = mapped_column(String(200))
    chw_id: Mapped[str | None] = mapped_column(ForeignKey("chws.id", ondelete="SET NULL"))
    contact_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    minutes: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[str] = mapped_column(String(16))  # "app" | "fhir"
    source_id: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutreachRevision(Base):
    """Append-only history: one row per version of an outreach record, never updated or deleted."""

    __tablename__ = "outreach_revisions"
    __table_args__ = (UniqueConstraint("outreach_id", "version", name="outreach_revisions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outreach_id: Mapped[int] = mapped_column(ForeignKey("outreach.id"))
    version: Mapped[int] = mapped_column(Integer)
    contact_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    minutes: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    chw_id: Mapped[str | None] = mapped_column(String(64))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- improvement: readiness assessments, improvement projects, PDSA cycles (issue 15) -------------------
class Assessment(Base):
    """One readiness assessment of a center, scored with the rubric ``rubric_id``/``rubric_version``
    (a file: chc_equity.improvement.rubric); its responses are ``assessment_responses``."""

    __tablename__ = "assessments"
    __table_args__ = (Index("assessments_center", "center", "assessed_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(200))
    rubric_id: Mapped[str] = mapped_column(String(64))
    rubric_version: Mapped[str] = mapped_column(String(32))
    assessed_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssessmentResponse(Base):
    """One rater's level for one rubric item, with the evidence they point to."""

    __tablename__ = "assessment_responses"
    __table_args__ = (UniqueConstraint("assessment_id", "item_id", "rater", name="assessment_responses_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(64))
    rater: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer)
    evidence_url: Mapped[str | None] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(Text)


class ImprovementProject(Base):
    """An improvement project of one center: its aim (what, how much, by when, for whom), team, the
    rubric items it addresses, status; its measures are ``project_measures``, its cycles ``pdsa_cycles``."""

    __tablename__ = "improvement_projects"
    __table_args__ = (Index("improvement_projects_center", "center"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    aim: Mapped[str] = mapped_column(Text)
    baseline: Mapped[float | None] = mapped_column(Float)
    target: Mapped[float | None] = mapped_column(Float)
    target_date: Mapped[date | None] = mapped_column(Date)
    baseline_end: Mapped[date | None] = mapped_column(Date)
    series_kind: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(Text)
    rubric_items: Mapped[str | None] = mapped_column(Text)  # item ids, comma-separated
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProjectMeasure(Base):
    """A measure of a project's family: outcome, process or balancing; an eCQM (CMS id) or a social-needs
    metric (``sdoh:<metric>[:<domain>]``), optionally for a stratum."""

    __tablename__ = "project_measures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("improvement_projects.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    measure: Mapped[str] = mapped_column(String(64))
    stratum_dimension: Mapped[str | None] = mapped_column(String(64))
    stratum: Mapped[str | None] = mapped_column(String(200))


class PdsaCycle(Base):
    """One Plan-Do-Study-Act cycle of a project; ``new_phase``: the chart starts a new phase after it
    (a change adopted for good), otherwise it is an annotation only."""

    __tablename__ = "pdsa_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("improvement_projects.id", ondelete="CASCADE"), index=True
    )
    change_idea: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str | None] = mapped_column(Text)
    prediction: Mapped[str | None] = mapped_column(Text)
    do: Mapped[str | None] = mapped_column(Text)
    study: Mapped[str | None] = mapped_column(Text)
    act: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(String(16))  # adopt | adapt | abandon
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    new_phase: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImprovementRevision(Base):
    """Append-only history of assessments, projects and PDSA cycles: every version as JSON."""

    __tablename__ = "improvement_revisions"
    __table_args__ = (UniqueConstraint("kind", "record_id", "version", name="improvement_revisions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # assessment | project | pdsa
    record_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- farmworker voucher program (chc_equity.vouchers; revision 0020) -----------------------------------
class VoucherBudgetLine(Base):
    """A grant year's budget line that vouchers are issued against (amounts in integer cents)."""

    __tablename__ = "voucher_budget_lines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_year: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)


class VoucherProvider(Base):
    """A participating provider (health center, private practice, pharmacy, dental, vision)."""

    __tablename__ = "voucher_providers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    npi: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(2))
    agreement_start: Mapped[date] = mapped_column(Date)
    agreement_end: Mapped[date | None] = mapped_column(Date)


class VoucherFee(Base):
    """One effective-dated fee schedule entry for a service code, with its unit limits."""

    __tablename__ = "voucher_fees"
    __table_args__ = (UniqueConstraint("code", "effective_from", name="voucher_fees_code_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32))
    system: Mapped[str] = mapped_column(String(16))
    service_type: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    voucher_unit_limit: Mapped[int | None] = mapped_column(Integer)
    year_unit_limit: Mapped[int | None] = mapped_column(Integer)


class VoucherPerson(Base):
    """A worker or dependent known to the program (a program id, never an EHR identifier)."""

    __tablename__ = "voucher_people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    household: Mapped[str] = mapped_column(String(64), index=True)
    relationship: Mapped[str] = mapped_column(String(16))  # worker | dependent
    zip: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(2))
    # for UDS reporting (age, sex at birth); optional: a person without them is listed, not reported
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))  # F | M


class VoucherVerification(Base):
    """One eligibility verification: category, what was seen, by whom and when (valid for a year)."""

    __tablename__ = "voucher_verifications"
    __table_args__ = (Index("voucher_verifications_patient", "patient_id", "verified_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("voucher_people.id"))
    category: Mapped[str] = mapped_column(String(16))  # migratory | seasonal
    h2a: Mapped[bool] = mapped_column(Boolean, default=False)
    naics: Mapped[str | None] = mapped_column(String(6))
    insurance: Mapped[str] = mapped_column(String(16))
    documents: Mapped[str] = mapped_column(Text)
    verified_on: Mapped[date] = mapped_column(Date)
    verified_by: Mapped[str] = mapped_column(String(64))


class Voucher(Base):
    """A voucher: who, which services, which provider (None: any), dates, maximum amount and units.

    ``paid_cents``/``paid_units`` are running totals kept by adjudication under a row lock; ``version``
    makes edits (void) optimistic. Status is derived (vouchers.budget.VoucherMoney.status).
    """

    __tablename__ = "vouchers"
    __table_args__ = (UniqueConstraint("issued_by", "idempotency_key", name="vouchers_idempotency_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("voucher_people.id"), index=True)
    budget_line_id: Mapped[str] = mapped_column(ForeignKey("voucher_budget_lines.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("voucher_providers.id"))
    services: Mapped[str] = mapped_column(Text)  # codes, comma-separated
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    max_cents: Mapped[int] = mapped_column(Integer)
    max_units: Mapped[int | None] = mapped_column(Integer)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    paid_units: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoucherClaimFile(Base):
    """One imported claims file; its SHA-256 is unique, so importing the same bytes again adds nothing."""

    __tablename__ = "voucher_claim_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lines: Mapped[int] = mapped_column(Integer)
    already_received: Mapped[int] = mapped_column(Integer)
    rejects: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoucherClaimLine(Base):
    """A claim line as received and its current decision (every decision is in ``voucher_decisions``).

    ``(provider_id, claim_no, claim_line)`` is unique: the same line sent again, in the same file or
    another, is received once and paid at most once.
    """

    __tablename__ = "voucher_claim_lines"
    __table_args__ = (
        UniqueConstraint("provider_id", "claim_no", "claim_line", name="voucher_claim_lines_key"),
        Index("voucher_claim_lines_patient", "patient_id", "status"),
        Index("voucher_claim_lines_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("voucher_claim_files.id"), index=True)
    file_line: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[str] = mapped_column(String(64))
    claim_no: Mapped[str] = mapped_column(String(64))
    claim_line: Mapped[int] = mapped_column(Integer)
    voucher_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(64))
    service_date: Mapped[date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(32))
    units: Mapped[int] = mapped_column(Integer)
    billed_cents: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # open | paid | reduced | denied
    paid_units: Mapped[int] = mapped_column(Integer, default=0)
    paid_cents: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VoucherDecision(Base):
    """Append-only: every adjudication and appeal of a line, with who, when and why."""

    __tablename__ = "voucher_decisions"
    __table_args__ = (UniqueConstraint("line_id", "seq", name="voucher_decisions_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("voucher_claim_lines.id"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # adjudicate | appeal
    status: Mapped[str] = mapped_column(String(16))
    paid_units: Mapped[int] = mapped_column(Integer)
    paid_cents: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoucherClaimReject(Base):
    """A row of a claims file that could not be read: file, line, field and why."""

    __tablename__ = "voucher_claim_rejects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("voucher_claim_files.id"), index=True)
    file_line: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)


class VoucherLedger(Base):
    """Double entry for the budget: encumber (issue), release (void), pay, unpay (appeal re-opens)."""

    __tablename__ = "voucher_ledger"
    __table_args__ = (Index("voucher_ledger_line", "budget_line_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    budget_line_id: Mapped[str] = mapped_column(ForeignKey("voucher_budget_lines.id"))
    voucher_id: Mapped[str] = mapped_column(ForeignKey("vouchers.id"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("voucher_claim_lines.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)
    on_day: Mapped[date] = mapped_column(Date)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# -- hospital partner data (chc_equity.vbp: ADT events, matching review queue; revision 0061) ---------
class HospitalEvent(Base):
    """One admission / discharge / transfer event from a partner hospital (HL7 v2 ADT or FHIR Encounter).

    Kept here, not in the warehouse, because feeds arrive many times a day and staff decide the uncertain
    matches; ``event_key`` (hospital | control id | event) makes a re-sent message a no-op."""

    __tablename__ = "hospital_events"
    __table_args__ = (
        UniqueConstraint("center", "event_key", name="hospital_events_key"),
        Index("hospital_events_patient", "center", "patient_id"),
        Index("hospital_events_status", "center", "match_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(200))
    event_key: Mapped[str] = mapped_column(String(400))
    source: Mapped[str] = mapped_column(String(300))
    message_no: Mapped[int] = mapped_column(Integer)
    line: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(8))  # hl7v2 | fhir
    event_type: Mapped[str] = mapped_column(String(3))
    hospital: Mapped[str] = mapped_column(String(200))
    patient_class: Mapped[str] = mapped_column(String(2))
    visit_number: Mapped[str] = mapped_column(String(200))
    event_time: Mapped[datetime | None] = mapped_column(DateTime)
    admit_at: Mapped[datetime | None] = mapped_column(DateTime)
    discharge_at: Mapped[datetime | None] = mapped_column(DateTime)
    disposition: Mapped[str] = mapped_column(String(16))
    identifiers: Mapped[str] = mapped_column(Text)  # JSON [[authority, value, type], ...]
    family: Mapped[str] = mapped_column(String(200))
    given: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    postal_code: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[str | None] = mapped_column(String(200))
    match_status: Mapped[str] = mapped_column(String(16))  # matched | review | unmatched
    match_method: Mapped[str] = mapped_column(String(16))  # identifier | demographics | review | ""
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HospitalQuarantine(Base):
    """A message set aside at import: where (file, message, line, segment-field) and why; no patient data."""

    __tablename__ = "hospital_quarantine"
    __table_args__ = (Index("hospital_quarantine_center", "center", "imported_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(300))
    message_no: Mapped[int] = mapped_column(Integer)
    line: Mapped[int] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HospitalMatchReview(Base):
    """One candidate patient for an uncertain match; staff confirm one or reject (optimistic ``version``)."""

    __tablename__ = "hospital_match_reviews"
    __table_args__ = (
        UniqueConstraint("event_id", "candidate_id", name="hospital_match_reviews_candidate"),
        Index("hospital_match_reviews_queue", "center", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("hospital_events.id", ondelete="CASCADE"))
    center: Mapped[str] = mapped_column(String(200))
    candidate_id: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # pending | confirmed | rejected
    version: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
