"""The CHW program's records as the inputs of :mod:`chc_equity.outreach.indicators`.

The indicators are pure functions of data frames (so records from FHIR, a CSV or this database all
work); this module is the one place that turns the app database's panels and outreach attempts of one
center into those frames: ``panel`` (patient_id, chw, enrolled_on) from the assignments (dated by the
assignment, or for an imported CareTeam by the membership's start) and ``outreach`` (patient_id, chw,
day, outcome) from every recorded attempt. CHWs appear by display name.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import Assignment, Chw, Outreach

PANEL_COLUMNS = ["patient_id", "chw", "enrolled_on"]
OUTREACH_COLUMNS = ["patient_id", "chw", "day", "outcome"]


def program_frames(session: Session, center: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(panel, outreach)`` of ``center`` for the indicators."""
    names = dict(session.execute(select(Chw.id, Chw.display_name).where(Chw.center == center)).all())
    panel = pd.DataFrame(
        [
            (pid, names.get(chw_id, chw_id), at.date())
            for pid, chw_id, at in session.execute(
                select(Assignment.patient_id, Assignment.chw_id, Assignment.assigned_at).where(
                    Assignment.center == center
                )
            )
        ],
        columns=PANEL_COLUMNS,
    )
    outreach = pd.DataFrame(
        [
            (pid, names.get(chw_id, chw_id) if chw_id else None, day, outcome)
            for pid, chw_id, day, outcome in session.execute(
                select(Outreach.patient_id, Outreach.chw_id, Outreach.contact_date, Outreach.outcome)
                .where(Outreach.center == center)
                .order_by(Outreach.patient_id, Outreach.contact_date, Outreach.id)
            )
        ],
        columns=OUTREACH_COLUMNS,
    )
    return panel, outreach
