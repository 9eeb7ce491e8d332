"""`chc-equity views ...`: SQL-on-FHIR view commands (argument parsing and printing only).

A Typer sub-app so other stage helpers can add commands (e.g. ``views build``) next to
``views conformance`` without touching each other's code.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app

views_app = typer.Typer(
    help="SQL-on-FHIR v2 ViewDefinitions: compile, run, conformance.", no_args_is_help=True
)
app.add_typer(views_app, name="views")


@views_app.command("conformance")
def conformance(
    test_dir: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Directory of suite *.json files."
    ),
    report: Path = typer.Option(..., "--report", help="Where to write the JSON test report."),
) -> None:
    """Run the SQL-on-FHIR v2 test suite in TEST_DIR; exit 0 only if every test passes."""
    from chc_equity.views.conformance import run_suite, summarize

    result = run_suite(test_dir)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    console = Console()
    table = Table(title="SQL-on-FHIR v2 conformance")
    table.add_column("file")
    table.add_column("passed", justify="right")
    table.add_column("total", justify="right")
    passed = total = 0
    for name, (ok, n) in summarize(result).items():
        style = None if ok == n else "red"
        table.add_row(name, str(ok), str(n), style=style)
        passed, total = passed + ok, total + n
    table.add_row("TOTAL", str(passed), str(total), style="bold")
    console.print(table)
    for name, body in result.items():
        for test in body["tests"]:
            if not test["result"]["passed"]:
                console.print(f"[red]FAIL[/red] {name} :: {test['name']}: {test['result'].get('reason', '')}")
    console.print(f"{passed}/{total} passed; report written to {report}")
    raise typer.Exit(0 if passed == total else 1)


@views_app.command("build")
def build(
    warehouse: Path | None = typer.Option(
        None, "--warehouse", help="DuckDB file (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
    ),
    center: list[str] | None = typer.Option(
        None, "--center", metavar="CENTER", help="Rebuild only these centers' rows (repeatable)."
    ),
) -> None:
    """Materialize the built-in views as flat.<name> tables (all centers, or only --center ones)."""
    from chc_equity.views.build import build_views
    from chc_equity.warehouse import writing

    with writing(warehouse) as con:  # publishes the web's snapshot when done
        con.begin()  # all tables change together, or none do if one view fails
        counts = build_views(con, centers=center or None)
        con.commit()
    table = Table(title="flat tables" + (f" (centers: {', '.join(center)})" if center else ""))
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(f"flat.{name}", f"{rows:,}")
    table.add_row(f"{len(counts)} tables", f"{sum(counts.values()):,}", style="bold")
    Console().print(table)
