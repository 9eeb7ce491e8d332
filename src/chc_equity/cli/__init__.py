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


@app.callback()
def _root() -> None:
    """Quality and health-equity analytics for community health centers.

    A callback keeps `app` a group of commands: ``main`` registers only the module of the command it
    runs, and Typer would otherwise run a lone command (``equity``, ``synth``, ``series`` ...) as the
    app itself and reject its own name as an extra argument.
    """


# Top-level command -> the CLI module that registers it. ``main`` imports only that module, so a
# command pays only for the libraries it uses (`ingest` never imports pandas, scipy, altair or
# fastapi: measured with `python -X importtime`, and tested). A command missing here still works:
# everything is registered then, as for `--help`.
_COMMAND_MODULES = {
    "equity": "equity",
    "ingest": "ingest",
    "rejects": "ingest",
    "measures": "measures",
    "synth": "synth",
    "uds": "uds",
    "views": "views",
    "serve": "web",
    "users": "web",
    "precompute": "web",
    "pull": "pull",
    "worklist": "outreach",
    "chw": "outreach",
    "appdb": "appdb",
    "sdoh": "sdoh",
    "series": "series",
    "udsplus": "udsplus",
    "improvement": "improvement",
    "vouchers": "vouchers",
    "vbp": "vbp",
    "hospital": "hospital",
    "child": "child",
    "spark": "spark",
}
_MODULES = (
    "appdb",
    "equity",
    "hospital",
    "improvement",
    "ingest",
    "measures",
    "outreach",
    "pull",
    "sdoh",
    "series",
    "spark",
    "synth",
    "uds",
    "udsplus",
    "views",
    "vouchers",
    "vbp",
    "web",
    "child",
)


def _register(command: str | None = None) -> None:
    """Import the CLI module(s) so that they register themselves on `app`: only the one that defines
    ``command`` when it is known, else all of them (top-level help, unknown commands)."""
    from importlib import import_module

    module = _COMMAND_MODULES.get(command or "")
    for name in (module,) if module else _MODULES:
        import_module(f"chc_equity.cli.{name}")


def main() -> None:
    import sys

    from chc_equity.warehouse import WarehouseError

    _register(sys.argv[1] if len(sys.argv) > 1 else None)
    try:
        app()
    except WarehouseError as exc:  # one line, not a traceback, whichever command opened it
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
