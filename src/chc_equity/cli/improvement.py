"""`chc-equity improvement ...`: readiness rubrics and the improvement records of the app database
(assessments, projects, PDSA cycles) -- argument parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chc_equity.cli import app
from chc_equity.warehouse import warehouse_path

improvement_app = typer.Typer(
    help="Readiness assessments, improvement projects and PDSA cycles (the app database).",
    no_args_is_help=True,
)
app.add_typer(improvement_app, name="improvement")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option("--warehouse", "-w", help="DuckDB warehouse file (default: $CHC_EQUITY_WAREHOUSE)."),
]


@improvement_app.command("rubric")
def rubric(
    file: Annotated[Path | None, typer.Argument(help="A rubric YAML/JSON file to check")] = None,
) -> None:
    """Check a rubric file (errors name file, line and field); without a file, list the rubrics the
    app knows (packaged, and $CHC_EQUITY_RUBRICS)."""
    from chc_equity.improvement import rubric as rubrics

    try:
        found = [rubrics.load_rubric(file)] if file else list(rubrics.available().values())
    except (rubrics.RubricError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for r in found:
        typer.echo(f"{r.key}: {r.title} -- {len(r.domains)} domains, {len(r.items)} items")
        for d in r.domains:
            typer.echo(f"  {d.id}: {d.title} ({len(d.items)} items)")


@improvement_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the CSV files")],
    center: Annotated[str | None, typer.Option(help="Only this center (default: all)")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write assessments.csv (scores per domain, change since the last assessment),
    assessment_responses.csv, projects.csv and pdsa_cycles.csv from the app database (read only)."""
    from chc_equity.appdb.engine import read_only
    from chc_equity.exports import dict_writer
    from chc_equity.improvement import export as rows

    def collect(s):
        return {
            "assessments": rows.assessment_rows(s, center),
            "assessment_responses": rows.response_rows(s, center),
            "projects": rows.project_rows(s, center),
            "pdsa_cycles": rows.cycle_rows(s, center),
        }

    tables = read_only(warehouse_path(warehouse), collect)
    if tables is None:
        typer.echo("error: no app database yet (nothing recorded): run `chc-equity serve` first", err=True)
        raise typer.Exit(1)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        path = out / f"{name}.csv"
        fields = list(table[0]) if table else ["center"]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = dict_writer(fh, fields)
            writer.writeheader()
            writer.writerows(table)
        typer.echo(f"wrote {path} ({len(table)} rows)")
