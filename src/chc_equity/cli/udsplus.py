"""`chc-equity udsplus export|validate|relink`: the UDS+ submission -- argument parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chc_equity.cli import app

out = Console()
udsplus_app = typer.Typer(
    help="UDS+: the de-identified patient-level FHIR submission (docs/udsplus.md).", no_args_is_help=True
)
app.add_typer(udsplus_app, name="udsplus")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse", "-w", help="DuckDB warehouse (default $CHC_EQUITY_WAREHOUSE or ./chc_equity.duckdb)"
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="The operator's secret (>= 32 bytes; default $CHC_EQUITY_UDSPLUS_KEY)"),
]


@udsplus_app.command("export")
def export(
    year: Annotated[int, typer.Option("--year", help="Calendar year reported")],
    center: Annotated[str, typer.Option("--center", help="Center id")],
    hc_config: Annotated[
        Path, typer.Option("--hc-config", help="YAML: UEI, grant number, address, contact per center")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (NDJSON files + manifest.json); default <warehouse>.udsplus/<center>/<year>/"
            "<submission id>/, which the web UDS page lists for network admins",
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="UDS config (visit rule, sites)")] = None,
    key_file: KeyOpt = None,
    base_url: Annotated[str, typer.Option(help="Where the receiver downloads the files")] = (
        "https://example.invalid/udsplus"
    ),
    partial: Annotated[str | None, typer.Option(help="Partial submission name (one EHR or site)")] = None,
    replaces: Annotated[str | None, typer.Option(help="submissionId this submission replaces")] = None,
    incremental: Annotated[
        bool, typer.Option(help="Only corrected records replacing those of --replaces (IG incrementalData)")
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """De-identify the center's UDS patients, write NDJSON + manifest, validate; exit 1 on violations."""
    from dataclasses import replace as dc_replace

    from chc_equity.uds import load_config
    from chc_equity.udsplus.package import Submission, load_health_center
    from chc_equity.udsplus.package import export as run_export
    from chc_equity.udsplus.relink import load_key
    from chc_equity.udsplus.store import default_folder
    from chc_equity.warehouse import warehouse_path, writing

    try:
        key = load_key(key_file)
        hc = load_health_center(hc_config, center)
    except (ValueError, OSError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    cfg = dc_replace(load_config(config), age_as_of="12-31")  # the IG: age on December 31
    if incremental and not replaces:
        out.print("[red]error:[/red] --incremental needs --replaces (the submission it corrects)")
        raise typer.Exit(2)
    sub = Submission(base_url=base_url, partial_name=partial, replaces=replaces, incremental=incremental)
    if out_dir is None:
        try:
            out_dir = default_folder(warehouse_path(warehouse), center, year, sub.submission_id)
        except ValueError as exc:
            out.print(f"[red]error:[/red] --center: {exc}; pass --out")
            raise typer.Exit(2) from exc
    with writing(warehouse) as con:  # the UDS build rewrites patient_attributes; the re-link rows land here
        ex, paths, violations = run_export(con, year, center, key, hc, out_dir, config=cfg, sub=sub)
    counts = ", ".join(f"{t} {len(rs)}" for t, rs in sorted(ex.resources.items()))
    out.print(
        f"{center} {year}: {counts}; submission {sub.submission_id}; wrote {len(paths)} files to {out_dir}"
    )
    if violations:
        out.print(f"[red]{len(violations)} profile violation(s)[/red], listed in {paths['validation']}")
        raise typer.Exit(1)
    out.print("validation: every resource conforms to its UDS+ profile")


@udsplus_app.command("validate")
def validate(
    folder: Annotated[Path, typer.Argument(help="A package folder (manifest.json + NDJSON)")],
) -> None:
    """Validate a package against the UDS+ profiles (strict: our own output's rules too)."""
    import json

    from chc_equity.udsplus.reader import read_package
    from chc_equity.udsplus.validate import validate as check
    from chc_equity.udsplus.validate import validate_all

    res = read_package(folder)
    violations = validate_all((r for rs in res.values() for r in rs), strict=True)
    violations += check(json.loads((folder / "manifest.json").read_text()))
    for v in violations:
        out.print(str(v), markup=False)
    n = sum(len(rs) for rs in res.values())
    out.print(f"{n} resources, {len(violations)} violation(s)")
    raise typer.Exit(1 if violations else 0)


@udsplus_app.command("relink")
def relink(
    year: Annotated[int, typer.Option("--year")],
    center: Annotated[str, typer.Option("--center")],
    reference: Annotated[str, typer.Argument(help="A submitted reference, e.g. Patient/3f2a...")],
    key_file: KeyOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """The warehouse id behind a submitted id (needs the key; prints nothing else)."""
    from chc_equity.udsplus.relink import RelinkError, load_key
    from chc_equity.udsplus.relink import relink as look_up
    from chc_equity.warehouse import connect, warehouse_path

    rtype, _, pseudonym = reference.partition("/")
    con = connect(warehouse_path(warehouse), read_only=True)
    try:
        print(look_up(con, load_key(key_file), year, center, rtype, pseudonym))
    except (RelinkError, ValueError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        con.close()
