"""What the app database adds to a center's worklist: the assigned CHW and the last outreach.

The one join of the worklist with the app database, used by the web page and ``chc-equity worklist``
alike (:func:`overlay`); :func:`read_overlay` is the CLI's read-only way in (no app database: nobody
assigned, nobody contacted).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chc_equity.appdb.chw import assignments
from chc_equity.appdb.engine import read_only
from chc_equity.appdb.models import Chw
from chc_equity.appdb.outreach import last_outreach
from chc_equity.outreach.page import Overlay


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
