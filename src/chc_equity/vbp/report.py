"""The figures of the value-based-payment pages and commands, from the warehouse (or a serving snapshot):
the pure rules of roster / payer_gaps / contract / cost / pdc applied to the stored payer files, the
measure run and the encounters. One function per page, used by the CLI and the web alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

import duckdb

from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.measures.engine import RESULTS_TABLE
from chc_equity.network.gaps import NOT_A_VISIT, open_gaps_sql
from chc_equity.vbp import cost, pdc, store
from chc_equity.vbp.contract import (
    Contract,
    Count,
    Estimate,
    GapValue,
    Inputs,
    estimate,
    gap_values,
    patient_values,
)
from chc_equity.vbp.payer_gaps import Disagreement, merge
from chc_equity.vbp.roster import (
    Member,
    Reconciliation,
    continuously_enrolled,
    member_months,
    month_starts,
    months_back,
    reconcile,
)
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA


def _table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    return bool(con.execute(q, [schema, name]).fetchone()[0])


# ----------------------------------------------------------------------------------- panel
def seen_patients(
    con: duckdb.DuckDBPyConnection, center: str, as_of: date, lookback_months: int = 24
) -> set[str]:
    """The active panel (docs/vbp.md): patients with a visit -- an Encounter neither cancelled,
    entered-in-error nor planned -- starting in ``(as_of - lookback_months, as_of]``."""
    if not _table(con, F, "encounter"):
        return set()
    start = months_back(as_of, lookback_months)
    rows = con.execute(
        f"""SELECT DISTINCT patient_id FROM {F}.encounter
             WHERE center = ? AND status NOT IN {NOT_A_VISIT} AND status <> 'planned'
               AND patient_id IS NOT NULL
               AND try_cast(left(period_start, 10) AS DATE) > ?
               AND try_cast(left(period_start, 10) AS DATE) <= ?""",
        [center, start, as_of],
    ).fetchall()
    return {r[0] for r in rows}


@dataclass
class RosterView:
    payer: str
    reconciliation: Reconciliation
    member_months: list[tuple[date, int]]
    identity: dict[str, tuple[str | None, str | None]]  # patient -> (name, MRN)
    members: dict[str, Member]  # member id -> the latest span
    linked: list[tuple[Member, str | None]]  # every span with the patient it links to


def identity(
    con: duckdb.DuckDBPyConnection, center: str, ids: set[str]
) -> dict[str, tuple[str | None, str | None]]:
    if not ids:
        return {}
    rows = con.execute(
        "SELECT patient_id, name, mrn FROM patient_contact"
        " WHERE center = ? AND patient_id IN (SELECT unnest(?))",
        [center, sorted(ids)],
    ).fetchall()
    return {p: (n, m) for p, n, m in rows}


def roster_view(
    con: duckdb.DuckDBPyConnection, center: str, payer: str, as_of: date, lookback_months: int = 24
) -> RosterView:
    linked = store.members(con, center, payer)
    rec = reconcile(linked, seen_patients(con, center, as_of, lookback_months), payer=payer, as_of=as_of)
    start = months_back(date(as_of.year, as_of.month, 1), 11)
    mm = member_months([m for m, _ in linked], start, as_of)
    pids = {p for _, p in linked if p} | set(rec.seen_not_attributed)
    latest = {}
    for m, _ in linked:
        latest[m.member_id] = m
    months = [(k[1], v) for k, v in mm.items()]
    return RosterView(payer, rec, months, identity(con, center, pids), latest, linked)


def member_patients(linked: list[tuple[Member, str | None]]) -> dict[str, str]:
    return {m.member_id: p for m, p in linked if p}


# ----------------------------------------------------------------------------------- our gaps
def center_gap_status(
    con: duckdb.DuckDBPyConnection, center: str, period: tuple[date, date]
) -> dict[tuple[str, str], str]:
    """(patient, CMS id) -> 'open' / 'closed' for patients in the measure's denominator (Group_1 only);
    "open" is the worklist's care-gap rule (:func:`open_gaps_sql`), "closed" the rest of the denominator."""
    if not _table(con, "main", RESULTS_TABLE) or not _table(con, "main", "agg_measure"):
        return {}
    start, end = period
    den = con.execute(
        f"""WITH meta AS (SELECT DISTINCT measure, group_id, cms_id FROM agg_measure
                           WHERE period_start = ? AND period_end = ?)
            SELECT DISTINCT r.patient_id, m.cms_id
              FROM {RESULTS_TABLE} r JOIN meta m USING (measure, group_id)
             WHERE r.center = ? AND r.period_start = ? AND r.period_end = ? AND r.group_id = 'Group_1'
               AND r.denominator AND NOT r.denominator_exclusion AND NOT r.denominator_exception""",
        [start, end, center, start, end],
    ).fetchall()
    out = {(p, c): "closed" for p, c in den}
    for pid, group, cms, _title, _inv in con.execute(
        open_gaps_sql(), [start, end, center, start, end]
    ).fetchall():
        if group == "Group_1":
            out[(pid, cms)] = "open"
    return out


