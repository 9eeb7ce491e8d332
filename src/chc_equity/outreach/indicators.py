"""CHW program indicators from outreach records, panels, referrals and care gaps (pure pandas).

Inputs are data frames, so the same code serves records from the app database, from FHIR
(Communication / CareTeam) or from a CSV:

- ``panel``: ``patient_id, chw, enrolled_on`` (one row per enrolled patient);
- ``outreach``: ``patient_id, chw, day, outcome`` (one row per attempt; ``outcome == "reached"`` counts
  as reached; other columns are ignored);
- ``referrals``: ``patient_id, made_on, closed_on`` (``closed_on`` empty while open);
- ``gaps``: ``patient_id, opened_on, closed_on`` (a care gap the program worked on; ``opened_on`` is
  when the patient entered the worklist with it).

Rates can be stratified by a patient attribute of the equity layer (``patient_attributes``) with
:func:`stratify`, which applies the project's small-cell suppression and the equity statistics.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from chc_equity.equity.attributes import DIMENSIONS, TABLE
from chc_equity.equity.labels import UNKNOWN
from chc_equity.equity.stats import compare_strata
from chc_equity.equity.suppression import DEFAULT_THRESHOLD, suppress_measure

REACHED = "reached"
CLOSURE_DAYS = 90


def _dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        out[c] = pd.to_datetime(out[c]).dt.normalize()
    return out


def caseload(panel: pd.DataFrame) -> pd.DataFrame:
    """Patients enrolled per CHW (``chw, patients``), largest first."""
    out = panel.groupby("chw")["patient_id"].nunique().rename("patients").reset_index()
    return out.sort_values(["patients", "chw"], ascending=[False, True], ignore_index=True)


def reach(panel: pd.DataFrame, outreach: pd.DataFrame) -> pd.DataFrame:
    """Per CHW: enrolled patients, attempted, reached, reach rate (reached / enrolled), the median days
    from enrolment to the first attempt and to the first reached contact."""
    p = _dates(panel, "enrolled_on")
    o = _dates(outreach, "day").merge(p[["patient_id", "enrolled_on"]], on="patient_id")
    o = o[o["day"] >= o["enrolled_on"]]
    first = o.groupby("patient_id")["day"].min().rename("first_attempt")
    first_reached = o[o["outcome"] == REACHED].groupby("patient_id")["day"].min().rename("first_reached")
    per = p.set_index("patient_id").join(first).join(first_reached)
    per["days_to_first_attempt"] = (per["first_attempt"] - per["enrolled_on"]).dt.days
    per["days_to_first_contact"] = (per["first_reached"] - per["enrolled_on"]).dt.days
    out = per.groupby("chw").agg(
        enrolled=("enrolled_on", "size"),
        attempted=("first_attempt", "count"),
        reached=("first_reached", "count"),
        median_days_to_first_attempt=("days_to_first_attempt", "median"),
        median_days_to_first_contact=("days_to_first_contact", "median"),
    )
    out.insert(3, "reach_rate", out["reached"] / out["enrolled"])
    return out.reset_index()


def contacts_per_patient_month(
    panel: pd.DataFrame, outreach: pd.DataFrame, start: date, end: date
) -> pd.DataFrame:
    """Per CHW: attempts in ``[start, end]`` divided by enrolled patient-months in the same window
    (a patient enrolled on day d counts from d; a month is 30.4375 days)."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    p = _dates(panel, "enrolled_on")
    months = ((hi - p["enrolled_on"].clip(lower=lo)).dt.days + 1).clip(lower=0) / 30.4375
    exposure = months.groupby(p["chw"]).sum().rename("patient_months")
    o = _dates(outreach, "day")
    o = o[(o["day"] >= lo) & (o["day"] <= hi) & o["patient_id"].isin(p["patient_id"])]
    contacts = o.groupby("chw").size().rename("contacts")
    out = pd.concat([exposure, contacts], axis=1).fillna({"contacts": 0})
    out["contacts"] = out["contacts"].astype(int)
    out["contacts_per_patient_month"] = out["contacts"] / out["patient_months"].where(
        out["patient_months"] > 0
    )
    return out.rename_axis("chw").reset_index()


def referral_closure(referrals: pd.DataFrame) -> dict[str, float | int | None]:
    """Referrals made, closed, the closure rate and the median days to close."""
    r = _dates(referrals, "made_on", "closed_on")
    closed = r["closed_on"].notna()
    days = (r.loc[closed, "closed_on"] - r.loc[closed, "made_on"]).dt.days
    made = len(r)
    return {
        "made": made,
        "closed": int(closed.sum()),
        "closure_rate": float(closed.sum() / made) if made else None,
        "median_days_to_close": float(days.median()) if len(days) else None,
    }


