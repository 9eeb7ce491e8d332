"""The app database: records people write (users, sessions, CHWs, panels, outreach), SQLAlchemy 2 +
Alembic, SQLite next to the warehouse by default or PostgreSQL via ``CHC_EQUITY_DATABASE_URL``.

For the worklist (``chc_equity.outreach.worklist``): :func:`assignments` (patient -> CHW) and
:func:`last_outreach` (patient -> (date, outcome)) of one center, given a session from
``AppDB.read()``."""

from chc_equity.appdb.chw import assignments
from chc_equity.appdb.engine import (
    ENV_URL,
    AppDB,
    app_db_path,
    database_url,
    head_revision,
    open_for_warehouse,
)
from chc_equity.appdb.outreach import last_outreach

__all__ = [
    "ENV_URL",
    "AppDB",
    "app_db_path",
    "assignments",
    "database_url",
    "head_revision",
    "last_outreach",
    "open_for_warehouse",
]
