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
