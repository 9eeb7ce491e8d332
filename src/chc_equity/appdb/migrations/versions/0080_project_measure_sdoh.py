"""A project's linked measure can be a social-needs metric (``sdoh:<metric>[:<domain>]``, e.g.
``sdoh:closure:interpersonal_safety``), longer than the 20 characters a CMS id needed.

Revision ID: 0080
Revises: 0061
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0080"
down_revision = "0061"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project_measures") as t:
        t.alter_column("measure", type_=sa.String(64), existing_type=sa.String(20), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("project_measures") as t:
        t.alter_column("measure", type_=sa.String(20), existing_type=sa.String(64), existing_nullable=False)
