"""`chc-equity worklist` (one CHW worklist per center) and `chc-equity chw billing` (monthly claim list).

Both read the warehouse only. The worklist's assigned CHW and last outreach come from the app database,
read only, through the same join as the web page (``chc_equity.appdb.worklist``); without an app
database every patient is unassigned and not contacted (``chc-equity appdb import`` brings FHIR
CareTeams, CHW encounters and Communications into it).
The outputs are patient-level: they are for the center's own staff, never published.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from chc_equity.cli import app
from chc_equity.exports import csv_writer
from chc_equity.warehouse import connect, warehouse_path

chw_app = typer.Typer(help="Community health worker program: billable services.", no_args_is_help=True)
app.add_typer(chw_app, name="chw")


def _period(con, period_end: str | None) -> tuple[date, date]:
    from chc_equity.web.analytics import pick_run

    run = pick_run(con, date.fromisoformat(period_end) if period_end else None)
    if run is None:
        typer.echo("error: no precomputed measure run; run `chc-equity measures run` first", err=True)
        raise typer.Exit(2)
    return run.period_start, run.period_end


@app.command("worklist")
def worklist(
    center: str = typer.Option(..., "--center", help="Health center id"),
    out: Path = typer.Option(..., "--out", help="Output file: .csv or .xlsx"),
    site: str | None = typer.Option(None, "--site", help="Only patients last seen at this Location id"),
    language: str | None = typer.Option(None, "--language", help="Preferred language code, e.g. es"),
    measure: str | None = typer.Option(None, "--measure", help="Only patients with a gap of this CMS id"),
    priority: str | None = typer.Option(None, "--priority", help="high, medium or low"),
    assigned: bool | None = typer.Option(None, "--assigned/--unassigned", help="With / without a CHW"),
    search: str | None = typer.Option(None, "--search", help="Name or MRN contains this text"),
    sort: str = typer.Option("priority", "--sort", help="priority, name, mrn, age, last_visit, ..."),
    weights: Path | None = typer.Option(None, "--weights", help="YAML overriding priority.yaml"),
    as_of: str | None = typer.Option(None, "--as-of", help="Today's date (default: today)"),
    period_end: str | None = typer.Option(None, "--period-end", help="Measure run (default: latest)"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Every patient of CENTER with an open item (care gaps, social needs, follow-ups), once, by priority;
    assigned CHW and last outreach from the app database (read only) when there is one."""
    from chc_equity.appdb.worklist import read_overlay
    from chc_equity.outreach import worklist as wl
    from chc_equity.outreach.page import Overlay, Prepared, Query

    if out.suffix.lower() not in (".csv", ".xlsx"):
        typer.echo(f"error: {out}: --out must end in .csv or .xlsx", err=True)
        raise typer.Exit(2)
    try:
        cfg = wl.load_priority(weights)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    day = date.fromisoformat(as_of) if as_of else date.today()
    con = connect(warehouse, read_only=True)
    try:
        period = _period(con, period_end)
        base = wl.collect(con, center, period=period, as_of=day, recent_acute_days=cfg.recent_acute_days)
    finally:
        con.close()
    joined = read_overlay(warehouse_path(warehouse), center) or Overlay()
    filters = wl.Filters(site, language, measure, priority, assigned, None, search)
    try:
        selection = Prepared(base, period=period, as_of=day).select(
            joined, Query(filters, sort, limit=None), priority=cfg
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    wl.write_worklist(selection.rows, out)
    typer.echo(f"{len(selection.rows)} patients -> {out}")


@chw_app.command("billing")
def billing(
    center: str = typer.Option(..., "--center", help="Health center id"),
    out: Path = typer.Option(..., "--out", help="Claim-ready list (CSV)"),
    payer: str = typer.Option("medicare", "--payer", help="Packaged payer rules or a YAML file"),
    month: str | None = typer.Option(None, "--month", help="Only this calendar month (YYYY-MM)"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Codes and units each patient-month supports, from CHW encounters; unbilled minutes with reasons
    go to <out>.unbilled.csv."""
    from chc_equity.outreach import billing as b
    from chc_equity.web.gaps import IDENTITY_SQL

    try:
        rules = b.load_rules(Path(payer) if payer.endswith((".yaml", ".yml")) else payer)
    except (OSError, b.RulesError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    con = connect(warehouse, read_only=True)
    try:
        services = b.encounter_services(con, center)
        claims, unbilled = b.bill(services, rules, b.initiating_visits(con, center, rules))
        ids = sorted({c.patient_id for c in claims} | {u.patient_id for u in unbilled})
        mrns = dict(
            con.execute(
                f"SELECT patient_id, mrn FROM ({IDENTITY_SQL} AND r.patient_id IN (SELECT unnest(?)))",
                [center, ids],
            ).fetchall()
        )
    finally:
        con.close()
    if month:
        claims = [c for c in claims if c.month == month]
        unbilled = [u for u in unbilled if u.month == month]
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv_writer(fh)
        w.writerow(b.CLAIM_COLUMNS)
        w.writerows(
            [mrns.get(c.patient_id, ""), c.month, c.program, c.code, c.units, c.minutes] for c in claims
        )
    side = out.with_name(out.stem + ".unbilled.csv")
    with side.open("w", encoding="utf-8", newline="") as fh:
        w = csv_writer(fh)
        w.writerow(b.UNBILLED_COLUMNS)
        w.writerows([mrns.get(u.patient_id, ""), u.month, u.program, u.minutes, u.reason] for u in unbilled)
    typer.echo(f"{len(claims)} claim lines ({rules.title}) -> {out}; {len(unbilled)} unbilled -> {side}")
