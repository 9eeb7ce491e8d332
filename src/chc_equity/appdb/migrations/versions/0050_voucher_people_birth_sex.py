"""Voucher people: birth date and sex at birth (optional), which UDS reporting of voucher patients needs
(the UDS+ de-identified Patient requires the age and birth-sex extensions; Table 3A ages).

Revision ID: 0050
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voucher_people") as t:
        t.add_column(sa.Column("birth_date", sa.Date, nullable=True))
        t.add_column(sa.Column("sex", sa.String(1), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("voucher_people") as t:
        t.drop_column("sex")
        t.drop_column("birth_date")
