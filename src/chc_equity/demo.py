"""`make demo`: a synthetic network in, a report out, on embedded DuckDB.

Generates a small synthetic network (8 centers, 20,000 patients), ingests each center into
``out/demo/chc_equity.duckdb`` (views refreshed in the same transaction), runs every measure for the
calendar year, stratifies every measure by the equity dimensions (``out/demo/equity/``), builds the UDS
tables (``out/demo/uds/``), the social-needs metrics (``sdoh_metrics``, for the web's Social needs page)
and writes ``out/demo/report.html``. Aggregates in the report are small-cell
suppressed (counts 1-10 hidden), as anything that leaves the system must be: the measure tables follow the
publication plan the web app uses (``agg_suppression``: centers, network and strata planned together).
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chc_equity.child.build import build as child_build
from chc_equity.equity.charts import forest_plot, gap_chart, save_chart
from chc_equity.equity.ranking import largest_inequities
from chc_equity.equity.stratify import EquityRow, equity_tables
from chc_equity.exports import csv_writer
from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.measures.summary import summarize
from chc_equity.network import precompute
from chc_equity.refresh import finish_pending
from chc_equity.sdoh import metrics as sdoh_metrics
from chc_equity.sdoh import strata as sdoh_strata
from chc_equity.synth import generate, load_config
from chc_equity.uds import build_report
from chc_equity.uds.export import write_all
from chc_equity.uds.report import NETWORK
from chc_equity.vbp.synth import generate_and_load
from chc_equity.views.build import build_views
from chc_equity.views.shape import builtin_screen
from chc_equity.warehouse import connect

OUT = Path("out/demo")
CENTERS = 8
PATIENTS = 20_000
SEED = 2026
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
SMALL_CELL = 11
# The dimensions the demo network plants disparities on (synth default config), plus center.
EQUITY_DIMENSIONS = ("race_ethnicity", "language", "insurance", "income", "sdoh_risk", "center")
# Headline charts in the report: (measure, dimension).
HEADLINE_CHARTS = (("CMS165", "race_ethnicity"), ("CMS122", "race_ethnicity"))
WORST_HEAD = [
    "measure",
    "dimension",
    "stratum",
    "reference",
    "rate",
    "difference",
    "q (centers: p)",
    "gap to equity",
]


def _q_or_p(row: EquityRow) -> str:
    """The q-value; for centers (compared with the network, no multiplicity correction) the p-value."""
    value = row.q_value if row.q_value is not None else row.p_value
    return f"{value:.2g}" if value is not None else ""


HIDDEN = "suppressed"
Plans = dict[tuple[str, str, str], tuple[bool, bool, bool]]


def _plans(con) -> Plans:
    """The precomputed publication plan: (measure, group, center) -> hidden (met, not met, denominator)."""
    rows = con.execute(
        "SELECT measure, group_id, center, numerator_hidden, not_met_hidden, denominator_hidden "
        "FROM agg_suppression WHERE period_start = ? AND period_end = ?",
        list(PERIOD),
    ).fetchall()
    return {(m, g, c): (x, y, d) for m, g, c, x, y, d in rows}


def _published(numerator: int, denominator: int, hidden: tuple[bool, bool, bool]) -> list[str]:
    """Performance denominator, numerator and rate as the plan publishes them (one label for every
    hidden cell: telling small cells from their complements would bound them)."""
    x_h, y_h, d_h = hidden
    rate = "" if denominator <= 0 else f"{numerator / denominator:.1%}"
    return [
        HIDDEN if d_h else str(denominator),
        HIDDEN if x_h else str(numerator),
        HIDDEN if x_h or y_h or d_h else rate,
    ]


# --size presets: (centers, patients). "default" is what `make demo` builds.
SIZES = {"small": (4, 4_000), "default": (CENTERS, PATIENTS), "large": (36, 72_000)}
_MARKERS = ("summary.json", "chc_equity.duckdb", "network")  # what a previous demo run leaves behind


def _clear(out: Path) -> None:
    """Remove a previous demo run at ``out``; refuse a folder that is not one (never delete a stranger)."""
    if not out.exists():
        return
    if not out.is_dir() or (any(out.iterdir()) and not any((out / m).exists() for m in _MARKERS)):
        raise SystemExit(f"{out} exists and is not a previous demo run: choose another --out or remove it.")
    shutil.rmtree(out)


def run(out: Path = OUT, *, centers: int = CENTERS, patients: int = PATIENTS) -> Path:
    console = Console()
    started = time.perf_counter()
    _clear(out)
    data = out / "network"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    with Progress(*columns, console=console) as bar:
        task = bar.add_task("generate patients", total=patients)
        summary = generate(
            data,
            centers=centers,
            patients=patients,
            seed=SEED,
            period_end=PERIOD[1],
            cfg=load_config(None, disparities=True),
            gz=False,
            progress=lambda n: bar.advance(task, n),
        )
    center_ids = [c["id"] for c in summary["centers"]]

    con = connect(out / "chc_equity.duckdb")
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("ingest centers", total=len(center_ids))
        for center in center_ids:
            load(
                con,
                [data / center],
                center,
                after_load=lambda c, ctr: build_views(c, centers=[ctr]),
                screen=builtin_screen(),
            )
            bar.advance(task)
    finish_pending(con)  # no results derived yet: clears the loads' pending marks (all computed below)

    modules = all_measures()
    with console.status("evaluating measures ..."):
        run_measures(con, modules, period_start=PERIOD[0], period_end=PERIOD[1])
    rows = summarize(con, [m.measure.name for m in modules], *PERIOD)
    network = summarize(con, [m.measure.name for m in modules], *PERIOD, by_center=False)
    with console.status("equity: stratifying every measure ..."):
        worst, charts = _equity(con, out / "equity")
    with console.status("UDS tables ..."):
        uds = build_report(con, PERIOD[1].year, suppress_network=True)
        write_all(uds, out / "uds")
    uds_6b = uds.tables[NETWORK]["6B"]
    with console.status("precomputing web aggregates ..."):
        precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    with console.status("social needs: screening and referral metrics ..."):
        sdoh_metrics.build(con, period_start=PERIOD[0], period_end=PERIOD[1])
        sdoh_strata.build(con)
    with console.status("value-based payment: a synthetic payer per center ..."):
        for center in center_ids:
            generate_and_load(con, center, out / "payer" / center, seed=SEED, year=PERIOD[1].year)
    with console.status("child health: pediatric measures, referral loops, BH follow-up ..."):
        child_build(con, period_start=PERIOD[0], period_end=PERIOD[1])
    plans = _plans(con)
    loads = con.execute(
        "SELECT center, sum(inserted + updated + unchanged), sum(quarantined) "
        "FROM loads GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()

    report = out / "report.html"
    report.write_text(_render(loads, network, rows, len(modules), worst, charts, uds_6b, plans))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "centers": center_ids,
                "patients": patients,
                "measures": len(modules),
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    console.print(f"[bold green]Demo ready[/] in {time.perf_counter() - started:.0f} s")
    console.print(f"  report:    {report.resolve()}")
    console.print(f"  equity:    {(out / 'equity' / 'equity.csv').resolve()}")
    console.print(f"  UDS:       {(out / 'uds' / 'uds.xlsx').resolve()}")
    console.print(f"  warehouse: {(out / 'chc_equity.duckdb').resolve()}")
    return report


def _equity(con, out: Path) -> tuple[list[EquityRow], list[str]]:
    """Equity tables for every measure x demo dimension (CSV) and the headline charts (SVG).

    Returns the strata significantly worse than their reference, largest gap to equity first, and the
    SVG markup of the headline forest plots.
    """
    out.mkdir(parents=True, exist_ok=True)
    everything: list[EquityRow] = []
    for dimension in EQUITY_DIMENSIONS:
        rows, _ = equity_tables(con, None, [dimension], period_start=PERIOD[0], period_end=PERIOD[1])
        everything += rows
    fields = list(EquityRow.__dataclass_fields__)
    with open(out / "equity.csv", "w", newline="") as fh:
        writer = csv_writer(fh)
        writer.writerow(fields)
        writer.writerows([getattr(r, f) for f in fields] for r in everything)
    charts = []
    for measure, dimension in HEADLINE_CHARTS:
        rows = [
            r
            for r in everything
            if r.measure == measure and r.dimension == dimension and r.group_id == "Group_1"
        ]
        title = f"{measure} by {dimension.replace('_', ' ')}"
        stem = f"{measure}_{dimension}"
        save_chart(forest_plot(rows, title), out, f"forest_{stem}", ["svg", "html"])
        save_chart(gap_chart(rows, f"Gap to equity: {title}"), out, f"gap_{stem}", ["svg"])
        charts.append((out / f"forest_{stem}.svg").read_text())
    worse = largest_inequities(
        everything,
        worse=lambda r: r.worse_than_reference,
        gap=lambda r: r.gap_to_equity,
        q=lambda r: r.q_value,
        suppressed=lambda r: r.suppressed,
    )
    return worse, charts


def _render(loads, network, rows, n_measures: int, worst, charts, uds_6b, plans: Plans) -> str:
    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    load_rows = [[html.escape(c), str(n), str(q)] for c, n, q in loads]
    every = (True, True, True)
    net_rows = [
        [
            html.escape(s.cms_id),
            html.escape(s.group_id),
            *_published(
                s.numerator, s.performance_denominator, plans.get((s.measure, s.group_id, "*"), every)
            ),
        ]
        for s in network
    ]
    center_rows = [
        [
            html.escape(s.cms_id),
            html.escape(s.group_id),
            html.escape(s.center),
            *_published(
                s.numerator, s.performance_denominator, plans.get((s.measure, s.group_id, s.center), every)
            ),
        ]
        for s in rows
    ]
    worst_rows = [
        [
            html.escape(f"{r.measure} {r.group_id.replace('Group_', 'group ')}"),
            html.escape(r.dimension.replace("_", " ")),
            html.escape(r.label),
            html.escape(r.reference or ""),
            f"{r.rate:.1%}" if r.rate is not None else "",
            f"{r.rate_difference:+.1%}" if r.rate_difference is not None else "",
            _q_or_p(r),
            str(r.gap_to_equity if r.gap_to_equity is not None else ""),
        ]
        for r in worst[:25]
    ]

    def uds_cell(value, kind: str) -> str:
        if value is None:
            return ""
        if kind == "rate" and isinstance(value, float):
            return f"{value:.1%}"
        return html.escape(str(value))

    uds_rows = [
        [html.escape(line.line), html.escape(line.label)]
        + [uds_cell(line.values.get(c.key), c.kind) for c in uds_6b.columns]
        + [html.escape(line.note)]
        for line in uds_6b.lines
    ]
    uds_head = ["line", "measure"] + [c.label for c in uds_6b.columns] + ["note"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chc-equity demo report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>chc-equity demo: synthetic Massachusetts health-center network</h1>
<p>Measurement period {PERIOD[0]} to {PERIOD[1]}. {len(load_rows)} centers, {n_measures} eCQMs implemented.
Synthetic data only. Counts from 1 to 10 are suppressed, complements planned over all tables together.</p>
<h2>Network measure results</h2>
{table(["measure", "group", "denominator", "numerator", "rate"], net_rows)}
<h2>Largest inequities (significantly worse than the reference group, q &lt; 0.05)</h2>
<p>Gap to equity: how many more patients of the group must meet the measure for its rate to equal the
reference group's. Centers are compared with the network instead, by the heat map's rule (outside the
95 % funnel, p &lt; 0.05). All strata, with intervals and p/q-values: <code>equity/equity.csv</code>.</p>
{table(WORST_HEAD, worst_rows)}
{"".join(f"<figure>{svg}</figure>" for svg in charts)}
<h2>UDS Table 6B, network roll-up (suppressed)</h2>
<p>Per-center filings and Tables 3A, 3B, 4 and 7: <code>uds/uds.xlsx</code>.</p>
{table(uds_head, uds_rows)}
<h2>Loads</h2>
{table(["center", "resources loaded", "quarantined"], load_rows)}
<h2>By center</h2>
{table(["measure", "group", "center", "denominator", "numerator", "rate"], center_rows)}
</body></html>
"""