def measure_period(
    con: duckdb.DuckDBPyConnection, wanted: tuple[date, date] | None = None
) -> tuple[date, date] | None:
    """``wanted`` if the measure run has it, else the latest run's period (None: no run)."""
    if not _table(con, "main", RESULTS_TABLE):
        return None
    if wanted:
        row = con.execute(
            f"SELECT 1 FROM {RESULTS_TABLE} WHERE period_start = ? AND period_end = ? LIMIT 1", list(wanted)
        ).fetchone()
        if row:
            return wanted
    row = con.execute(
        f"SELECT period_start, period_end FROM {RESULTS_TABLE}"
        " ORDER BY period_end DESC, period_start DESC LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def payer_gap_view(
    con: duckdb.DuckDBPyConnection, center: str, payer: str, as_of: date
) -> tuple[list[Disagreement], tuple[date, date] | None]:
    period = measure_period(con)
    status = center_gap_status(con, center, period) if period else {}
    attributed = {p for m, p in store.members(con, center, payer) if p and m.covers(as_of)}
    return merge(store.payer_gaps(con, center, payer), status, attributed=attributed), period


# ----------------------------------------------------------------------------------- contracts
@dataclass
class EstimateView:
    contract: Contract
    period: tuple[date, date] | None  # the measure run used (None: none matches the contract period)
    inputs: Inputs
    estimate: Estimate
    gap_values: list[GapValue]
    patients: list[tuple[str, Fraction, list[str]]]
    note: str = ""


def _months(members: list[Member], start: date, end: date) -> dict[str, set[date]]:
    out: dict[str, set[date]] = defaultdict(set)
    for m in members:
        for first in month_starts(start, end):
            if m.covers(first):
                out[m.member_id].add(first)
    return out


