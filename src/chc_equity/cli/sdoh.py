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
    out: Path = typer.Option(..., "--out", help="Output folder (CSV, Parquet, sdoh.xlsx, charts)"),
    center: str | None = typer.Option(None, "--center", help="Only this health center (default: all)"),
    period_start: str | None = typer.Option(None, "--period-start", help="Default: latest measure run"),
    period_end: str | None = typer.Option(None, "--period-end"),
    threshold: int = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=2, help="Suppress counts below this"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
    charts: str = typer.Option(
        "svg", "--charts", help="Funnel chart formats: comma list of svg,png,html; none"
    ),
) -> None:
    """Screening (MIPS #487), positive rates, documentation, referrals, closure and connection within
    60 days (MIPS #498) per center, site and domain, and every rate by equity stratum.

    Builds tables sdoh_patient, sdoh_patient_domain, sdoh_referral, sdoh_metrics, sdoh_organization and
    sdoh_equity in the warehouse; the files written to --out are aggregates with small cells suppressed.
    """
    import duckdb

    from chc_equity.equity.stratify import latest_period
    from chc_equity.sdoh import export, metrics, strata

    formats = (
        []
        if charts.strip().lower() == "none"
        else [f.strip().lower() for f in charts.split(",") if f.strip()]
    )
    if bad := [f for f in formats if f not in ("svg", "png", "html")]:
        raise typer.BadParameter(f"--charts: unknown format {', '.join(bad)} (svg, png, html or none)")
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
    orgs_shown = export.suppress_organizations(orgs, threshold)
    files = export.write_outputs(out, shown, equity, orgs_shown, charts=formats)
    is_center = (table["site"] == metrics.ALL_SITES) & (table["center"] != metrics.NETWORK)
    centers = table[(table["metric"] == "eligible") & is_center]
    eligible = int(centers["numerator"].sum())
    typer.echo(f"{eligible} eligible patients, {ps} to {pe}: {', '.join(str(f) for f in files)}")
