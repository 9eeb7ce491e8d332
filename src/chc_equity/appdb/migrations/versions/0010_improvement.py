"""Readiness assessments (and their responses), improvement projects, their measures, PDSA cycles and
the append-only history of all three.

Revision ID: 0010
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _audit() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(200), nullable=False),
        sa.Column("rubric_id", sa.String(64), nullable=False),
        sa.Column("rubric_version", sa.String(32), nullable=False),
        sa.Column("assessed_on", sa.Date, nullable=False),
        sa.Column("note", sa.Text),
        *_audit(),
    )
    op.create_index("assessments_center", "assessments", ["center", "assessed_on"])
    op.create_table(
        "assessment_responses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "assessment_id",
            sa.Integer,
            sa.ForeignKey("assessments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("rater", sa.String(100), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("evidence_url", sa.String(500)),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("assessment_id", "item_id", "rater", name="assessment_responses_key"),
    )
    op.create_table(
        "improvement_projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("aim", sa.Text, nullable=False),
        sa.Column("baseline", sa.Float),
        sa.Column("target", sa.Float),
        sa.Column("target_date", sa.Date),
        sa.Column("baseline_end", sa.Date),
        sa.Column("series_kind", sa.String(16), nullable=False),
        sa.Column("team", sa.Text),
        sa.Column("rubric_items", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        *_audit(),
    )
    op.create_index("improvement_projects_center", "improvement_projects", ["center"])
    project_fk = sa.ForeignKey("improvement_projects.id", ondelete="CASCADE")
    op.create_table(
        "project_measures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, project_fk, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("measure", sa.String(20), nullable=False),
        sa.Column("stratum_dimension", sa.String(64)),
        sa.Column("stratum", sa.String(200)),
    )
    op.create_index("ix_project_measures_project_id", "project_measures", ["project_id"])
    op.create_table(
        "pdsa_cycles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("improvement_projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("change_idea", sa.String(200), nullable=False),
        sa.Column("plan", sa.Text),
        sa.Column("prediction", sa.Text),
        sa.Column("do", sa.Text),
        sa.Column("study", sa.Text),
        sa.Column("act", sa.Text),
        sa.Column("decision", sa.String(16)),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("new_phase", sa.Boolean, nullable=False),
        *_audit(),
    )
    op.create_index("ix_pdsa_cycles_project_id", "pdsa_cycles", ["project_id"])
    op.create_table(
        "improvement_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.UniqueConstraint("kind", "record_id", "version", name="improvement_revisions_version"),
    )


def downgrade() -> None:
    for table in (
        "improvement_revisions",
        "pdsa_cycles",
        "project_measures",
        "improvement_projects",
        "assessment_responses",
        "assessments",
    ):
        op.drop_table(table)
