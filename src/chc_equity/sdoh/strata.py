"""Every social-needs rate through the equity layer: strata, intervals, q-values and suppression.

Reads the tables :mod:`chc_equity.sdoh.metrics` built and stratifies each rate, per center, by the
equity attributes in :data:`DIMENSIONS` with :func:`chc_equity.outreach.indicators.stratify` -- the same
rule as the CHW program indicators: Wilson intervals, comparison with the reference stratum (p- and
q-values), small-cell suppression below 11 (suppressed counts and rates are None). For a network of two
or more centers the network's rows are stratified too (center ``'*'``), and one crossed plan keeps the
network's strata and the centers' strata from giving each other away. Writes ``sdoh_equity``.

The unit of each rate is what its denominator counts: patients (``screened``, ``connected_60d``,
``prapare_complete``, and per domain ``positive``, ``documented``, ``referred``) or referrals
(``closure``, ``rejected_at_capacity``: a patient with two referrals counts twice).
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
import pandas as pd

from chc_equity.equity.attributes import TABLE as ATTRIBUTES
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.outreach.indicators import stratify
from chc_equity.sdoh.metrics import ANY, NETWORK, NO_DOMAIN, PATIENT, PATIENT_DOMAIN, REFERRAL

TABLE = "sdoh_equity"
DIMENSIONS = ("race_ethnicity", "language", "income", "insurance", "age_band", "site")
COLUMNS = [
    "center", "metric", "domain", "dimension", "stratum", "numerator", "denominator", "rate", "ci_low",
    "ci_high", "p_value", "q_value", "is_reference", "worse_than_reference", "suppressed",
]  # fmt: skip


def units(con: duckdb.DuckDBPyConnection, center: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(metric, domain, frame of patient_id + boolean ``hit``): one row per unit of the denominator (the
    one definition the equity breakdown and the series strata (:mod:`chc_equity.sdoh.series`) count)."""
    patient = con.execute(f"SELECT * FROM {PATIENT} WHERE center = ?", [center]).df()
    pdom = con.execute(f"SELECT * FROM {PATIENT_DOMAIN} WHERE center = ?", [center]).df()
    ref = con.execute(f"SELECT * FROM {REFERRAL} WHERE center = ?", [center]).df()
    out: list[tuple[str, str, pd.DataFrame]] = []

    def add(metric: str, domain: str, df: pd.DataFrame, hit: pd.Series) -> None:
        if len(df):
            out.append(
                (metric, domain, pd.DataFrame({"patient_id": df["patient_id"], "hit": hit.astype(bool)}))
            )

    add("screened", ANY, patient[~patient["declined"]], patient.loc[~patient["declined"], "screened"])
    hp = patient[patient["hrsn_positive"]]
    add("connected_60d", ANY, hp, hp["connected_60d"])
    pp = patient[patient["prapare_items"] > 0]
    add("prapare_complete", ANY, pp, pp["prapare_complete"])
    pdom = pdom.assign(
        documented=pdom["positive"] & pdom["recorded"], referred=pdom["need"] & pdom["referred"]
    )
    pdom = pdom.assign(unresolved=pdom["rescreened"] & ~pdom["resolved"])
    cols = ["answered", "positive", "documented", "need", "referred", "rescreened", "unresolved"]
    per_any = pdom.groupby("patient_id")[cols].any().reset_index()
    per_any["resolved"] = per_any["rescreened"] & ~per_any["unresolved"]  # every re-screened domain resolved
    for domain, df in [(ANY, per_any), *sorted(pdom.groupby("domain"))]:
        a, p, n, r = df[df["answered"]], df[df["positive"]], df[df["need"]], df[df["rescreened"]]
        add("positive", domain, a, a["positive"])
        add("documented", domain, p, p["documented"])
        add("referred", domain, n, n["referred"])
        add("rescreen_resolution", domain, r, r["resolved"])
    ref_any = ref.drop_duplicates("referral_id")
    for domain, df in [(ANY, ref_any), *sorted(ref[ref["domain"] != NO_DOMAIN].groupby("domain"))]:
        add("closure", domain, df, df["closed"])
        add("rejected_at_capacity", domain, df, df["rejected_at_capacity"])
    return out


