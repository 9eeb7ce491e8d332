"""Alembic environment for the app database, run programmatically (see ``chc_equity.appdb.engine``).

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``; there is no
alembic.ini and no URL here, so the same migrations run against SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from chc_equity.appdb.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE via copy on SQLite
)
with context.begin_transaction():
    context.run_migrations()
