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
from chc_equity.exports import csv_writer, write_frame_csv
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
    from chc_equity.vbp.worklist import payer_items

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
        base = wl.collect(
            con,
            center,
            period=period,
            as_of=day,
            recent_acute_days=cfg.recent_acute_days,
            sources=(payer_items,),  # payer gap files (chc-equity vbp import gaps) add their open gaps
        )
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


@chw_app.command("indicators")
def indicators(
    center: str = typer.Option(..., "--center", help="Health center id"),
    out: Path = typer.Option(..., "--out", help="Folder for the indicator tables (CSV)"),
    start: str | None = typer.Option(
        None, "--from", help="Window start for contacts (default: --to - 364 days)"
    ),
    end: str | None = typer.Option(None, "--to", help="Window end for contacts (YYYY-MM-DD, default: today)"),
    by: list[str] = typer.Option(
        [], "--by", help="Stratify the reach rate by an equity dimension (repeatable)"
    ),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Program indicators from the app database's panels and outreach records: caseload, reach rate and
    days to first attempt / contact per CHW, contacts per enrolled patient-month in the window, and the
    reach rate by equity dimension (suppressed: cells under 11 and their complements hidden).

    With the social-needs stage run (`chc-equity sdoh`), also the referrals of enrolled patients made and
    closed (referrals.csv). The per-CHW and referral tables are for the program's own staff (like the
    worklist); the stratified tables are the ones fit to share."""
    from datetime import timedelta

    import pandas as pd

    from chc_equity.appdb.engine import read_only
    from chc_equity.appdb.program import program_frames
    from chc_equity.equity.attributes import DIMENSIONS
    from chc_equity.outreach import indicators as ind

    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise typer.BadParameter(f"unknown dimension {unknown[0]!r}; choose from {', '.join(DIMENSIONS)}")
    hi = date.fromisoformat(end) if end else date.today()
    lo = date.fromisoformat(start) if start else hi - timedelta(days=364)
    path = warehouse_path(warehouse)
    frames = read_only(path, lambda session: program_frames(session, center))
    if frames is None or frames[0].empty:
        typer.echo(
            f"error: no CHW panel for {center} in the app database (`chc-equity appdb import`)", err=True
        )
        raise typer.Exit(2)
    panel, outreach = frames
    per_chw = ind.reach(panel, outreach).merge(
        ind.contacts_per_patient_month(panel, outreach, lo, hi), on="chw", how="left"
    )
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "chw_indicators.csv"]
    write_frame_csv(per_chw, written[0])  # CHW names are typed by people: no formulas
    con = connect(path, read_only=True)
    try:
        referrals = _panel_referrals(con, center, set(panel["patient_id"]))
        if referrals is not None:  # the social-needs stage's referral loop (`chc-equity sdoh`)
            written.append(out / "referrals.csv")
            write_frame_csv(pd.DataFrame([ind.referral_closure(referrals)]), written[-1])
        for dimension in by:
            table = ind.stratify(
                ind.reach_per_patient(panel, outreach),
                ind.attributes(con, center, dimension),
                dimension,
                numerator="reached",
            )
            written.append(out / f"reach_by_{dimension}.csv")
            write_frame_csv(table, written[-1])
    finally:
        con.close()
    total = len(panel)
    reached = int(per_chw["reached"].sum())
    typer.echo(
        f"{center}: {total} enrolled with {len(per_chw)} CHWs, {reached} reached ({reached / total:.0%}); "
        f"contacts {lo} to {hi} -> " + ", ".join(str(p) for p in written)
    )


def _panel_referrals(con, center: str, patients: set[str]):
    """``patient_id, made_on, closed_on`` of the referrals of enrolled patients, one row per referral, from
    the social-needs stage's ``sdoh_referral`` (closed = its Task completed with an outcome); None when
    that stage has not run."""

    found = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = 'sdoh_referral'"
    ).fetchone()[0]
    if not found:
        return None
    df = con.execute(
        "SELECT DISTINCT referral_id, patient_id, authored AS made_on, "
        "CASE WHEN closed THEN authored + CAST(days_to_closure AS INTEGER) END AS closed_on "
        "FROM sdoh_referral WHERE center = ?",
        [center],
    ).df()
    return df[df["patient_id"].isin(patients)].drop(columns="referral_id").reset_index(drop=True)
