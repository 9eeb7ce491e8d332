"""`chc-equity appdb ...`: the app database (users, CHWs, outreach) -- argument parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chc_equity.cli import app
from chc_equity.warehouse import warehouse_path

out = Console()
appdb_app = typer.Typer(
    help="The app database: <warehouse>.app.sqlite, or $CHC_EQUITY_DATABASE_URL (PostgreSQL).",
    no_args_is_help=True,
)
app.add_typer(appdb_app, name="appdb")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option("--warehouse", "-w", help="DuckDB warehouse file (default: $CHC_EQUITY_WAREHOUSE)."),
]


@appdb_app.command("upgrade")
def upgrade(warehouse: WarehouseOpt = None) -> None:
    """Create the app database or bring its schema to the latest migration (serve does this too)."""
    from chc_equity.appdb import open_for_warehouse

    db = open_for_warehouse(warehouse_path(warehouse))
    where = db.engine.url.render_as_string(hide_password=True)
    out.print(f"app database at revision {db.revision()}: {where}")


@appdb_app.command("import")
def import_fhir(
    center: Annotated[
        list[str] | None, typer.Option(help="Only this center (repeatable; default: all).")
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import CHWs (PractitionerRole 172V00000X), care-team panels, CHW-service encounters and
    Communications sent by CHWs from the warehouse (read-only) into the app database; safe to re-run
    (nothing is added twice, an edit made in the app is never overwritten)."""
    from chc_equity.appdb import open_for_warehouse
    from chc_equity.appdb.fhir_import import centers, import_center
    from chc_equity.warehouse import WarehouseError, connect

    path = warehouse_path(warehouse)
    db = open_for_warehouse(path)
    try:
        # the live warehouse, read-only: CHWs and panels come from flat tables that the web's serving
        # snapshot does not carry (chc_equity.serving); waits while a load holds the file
        with connect(path, read_only=True) as con:
            for name in center or centers(con):
                with db.write() as session:
                    r = import_center(con, session, name)
                out.print(
                    f"{name}: {r.chws_added} CHWs added, {r.assignments_added} assignments added, "
                    f"{r.outreach_added} of {r.outreach_found} CHW-service encounters added as outreach, "
                    f"{r.communications_added} of {r.communications_found} CHW Communications added "
                    f"({r.communications_skipped} skipped: channel, outcome or date unknown)"
                )
                if r.communication_view_outdated:
                    out.print(
                        f"{name}: Communications not imported: flat.communication predates its sender and "
                        "medium columns; run `chc-equity views build` and import again"
                    )
    except WarehouseError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