def serve(out: Path = OUT, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the demo warehouse with fresh demo users (new random passwords each time)."""
    import uvicorn

    from chc_equity.appdb import open_for_warehouse
    from chc_equity.vouchers.season import seed_demo
    from chc_equity.web import WebConfig, create_app
    from chc_equity.web.demo_users import seed_demo_users

    warehouse = (out / "chc_equity.duckdb").resolve()
    db = open_for_warehouse(warehouse)  # a synthetic voucher season for the `program` user's pages
    seed_demo(db, out / "vouchers")
    db.dispose()
    users = seed_demo_users(warehouse)
    console = Console()
    console.print(f"[bold]Web app:[/] http://{host}:{port}/  (Ctrl-C to stop)")
    for user, password, role, center in users:
        where = f" ({center})" if center else ""
        console.print(f"  {user:<14} {password:<24} {getattr(role, 'value', role)}{where}")
    web = create_app(WebConfig(warehouse=warehouse))
    uvicorn.run(web, host=host, port=port, access_log=False, server_header=False, log_level="warning")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m chc_equity.demo`` (``--help`` prints it and touches nothing)."""
    p = argparse.ArgumentParser(
        prog="python -m chc_equity.demo",
        description="Build the synthetic demo network (generate -> ingest -> measures -> equity -> UDS -> "
        "web aggregates), write report.html, then serve the web app with fresh demo logins.",
        epilog="The output folder is replaced on each run, but only when it holds a previous demo run. "
        "If port 8000 is taken, pass --port 8001 (or any free port).",
    )
    p.add_argument("--no-serve", action="store_true", help="build only; do not start the web app")
    p.add_argument("--port", type=int, default=8000, help="web app port on 127.0.0.1 (default: 8000)")
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder (default: {OUT})")
    p.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="default",
        help="network size: "
        + ", ".join(f"{k} = {c} centers, {n:,} patients" for k, (c, n) in SIZES.items()),
    )
    return p


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    """``python -m chc_equity.demo [--no-serve] [--port N] [--out DIR] [--size small|default|large]``."""
    args = parser().parse_args(argv)
    if not args.no_serve and not _port_free("127.0.0.1", args.port):  # say so before minutes of work
        raise SystemExit(f"Port {args.port} is in use: pass --port with a free one (e.g. --port 8001).")
    centers, patients = SIZES[args.size]
    run(args.out, centers=centers, patients=patients)
    if not args.no_serve:
        serve(args.out, port=args.port)


if __name__ == "__main__":
    main()
