"""Each command imports only what it uses: a real `chc-equity ingest` (with its views refresh) must
not pay for pandas, scipy, altair or fastapi, which only the analysis and web commands need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer

from chc_equity import cli

HEAVY = ("pandas", "scipy", "altair", "fastapi")
REPO = Path(__file__).resolve().parents[1]


def _modules_after(argv: list[str]) -> list[str]:
    """Run ``chc-equity ARGV`` in a fresh interpreter; the heavy modules it had imported at exit."""
    code = (
        "import sys\n"
        "from chc_equity.cli import main\n"
        f"sys.argv = ['chc-equity', *{argv!r}]\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print('MODULES', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    return json.loads(line.removeprefix("MODULES ").replace("'", '"'))


def test_ingest_help_imports_no_heavy_library() -> None:
    assert _modules_after(["ingest", "--help"]) == []


def test_ingest_run_with_views_imports_no_heavy_library(tmp_path: Path) -> None:
    """A real load with its views refresh. pandas too: pyarrow's ``pa.array`` imported it (to ask whether
    a list is a pandas object), so the staged batches are built from buffers (ingest/store.py)."""
    data = tmp_path / "p.ndjson"
    data.write_text(
        json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-01-01"})
        + "\n"
    )
    argv = ["ingest", str(data), "--center", "c1", "--warehouse", str(tmp_path / "w.duckdb")]
    assert _modules_after(argv) == []


def test_equity_help_still_loads_its_libraries() -> None:
    """The check above can fail: a command that needs pandas does import it."""
    assert "pandas" in _modules_after(["equity", "--help"])


def test_every_command_is_mapped_to_its_module() -> None:
    """A command added without an entry in the map would still run (everything is registered then),
    only slower; this keeps the map complete."""
    cli._register()
    names = set(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]
    assert names == set(cli._COMMAND_MODULES)


def test_a_lone_command_keeps_its_name() -> None:
    """`main` registers only the module of the command it runs; a module with one top-level command
    must still be run as `chc-equity <command> ...`, not as the app itself (Typer collapses a lone
    command: `chc-equity equity --measure ...` then failed with "unexpected extra argument (equity)").
    The usage line of each such command, in a fresh interpreter, names the command."""
    lone = sorted(
        c for c, m in cli._COMMAND_MODULES.items() if list(cli._COMMAND_MODULES.values()).count(m) == 1
    )
    assert {"equity", "synth", "series"} <= set(lone)
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    for command in lone:
        argv = f"sys.argv = ['chc-equity', {command!r}, '--help']"
        code = f"import sys\nfrom chc_equity.cli import main\n{argv}\nmain()\n"
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert f"chc-equity {command}" in proc.stdout, (command, proc.stdout[:300])