def equity_table(
    con: duckdb.DuckDBPyConnection,
    centers: list[str] | None = None,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    dimensions: tuple[str, ...] = DIMENSIONS,
) -> pd.DataFrame:
    """Every rate x dimension x stratum for each center (all centers in ``sdoh_patient`` by default),
    suppressed below ``threshold`` (the project's 11 unless a test asks otherwise).

    With every center of a network of two or more, also the network's rows (center ``'*'``): each rate's
    units of all centers together (a patient of two centers counted in each, as the network rows of
    ``sdoh_metrics``), through the same :func:`stratify`. A network stratum is then the sum of the
    centers' same stratum, so on top of each table's own suppression every network stratum of a rate x
    dimension with a hidden center stratum is hidden (:func:`_crossed`)."""
    network = centers is None
    if centers is None:
        centers = [r[0] for r in con.execute(f"SELECT DISTINCT center FROM {PATIENT} ORDER BY 1").fetchall()]
    network = network and len(centers) > 1
    frames = []
    pooled_units: dict[tuple[str, str], list[pd.DataFrame]] = defaultdict(list)
    pooled_attrs = []

    def add(center: str, metric: str, domain: str, unit: pd.DataFrame, attrs: pd.DataFrame) -> None:
        # a site belongs to one center: the network's site strata would repeat the centers' rows
        for dim in (d for d in dimensions if center != NETWORK or d != "site"):
            t = stratify(unit, attrs[["patient_id", dim]], dim, numerator="hit", threshold=threshold)
            frames.append(t.assign(center=center, metric=metric, domain=domain))

    for center in centers:
        attrs = con.execute(
            f"SELECT patient_id, {', '.join(dimensions)} FROM {ATTRIBUTES} WHERE center = ?", [center]
        ).df()
        for metric, domain, unit in units(con, center):
            add(center, metric, domain, unit, attrs)
            if network:
                pooled_units[(metric, domain)].append(
                    unit.assign(patient_id=center + _SEP + unit["patient_id"])
                )
        if network:
            pooled_attrs.append(attrs.assign(patient_id=center + _SEP + attrs["patient_id"]))
    if network:
        attrs = pd.concat(pooled_attrs, ignore_index=True)
        for (metric, domain), parts in pooled_units.items():
            add(NETWORK, metric, domain, pd.concat(parts, ignore_index=True), attrs)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)[COLUMNS]
    for col in ("numerator", "denominator"):
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    for col in ("rate", "ci_low", "ci_high", "p_value", "q_value"):
        out[col] = pd.to_numeric(out[col]).astype("float64")
    out["worse_than_reference"] = out["worse_than_reference"].astype("boolean")
    if network and threshold > 1:
        _crossed(out)
    return out


_SEP = "\x1f"  # center + _SEP + patient id: a patient of the network's pooled units
_STATISTICS = ("rate", "ci_low", "ci_high", "p_value", "q_value", "worse_than_reference")


def _crossed(out: pd.DataFrame) -> None:
    """Hide, in place, every network stratum of a rate x dimension in which any center's stratum is
    hidden (see :func:`equity_table`). A network stratum is the sum of the centers' same strata; shown
    only where every one of those is shown, it is a sum of published counts and tells nothing new, in
    this file or combined with a linked rate's file (``documented``'s denominator is ``positive``'s
    numerator: per-rate complement plans could differ there, this rule cannot)."""
    key = ["metric", "domain", "dimension"]
    center_rows = out["center"] != NETWORK
    blank = out["numerator"].isna() | out["denominator"].isna()
    tainted = set(out.loc[center_rows & blank, key].itertuples(index=False, name=None))
    mask = ~center_rows & pd.Series(
        [k in tainted for k in out[key].itertuples(index=False, name=None)], index=out.index
    )
    if mask.any():
        out.loc[mask, ["numerator", "denominator"]] = pd.NA
        out.loc[mask, list(_STATISTICS)] = None
        out.loc[mask, "suppressed"] = True


def build(
    con: duckdb.DuckDBPyConnection, centers: list[str] | None = None, *, threshold: int = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """Compute :func:`equity_table` and store it as table ``sdoh_equity``; returns the frame."""
    df = equity_table(con, centers, threshold=threshold)
    con.register("_sdoh_equity_df", df)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _sdoh_equity_df")
    finally:
        con.unregister("_sdoh_equity_df")
    return df
