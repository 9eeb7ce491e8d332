"""`chc-equity uds --year YYYY [--center C] --out DIR`: argument parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chc_equity.cli import app
from chc_equity.warehouse import writing


@app.command("uds")
def uds(
    year: Annotated[int, typer.Option("--year", help="Calendar year reported")],
    out: Annotated[Path, typer.Option("--out", help="Output folder")],
    center: Annotated[
        list[str] | None, typer.Option("--center", help="Center id (repeatable); default: all + network")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML/JSON: countable-visit rule and sites per center")
    ] = None,
    prior: Annotated[
        Path | None, typer.Option("--prior", help="Prior year's uds.json for the year-over-year edits")
    ] = None,
    suppress: Annotated[
        bool,
        typer.Option(
            "--suppress",
            help="Publish the small-cell-suppressed network roll-up only (no center rows, no edits)",
        ),
    ] = False,
    network: Annotated[
        bool | None, typer.Option("--network/--no-network", help="Include the network roll-up")
    ] = None,
    warehouse: Annotated[
        Path | None,
        typer.Option(
            "--warehouse", help="DuckDB warehouse (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
        ),
    ] = None,
) -> None:
    """UDS Tables 3A, 3B, 4, 6B and 7 with validation edits: uds.xlsx, uds.json, table_*.csv, edits.csv."""
    from chc_equity.uds import build_report, load_config
    from chc_equity.uds.export import read_json, write_all

    with writing(warehouse) as con:  # the build rewrites patient_attributes: publish when done
        report = build_report(
            con,
            year,
            centers=list(center) if center else None,
            config=load_config(config),
            prior=read_json(prior) if prior else None,
            network=network,
            suppress_network=suppress,
        )
    paths = write_all(report, out)
    console = Console()
    errors = sum(e.severity == "error" for e in report.edits)
    warnings = len(report.edits) - errors
    for scope in report.scopes:
        console.print(f"{scope}: {report.tables[scope]['3B'].count('8', 'd')} UDS patients")
    console.print(f"edits: {errors} error(s), {warnings} warning(s); wrote {len(paths)} files to {out}")