def contract_inputs(
    con: duckdb.DuckDBPyConnection, center: str, contract: Contract
) -> tuple[Inputs, dict[str, list[str]], tuple[date, date] | None, str]:
    """The estimator's inputs for ``contract`` from the roster, the measure run and the claims."""
    start, end = contract.period_start, contract.period_end
    linked = store.members(con, center, contract.payer)
    spans: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    pid_of: dict[str, str] = {}
    for m, p in linked:
        if m.start <= end and (m.end is None or m.end >= start):
            spans[m.member_id].append((m.start, m.end))
            if p:
                pid_of[m.member_id] = p
    period = measure_period(con, (start, end))
    note = ""
    if period is None:
        note = "No measure run: run `chc-equity measures run` for the contract period."
    elif period != (start, end):
        note = f"No measure run for the contract period; using the run for {period[0]} to {period[1]}."
    status = center_gap_status(con, center, period) if period else {}
    counts: dict[str, Count] = {}
    open_by: dict[str, list[str]] = defaultdict(list)
    for cm in contract.measures:
        ce = cm.continuous_enrollment
        eligible = {
            pid_of[mid]
            for mid, sp in spans.items()
            if mid in pid_of
            and (
                continuously_enrolled(
                    sp, start, end, allowed_gap_days=ce.allowed_gap_days, max_gaps=ce.max_gaps
                )
                if ce
                else any(s <= end <= (e or end) for s, e in sp)
            )
        }
        den = [p for p in eligible if (p, cm.source) in status]
        opened = [p for p in den if status[(p, cm.source)] == "open"]
        counts[cm.id] = Count(len(den) - len(opened), len(den))
        for p in opened:
            open_by[p].append(cm.id)
    months = _months([m for m, _ in linked], start, end)
    mm = sum(len(v) for v in months.values())
    claims = [
        c for c in store.claims(con, center) if c.payer == contract.payer and start <= c.service_date <= end
    ]
    keyed = {(contract.payer, mid): ms for mid, ms in months.items()}
    total = cost.total_cost(claims, keyed, contract.payer) if claims else None
    return Inputs(counts, mm, total), dict(open_by), period, note


def estimate_view(con: duckdb.DuckDBPyConnection, center: str, contract: Contract) -> EstimateView:
    inputs, open_by, period, note = contract_inputs(con, center, contract)
    return EstimateView(
        contract,
        period,
        inputs,
        estimate(contract, inputs),
        gap_values(contract, inputs),
        patient_values(contract, inputs, open_by),
        note,
    )


# ----------------------------------------------------------------------------------- cost and use
STRATA = ("race_ethnicity", "language", "income", "sex", "insurance")


def cost_view(
    con: duckdb.DuckDBPyConnection,
    center: str,
    start: date,
    end: date,
    by: str = "race_ethnicity",
    threshold: int = DEFAULT_THRESHOLD,
) -> tuple[list[cost.CostRow], dict[str, list[cost.StratumRow]], list[cost.MonthRow]]:
    """PMPM and use per payer and month (as computed, and as a viewer sees them), and per stratum of
    ``by`` for each payer (suppressed for everyone). The strata of every dimension are planned together
    with the months (:func:`chc_equity.vbp.cost.published`): the page can be fetched for each dimension,
    and one plan per dimension would hide different months."""
    if by not in STRATA:
        raise ValueError(f"by must be one of {', '.join(STRATA)}")
    linked = store.members(con, center)
    months: dict[tuple[str, str], set[date]] = defaultdict(set)
    for m, _ in linked:
        for first in month_starts(start, end):
            if m.covers(first):
                months[(m.payer, m.member_id)].add(first)
    claims = [c for c in store.claims(con, center) if start <= c.service_date <= end]
    rows = cost.cost_use(claims, months)
    strata: dict[str, dict[tuple[str, str], str]] = {}
    sql = "SELECT patient_id, any_value({}) FROM patient_attributes WHERE center = ? GROUP BY 1"
    has_attributes = _table(con, "main", "patient_attributes")
    for dim in STRATA:
        labels = dict(con.execute(sql.format(dim), [center]).fetchall()) if has_attributes else {}
        strata[dim] = {
            (m.payer, m.member_id): labels.get(p, "Unknown") if p else "Unknown" for m, p in linked
        }
    by_payer, shown = {}, []
    for payer in sorted({k[0] for k in months}):
        sub = {k: v for k, v in months.items() if k[0] == payer}
        payer_months, payer_strata = cost.published(claims, sub, strata, threshold=threshold)
        by_payer[payer] = payer_strata[by]
        shown += payer_months
    return rows, by_payer, shown