def gap_closure_by_reach(
    gaps: pd.DataFrame, outreach: pd.DataFrame, days: int = CLOSURE_DAYS
) -> pd.DataFrame:
    """Per gap: ``reached`` (a reached contact within ``days`` of opening) and ``closed`` (closed within
    ``days``); summarised by :func:`closure_summary`. The outcome a program director reports."""
    g = _dates(gaps, "opened_on", "closed_on").reset_index(drop=True)
    g["gap"] = g.index
    window = pd.Timedelta(days=days)
    o = _dates(outreach, "day")
    o = o[o["outcome"] == REACHED][["patient_id", "day"]]
    m = g.merge(o, on="patient_id", how="left")
    m["hit"] = (m["day"] >= m["opened_on"]) & (m["day"] <= m["opened_on"] + window)
    g["reached"] = m.groupby("gap")["hit"].any().reindex(g["gap"]).to_numpy()
    g["closed"] = g["closed_on"].notna() & (g["closed_on"] - g["opened_on"] <= window)
    return g.drop(columns="gap")


def closure_summary(per_gap: pd.DataFrame) -> pd.DataFrame:
    """Gaps, closed within the window and the closure rate, for reached vs not reached patients."""
    out = per_gap.groupby("reached").agg(gaps=("closed", "size"), closed=("closed", "sum"))
    out = out.reindex([True, False], fill_value=0)
    out["closure_rate"] = out["closed"] / out["gaps"].where(out["gaps"] > 0)
    out.index = ["reached", "not reached"]
    return out.rename_axis("group").reset_index()


# ----------------------------------------------------------------------------------- equity strata
def attributes(con: duckdb.DuckDBPyConnection, center: str, dimension: str) -> pd.DataFrame:
    """``patient_id, <dimension>`` of one center from the equity layer's ``patient_attributes``."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; choose one of {', '.join(DIMENSIONS)}")
    return con.execute(f'SELECT patient_id, "{dimension}" FROM {TABLE} WHERE center = ?', [center]).df()


def stratify(
    per_patient: pd.DataFrame,
    attrs: pd.DataFrame,
    dimension: str,
    *,
    numerator: str,
    threshold: int = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """A rate (boolean column ``numerator`` of ``per_patient``, one row per patient or gap) by stratum of
    ``dimension``, with the equity statistics (Wilson interval, p- and Benjamini-Hochberg q-value of the
    difference from the reference stratum) and the project's small-cell suppression: suppressed
    counts and rates are ``None``. Patients without the attribute are the Unknown stratum, never dropped.
    """
    df = per_patient.merge(attrs[["patient_id", dimension]], on="patient_id", how="left")
    df[dimension] = df[dimension].fillna(UNKNOWN)
    counts = df.groupby(dimension)[numerator].agg(["sum", "size"]).sort_index()
    labels = [str(x) for x in counts.index]
    x, d = counts["sum"].astype(int).tolist(), counts["size"].astype(int).tolist()
    return pd.DataFrame(stratify_counts(dimension, labels, x, d, threshold=threshold))


def stratify_counts(
    dimension: str, labels: list[str], x: list[int], d: list[int], *, threshold: int = DEFAULT_THRESHOLD
) -> list[dict]:
    """:func:`stratify` from counts already made (numerator ``x`` and denominator ``d`` per stratum
    ``labels``, sorted): the rows it returns, as dicts. For callers that count many tables in one SQL
    GROUP BY (the child-health pediatric view) instead of one pandas merge per table."""
    hidden = suppress_measure(labels, x, d, threshold)
    cmp = compare_strata(labels, x, d, shown=hidden.shown)
    rows = []
    for i, s in enumerate(cmp.strata):
        rate_hidden = bool(hidden.rate_suppressed[i])
        rows.append(
            {
                "dimension": dimension,
                "stratum": s.label,
                "numerator": None if hidden.numerator_suppressed[i] else s.numerator,
                "denominator": None if hidden.denominator_suppressed[i] else s.denominator,
                "rate": None if rate_hidden else s.rate,
                "ci_low": None if rate_hidden else s.ci_low,
                "ci_high": None if rate_hidden else s.ci_high,
                "is_reference": s.is_reference,
                "p_value": None if rate_hidden else s.p_value,
                "q_value": None if rate_hidden else s.q_value,
                "worse_than_reference": None if rate_hidden else s.worse_than_reference,
                "suppressed": rate_hidden,
            }
        )
    return rows


def reach_per_patient(panel: pd.DataFrame, outreach: pd.DataFrame) -> pd.DataFrame:
    """``patient_id, reached`` for every enrolled patient (the unit of the reach rate)."""
    reached = set(outreach.loc[outreach["outcome"] == REACHED, "patient_id"])
    out = panel[["patient_id"]].drop_duplicates().copy()
    out["reached"] = out["patient_id"].isin(reached)
    return out


__all__ = [
    "CLOSURE_DAYS",
    "attributes",
    "caseload",
    "closure_summary",
    "contacts_per_patient_month",
    "gap_closure_by_reach",
    "reach",
    "reach_per_patient",
    "referral_closure",
    "stratify",
    "stratify_counts",
]
