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


PackageOptional = Annotated[
    Path | None,
    typer.Option(
        "--package",
        exists=True,
        file_okay=False,
        help="measure package (measure/ or input/resources/measure/, elm/): run its measures compiled "
        "from their ELM (docs/measures.md, Compiled measures)",
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="compiled | handwritten: which implementation runs a measure that has both (with --package; "
        "default compiled). Without --package only the hand-written measures exist",
    ),
]


def _select(
    package: Path | None, engine: str | None, wanted: list[str] | None, start: date, end: date
) -> tuple[tuple, tuple]:
    """The hand-written modules and compiled measures a command runs (``elm.run.plan`` decides which
    engine runs a measure that has both); exits 1 when a measure asked for by name cannot be compiled."""
    from chc_equity.measures.registry import find

    if package is None:
        if engine == "compiled":
            raise typer.BadParameter(
                "compiled measures need --package DIR (their ELM)", param_hint="--engine"
            )
        try:
            return find(wanted), ()
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0])) from exc
    from chc_equity.measures.elm.run import plan
    from chc_equity.measures.vocabulary import Period

    try:
        chosen = plan(package, wanted, Period(start, end), engine or "compiled")
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc.args[0]) if exc.args else str(exc)) from exc
    err = Console(stderr=True)
    for name, message in chosen.failed.items():
        err.print(f"[yellow]{name}: not compiled ({message})[/yellow]")
    if chosen.failed and wanted:
        raise typer.Exit(1)
    return chosen.handwritten, chosen.compiled


def _package_modules(package: Path, wanted: list[str] | None) -> tuple:
    """The package's measures as the engine knows them: the hand-written module where there is one
    (its metadata: title, stratifiers), else the Measure resource's populations."""
    from chc_equity.measures.elm.conformance import PackageLayout
    from chc_equity.measures.elm.measure import MeasureDef
    from chc_equity.measures.elm.run import package_measures
    from chc_equity.measures.engine import MeasureModule
    from chc_equity.measures.registry import all_measures

    known = {m.measure.name: m for m in all_measures()}
    folder = PackageLayout(package).measures
    return tuple(
        known.get(n) or MeasureModule(MeasureDef.read(folder / f"{n}.json").model(), lambda ctx: "")
        for n in package_measures(package, wanted)
    )


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
    package: PackageOptional = None,
    engine: EngineOpt = None,
) -> None:
    """Evaluate measures over the warehouse and write the patient-level `measure_results` table.

    Without --package: the hand-written measures. With --package DIR: the package's measures compiled
    from their ELM (a measure the compiler does not support is named with the reason and skipped);
    --engine handwritten runs the hand-written twin of those that have one. Compiled and hand-written
    rows land in the same table, so summaries and `measures report` read both alike.

    Afterwards the aggregates the web pages read (network summaries, funnel limits, equity strata) are
    recomputed for the period, so pages stay fast and never show stale numbers. A refresh that an
    interrupted `chc-equity ingest` left pending is finished first.
    """
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.summary import summarize

    start, end = _year_bounds(period_start, period_end)
    modules, compiled = _select(package, engine, measure, start, end)
    with writing(warehouse) as con:  # publishes the web's snapshot when done
        console = Console()
        with console.status("evaluating measures ...") as status:
            from chc_equity.refresh import finish_pending

            finish_pending(con, on_step=status.update)  # a refresh a crashed ingest left pending, first

            def progress(m, seconds: float) -> None:
                status.update(f"{m.cms_id} done in {seconds:.2f} s")

            if modules:
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
            if compiled:
                from chc_equity.measures.elm.run import compiled_module, run_compiled_measures

                run_compiled_measures(
                    con,
                    compiled,
                    period_start=start,
                    period_end=end,
                    centers=center,
                    profiles=profiles,
                    on_measure=progress,
                )
                modules = (*modules, *(compiled_module(c) for c in compiled))
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
    package: PackageOptional = None,
    engine: EngineOpt = None,
) -> None:
    """Evaluate measures on a folder of test data into a temporary warehouse; write one CSV row per
    (measure, group_id, patient_id, population_code, count). With --package DIR the package's measures
    (or --measure) run compiled from their ELM (--engine handwritten: the hand-written twin where one
    exists)."""
    from chc_equity.measures.evaluate import evaluate_into, population_rows, write_csv

    start, end = date.fromisoformat(period_start), date.fromisoformat(period_end)
    modules, compiled = _select(package, engine, measure, start, end)
    con = evaluate_into(input_dir, modules, period_start=start, period_end=end, profiles=profiles)
    try:
        if compiled:
            from chc_equity.measures.elm.run import compiled_module, run_compiled_measures

            # the profile rule was applied when the folder was loaded: the copy holds what counts
            run_compiled_measures(con, compiled, period_start=start, period_end=end, profiles="lenient")
            modules = (*modules, *(compiled_module(c) for c in compiled))
        rows = population_rows(con, modules)
    finally:
        con.close()
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
    package: PackageOptional = None,
) -> None:
    """Export FHIR R4 MeasureReports from `measure_results` (run `measures run` for the period first).

    With --package DIR: the package's measures (those run compiled by `measures run --package`).
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
        modules = find(measure) if package is None else _package_modules(package, measure)
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


@measures_app.command("compile")
def compile_cmd(
    package: PackageOpt,
    measure: Annotated[str, typer.Option("--measure", help="Measure resource name or CMS id, e.g. CMS75")],
    dialect: Annotated[
        str, typer.Option("--dialect", help="SQL dialect (duckdb, the warehouse's)")
    ] = "duckdb",
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="write the SQL here")] = None,
    period_start: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "2026-01-01",
    period_end: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "2026-12-31",
) -> None:
    """Print (or save with --out) the SQL a measure compiles to from its ELM: the patient relation, one
    statement per define, then the scored SELECT of its `measure_results` rows. Exits 1 naming the ELM
    node, library, define and line when the compiler does not support one."""
    from chc_equity.measures.elm.library import ElmError
    from chc_equity.measures.elm.run import compile_package, package_measures
    from chc_equity.measures.vocabulary import Period

    if dialect != "duckdb":
        raise typer.BadParameter(f"only duckdb is supported, not {dialect!r}", param_hint="--dialect")
    start, end = _year_bounds(period_start, period_end)
    try:
        [name] = package_measures(package, [measure])
        compiled, failed = compile_package(package, [name], Period(start, end))
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--measure") from exc
    except (ElmError, FileNotFoundError) as exc:
        failed = {measure: str(exc)}
    if failed:
        Console(stderr=True).print(f"[red]{next(iter(failed.values()))}[/red]")
        raise typer.Exit(1)
    script = format_script([*compiled[0].statements(), compiled[0].select])
    if out is None:
        print(script)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(script + "\n")
        Console(stderr=True).print(f"wrote the SQL of {name} to {out}")


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
