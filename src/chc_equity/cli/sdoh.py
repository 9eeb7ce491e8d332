"""`chc-equity sdoh`: social-needs screening and referral metrics, stratified, suppressed (docs/sdoh.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from chc_equity.cli import app
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.warehouse import writing


@app.command("sdoh")
def sdoh(
    out: Path = typer.Option(..., "--out", help="Output folder (CSV files and sdoh.xlsx)"),
    center: str | None = typer.Option(None, "--center", help="Only this health center (default: all)"),
    period_start: str | None = typer.Option(None, "--period-start", help="Default: latest measure run"),
    period_end: str | None = typer.Option(None, "--period-end"),
    threshold: int = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=2, help="Suppress counts below this"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Screening (MIPS #487), positive rates, documentation, referrals, closure and connection within
    60 days (MIPS #498) per center, site and domain, and every rate by equity stratum.

    Builds tables sdoh_patient, sdoh_patient_domain, sdoh_referral, sdoh_metrics, sdoh_organization and
    sdoh_equity in the warehouse; the files written to --out are aggregates with small cells suppressed.
    """
    import duckdb

    from chc_equity.equity.stratify import latest_period
    from chc_equity.sdoh import export, metrics, strata

    if (period_start is None) != (period_end is None):
        raise typer.BadParameter("give both --period-start and --period-end, or neither")
    with writing(warehouse) as con:
        try:
            if period_start and period_end:
                ps, pe = date.fromisoformat(period_start), date.fromisoformat(period_end)
            else:
                ps, pe = latest_period(con)
            metrics.build(con, period_start=ps, period_end=pe, center=center)
        except (ValueError, LookupError) as exc:
            raise typer.BadParameter(str(exc)) from exc
        except duckdb.CatalogException as exc:  # no measure_results table yet
            raise typer.BadParameter("no measure run to take the period from: give the period") from exc
        equity = strata.build(con, [center] if center else None, threshold=threshold)
        table = con.execute(f"SELECT * FROM {metrics.METRICS}").df()
        orgs = con.execute(f"SELECT * FROM {metrics.ORGANIZATIONS}").df()
    shown = export.suppress_metrics(table, threshold)
    files = export.write_outputs(out, shown, equity, export.suppress_organizations(orgs, threshold))
    centers = table[(table["metric"] == "eligible") & (table["site"] == metrics.ALL_SITES)]
    eligible = int(centers["numerator"].sum())
    typer.echo(f"{eligible} eligible patients, {ps} to {pe}: {', '.join(str(f) for f in files)}")
