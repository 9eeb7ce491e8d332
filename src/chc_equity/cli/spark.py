"""`chc-equity spark ...`: the pipeline on Apache Spark (run) and its output in a warehouse (attach).

Argument parsing and printing only; the work is in :mod:`chc_equity.spark` (docs/spark.md).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app

spark_app = typer.Typer(
    help="Scale-out on Apache Spark: the same pipeline, identical results (docs/spark.md).",
    no_args_is_help=True,
)
app.add_typer(spark_app, name="spark")


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} must be YYYY-MM-DD, got {value!r}") from exc


@spark_app.command("run")
def run(
    input: list[str] = typer.Option(
        ...,
        "--input",
        metavar="URI",
        help="A network folder whose subfolders are the centers, or CENTER=URI for one center "
        "(repeatable; local paths or s3://, gs://, hdfs:// URIs).",
    ),
    period_start: str = typer.Option(..., "--period-start", help="YYYY-MM-DD"),
    period_end: str = typer.Option(..., "--period-end", help="YYYY-MM-DD"),
    output: str = typer.Option(..., "--output", metavar="URI", help="Output folder (replaced on commit)."),
    master: str | None = typer.Option(
        None, "--master", help="Spark master, e.g. local[*] (default: what spark-submit set, else local[*])."
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, help="Partitions of patients (default spark.sql.shuffle.partitions)."
    ),
) -> None:
    """Ingest, views, every measure, patient attributes and equity tables on Spark; Parquet out."""
    from chc_equity.spark.pipeline import SparkInputError, resolve_inputs, session
    from chc_equity.spark.tasks import FAIL_ONCE_ENV

    start, end = _date(period_start, "--period-start"), _date(period_end, "--period-end")
    if end < start:
        raise typer.BadParameter(f"--period-end {end} is before --period-start {start}")
    console = Console()
    try:
        inputs = resolve_inputs(input)
    except (SparkInputError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        master = "local[*]"
    spark = session(master)
    from chc_equity.spark.pipeline import run as run_pipeline

    result = run_pipeline(
        spark,
        inputs,
        period_start=start,
        period_end=end,
        output=output,
        partitions=partitions,
        fail_once=os.environ.get(FAIL_ONCE_ENV) or None,
        on_stage=lambda name, s: console.print(f"{name}: {s:.1f} s"),
    )
    table = Table(title=f"spark run: {len(result.centers)} centers, {result.files} files -> {result.output}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name in ("resources", "rejects", "measure_results", "patient_attributes", "equity", "equity_summary"):
        table.add_row(name, f"{result.rows.get(name, 0):,}")
    flat = {k: v for k, v in result.rows.items() if k.startswith("flat.")}
    table.add_row(f"flat.* ({len(flat)} tables)", f"{sum(flat.values()):,}")
    console.print(table)


@spark_app.command("attach")
def attach(
    output: str = typer.Argument(..., help="A committed `chc-equity spark run` output folder."),
    warehouse: Path | None = typer.Option(
        None, "--warehouse", help="DuckDB file (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
    ),
    precompute: bool = typer.Option(True, help="Recompute the web's agg_* tables for the run's period."),
) -> None:
    """Copy a Spark output into the warehouse (its centers replace theirs), so the CLI, UDS tables and
    the web app work on it; then the web aggregates, and the serving snapshot is published."""
    from chc_equity.spark.attach import attach as attach_output
    from chc_equity.warehouse import writing

    console = Console()
    with writing(warehouse) as con:
        try:
            done = attach_output(con, output)
        except FileNotFoundError as exc:
            console.print(f"[red]error:[/red] no committed Spark output at {output} ({exc})")
            raise typer.Exit(2) from exc
        if precompute:
            from chc_equity.network import precompute as run_precompute

            run_precompute(con, period_start=done.period_start, period_end=done.period_end)
    console.print(
        f"attached {len(done.centers)} centers, {done.rows['resources']:,} resources, "
        f"{done.rows['measure_results']:,} measure results ({done.period_start} to {done.period_end})"
    )
