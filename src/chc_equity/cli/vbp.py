"""`chc-equity vbp ...`: value-based payment -- argument parsing and printing only (the work is in
chc_equity.vbp). Imports write the warehouse (and publish the web's snapshot); reports read it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app

vbp_app = typer.Typer(
    help="Value-based payment: payer rosters, gap files, contracts, cost and use, PDC.", no_args_is_help=True
)
app.add_typer(vbp_app, name="vbp")

WarehouseOpt = Annotated[Path | None, typer.Option("--warehouse", "-w", help="DuckDB warehouse file.")]
CenterOpt = Annotated[str, typer.Option("--center", "-c", help="Center id.")]
PayerOpt = Annotated[str | None, typer.Option("--payer", help="Payer name (default: the only one).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Day YYYY-MM-DD (default: today).")]
KINDS = ("roster", "gaps", "claims", "fills", "contract")


def out() -> Console:
    return Console()


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else date.today()


def _import(con, kind: str, file: Path | None, center: str, payer: str | None, from_warehouse: bool) -> dict:
    from chc_equity.vbp import cost, payer_gaps, pdc, report, roster, store
    from chc_equity.vbp.contract import load_contract

    if from_warehouse:
        if kind == "claims":
            return store.import_claims(con, center, report.warehouse_claims(con, center), [], "fhir:Claim")
        if kind == "fills":
            fills = [(f, None) for f in report.fills_from_warehouse(con, center)]
            return store.import_fills(con, center, fills, [], "fhir:MedicationDispense")
        _fail("--from-warehouse is for claims and fills")
    if file is None:
        _fail("give a FILE (or --from-warehouse for claims and fills)")
    text, name = file.read_text(encoding="utf-8-sig"), file.name
    if kind == "contract":
        c = load_contract(file)
        store.save_contract(con, center, c)
        return {"contract": c.id}
    is_json = file.suffix.lower() == ".json"
    if kind == "roster":
        members, bad = (
            roster.read_atr(json.loads(text), name) if is_json else roster.read_roster_csv(text, name)
        )
        return store.import_roster(con, center, members, bad, name)
    if kind == "gaps":
        if is_json:
            if not payer:
                _fail("a DEQM $care-gaps file names no payer: give --payer")
            gaps, bad = payer_gaps.read_care_gaps(json.loads(text), payer, name)
        else:
            gaps, bad = payer_gaps.read_gaps_csv(text, name)
        return store.import_gaps(con, center, gaps, bad, name)
    if kind == "claims":
        claims, bad = cost.read_claims_csv(text, name)
        return store.import_claims(con, center, claims, bad, name)
    fills, bad = pdc.read_fills_csv(text, name)
    return store.import_fills(con, center, fills, bad, name)


@vbp_app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="roster | gaps | claims | fills | contract")],
    file: Annotated[
        Path | None, typer.Argument(help="CSV (template: docs/vbp.md), JSON (ATR / DEQM) or YAML.")
    ] = None,
    center: CenterOpt = ...,
    payer: PayerOpt = None,
    from_warehouse: Annotated[
        bool, typer.Option(help="Claims / fills from the FHIR data already loaded.")
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import a payer file into the warehouse (bad rows quarantined in vbp_rejects with line and field)."""
    from chc_equity.vbp.contract import ContractError
    from chc_equity.vbp.roster import RosterError
    from chc_equity.warehouse import writing

    if kind not in KINDS:
        _fail(f"KIND must be one of {', '.join(KINDS)}")
    try:
        with writing(warehouse) as con:
            counts = _import(con, kind, file, center, payer, from_warehouse)
    except (RosterError, ContractError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(str(exc))
    out().print(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@vbp_app.command("synth")
def synth(
    center: CenterOpt,
    folder: Annotated[Path, typer.Argument(help="Where to write roster.csv, gaps.csv, claims.csv, ...")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    year: Annotated[int | None, typer.Option(help="Contract year (default: the latest measure run).")] = None,
    load: Annotated[bool, typer.Option(help="Also import the files into the warehouse.")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Synthetic payer roster, gap file, claims, fills and contract for a generated center."""
    from chc_equity.vbp import synth as vsynth
    from chc_equity.warehouse import connect, writing

    if load:
        with writing(warehouse) as con:
            counts = vsynth.generate_and_load(con, center, folder, seed=seed, year=year)
    else:
        con = connect(warehouse, read_only=True)
        try:
            counts = vsynth.generate(con, center, folder, seed=seed, year=year)
        finally:
            con.close()
    out().print(", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {folder}")


def _payer(con, center: str, payer: str | None) -> str:
    from chc_equity.vbp import store

    known = store.payers(con, center)
    if payer:
        return payer
    if len(known) != 1:
        _fail(f"give --payer (rosters loaded: {', '.join(known) or 'none'})")
    return known[0]


def _read(warehouse: Path | None):
    from chc_equity.warehouse import connect

    return connect(warehouse, read_only=True)


@vbp_app.command("roster")
def roster_cmd(
    center: CenterOpt,
    payer: PayerOpt = None,
    as_of: AsOfOpt = None,
    lookback: Annotated[int, typer.Option(help="Months a visit keeps a patient on the active panel.")] = 24,
    show: Annotated[str | None, typer.Option("--list", help="outreach | seen | not-attributed")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Roster vs active panel (attributed and seen / never seen, seen not attributed), member months."""
    from chc_equity.vbp import report

    con = _read(warehouse)
    try:
        view = report.roster_view(con, center, _payer(con, center, payer), _day(as_of), lookback)
    finally:
        con.close()
    rec = view.reconciliation
    t = Table(title=f"{view.payer} on {rec.as_of}")
    t.add_column("group")
    t.add_column("count", justify="right")
    for k, v in rec.counts().items():
        t.add_row(k.replace("_", " "), str(v))
    out().print(t)
    mm = Table(title="Member months")
    mm.add_column("month")
    mm.add_column("members", justify="right")
    for m, n in view.member_months:
        mm.add_row(m.strftime("%Y-%m"), str(n))
    out().print(mm)
    if show:
        ids = {
            "outreach": rec.attributed_not_seen,
            "seen": rec.attributed_seen,
            "not-attributed": rec.seen_not_attributed,
        }.get(show)
        if ids is None:
            _fail("--list must be outreach, seen or not-attributed")
        for i in ids:
            out().print(i)


@vbp_app.command("gaps")
def gaps_cmd(
    center: CenterOpt,
    payer: PayerOpt = None,
    as_of: AsOfOpt = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write every row (with its agreement) here.")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """The payer's gaps beside ours: submit (payer misses our closure), payer-closed, both-open, ..."""
    from collections import Counter

    from chc_equity.vbp import report

    con = _read(warehouse)
    try:
        rows, period = report.payer_gap_view(con, center, _payer(con, center, payer), _day(as_of))
        ident = report.identity(con, center, {r.patient_id for r in rows if r.patient_id})
    finally:
        con.close()
    when = f"{period[0]} to {period[1]}" if period else "(no measure run)"
    t = Table(title=f"Payer gaps vs our measure run {when}")
    t.add_column("agreement")
    t.add_column("gaps", justify="right")
    for k, v in sorted(Counter(r.agreement for r in rows).items()):
        t.add_row(k, str(v))
    out().print(t)
    if csv_out:
        from chc_equity.exports import csv_writer

        with csv_out.open("w", newline="") as fh:
            w = csv_writer(fh)
            w.writerow(["agreement", "member_id", "name", "mrn", "measure", "payer_measure", "payer", "ours"])
            for r in rows:
                name, mrn = ident.get(r.patient_id or "", (None, None))
                w.writerow(
                    [
                        r.agreement,
                        r.member_id,
                        name or "",
                        mrn or "",
                        r.cms_id or "",
                        r.payer_measure,
                        r.payer_status or "",
                        r.center_status or "not in denominator",
                    ]
                )
        out().print(f"{len(rows)} rows -> {csv_out}")


@vbp_app.command("estimate")
def estimate_cmd(
    center: CenterOpt,
    contract: Annotated[str | None, typer.Option(help="Contract id (imported) or a YAML file.")] = None,
    top: Annotated[int, typer.Option(help="Patients to list.")] = 10,
    warehouse: WarehouseOpt = None,
) -> None:
    """Projected payment of a contract, what each closed gap is worth, and the patients worth most."""
    from chc_equity.vbp import report, store
    from chc_equity.vbp.contract import load_contract, money

    con = _read(warehouse)
    try:
        if contract and Path(contract).exists():
            chosen = load_contract(contract)
        else:
            known = {c.id: c for c in store.contracts(con, center)}
            if not known or (contract and contract not in known):
                _fail(f"no such contract (imported: {', '.join(known) or 'none'})")
            chosen = known[contract] if contract else next(iter(known.values()))
        view = report.estimate_view(con, center, chosen)
    finally:
        con.close()
    e = view.estimate
    if view.note:
        out().print(f"[yellow]{view.note}[/]")
    t = Table(title=f"{chosen.id}: {chosen.payer}")
    for col in ("measure", "met", "denominator", "rate", "points"):
        t.add_column(col)
    for s in e.measures:
        rate = f"{float(s.rate):.1%}" if s.rate is not None else "-"
        t.add_row(
            s.id,
            str(s.met),
            str(s.denominator),
            rate,
            f"{float(s.points):.1f}" if s.points is not None else "not scored",
        )
    out().print(t)
    out().print(
        f"quality score {float(e.quality_score):.2f}; "
        f"gate {'passed' if e.gate_passed else 'failed: ' + e.gate_reason}"
    )
    out().print(
        f"quality pool ${money(e.quality_pool)}  shared savings ${money(e.shared_savings)}  "
        f"bonuses ${money(e.bonuses)}  total ${money(e.total)}"
    )
    g = Table(title="What a closed gap is worth")
    for col in ("measure", "open", "next gap", "to next step", "per gap"):
        g.add_column(col)
    for v in view.gap_values:
        g.add_row(
            v.measure, str(v.open_gaps), f"${money(v.next_gap)}", str(v.to_next_step), f"${money(v.per_gap)}"
        )
    out().print(g)
    for pid, worth, ms in view.patients[:top]:
        out().print(f"{pid}\t${money(worth)}\t{', '.join(ms)}")


@vbp_app.command("cost")
def cost_cmd(
    center: CenterOpt,
    start: Annotated[str, typer.Option("--from", help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day YYYY-MM-DD.")],
    by: Annotated[str, typer.Option(help="Equity dimension for the strata.")] = "race_ethnicity",
    warehouse: WarehouseOpt = None,
) -> None:
    """PMPM, ED visits and admissions per 1,000 member months, by payer and month, and by stratum."""
    from chc_equity.vbp import report

    con = _read(warehouse)
    try:
        rows, strata, _ = report.cost_view(con, center, _day(start), _day(end), by)
    except ValueError as exc:
        _fail(str(exc))
    finally:
        con.close()
    t = Table(title="Cost and use")
    for col in ("payer", "month", "member months", "PMPM", "ED /1,000", "admits /1,000"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r.payer,
            r.month.strftime("%Y-%m"),
            str(r.member_months),
            str(r.pmpm),
            str(r.per_1000(r.ed_visits)),
            str(r.per_1000(r.admissions)),
        )
    out().print(t)
    for payer, srows in strata.items():
        s = Table(title=f"{payer} by {by} (counts under 11 suppressed)")
        for col in ("stratum", "members", "member months", "PMPM", "ED /1,000", "admits /1,000"):
            s.add_column(col)
        for r in srows:
            s.add_row(
                r.stratum,
                *(
                    "*" if v is None else str(v)
                    for v in (r.members, r.member_months, r.pmpm, r.ed_per_1000, r.admissions_per_1000)
                ),
            )
        out().print(s)


@vbp_app.command("pdc")
def pdc_cmd(
    center: CenterOpt,
    year: Annotated[int, typer.Option(help="Measurement year.")],
    show: Annotated[bool, typer.Option("--list", help="List patients under 80 %.")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """PDC (PQA) for statins, RAS antagonists and diabetes medications; patients under 80 %."""
    from chc_equity.vbp import pdc, report

    con = _read(warehouse)
    try:
        results = report.pdc_view(con, center, year)
    finally:
        con.close()
    t = Table(title=f"PDC {year}")
    for col in ("class", "eligible", "adherent (>= 80 %)"):
        t.add_column(col)
    for cls, (n, ok) in pdc.summary(results).items():
        t.add_row(pdc.CLASS_LABELS.get(cls, cls), str(n), str(ok))
    out().print(t)
    if show:
        for r in pdc.below_threshold(results):
            out().print(
                f"{r.patient_id}\t{r.drug_class}\t{float(r.pdc):.1%}\t{r.covered_days}/{r.treatment_days}"
            )
