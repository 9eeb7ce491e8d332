"""`chc-equity child`: pediatric measures by age band, clinical referral loops and behavioral-health
follow-up, stratified and suppressed (docs/child.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from chc_equity.cli import app
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.warehouse import writing


@app.command("child")
def child(
    out: Path | None = typer.Option(None, "--out", help="Write the suppressed workbook pediatric.xlsx here"),
    center: str | None = typer.Option(None, "--center", help="Only this health center (default: all)"),
    period_start: str | None = typer.Option(None, "--period-start", help="Default: latest measure run"),
    period_end: str | None = typer.Option(None, "--period-end"),
    threshold: int = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=2, help="Suppress counts below this"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Build the child_* tables: every measure that includes children by center, age band (0-2, 3-5,
    6-11, 12-17) and equity stratum; guardians and the family's language; behavioral-health and
    specialist referral loops closed by a consultant report (CMS50 logic); follow-up within 7 / 30 days
    after an ED visit for mental illness (HEDIS-FUM-like); positive depression screens without a plan;
    pediatric care gaps with the guardian's contact. With --out, the aggregates as one Excel workbook
    (small cells suppressed, as a viewer sees them)."""
    import duckdb
    from rich.console import Console
    from rich.table import Table

    from chc_equity.child import referrals, view
    from chc_equity.child.build import build
    from chc_equity.equity.stratify import latest_period

    if (period_start is None) != (period_end is None):
        raise typer.BadParameter("give both --period-start and --period-end, or neither")
    with writing(warehouse) as con:
        try:
            if period_start and period_end:
                ps, pe = date.fromisoformat(period_start), date.fromisoformat(period_end)
            else:
                ps, pe = latest_period(con)
            build(con, period_start=ps, period_end=pe, center=center, threshold=threshold)
        except (ValueError, LookupError) as exc:
            raise typer.BadParameter(str(exc)) from exc
        except duckdb.CatalogException as exc:  # no measure_results table yet
            raise typer.BadParameter("no measure run to take the period from: give the period") from exc
        shown = view.load(con, center, suppressed=True)
        rows = con.execute(
            f"""SELECT center, referral_type, referrals, closed, closure_rate, days_to_closure_median,
                       open_30, open_60, open_90 FROM {referrals.METRICS}
                 WHERE organization_id = 'All' AND age_band = '0-17' ORDER BY 1, 2"""
        ).fetchall()
    table = Table(title=f"Referral loops of children, {ps} to {pe}")
    for col in ("center", "type", "referrals", "closed", "rate", "median days", "open 30+", "60+", "90+"):
        table.add_column(col)
    for c, t, n, k, rate, med, o30, o60, o90 in rows:
        table.add_row(c, t, str(n), str(k), f"{rate:.1%}" if rate is not None else "",
                      f"{med:.0f}" if med is not None else "", str(o30), str(o60), str(o90))  # fmt: skip
    Console().print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "pediatric.xlsx"
        path.write_bytes(view.workbook(shown))
        typer.echo(f"wrote {path}")
