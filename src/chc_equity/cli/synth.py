"""`chc-equity synth`: generate a synthetic CHC network (FHIR bulk NDJSON per center + truth.json)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chc_equity.cli import app
from chc_equity.synth import generate, load_config


@app.command("synth")
def synth(
    out: Path = typer.Option(
        ..., "--out", help="Output folder: DIR/<center_id>/<Type>.ndjson, centers.json, truth.json"
    ),
    centers: int = typer.Option(8, "--centers", min=1, help="Number of health centers"),
    patients: int = typer.Option(20000, "--patients", min=1, help="Total patients across all centers"),
    seed: int = typer.Option(1, "--seed", help="Random seed (same seed and arguments give identical bytes)"),
    period_end: str = typer.Option("2026-12-31", "--period-end", help="Last day of the measurement period"),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False, help="YAML overrides"),
    gz: bool = typer.Option(False, "--gzip", help="Write .ndjson.gz"),
    no_disparities: bool = typer.Option(
        False, "--no-disparities", help="Plant no disparities (all factors 1)"
    ),
) -> None:
    """Generate a synthetic network of Massachusetts-like community health centers."""
    cfg = load_config(config, disparities=not no_disparities)
    with Progress(
        TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=patients < 5000
    ) as bar:
        task = bar.add_task("patients", total=patients)
        summary = generate(
            out,
            centers=centers,
            patients=patients,
            seed=seed,
            period_end=date.fromisoformat(period_end),
            cfg=cfg,
            gz=gz,
            progress=lambda n: bar.advance(task, n),
        )
    sizes = ", ".join(f"{c['id']}={c['patients']}" for c in summary["centers"])
    typer.echo(f"wrote {patients} patients in {centers} centers to {out} ({sizes})")
