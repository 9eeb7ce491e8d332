"""What the app database adds to a center's worklist: the assigned CHW and the last outreach.

The one join of the worklist with the app database, used by the web page and ``chc-equity worklist``
alike (:func:`overlay`); :func:`read_overlay` is the CLI's read-only way in (no app database: nobody
assigned, nobody contacted).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from chc_equity.appdb.chw import assignments
from chc_equity.appdb.engine import ENV_URL, AppDB, app_db_path, database_url
from chc_equity.appdb.models import Chw
from chc_equity.appdb.outreach import last_outreach
from chc_equity.outreach.page import Overlay

T = TypeVar("T")


def overlay(session: Session, center: str) -> Overlay:
    """Assigned CHW (by display name) and last outreach (date, outcome) of every patient of ``center``."""
    names = dict(session.execute(select(Chw.id, Chw.display_name).where(Chw.center == center)).all())
    assigned = {pid: names.get(chw_id, chw_id) for pid, chw_id in assignments(session, center).items()}
    return Overlay(assigned, last_outreach(session, center))


def read_overlay(warehouse: str | Path, center: str) -> Overlay | None:
    """The overlay from the warehouse's app database, read only: never created, never migrated.

    None when there is none: no ``$CHC_EQUITY_DATABASE_URL`` and no ``<warehouse>.app.sqlite``, or a
    database whose schema was never created."""
    return read_only(warehouse, lambda session: overlay(session, center))


def read_only(warehouse: str | Path, read: Callable[[Session], T]) -> T | None:
    """``read(session)`` on the warehouse's app database, read only (never created, never migrated), for
    the CLI; None when there is no app database or its schema was never created."""
    if not os.environ.get(ENV_URL) and not app_db_path(warehouse).exists():
        return None
    db = AppDB(database_url(warehouse), upgrade=False)
    try:
        if db.revision() is None:
            return None
        with db.read() as session:
            return read(session)
    finally:
        db.dispose()
