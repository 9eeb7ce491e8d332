"""`chc-equity ingest` and `chc-equity rejects`: argument parsing and printing only.

The work is ``chc_equity.ingest.load``. The views refresh is passed in as ``after_load`` so it runs
inside the load's transaction; ingest itself never imports the views stage. The warehouse is opened with
``warehouse.writing``: a load queued behind another waits for it, and the web's serving snapshot is
published once the load and its refresh are done.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from chc_equity.cli import app
from chc_equity.ingest import LoadResult, list_rejects, load
from chc_equity.ingest.loader import AfterLoad
from chc_equity.ingest.sources import DEFAULT_MAX_RECORD_BYTES, InputError, find_inputs
from chc_equity.ingest.store import TOUCHED
from chc_equity.warehouse import WarehouseError, connect, writing


def _err() -> Console:
    """Consoles are made per call so they follow the terminal (and COLUMNS) of that invocation."""
    return Console(stderr=True, soft_wrap=True)  # one message = one line, however long its path


class _RateColumn(ProgressColumn):
    """Resources per second, from the count kept in the task's fields."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        count = task.fields.get("resources", 0)
        rate = count / elapsed if elapsed > 0 else 0.0
        return Text(f"{count:,} resources  {rate:,.0f}/s", style="progress.data.speed")


def views_after_load() -> AfterLoad:
    """The in-transaction views refresh every load runs (`ingest`, `pull`): only the flat rows of the
    resources the load inserted, replaced or deleted (keys in ``store.TOUCHED``; equals a full rebuild),
    recording the patients they belong to as the scope of the results refresh (``chc_equity.touched``)."""
    from chc_equity.touched import refresh_views_and_scope

    def refresh(con, center: str) -> None:
        refresh_views_and_scope(con, center, TOUCHED)

    return refresh


def views_screen():
    """The built-in views' ingest screen: a resource a view could not read is quarantined (`wrong-shape`)."""
    from chc_equity.views.shape import builtin_screen

    return builtin_screen()


def _summary(result: LoadResult) -> Table:
    table = Table(title=f"load {result.load_id} - center {result.center}")
    table.add_column("resource type")
    table.add_column("loaded", justify="right")
    table.add_column("quarantined", justify="right")
    for rtype in sorted(set(result.loaded_by_type) | set(result.quarantined_by_type)):
        table.add_row(rtype, f"{result.loaded_by_type[rtype]:,}", f"{result.quarantined_by_type[rtype]:,}")
    table.add_section()
    table.add_row("total", f"{result.loaded:,}", f"{result.quarantined:,}", style="bold")
    table.caption = (
        f"{len(result.files)} files, {result.inserted:,} inserted, {result.updated:,} updated, "
        f"{result.unchanged:,} unchanged, {result.duration_s:.1f}s"
    )
    return table


def refresh_pending_results(con) -> None:
    """Finish every pending refresh (this load's center and any a crash left over): re-run the measures
    already computed for each period, then the web aggregates. Runs after the load committed; the
    pending rows stay until it completes, so a failure here is finished by the next run."""
    from chc_equity.refresh import finish_pending, pending_centers

    centers = pending_centers(con)
    if not centers:
        return
    try:
        with _err().status(f"refreshing measure results of {', '.join(centers)} ...") as status:
            finish_pending(con, on_step=status.update)
    except Exception as exc:  # the load itself is committed and the refresh stays pending
        # the type only: a database error message can quote a data value (patient data stays out of logs)
        _err().print(
            f"[yellow]warning:[/] results not refreshed ({type(exc).__name__}); still pending, finished by "
            "the next `chc-equity ingest`, `measures run` or `precompute`"
        )


@app.command("ingest")
def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="NDJSON / JSON / Bundle files or directories (.gz ok)")],
    center: Annotated[str, typer.Option("--center", help="health center id the data belongs to")],
    warehouse: Annotated[
        Path | None,
        typer.Option(
            "--warehouse", help="DuckDB file (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when anything was quarantined")] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh/--no-refresh",
            help="re-run the measures already computed for this center's periods and the web aggregates "
            "(with --no-refresh the center stays marked pending until the next ingest or measures run)",
        ),
    ] = True,
    max_record_mb: Annotated[
        float,
        typer.Option(
            "--max-record-mb",
            envvar="CHC_EQUITY_MAX_RECORD_MB",
            min=0.001,
            help="per-record size limit (MB); a larger record is quarantined, not read",
        ),
    ] = DEFAULT_MAX_RECORD_BYTES / 2**20,
) -> None:
    """Load FHIR data for one center; bad input is quarantined (see `chc-equity rejects`).

    When the warehouse already holds measure results, the center's results and the precomputed web
    aggregates are refreshed for every period present, so nothing downstream shows stale numbers. What
    needs refreshing is recorded with the load itself, so a refresh cut short (crash, kill, error) is
    finished by the next run even when that run loads nothing new.
    """
    try:
        inputs = find_inputs(paths)
        files = inputs.files
        total = sum(os.path.getsize(f) for f in files)
    except InputError as exc:
        _err().print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    after_load = views_after_load()
    try:
        # waits while another load holds the warehouse; publishes the web's snapshot when done
        with writing(warehouse) as con:
            with Progress(
                TextColumn("ingest"),
                BarColumn(),
                DownloadColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                console=_err(),
                transient=True,
            ) as bar:
                task = bar.add_task("ingest", total=total, resources=0)

                def progress(nbytes: int, nresources: int) -> None:
                    fields = bar.tasks[task].fields
                    bar.update(task, advance=nbytes, resources=fields.get("resources", 0) + nresources)

                result = load(
                    con,
                    files,
                    center,
                    after_load=after_load,
                    progress=progress,
                    screen=views_screen(),
                    max_record_bytes=max(1, int(max_record_mb * 2**20)),
                )
            if refresh:
                refresh_pending_results(con)
    except WarehouseError as exc:
        _err().print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    out = Console()
    out.print(_summary(result))
    if result.quarantined:
        out.print(f"{result.quarantined:,} quarantined: `chc-equity rejects --load {result.load_id}`")
    for path, why in inputs.skipped:
        _err().print(f"[yellow]skipped:[/] {path}: {why}", highlight=False)
    if inputs.skipped:
        out.print(f"{len(inputs.skipped):,} files skipped in the given directories (not read)")
    if result.dangling_references:
        out.print(
            f"[yellow]warning:[/] {result.dangling_references:,} urn:uuid references match no entry "
            "of their Bundle (loaded unresolved)"
        )
    if strict and result.quarantined:
        raise typer.Exit(1)


@app.command("rejects")
def rejects_command(
    load_id: Annotated[int | None, typer.Option("--load", help="only this load")] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many rows")] = 50,
    show_raw: Annotated[
        bool, typer.Option("--show-raw", help="also print raw text (may hold patient data)")
    ] = False,
    warehouse: Annotated[Path | None, typer.Option("--warehouse", help="DuckDB file")] = None,
) -> None:
    """List quarantined input: where, which field, and why (raw text only with --show-raw)."""
    try:
        con = connect(warehouse, read_only=True)
    except WarehouseError as exc:
        _err().print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    try:
        rows = list_rejects(con, load_id=load_id, limit=limit)
    finally:
        con.close()
    table = Table(title=f"rejects{'' if load_id is None else f' of load {load_id}'} ({len(rows)} shown)")
    columns = ["load_id", "source_file", "source_pos", "resource_type", "field", "reason", "detail"]
    if show_raw:
        columns.append("raw")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    Console().print(table)
