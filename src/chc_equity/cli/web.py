"""`chc-equity serve` and `chc-equity users ...`: argument parsing and printing only.

uvicorn's own access log is turned off: it writes the full request line, query string included, and a
query string could carry an identifier. The app logs method, path (no query), status, time and username.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app
from chc_equity.warehouse import warehouse_path
from chc_equity.web.roles import Role

console = Console(stderr=True)
out = Console()

users_app = typer.Typer(
    help="Manage web users (in the app database: <warehouse>.app.sqlite or $CHC_EQUITY_DATABASE_URL).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        "-w",
        help="DuckDB warehouse file (default: $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb).",
    ),
]


def _store(warehouse: Path | None):
    from chc_equity.web.authstore import AuthStore

    return AuthStore.for_warehouse(warehouse_path(warehouse))


def _log_config() -> dict:
    """uvicorn's default logging plus our path-only access logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["chc"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config["handlers"]["chc"] = {
        "class": "logging.StreamHandler",
        "formatter": "chc",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["chc_equity.web.access"] = {"handlers": ["chc"], "level": "INFO", "propagate": False}
    return config


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    warehouse: WarehouseOpt = None,
    secure_cookies: Annotated[
        bool,
        typer.Option("--secure-cookies/--no-secure-cookies", help="Mark cookies Secure (use behind HTTPS)."),
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="CHC_EQUITY_FORWARDED_ALLOW_IPS",
            help="Comma list of reverse-proxy addresses (or networks) whose X-Forwarded-For / "
            "X-Forwarded-Proto headers are believed. Default: none, the client address is the TCP peer.",
        ),
    ] = None,
    targets: Annotated[
        Path | None,
        typer.Option(
            help="YAML of the network's measure targets (targets: {CMS165: 0.70}) shown on the overview. "
            "Default: <warehouse>.targets.yaml when it exists (docs/overview.md)."
        ),
    ] = None,
) -> None:
    """Run the web app (pages and /api). The warehouse is only ever opened read-only.

    Proxy headers are ignored unless ``--forwarded-allow-ips`` names the proxy: uvicorn would otherwise
    believe X-Forwarded-For from 127.0.0.1, and anyone on the host (or any request relayed through a
    local proxy) could pick their client address and so escape login throttling.
    """
    import uvicorn

    from chc_equity.web import WebConfig, create_app

    path = warehouse_path(warehouse)
    if targets is not None:
        from chc_equity.network.benchmarks import load_targets

        load_targets(targets)  # a bad file fails here, naming the key, not on the first page view
    config = WebConfig(warehouse=path.resolve(), secure_cookies=secure_cookies, targets=targets)
    web = create_app(config)
    if web.state.auth.count_admins() == 0:
        console.print(
            "[yellow]warning:[/] no network_admin yet: `chc-equity users add NAME --role network_admin`"
        )
    where = web.state.db.engine.url.render_as_string(hide_password=True)
    console.print(f"serving {path} on http://{host}:{port}/ (app database: {where})")
    trusted = (forwarded_allow_ips or "").strip()
    uvicorn.run(
        web,
        host=host,
        port=port,
        access_log=False,
        log_config=_log_config(),
        server_header=False,
        **proxy_settings(trusted),
    )


def proxy_settings(trusted: str) -> dict:
    """uvicorn's proxy options: proxy headers on, for exactly ``trusted``, only when it names someone."""
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name (case-insensitive).")],
    role: Annotated[Role, typer.Option(help="One of: " + ", ".join(r.value for r in Role) + ".")],
    center: Annotated[
        str | None,
        typer.Option(help="The user's center (center_staff, program_manager, chw; optional for viewer)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Add a web user."""
    try:
        _store(warehouse).add_user(username, _read_password(password_stdin), role, center)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"added {username.strip().lower()} ({role.value}{', ' + center if center else ''})")


@users_app.command("list")
def users_list(warehouse: WarehouseOpt = None) -> None:
    """List web users."""
    table = Table("username", "role", "center")
    for user in _store(warehouse).list_users():
        table.add_row(user.username, user.role.value, user.center or "all")
    out.print(table)


@users_app.command("delete")
def users_delete(username: str, warehouse: WarehouseOpt = None) -> None:
    """Delete a web user and end their sessions."""
    if not _store(warehouse).delete_user(username.strip().lower()):
        console.print(f"[red]error:[/] no user {username!r}")
        raise typer.Exit(1)
    out.print(f"deleted {username}")


@users_app.command("passwd")
def users_passwd(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Set a user's password (ends their sessions)."""
    try:
        _store(warehouse).set_password(username.strip().lower(), _read_password(password_stdin))
    except (ValueError, KeyError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"password changed for {username}")


@app.command()
def precompute(
    period_start: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: Jan 1 of this year)")] = None,
    period_end: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: Dec 31 of the start year)")
    ] = None,
    no_equity: Annotated[
        bool, typer.Option("--no-equity", help="Skip the stratified (equity) tables.")
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Precompute the agg_* tables the web pages read, for one measurement period (after `measures run`).

    A refresh that an interrupted `chc-equity ingest` left pending is finished first."""
    from datetime import date

    from chc_equity.network import precompute as run_precompute
    from chc_equity.refresh import finish_pending
    from chc_equity.warehouse import writing

    today = date.today()
    start = date.fromisoformat(period_start) if period_start else date(today.year, 1, 1)
    end = date.fromisoformat(period_end) if period_end else date(start.year, 12, 31)
    with writing(warehouse_path(warehouse)) as con:  # publishes the web's snapshot when done
        finish_pending(con)  # a refresh an interrupted `chc-equity ingest` left pending, first
        result = run_precompute(con, period_start=start, period_end=end, equity=not no_equity)
    out.print(
        f"precomputed {start} to {end}: {result.measure_rows} measure rows, {result.funnel_rows} funnel "
        f"points, {result.equity_rows} equity rows ({result.equity_status})"
    )
