"""`chc-equity measures list | run | sql | evaluate | report`: argument parsing and printing only."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app
from chc_equity.warehouse import connect, writing

measures_app = typer.Typer(help="Electronic clinical quality measures (eCQMs).", no_args_is_help=True)
app.add_typer(measures_app, name="measures")

# Options shared by several `measures` commands, spelled once.
PeriodStartOpt = Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: Jan 1 of this year)")]
PeriodEndOpt = Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: Dec 31 of the start year)")]
CentersOpt = Annotated[list[str] | None, typer.Option("--center", help="limit to these centers; repeatable")]
MeasuresOpt = Annotated[
    list[str] | None, typer.Option("--measure", help="CMS id or measure name; repeatable")
]
WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", help="DuckDB warehouse (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
    ),
]



def _profile_rule(value: str) -> str:
    from chc_equity.measures.profiles import check_profile_rule

    try:
        return check_profile_rule(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


ProfilesOpt = Annotated[
    str,
    typer.Option(
        "--profiles",
        callback=_profile_rule,
        help="profile rule: strict leaves out clinical resources declaring no QI-Core/US Core profile "
        "(as the official test cases expect); lenient uses everything (EHR data rarely declares "
        "profiles). Default: lenient for `run`, strict for `evaluate` (docs/measures.md, Profiles)",
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
    measure: MeasuresOpt = None,
    period_start: PeriodStartOpt = None,
    period_end: PeriodEndOpt = None,
    center: CentersOpt = None,
    warehouse: WarehouseOpt = None,
    aggregates: Annotated[
        bool,
        typer.Option(
            "--aggregates/--no-aggregates",
            help="refresh the web app's precomputed aggregates (agg_* tables) for this period afterwards",
        ),
    ] = True,
    materialize_defines: Annotated[
        bool,
        typer.Option(
            "--materialize-defines",
            help="also keep every CQL define of every measure as a table in schema `defines` "
            "(defines.cms122__numerator, defines.lib_hospice_has_hospice_services, ...)",
        ),
    ] = False,
    profiles: ProfilesOpt = "lenient",
) -> None:
    """Evaluate measures over the warehouse and write the patient-level `measure_results` table.

    Afterwards the aggregates the web pages read (network summaries, funnel limits, equity strata) are
    recomputed for the period, so pages stay fast and never show stale numbers. A refresh that an
    interrupted `chc-equity ingest` left pending is finished first.
    """
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import find
    from chc_equity.measures.summary import summarize

    start, end = _year_bounds(period_start, period_end)
    try:
        modules = find(measure)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    with writing(warehouse) as con:  # publishes the web's snapshot when done
        console = Console()
        with console.status("evaluating measures ...") as status:
            from chc_equity.refresh import finish_pending

            finish_pending(con, on_step=status.update)  # a refresh a crashed ingest left pending, first

            def progress(m, seconds: float) -> None:
                status.update(f"{m.cms_id} done in {seconds:.2f} s")

            run_measures(
                con,
                modules,
                period_start=start,
                period_end=end,
                centers=center,
                on_measure=progress,
                materialize_defines=materialize_defines,
                profiles=profiles,
            )
            if aggregates:
                from chc_equity.network import precompute

                status.update("precomputing aggregates for the web app ...")
                precompute(con, period_start=start, period_end=end)
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
        groups = {(m.measure.name, g.id): g for m in modules for g in m.measure.groups}
        for row in summarize(con, [m.measure.name for m in modules], start, end, centers=center, strata=True):
            rate = "" if row.rate is None else f"{row.rate:.1%}"
            group = row.group_id
            if row.stratum is not None:  # a stratum row follows its group's total
                group = "  " + groups[(row.measure, row.group_id)].stratifier_label(row.stratum)
            table.add_row(
                row.cms_id,
                group,
                row.center,
                str(row.initial_population),
                str(row.denominator),
                str(row.denominator_exclusion),
                str(row.denominator_exception),
                str(row.numerator),
                rate,
            )
        console.print(table)


@measures_app.command("sql")
def sql_cmd(
    measure: Annotated[str, typer.Argument(help="CMS id or measure name, e.g. CMS122")],
    define: Annotated[
        str | None,
        typer.Option("--define", help='only this define, by CQL name ("Numerator") or SQL name'),
    ] = None,
    period_start: PeriodStartOpt = None,
    period_end: PeriodEndOpt = None,
    center: CentersOpt = None,
) -> None:
    """Print the SQL `measures run` executes for one measure (no warehouse needed).

    Without --define: every statement, in order (the shared library defines it reads, then the
    replacement of its `measure_results` rows). With --define: the statements computing that define.
    The macros (fhir_ts, fhir_date, ...) and terminology tables are created per connection first.
    """
    from chc_equity.measures.defines import define_sql
    from chc_equity.measures.engine import Context, render, statements
    from chc_equity.measures.registry import find
    from chc_equity.measures.vocabulary import Period

    start, end = _year_bounds(period_start, period_end)
    try:
        [module] = find([measure])
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    ctx = Context(Period(start, end), tuple(center) if center else None)
    rendered = render(module, ctx)
    if define is None:
        script = statements(rendered, ctx)
    else:
        try:
            script = define_sql(rendered, define)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="--define") from exc
    typer.echo(format_script(script))


def format_script(script: list[str]) -> str:
    """Statements as one readable script: trailing blanks and blank lines dropped, ``;`` after each."""
    out = []
    for statement in script:
        lines = [line.rstrip() for line in statement.strip().splitlines() if line.strip()]
        out.append("\n".join(lines) + ";")
    return "\n\n".join(out)


@measures_app.command("evaluate")
def evaluate_cmd(
    input_dir: Annotated[
        Path, typer.Option("--input", exists=True, file_okay=False, help="folder of Bundles / NDJSON")
    ],
    period_start: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    period_end: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write")],
    measure: Annotated[list[str] | None, typer.Option("--measure", help="limit to these measures")] = None,
    profiles: ProfilesOpt = "strict",
) -> None:
    """Evaluate measures on a folder of test data into a temporary warehouse; write one CSV row per
    (measure, group_id, patient_id, population_code, count)."""
    from chc_equity.measures.evaluate import evaluate, write_csv
    from chc_equity.measures.registry import find

    start, end = date.fromisoformat(period_start), date.fromisoformat(period_end)
    rows = evaluate(input_dir, find(measure), period_start=start, period_end=end, profiles=profiles)
    write_csv(rows, output)
    Console(stderr=True).print(f"wrote {len(rows)} rows to {output}")


@measures_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="folder to write the reports to")],
    measure: MeasuresOpt = None,
    center: CentersOpt = None,
    period_start: PeriodStartOpt = None,
    period_end: PeriodEndOpt = None,
    report_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="summary: one JSON per (center, measure); individual: one NDJSON per measure, "
            "a MeasureReport per patient",
        ),
    ] = "summary",
    warehouse: WarehouseOpt = None,
) -> None:
    """Export FHIR R4 MeasureReports from `measure_results` (run `measures run` for the period first).

    Summary reports carry exact, unsuppressed counts: they are the center's own report.
    """
    import orjson

    from chc_equity.measures.engine import RESULTS_TABLE
    from chc_equity.measures.registry import find
    from chc_equity.measures.report import individual_reports, summary_reports

    if report_type not in ("summary", "individual"):
        raise typer.BadParameter("use summary or individual", param_hint="--type")
    start, end = _year_bounds(period_start, period_end)
    try:
        modules = find(measure)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    con = connect(warehouse, read_only=True)
    console = Console(stderr=True)
    names = [m.measure.name for m in modules]
    found = con.execute(
        f"SELECT count(DISTINCT measure) FROM {RESULTS_TABLE} "
        "WHERE measure IN (SELECT unnest(?)) AND period_start = ? AND period_end = ?",
        [names, start, end],
    ).fetchone()[0]
    if found < len(names):
        console.print(
            f"[yellow]{len(names) - found} of {len(names)} measures have no results for {start}..{end}; "
            "run `chc-equity measures run` for that period first (their reports count 0)[/]"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    if report_type == "summary":
        for report in summary_reports(
            con, [m.measure for m in modules], period_start=start, period_end=end, centers=center
        ):
            cms = next(m.measure.cms_id for m in modules if report["measure"] == m.measure.canonical)
            center_id = report["reporter"]["reference"].split("/", 1)[1]
            path = out / f"MeasureReport-{cms}-{center_id}-{start}-{end}.json"
            path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
            written += 1
        console.print(f"wrote {written} summary MeasureReports to {out}")
    else:
        for module in modules:
            path = out / f"MeasureReport-{module.measure.cms_id}-individual-{start}-{end}.ndjson"
            with open(path, "wb") as fh:
                for report in individual_reports(
                    con, module.measure, period_start=start, period_end=end, centers=center
                ):
                    fh.write(orjson.dumps(report) + b"\n")
                    written += 1
        console.print(f"wrote {written} individual MeasureReports ({len(modules)} NDJSON files) to {out}")
    con.close()


PackageOpt = Annotated[
    Path,
    typer.Option(
        "--package", exists=True, file_okay=False, help="measure package: measure/, elm/, tests/ ..."
    ),
]


@measures_app.command("elm-sql")
def elm_sql_cmd(
    package: PackageOpt,
    measure: Annotated[str, typer.Option("--measure", help="Measure resource name, e.g. CMS75FHIR...")],
    period_start: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "2026-01-01",
    period_end: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "2026-12-31",
) -> None:
    """Print the SQL a measure compiles to from its ELM (one statement per define, then the scored
    SELECT); exits 1 naming the ELM node when the compiler does not support one."""
    from chc_equity.measures.elm.conformance import PackageLayout
    from chc_equity.measures.elm.library import ElmError
    from chc_equity.measures.elm.measure import MeasureDef, compile_measure, period_of

    layout = PackageLayout(package)
    try:
        compiled = compile_measure(
            MeasureDef.read(layout.measures / f"{measure}.json"),
            layout.elm,
            period_of(period_start, period_end),
        )
    except (ElmError, FileNotFoundError) as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    print(format_script([*compiled.statements(), compiled.select]))


@measures_app.command("elm-run")
def elm_run_cmd(
    package: PackageOpt,
    measure: Annotated[
        list[str] | None, typer.Option("--measure", help="Measure resource name; repeatable (default: all)")
    ] = None,
    show_differences: Annotated[int, typer.Option(help="print up to N disagreements per measure")] = 0,
) -> None:
    """Compile measures from the package's ELM, run them on its official test cases and print the
    agreement with its expected.csv per measure (populations agreed / compared, or why not compiled)."""
    from chc_equity.measures.elm.conformance import check_package

    results = check_package(package, measure)
    table = Table("measure", "agreed / compared")
    for name, r in results.items():
        table.add_row(name, r.status)
    Console().print(table)
    for r in results.values():
        for line in r.disagreements[:show_differences]:
            Console().print(f"{r.measure}: {line}")
