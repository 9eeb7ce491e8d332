"""`make demo`: a synthetic network in, a report out, on embedded DuckDB.

Generates a small synthetic network (8 centers, 20,000 patients), ingests each center into
``out/demo/chc_equity.duckdb`` (views refreshed in the same transaction), runs every implemented
measure for the calendar year, and writes ``out/demo/report.html``. Aggregates in the report are
small-cell suppressed (counts 1-10 hidden), as anything that leaves the system must be.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.measures.summary import summarize
from chc_equity.synth import generate, load_config
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

OUT = Path("out/demo")
CENTERS = 8
PATIENTS = 20_000
SEED = 2026
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
SMALL_CELL = 11


def _cell(count: int) -> str:
    """A count as published: 1-10 suppressed."""
    return "&lt;11" if 0 < count < SMALL_CELL else str(count)


def _rate(numerator: int, denominator: int) -> str:
    """A rate as published: hidden when the numerator or its complement is a small cell."""
    if denominator <= 0:
        return ""
    if 0 < numerator < SMALL_CELL or 0 < denominator - numerator < SMALL_CELL:
        return "suppressed"
    return f"{numerator / denominator:.1%}"


def run(out: Path = OUT) -> Path:
    console = Console()
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    data = out / "network"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    with Progress(*columns, console=console) as bar:
        task = bar.add_task("generate patients", total=PATIENTS)
        summary = generate(
            data,
            centers=CENTERS,
            patients=PATIENTS,
            seed=SEED,
            period_end=PERIOD[1],
            cfg=load_config(None, disparities=True),
            gz=False,
            progress=lambda n: bar.advance(task, n),
        )
    centers = [c["id"] for c in summary["centers"]]

    con = connect(out / "chc_equity.duckdb")
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("ingest centers", total=len(centers))
        for center in centers:
            load(con, [data / center], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
            bar.advance(task)

    modules = all_measures()
    with console.status("evaluating measures ..."):
        run_measures(con, modules, period_start=PERIOD[0], period_end=PERIOD[1])
    rows = summarize(con, [m.measure.name for m in modules], *PERIOD)
    network = summarize(con, [m.measure.name for m in modules], *PERIOD, by_center=False)
    loads = con.execute(
        "SELECT center, sum(inserted + updated + unchanged), sum(quarantined) "
        "FROM loads GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()

    report = out / "report.html"
    report.write_text(_render(loads, network, rows, len(modules)))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "centers": centers,
                "patients": PATIENTS,
                "measures": len(modules),
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    console.print(f"[bold green]Demo ready[/] in {time.perf_counter() - started:.0f} s")
    console.print(f"  report:    {report.resolve()}")
    console.print(f"  warehouse: {(out / 'chc_equity.duckdb').resolve()}")
    return report


def _render(loads, network, rows, n_measures: int) -> str:
    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    load_rows = [[html.escape(c), str(n), str(q)] for c, n, q in loads]
    net_rows = [
        [
            html.escape(s.cms_id),
            html.escape(s.group_id),
            _cell(s.denominator),
            _cell(s.denominator_exclusion + s.denominator_exception),
            _cell(s.numerator),
            _rate(s.numerator, s.performance_denominator),
        ]
        for s in network
    ]
    center_rows = [
        [
            html.escape(s.cms_id),
            html.escape(s.group_id),
            html.escape(s.center),
            _cell(s.denominator),
            _cell(s.numerator),
            _rate(s.numerator, s.performance_denominator),
        ]
        for s in rows
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chc-equity demo report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>chc-equity demo: synthetic Massachusetts health-center network</h1>
<p>Measurement period {PERIOD[0]} to {PERIOD[1]}. {len(load_rows)} centers, {n_measures} eCQMs implemented.
Synthetic data only. Counts from 1 to 10 are suppressed.</p>
<h2>Network measure results</h2>
{table(["measure", "group", "denominator", "excluded / excepted", "numerator", "rate"], net_rows)}
<h2>Loads</h2>
{table(["center", "resources loaded", "quarantined"], load_rows)}
<h2>By center</h2>
{table(["measure", "group", "center", "denominator", "numerator", "rate"], center_rows)}
</body></html>
"""


if __name__ == "__main__":
    run()
