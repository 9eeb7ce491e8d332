"""The `chc-equity` command line: one Typer app, each stage contributing its own sub-commands.

Each stage keeps its CLI in a module here (``cli/ingest.py``, ``cli/views.py`` ...) that only
parses arguments and prints; the work happens in the stage package.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="chc-equity",
    help="Quality and health-equity analytics for community health centers.",
    no_args_is_help=True,
    add_completion=False,
)


def _register() -> None:
    # Imported here so that each stage's CLI module registers itself on `app`.
    from chc_equity.cli import appdb as _appdb  # noqa: F401
    from chc_equity.cli import equity as _equity  # noqa: F401
    from chc_equity.cli import ingest as _ingest  # noqa: F401
    from chc_equity.cli import measures as _measures  # noqa: F401
    from chc_equity.cli import pull as _pull  # noqa: F401
    from chc_equity.cli import synth as _synth  # noqa: F401
    from chc_equity.cli import uds as _uds  # noqa: F401
    from chc_equity.cli import views as _views  # noqa: F401
    from chc_equity.cli import web as _web  # noqa: F401


def main() -> None:
    from chc_equity.warehouse import WarehouseError

    _register()
    try:
        app()
    except WarehouseError as exc:  # one line, not a traceback, whichever command opened it
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
