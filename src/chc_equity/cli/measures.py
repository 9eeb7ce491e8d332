"""`chc-equity measures list | run | evaluate`: argument parsing and printing only."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app
from chc_equity.warehouse import connect

measures_app = typer.Typer(help="Electronic clinical quality measures (eCQMs).", no_args_is_help=True)
app.add_typer(measures_app, name="measures")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", help="DuckDB warehouse (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
    ),
]


def _year_bounds(start: str | None, end: str | None) -> tuple[date, date]:
    """Default measurement period: the current calendar year."""
    today = date.today()
    s = date.fromisoformat(start) if start else date(today.year, 1, 1)
    e = date.fromisoformat(end) if end else date(s.year, 12, 31)
    if e < s:
        raise typer.BadParameter(f"--period-end {e} is before --period-start {s}")
    return s, e


@measures_app.command("list")
def list_measures() -> None:
    """List the implemented measures."""
    from chc_equity.measures.registry import all_measures

    table = Table("CMS id", "measure", "version", "groups", "basis", "improvement", "UDS", "title")
    for module in all_measures():
        m = module.measure
        table.add_row(
            m.cms_id,
            m.name,
            m.version,
            str(len(m.groups)),
            m.basis,
            m.improvement_notation,
            "; ".join(m.uds),
            m.title,
        )
    Console().print(table)


@measures_app.command("run")
def run(
    measure: Annotated[
        list[str] | None, typer.Option("--measure", help="CMS id or measure name; repeatable")
    ] = None,
    period_start: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: Jan 1 of this year)")] = None,
    period_end: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: Dec 31 of the start year)")
    ] = None,
    center: Annotated[
        list[str] | None, typer.Option("--center", help="limit to these centers; repeatable")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Evaluate measures over the warehouse and write the patient-level `measure_results` table."""
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import find
    from chc_equity.measures.summary import summarize

    start, end = _year_bounds(period_start, period_end)
    try:
        modules = find(measure)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    con = connect(warehouse)
    console = Console()
    with console.status("evaluating measures ...") as status:

        def progress(m, seconds: float) -> None:
            status.update(f"{m.cms_id} done in {seconds:.2f} s")

        run_measures(con, modules, period_start=start, period_end=end, centers=center, on_measure=progress)
    table = Table(
        "measure",
        "group",
        "center",
        "IP",
        "denom",
        "excl",
        "except",
        "numer",
        "rate",
        title=f"Measurement period {start} to {end}",
    )
    for row in summarize(con, [m.measure.name for m in modules], start, end, centers=center):
        rate = "" if row.rate is None else f"{row.rate:.1%}"
        table.add_row(
            row.cms_id,
            row.group_id,
            row.center,
            str(row.initial_population),
            str(row.denominator),
            str(row.denominator_exclusion),
            str(row.denominator_exception),
            str(row.numerator),
            rate,
        )
    console.print(table)


@measures_app.command("evaluate")
def evaluate_cmd(
    input_dir: Annotated[
        Path, typer.Option("--input", exists=True, file_okay=False, help="folder of Bundles / NDJSON")
    ],
    period_start: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    period_end: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write")],
    measure: Annotated[list[str] | None, typer.Option("--measure", help="limit to these measures")] = None,
    profiles: Annotated[
        str,
        typer.Option(
            help="strict: drop clinical resources declaring no QI-Core/US Core profile (as the official "
            "test cases expect); lenient: use everything, like `measures run`"
        ),
    ] = "strict",
) -> None:
    """Evaluate measures on a folder of test data into a temporary warehouse; write one CSV row per
    (measure, group_id, patient_id, population_code, count)."""
    from chc_equity.measures.evaluate import evaluate, write_csv
    from chc_equity.measures.registry import find

    start, end = date.fromisoformat(period_start), date.fromisoformat(period_end)
    if profiles not in ("strict", "lenient"):
        raise typer.BadParameter("use strict or lenient", param_hint="--profiles")
    rows = evaluate(input_dir, find(measure), period_start=start, period_end=end, profiles=profiles)
    write_csv(rows, output)
    Console(stderr=True).print(f"wrote {len(rows)} rows to {output}")
