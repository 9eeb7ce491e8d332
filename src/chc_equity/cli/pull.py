"""`chc-equity pull`: argument parsing and printing only; the work is ``chc_equity.pull.pull``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chc_equity.cli import app
from chc_equity.warehouse import writing


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)  # one message = one line, however long its path


@app.command("pull")
def pull_command(
    server: Annotated[str, typer.Option("--server", help="FHIR base URL of the EHR's Bulk Data API")],
    group: Annotated[str, typer.Option("--group", help="Group id to export ($export on Group/ID)")],
    center: Annotated[str, typer.Option("--center", help="health center id the data belongs to")],
    since: Annotated[
        str | None,
        typer.Option("--since", help="'auto' (since the last successful pull) or a FHIR instant"),
    ] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="only these resource types (repeatable)")
    ] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            "--credentials",
            help="SMART Backend Services credentials JSON (default $CHC_EQUITY_PULL_CREDENTIALS)",
        ),
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="repeat every interval (e.g. 24h) until Ctrl-C")
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", min=1, max=32, help="concurrent downloads")] = 4,
    warehouse: Annotated[Path | None, typer.Option("--warehouse", help="DuckDB file")] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh/--no-refresh", help="refresh measure results after the load")
    ] = True,
) -> None:
    """Pull a Group's data from an EHR with FHIR Bulk Data and load it like `chc-equity ingest`.

    Nothing is loaded unless the whole export downloads; `deleted` entries remove resources.
    """
    from chc_equity.pull import PullError, load_credentials, pull
    from chc_equity.pull.auth import AuthError
    from chc_equity.pull.bulk import Policy
    from chc_equity.pull.schedule import parse_every, run_every

    try:
        creds = load_credentials(credentials)
        interval = parse_every(every) if every else None
    except (AuthError, ValueError) as exc:
        _err().print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    def once() -> None:
        from chc_equity.cli.ingest import views_after_load, views_screen

        after_load = views_after_load()
        failed: PullError | None = None
        # waits while a load holds the warehouse; publishes the web's snapshot when done (a failed pull
        # too: its error row is what the data-feeds page shows)
        with writing(warehouse) as con:
            try:
                result = pull(
                    con,
                    server,
                    group,
                    center,
                    since=since,
                    types=types or None,
                    credentials=creds,
                    after_load=after_load,
                    screen=views_screen(),
                    policy=Policy(parallel=parallel),
                    log=lambda msg: _err().print(f"[dim]pull:[/] {msg}"),
                )
            except PullError as exc:
                failed = exc
            else:
                if refresh:  # whatever the pull changed is marked pending in its own transaction
                    from chc_equity.cli.ingest import refresh_pending_results

                    refresh_pending_results(con)
        if failed is not None:
            raise failed
        rec = result.record
        load = result.load
        typer.echo(
            f"pull {rec.pull_id} of {rec.source} into {center}: "
            f"{'full' if not rec.since else 'since ' + rec.since}, {rec.files} files, {rec.bytes:,} bytes; "
            f"load {rec.load_id}: {load.loaded if load else 0:,} resources "
            f"({load.inserted if load else 0:,} new, {load.updated if load else 0:,} updated, "
            f"{load.quarantined if load else 0:,} quarantined), {rec.deleted:,} deleted; "
            f"{rec.duration_s:.1f}s"
        )

    if interval is None:
        try:
            once()
        except PullError as exc:
            _err().print(f"[red]error:[/] {exc} (nothing was loaded)")
            raise typer.Exit(1) from exc
        return
    run_every(interval, once, lambda msg: _err().print(f"[dim]pull:[/] {msg}"))
