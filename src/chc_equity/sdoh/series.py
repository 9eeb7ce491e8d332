"""Social-needs metrics over time: every metric of :mod:`chc_equity.sdoh.metrics` for a series of
periods, overall and per equity stratum, in table ``sdoh_series`` (issue 15 build item 1).

A point of the series *is* the single-period run for that period: :func:`sdoh_series` runs the very
:func:`chc_equity.sdoh.metrics.build` of one period (with the equity layer's ``patient_attributes``
of that period: ages at its end, the latest screening on or before it) and copies its rows out:

* all patients: the ``sdoh_metrics`` rows of site 'All' (each center and the network ``'*'``);
* strata: per center, each rate's units (:func:`chc_equity.sdoh.strata.units`, the same units the
  equity breakdown stratifies) counted by the stratum of each requested dimension; the network's
  stratum is the sum over centers (a patient of two centers counted in each, as the network rows).

Unlike the eCQM series (:mod:`chc_equity.measures.series`, one plan with the period as a column) this
runs the sdoh SQL once per period: the social-needs stage is a chain of temp tables whose every step
reads the period, and its whole single-period run is a few percent of the eCQMs' (docs/sdoh.md,
"Over time", gives the cost). The tables a single-period run left (``sdoh_patient`` ...
``patient_attributes``) are set aside while the series runs and put back unchanged afterwards.

Counts are raw here; what leaves the system goes through
:func:`chc_equity.improvement.sdoh_trend.published_sdoh_series` (suppressed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import pandas as pd

from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.labels import UNKNOWN
from chc_equity.measures.vocabulary import Period
from chc_equity.sdoh import metrics
from chc_equity.sdoh.mapping import DOMAINS, HRSN
from chc_equity.sdoh.metrics import (
    ALL_SITES,
    ANY,
    METRICS,
    NETWORK,
    ORGANIZATIONS,
    PATIENT,
    PATIENT_DOMAIN,
    REFERRAL,
)
from chc_equity.sdoh.strata import DIMENSIONS, units

TABLE = "sdoh_series"
# what a rate means (higher is better?) for the charts; metrics not listed are counts or days
HIGHER_IS_BETTER = {
    "screened": True,
    "prapare_complete": True,
    "documented": True,
    "referred": True,
    "connected_60d": True,
    "rescreen_resolution": True,
    "closure": True,
    "declined": False,
    "positive": False,
    "rejected_at_capacity": False,
}
RATE_METRICS = tuple(HIGHER_IS_BETTER)
# rates that exist per domain as well as over all domains ('any'); the others are 'any' only
DOMAIN_METRICS = (
    "positive",
    "documented",
    "referred",
    "rescreen_resolution",
    "closure",
    "rejected_at_capacity",
)
KEY_PREFIX = "sdoh:"  # a project's linked measure: sdoh:<metric>[:<domain>], e.g. sdoh:closure:food


def is_key(measure: str) -> bool:
    """Whether a project's linked measure names a social-needs metric rather than an eCQM."""
    return measure.strip().lower().startswith(KEY_PREFIX)


def parse_key(measure: str) -> tuple[str, str]:
    """``sdoh:<metric>[:<domain>]`` -> (metric, domain; 'any' when not given), or a ValueError that says
    what is allowed."""
    parts = measure.strip().lower().split(":")
    if len(parts) not in (2, 3) or parts[0] + ":" != KEY_PREFIX:
        raise ValueError(f"{measure!r}: a social-needs metric is sdoh:<metric>[:<domain>]")
    metric, domain = parts[1], parts[2] if len(parts) == 3 else ANY
    if metric not in RATE_METRICS:
        raise ValueError(f"{measure!r}: the metric is one of {', '.join(RATE_METRICS)}")
    if domain != ANY and (metric not in DOMAIN_METRICS or domain not in DOMAINS):
        allowed = ", ".join(DOMAINS) if metric in DOMAIN_METRICS else "none (all domains only)"
        raise ValueError(f"{measure!r}: domains of {metric}: {allowed}")
    return metric, domain


def key(metric: str, domain: str = ANY) -> str:
    return f"{KEY_PREFIX}{metric}" + ("" if domain == ANY else f":{domain}")


def link_options() -> list[tuple[str, str]]:
    """(key, title) of the social-needs metrics a project can link: every rate over all domains, and
    the per-domain rates for the five CMS HRSN domains."""
    out = [(key(m), f"Social needs: {m.replace('_', ' ')}") for m in RATE_METRICS]
    for m in DOMAIN_METRICS:
        out += [(key(m, d), f"Social needs: {m.replace('_', ' ')}, {DOMAINS[d]}") for d in HRSN]
    return out


DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    metric            VARCHAR NOT NULL,
    domain            VARCHAR NOT NULL,   -- 'any' = all domains
    center            VARCHAR NOT NULL,   -- '*' = every center of the network
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    stratum_dimension VARCHAR,            -- NULL = all patients
    stratum           VARCHAR,
    numerator         BIGINT,             -- NULL for the days metrics (a value, not a count)
    denominator       BIGINT,
    value             DOUBLE              -- the rate, or the days, or NULL
)
"""
_SET_ASIDE = (PATIENT, PATIENT_DOMAIN, REFERRAL, METRICS, ORGANIZATIONS, ATTRIBUTES)
_SAVED = "_sdoh_series_saved__"


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema() "
            "AND database_name = current_database()"
        ).fetchall()
    }


def _check_dimensions(dimensions: Sequence[str]) -> tuple[str, ...]:
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown equity dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
    return tuple(dict.fromkeys(dimensions))


def period_rows(con: duckdb.DuckDBPyConnection, dimensions: Sequence[str] = ()) -> pd.DataFrame:
    """The series rows of the period the sdoh tables were last built for (all patients and strata)."""
    dims = _check_dimensions(dimensions)
    overall = con.execute(
        f"""SELECT metric, domain, center, period_start, period_end, NULL::VARCHAR AS stratum_dimension,
                   NULL::VARCHAR AS stratum, numerator, denominator, value
              FROM {METRICS} WHERE site = '{ALL_SITES}'"""
    ).df()
    if not dims or overall.empty:
        return overall
    start, end = overall["period_start"].iloc[0], overall["period_end"].iloc[0]
    frames = []
    centers = [r[0] for r in con.execute(f"SELECT DISTINCT center FROM {PATIENT} ORDER BY 1").fetchall()]
    for center in centers:
        attrs = con.execute(
            f"SELECT patient_id, {', '.join(dims)} FROM {ATTRIBUTES} WHERE center = ?", [center]
        ).df()
        for metric, domain, unit in units(con, center):
            df = unit.merge(attrs, on="patient_id", how="left")
            for dim in dims:
                g = df.assign(**{dim: df[dim].fillna(UNKNOWN)}).groupby(dim)["hit"].agg(["sum", "size"])
                frames.append(
                    pd.DataFrame(
                        {
                            "metric": metric,
                            "domain": domain,
                            "center": center,
                            "stratum_dimension": dim,
                            "stratum": [str(s) for s in g.index],
                            "numerator": g["sum"].astype("int64").to_numpy(),
                            "denominator": g["size"].astype("int64").to_numpy(),
                        }
                    )
                )
    if not frames:
        return overall
    strata = pd.concat(frames, ignore_index=True)
    keys = ["metric", "domain", "stratum_dimension", "stratum"]
    if (overall["center"] == NETWORK).any():  # the network rows exist: so do their strata
        net = strata.groupby(keys, as_index=False)[["numerator", "denominator"]].sum()
        strata = pd.concat([strata, net.assign(center=NETWORK)], ignore_index=True)
    strata = strata.assign(
        period_start=start, period_end=end, value=strata["numerator"] / strata["denominator"]
    )
    return pd.concat([overall, strata[overall.columns]], ignore_index=True)


def sdoh_series(
    con: duckdb.DuckDBPyConnection,
    periods: Sequence[Period],
    *,
    dimensions: Sequence[str] = (),
    on_period: Callable[[Period, float], None] | None = None,
) -> int:
    """Compute every social-needs metric for each of ``periods`` (all centers and the network, all
    patients and each value of ``dimensions``) and (re)write those periods' rows of ``sdoh_series``.
    Returns the number of rows written. The single-period sdoh tables are left as they were."""
    import time

    periods = list(dict.fromkeys(periods))
    dims = _check_dimensions(dimensions)
    con.execute(DDL)
    present = _tables(con)
    saved = [t for t in _SET_ASIDE if t in present]
    for t in saved:
        con.execute(f"DROP TABLE IF EXISTS {_SAVED}{t}")
        con.execute(f"ALTER TABLE {t} RENAME TO {_SAVED}{t}")
    frames = []
    try:
        for p in periods:
            started = time.perf_counter()
            metrics.build(con, period_start=p.start, period_end=p.end)
            frames.append(period_rows(con, dims))
            if on_period:
                on_period(p, time.perf_counter() - started)
    finally:
        for t in _SET_ASIDE:
            if t in saved or t not in present:
                con.execute(f"DROP TABLE IF EXISTS {t}")
        for t in saved:
            con.execute(f"ALTER TABLE {_SAVED}{t} RENAME TO {t}")
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    con.execute("BEGIN TRANSACTION")
    try:
        for p in periods:
            con.execute(f"DELETE FROM {TABLE} WHERE period_start = ? AND period_end = ?", [p.start, p.end])
        if len(rows):
            con.register("_sdoh_series_rows", rows)
            con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _sdoh_series_rows")
            con.unregister("_sdoh_series_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(rows)
