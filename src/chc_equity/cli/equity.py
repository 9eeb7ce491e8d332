"""`chc-equity equity`: stratified measure rates, disparity statistics and charts (always suppressed)."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pandas as pd
import typer

from chc_equity.cli import app
from chc_equity.equity.attributes import DIMENSIONS
from chc_equity.equity.charts import forest_plot, gap_chart, save_chart
from chc_equity.equity.stratify import EquityRow, equity_tables, latest_period
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.exports import write_frame_csv
from chc_equity.warehouse import writing

TABLE_FORMATS = ("csv", "parquet", "json", "duckdb")
CHART_FORMATS = ("html", "png", "svg")
COLUMNS = [f.name for f in dataclasses.fields(EquityRow)]


def _write(df: pd.DataFrame, out: Path, stem: str, formats: list[str]) -> None:
    """One file per format; ``duckdb`` writes table ``<stem>`` into ``equity.duckdb`` (a separate file:
    the export leaves the system, the warehouse does not)."""
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        if fmt == "duckdb":
            import duckdb

            with duckdb.connect(str(out / "equity.duckdb")) as db:
                db.register("frame", df)
                db.execute(f'CREATE OR REPLACE TABLE "{stem}" AS SELECT * FROM frame')
        elif fmt == "csv":
            write_frame_csv(df, path)
        elif fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_json(path, orient="records", indent=1)


@app.command("equity")
def equity(
    measure: list[str] = typer.Option(
        ..., "--measure", help="CMS id or measure name; 'all' for every measure"
    ),
    by: list[str] = typer.Option(
        ..., "--by", help=f"Dimension (once, or twice to cross): {', '.join(DIMENSIONS)}"
    ),
    center: list[str] = typer.Option(None, "--center", help="Restrict to these centers (repeatable)"),
    reference: str = typer.Option(
        "largest",
        "--reference",
        help="'largest', 'best', or a stratum label ('A' or 'A × B'); never Unknown. "
        "--by center alone compares each center with the network instead",
    ),
    out: Path = typer.Option(Path("out/equity"), "--out", help="Output folder"),
    formats: str = typer.Option("csv", "--format", help="Tables: comma list of csv,parquet,json,duckdb"),
    charts: str = typer.Option("html,png,svg", "--charts", help="Charts: comma list of html,png,svg or ''"),
    period_start: str | None = typer.Option(None, "--period-start", help="Default: latest period run"),
    period_end: str | None = typer.Option(None, "--period-end"),
    threshold: int = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=2, help="Suppress counts below this"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse file"),
) -> None:
    """Stratify measure results by patient attributes and compare each group with a reference.

    Writes equity.<fmt> (one row per measure group x stratum), equity_summary.<fmt> (per-measure
    disparity indices) and forest / gap-to-equity charts. Files leave the system, so small cells are
    always suppressed (with complementary suppression); there is no switch to turn that off.
    """
    if len(by) > 2:
        raise typer.BadParameter("at most two --by dimensions (crossed)")
    tables = [f.strip() for f in formats.split(",") if f.strip()]
    figs = [f.strip() for f in charts.split(",") if f.strip()]
    for f in tables:
        if f not in TABLE_FORMATS:
            raise typer.BadParameter(f"table format {f!r} not in {TABLE_FORMATS}")
    for f in figs:
        if f not in CHART_FORMATS:
            raise typer.BadParameter(f"chart format {f!r} not in {CHART_FORMATS}")
    with writing(warehouse) as con:  # rewrites patient_attributes: publishes the web's snapshot
        if period_start and period_end:
            ps, pe = date.fromisoformat(period_start), date.fromisoformat(period_end)
        else:
            ps, pe = latest_period(con)
        try:
            rows, summaries = equity_tables(
                con,
                measure,
                by,
                period_start=ps,
                period_end=pe,
                centers=center or None,
                reference=reference,
                threshold=threshold,
            )
        except (KeyError, ValueError) as exc:
            raise typer.BadParameter(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=COLUMNS)
    for col in ("denominator", "numerator", "gap_to_equity"):
        df[col] = df[col].astype("Int64")  # integers stay integers next to suppressed (empty) cells
    summary = pd.DataFrame([dataclasses.asdict(s) for s in summaries])
    _write(df, out, "equity", tables)
    _write(summary, out, "equity_summary", tables)
    title = " × ".join(DIMENSIONS[d] for d in by) + f", {ps} to {pe}"
    if rows and figs:
        save_chart(forest_plot(rows, f"Rates by {title}"), out, "forest", figs)
        save_chart(gap_chart(rows, f"Gap to equity by {title}"), out, "gap", figs)
    flagged = sum(r.worse_than_reference for r in rows)
    hidden = sum(r.suppressed for r in rows)
    rule = "the network (outside the 95 % funnel)" if list(by) == ["center"] else "reference at q < 0.05"
    typer.echo(f"{len(rows)} strata ({hidden} suppressed, {flagged} worse than {rule}) -> {out}")
