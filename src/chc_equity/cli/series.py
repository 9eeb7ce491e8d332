"""`chc-equity series`: one measure over time (table ``measure_series``), its CSV and chart (suppressed)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import typer

from chc_equity.cli import app
from chc_equity.equity.suppression import DEFAULT_THRESHOLD
from chc_equity.measures.series import KINDS
from chc_equity.warehouse import writing

CHART_FORMATS = ("html", "png", "svg")


def _end_month(value: str | None) -> date:
    """``YYYY-MM`` (or a full date) -> a day in that month; default: the last complete month."""
    if not value:
        return date.today().replace(day=1) - timedelta(days=1)
    try:
        return date.fromisoformat(value if len(value) > 7 else value + "-01")
    except ValueError as exc:
        raise typer.BadParameter(f"--end wants YYYY-MM, got {value!r}") from exc


@app.command("series")
def series(
    measure: str = typer.Option(
        ..., "--measure", help="CMS id or measure name, or a social-needs metric sdoh:<metric>[:<domain>]"
    ),
    center: str | None = typer.Option(None, "--center", help="One center (default: the whole network)"),
    by: str | None = typer.Option(None, "--by", help="Equity dimension of the stratum (with --stratum)"),
    stratum: str | None = typer.Option(None, "--stratum", help='Its value, e.g. "Black non-Hispanic"'),
    months: int = typer.Option(24, "--months", min=2, help="Number of points (periods) in the series"),
    kind: str = typer.Option("rolling12", "--kind", help=f"Periods: {' | '.join(KINDS)}"),
    end: str | None = typer.Option(None, "--end", help="YYYY-MM of the last period (default: last month)"),
    chart: str = typer.Option("run", "--chart", help="run (median, Anhøj rules) or p (p-chart)"),
    out: Path = typer.Option(Path("out/series"), "--out", help="Output folder"),
    formats: str = typer.Option(
        "html,svg", "--format", help=f"Charts: comma list of {','.join(CHART_FORMATS)}"
    ),
    threshold: int = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=2, help="Suppress counts below this"),
    warehouse: Path | None = typer.Option(None, "--warehouse", help="DuckDB warehouse"),
) -> None:
    """Compute a measure for a series of periods into `measure_series`, then write `<CMS>_series.csv`
    and a run chart or p-chart per group (signals printed in words). Points with a performance
    denominator under the threshold, or a met or not-met count from 1 to threshold-1, are hidden."""
    from chc_equity.equity.charts import save_chart
    from chc_equity.exports import write_frame_csv
    from chc_equity.improvement.charts import spc_chart
    from chc_equity.improvement.trend import published_series, trend_chart
    from chc_equity.measures.registry import find
    from chc_equity.measures.series import measure_series, series_periods

    if kind not in KINDS:
        raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS)}")
    if chart not in ("run", "p"):
        raise typer.BadParameter("--chart must be run or p")
    if (by is None) != (stratum is None):
        raise typer.BadParameter("--by and --stratum go together")
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    if bad := [f for f in fmts if f not in CHART_FORMATS]:
        raise typer.BadParameter(f"unknown chart format(s) {bad}; use {', '.join(CHART_FORMATS)}")
    from chc_equity.sdoh import series as sdoh_series

    if sdoh_series.is_key(measure):
        _social(measure, center, by, stratum, months, kind, end, chart, out, fmts, threshold, warehouse)
        return
    try:
        (module,) = find([measure])
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    periods = series_periods(kind, _end_month(end), months)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    m = module.measure
    with writing(warehouse) as con:
        try:
            # Every center and the network, even for one center's file: a point is hidden by one plan
            # over all of them (improvement.trend.planned_hidden), the same whichever file is asked for.
            measure_series(con, [module], periods, dimensions=[by] if by else ())
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        df = published_series(
            con, module, periods, center=center, dimension=by, stratum=stratum, threshold=threshold
        )
    csv_path = out / f"{m.cms_id}_series.csv"
    write_frame_csv(df, csv_path)
    who = center or "network"
    if by:
        who += f", {by} = {stratum}"
    typer.echo(f"{m.cms_id} {kind} x {len(periods)} ({periods[0].start} .. {periods[-1].end}), {who}")
    typer.echo(f"wrote {csv_path} ({int(df['suppressed'].sum())} of {len(df)} points suppressed)")
    for group in m.groups:
        rows = df[df["group_id"] == group.id]
        computed = trend_chart(rows, chart, higher_is_better=not m.inverse)  # type: ignore[arg-type]
        title = f"{m.cms_id} {m.title} ({group.id}) -- {who}"
        stem = f"{m.cms_id}_{group.id}_{chart}"
        for path in save_chart(spc_chart(computed, title, y_title="rate"), out, stem, fmts):
            typer.echo(f"wrote {path}")
        lines = [s.description for s in computed.signals] or ["no signal: the variation is common-cause"]
        (out / f"{stem}_signals.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            typer.echo(f"  {group.id}: {line}")


def _social(
    measure: str,
    center: str | None,
    by: str | None,
    stratum: str | None,
    months: int,
    kind: str,
    end: str | None,
    chart: str,
    out: Path,
    fmts: list[str],
    threshold: int,
    warehouse: Path | None,
) -> None:
    """`series --measure sdoh:<metric>[:<domain>]`: the social-needs metric over time (``sdoh_series``),
    its CSV and chart, suppressed by one plan over every center, the network and their strata."""
    from chc_equity.equity.charts import save_chart
    from chc_equity.exports import write_frame_csv
    from chc_equity.improvement.charts import spc_chart
    from chc_equity.improvement.sdoh_trend import published_sdoh_series
    from chc_equity.improvement.trend import trend_chart
    from chc_equity.measures.series import series_periods
    from chc_equity.sdoh import series as sdoh_series

    try:
        metric, domain = sdoh_series.parse_key(measure)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    periods = series_periods(kind, _end_month(end), months)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    with writing(warehouse) as con:
        try:
            sdoh_series.sdoh_series(con, periods, dimensions=[by] if by else ())
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        df = published_sdoh_series(
            con, metric, domain, periods, center=center, dimension=by, stratum=stratum, threshold=threshold
        )
    stem = sdoh_series.key(metric, domain).replace(":", "_")
    csv_path = out / f"{stem}_series.csv"
    write_frame_csv(df, csv_path)
    who = (center or "network") + (f", {by} = {stratum}" if by else "")
    typer.echo(f"{measure} {kind} x {len(periods)} ({periods[0].start} .. {periods[-1].end}), {who}")
    typer.echo(f"wrote {csv_path} ({int(df['suppressed'].sum())} of {len(df)} points suppressed)")
    rows = df.rename(columns={"denominator": "performance_denominator"})
    computed = trend_chart(rows, chart, higher_is_better=sdoh_series.HIGHER_IS_BETTER[metric])  # type: ignore[arg-type]
    title = f"Social needs: {metric} ({domain}) -- {who}"
    for path in save_chart(spc_chart(computed, title, y_title="rate"), out, f"{stem}_{chart}", fmts):
        typer.echo(f"wrote {path}")
    lines = [s.description for s in computed.signals] or ["no signal: the variation is common-cause"]
    (out / f"{stem}_{chart}_signals.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        typer.echo(f"  {line}")
