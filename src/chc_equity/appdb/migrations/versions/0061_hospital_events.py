"""Hospital partner data (issue 21, chc_equity.vbp): ADT events, their quarantine, and the review queue of
uncertain patient matches.

Revision ID: 0061
Revises: 0050
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0061"
down_revision = "0050"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _col(name: str, type_, *args, **kw) -> sa.Column:
    """A NOT NULL column (most of them are)."""
    kw.setdefault("nullable", False)
    return sa.Column(name, type_, *args, **kw)


def upgrade() -> None:
    op.create_table(
        "hospital_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("center", sa.String(200)),
        _col("event_key", sa.String(400)),
        _col("source", sa.String(300)),
        _col("message_no", sa.Integer),
        _col("line", sa.Integer),
        _col("origin", sa.String(8)),
        _col("event_type", sa.String(3)),
        _col("hospital", sa.String(200)),
        _col("patient_class", sa.String(2)),
        _col("visit_number", sa.String(200)),
        sa.Column("event_time", sa.DateTime),
        sa.Column("admit_at", sa.DateTime),
        sa.Column("discharge_at", sa.DateTime),
        _col("disposition", sa.String(16)),
        _col("identifiers", sa.Text),
        _col("family", sa.String(200)),
        _col("given", sa.String(200)),
        sa.Column("birth_date", sa.Date),
        _col("sex", sa.String(1)),
        _col("postal_code", sa.String(10)),
        sa.Column("patient_id", sa.String(200)),
        _col("match_status", sa.String(16)),
        _col("match_method", sa.String(16)),
        _col("imported_by", sa.String(64)),
        _col("imported_at", TS),
        sa.UniqueConstraint("center", "event_key", name="hospital_events_key"),
    )
    op.create_index("hospital_events_patient", "hospital_events", ["center", "patient_id"])
    op.create_index("hospital_events_status", "hospital_events", ["center", "match_status"])
    op.create_table(
        "hospital_quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("center", sa.String(200)),
        _col("source", sa.String(300)),
        _col("message_no", sa.Integer),
        _col("line", sa.Integer),
        _col("location", sa.String(64)),
        _col("reason", sa.Text),
        _col("imported_at", TS),
    )
    op.create_index("hospital_quarantine_center", "hospital_quarantine", ["center", "imported_at"])
    op.create_table(
        "hospital_match_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _col("event_id", sa.Integer, sa.ForeignKey("hospital_events.id", ondelete="CASCADE")),
        _col("center", sa.String(200)),
        _col("candidate_id", sa.String(200)),
        _col("score", sa.Float),
        _col("reason", sa.String(200)),
        _col("status", sa.String(16)),
        _col("version", sa.Integer),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", TS),
        sa.UniqueConstraint("event_id", "candidate_id", name="hospital_match_reviews_candidate"),
    )
    op.create_index("hospital_match_reviews_queue", "hospital_match_reviews", ["center", "status"])


def downgrade() -> None:
    op.drop_table("hospital_match_reviews")
    op.drop_table("hospital_quarantine")
    op.drop_table("hospital_events")