# ----------------------------------------------------------------------------------- PDC
def pdc_view(con: duckdb.DuckDBPyConnection, center: str, year: int) -> list[pdc.PdcResult]:
    deaths: dict[str, date] = {}
    has = (
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_schema = ? AND table_name = ? AND column_name = ?"
    )
    if con.execute(has, [F, "patient", "deceased_datetime"]).fetchone()[0]:
        for pid, d in con.execute(
            f"SELECT id, try_cast(left(deceased_datetime, 10) AS DATE) FROM {F}.patient "
            "WHERE center = ? AND deceased_datetime IS NOT NULL",
            [center],
        ).fetchall():
            if d:
                deaths[pid] = d
    return pdc.pdc_all(store.fills(con, center), date(year, 1, 1), date(year, 12, 31), deaths=deaths)


def fills_from_warehouse(con: duckdb.DuckDBPyConnection, center: str) -> list[pdc.Fill]:
    """Completed MedicationDispenses (views ``medication_dispense`` + ``medication_dispense_medication_code``
    or the referenced Medication's code display): date handed over (else prepared), days supply."""
    if not _table(con, F, "medication_dispense"):
        return []
    rows = con.execute(
        f"""SELECT d.patient_id, try_cast(left(coalesce(d.when_handed_over, d.when_prepared), 10) AS DATE),
                   CAST(d.days_supply_value AS INTEGER),
                   coalesce((SELECT string_agg(coalesce(c.display, c.code), ' ')
                               FROM {F}.medication_dispense_medication_code c
                              WHERE c.center = d.center AND c.id = d.id), '')
              FROM {F}.medication_dispense d
             WHERE d.center = ? AND d.status = 'completed' AND d.days_supply_value IS NOT NULL
               AND d.patient_id IS NOT NULL""",
        [center],
    ).fetchall()
    return [pdc.Fill(p, day, n, drug) for p, day, n, drug in rows if day and drug]


def claims_from_warehouse(
    con: duckdb.DuckDBPyConnection, center: str
) -> list[tuple[str, date, str, str, Fraction]]:
    """(claim id, service date, setting, patient id, amount) of the FHIR Claims (Synthea writes them):
    setting from the class of the Encounter an item points at, amount ``Claim.total``."""
    if not _table(con, F, "claim"):
        return []
    has_items = _table(con, F, "claim_item")
    setting = (
        f"""(SELECT CASE WHEN bool_or(e.class_code = 'EMER') THEN 'ed'
                         WHEN bool_or(e.class_code IN ('IMP', 'ACUTE')) THEN 'inpatient' ELSE 'outpatient' END
               FROM {F}.claim_item i JOIN {F}.encounter e ON e.center = i.center AND e.id = i.encounter_id
              WHERE i.center = c.center AND i.id = c.id)"""
        if has_items
        else "NULL"
    )
    rows = con.execute(
        f"""SELECT c.id, try_cast(left(coalesce(c.billable_period_start, c.created), 10) AS DATE),
                   coalesce({setting}, 'outpatient'), c.patient_id, c.total_value
              FROM {F}.claim c
             WHERE c.center = ? AND c.patient_id IS NOT NULL AND c.status <> 'entered-in-error'""",
        [center],
    ).fetchall()
    return [(i, d, s, p, Fraction(str(v or 0))) for i, d, s, p, v in rows if d]


def warehouse_claims(con: duckdb.DuckDBPyConnection, center: str) -> list[cost.Claim]:
    """The FHIR Claims as :class:`cost.Claim` rows, one per roster span of the patient that covers the
    claim's date (payer and member id from the roster; a claim of no attributed member is left out)."""
    from decimal import Decimal

    spans: dict[str, list[Member]] = defaultdict(list)
    for m, p in store.members(con, center):
        if p:
            spans[p].append(m)
    out = []
    for cid, day, setting, pid, amount in claims_from_warehouse(con, center):
        for m in spans.get(pid, ()):
            if m.covers(day):
                value = Decimal(amount.numerator) / Decimal(amount.denominator)
                out.append(
                    cost.Claim(cid, m.payer, m.member_id, day, setting, value.quantize(Decimal("0.01")))
                )
                break
    return out
