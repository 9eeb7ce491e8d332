"""CHWs, per-center panel setting, patient assignments, outreach records and their revisions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "center_settings",
        sa.Column("center", sa.String(200), primary_key=True),
        sa.Column("panel_only", sa.Boolean, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "chws",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("center", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("username", sa.String(64), unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(200)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("center", "source", "source_id", name="chws_source_key"),
    )
    op.create_index("ix_chws_center", "chws", ["center"])
    op.create_table(
        "assignments",
        sa.Column("center", sa.String(200), primary_key=True),
        sa.Column("patient_id", sa.String(200), primary_key=True),
        sa.Column("chw_id", sa.String(64), sa.ForeignKey("chws.id", ondelete="CASCADE"), nullable=False),
        sa.Column("assigned_by", sa.String(64), nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
    )
    op.create_index("assignments_chw", "assignments", ["chw_id"])
    op.create_table(
        "outreach",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(200), nullable=False),
        sa.Column("patient_id", sa.String(200), nullable=False),
        sa.Column("chw_id", sa.String(64), sa.ForeignKey("chws.id", ondelete="SET NULL")),
        sa.Column("contact_date", sa.Date, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(300)),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("created_by", "idempotency_key", name="outreach_idempotency_key"),
        sa.UniqueConstraint("source", "source_id", name="outreach_source_key"),
    )
    op.create_index("outreach_patient", "outreach", ["center", "patient_id", "contact_date"])
    op.create_table(
        "outreach_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outreach_id", sa.Integer, sa.ForeignKey("outreach.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("contact_date", sa.Date, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("chw_id", sa.String(64)),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.UniqueConstraint("outreach_id", "version", name="outreach_revisions_version"),
    )


def downgrade() -> None:
    for table in ("outreach_revisions", "outreach", "assignments", "chws", "center_settings"):
        op.drop_table(table)
