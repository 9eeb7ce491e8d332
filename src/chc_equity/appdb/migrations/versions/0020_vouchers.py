"""Farmworker voucher program: budget lines, providers, fee schedule, people, verifications, vouchers,
claims files, claim lines, decisions, rejects and the budget ledger.

Revision ID: 0020
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _col(name: str, type_, *args, **kw) -> sa.Column:
    """A NOT NULL column (most of them are)."""
    kw.setdefault("nullable", False)
    return sa.Column(name, type_, *args, **kw)


def upgrade() -> None:
    op.create_table(
        "voucher_budget_lines",
        sa.Column("id", sa.String(64), primary_key=True),
        _col("grant_year", sa.Integer),
        _col("name", sa.String(200)),
        _col("amount_cents", sa.Integer),
        _col("starts_on", sa.Date),
        _col("ends_on", sa.Date),
    )
    op.create_table(
        "voucher_providers",
        sa.Column("id", sa.String(64), primary_key=True),
        _col("name", sa.String(200)),
        _col("kind", sa.String(32)),
        _col("npi", sa.String(10)),
        _col("state", sa.String(2)),
        _col("agreement_start", sa.Date),
        sa.Column("agreement_end", sa.Date),
    )
    op.create_table(
        "voucher_fees",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("code", sa.String(32)),
        _col("system", sa.String(16)),
        _col("service_type", sa.String(16)),
        _col("amount_cents", sa.Integer),
        _col("effective_from", sa.Date),
        sa.Column("effective_to", sa.Date),
        sa.Column("voucher_unit_limit", sa.Integer),
        sa.Column("year_unit_limit", sa.Integer),
        sa.UniqueConstraint("code", "effective_from", name="voucher_fees_code_from"),
    )
    op.create_table(
        "voucher_people",
        sa.Column("id", sa.String(64), primary_key=True),
        _col("household", sa.String(64)),
        _col("relationship", sa.String(16)),
        _col("zip", sa.String(10)),
        _col("state", sa.String(2)),
    )
    op.create_index("ix_voucher_people_household", "voucher_people", ["household"])
    op.create_table(
        "voucher_verifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("patient_id", sa.String(64), sa.ForeignKey("voucher_people.id")),
        _col("category", sa.String(16)),
        _col("h2a", sa.Boolean),
        sa.Column("naics", sa.String(6)),
        _col("insurance", sa.String(16)),
        _col("documents", sa.Text),
        _col("verified_on", sa.Date),
        _col("verified_by", sa.String(64)),
    )
    op.create_index("voucher_verifications_patient", "voucher_verifications", ["patient_id", "verified_on"])
    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(64), primary_key=True),
        _col("patient_id", sa.String(64), sa.ForeignKey("voucher_people.id")),
        _col("budget_line_id", sa.String(64), sa.ForeignKey("voucher_budget_lines.id")),
        sa.Column("provider_id", sa.String(64), sa.ForeignKey("voucher_providers.id")),
        _col("services", sa.Text),
        _col("issued_on", sa.Date),
        _col("expires_on", sa.Date),
        _col("max_cents", sa.Integer),
        sa.Column("max_units", sa.Integer),
        _col("voided", sa.Boolean),
        _col("paid_cents", sa.Integer),
        _col("paid_units", sa.Integer),
        _col("version", sa.Integer),
        sa.Column("idempotency_key", sa.String(200)),
        _col("issued_by", sa.String(64)),
        _col("issued_at", TS),
        sa.UniqueConstraint("issued_by", "idempotency_key", name="vouchers_idempotency_key"),
    )
    op.create_index("ix_vouchers_patient_id", "vouchers", ["patient_id"])
    op.create_index("ix_vouchers_budget_line_id", "vouchers", ["budget_line_id"])
    op.create_table(
        "voucher_claim_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("sha256", sa.String(64), unique=True),
        _col("name", sa.String(200)),
        _col("lines", sa.Integer),
        _col("already_received", sa.Integer),
        _col("rejects", sa.Integer),
        _col("imported_by", sa.String(64)),
        _col("imported_at", TS),
    )
    op.create_table(
        "voucher_claim_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("file_id", sa.Integer, sa.ForeignKey("voucher_claim_files.id")),
        _col("file_line", sa.Integer),
        _col("provider_id", sa.String(64)),
        _col("claim_no", sa.String(64)),
        _col("claim_line", sa.Integer),
        _col("voucher_id", sa.String(64)),
        _col("patient_id", sa.String(64)),
        _col("service_date", sa.Date),
        _col("code", sa.String(32)),
        _col("units", sa.Integer),
        _col("billed_cents", sa.Integer),
        _col("received_on", sa.Date),
        _col("status", sa.String(16)),
        _col("paid_units", sa.Integer),
        _col("paid_cents", sa.Integer),
        sa.Column("reason", sa.String(32)),
        _col("version", sa.Integer),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", TS),
        sa.UniqueConstraint("provider_id", "claim_no", "claim_line", name="voucher_claim_lines_key"),
    )
    op.create_index("ix_voucher_claim_lines_file_id", "voucher_claim_lines", ["file_id"])
    op.create_index("voucher_claim_lines_patient", "voucher_claim_lines", ["patient_id", "status"])
    op.create_index("voucher_claim_lines_status", "voucher_claim_lines", ["status"])
    op.create_table(
        "voucher_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("line_id", sa.Integer, sa.ForeignKey("voucher_claim_lines.id")),
        _col("seq", sa.Integer),
        _col("action", sa.String(16)),
        _col("status", sa.String(16)),
        _col("paid_units", sa.Integer),
        _col("paid_cents", sa.Integer),
        sa.Column("reason", sa.String(32)),
        sa.Column("note", sa.Text),
        _col("decided_by", sa.String(64)),
        _col("decided_at", TS),
        sa.UniqueConstraint("line_id", "seq", name="voucher_decisions_seq"),
    )
    op.create_table(
        "voucher_claim_rejects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("file_id", sa.Integer, sa.ForeignKey("voucher_claim_files.id")),
        _col("file_line", sa.Integer),
        _col("field", sa.String(32)),
        _col("reason", sa.Text),
    )
    op.create_index("ix_voucher_claim_rejects_file_id", "voucher_claim_rejects", ["file_id"])
    op.create_table(
        "voucher_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("budget_line_id", sa.String(64), sa.ForeignKey("voucher_budget_lines.id")),
        _col("voucher_id", sa.String(64), sa.ForeignKey("vouchers.id")),
        sa.Column("line_id", sa.Integer, sa.ForeignKey("voucher_claim_lines.id")),
        _col("kind", sa.String(16)),
        _col("amount_cents", sa.Integer),
        _col("on_day", sa.Date),
        _col("by", sa.String(64)),
        _col("at", TS),
    )
    op.create_index("voucher_ledger_line", "voucher_ledger", ["budget_line_id", "kind"])


def downgrade() -> None:
    for table in (
        "voucher_ledger",
        "voucher_claim_rejects",
        "voucher_decisions",
        "voucher_claim_lines",
        "voucher_claim_files",
        "vouchers",
        "voucher_verifications",
        "voucher_people",
        "voucher_fees",
        "voucher_providers",
        "voucher_budget_lines",
    ):
        op.drop_table(table)
