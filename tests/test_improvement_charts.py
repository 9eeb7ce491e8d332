"""Altair run and control charts: the spec carries the limits, the signal points and the notes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from chc_equity.equity.charts import save_chart
from chc_equity.improvement.charts import Annotation, spc_chart
from chc_equity.improvement.runs import run_chart
from chc_equity.improvement.spc import p_chart

# Montgomery (2009) Table 7.1: samples 15 and 23 are above the upper control limit.
ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15]
ORANGE_JUICE += [9, 12, 7, 13, 9, 6]


def _rows(spec: dict) -> list[dict]:
    return [row for data in spec["datasets"].values() for row in data]


def test_control_chart_spec_has_limits_and_signal_points(tmp_path: Path) -> None:
    labels = [f"sample {i + 1}" for i in range(30)]
    chart = p_chart(ORANGE_JUICE, [50] * 30, labels=labels, phase_starts=[24])
    spec = spc_chart(chart, "Nonconforming cans", annotations=[Annotation(20, "new seal")]).to_dict()
    rows = [r for r in _rows(spec) if "value" in r]
    assert len(rows) == 30
    first = rows[0]
    assert (
        first["ucl"] == chart.ucl[0] and first["lcl"] == chart.lcl[0] and first["centre"] == chart.centre[0]
    )
    flagged = {r["period"] for r in rows if r["signal"]}
    assert flagged == {labels[s.points[0]] for s in chart.signals}
    assert "sample 15" in flagged
    assert any("above the upper control limit" in r["signals"] for r in rows if r["signal"])
    notes = {r["note"] for r in _rows(spec) if "note" in r}
    assert notes == {"phase 2", "new seal"}
    layers = json.dumps(spec["layer"])
    assert '"field": "ucl"' in layers and '"field": "lcl"' in layers
    written = save_chart(spc_chart(chart, "cans"), tmp_path, "p", ["svg"])
    assert written[0].read_text().lstrip().startswith("<svg")


def test_run_chart_spec_has_median_and_no_limits() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(30, 2, 12), rng.normal(20, 2, 12)])
    chart = run_chart(values, baseline=12)
    assert chart.has_signal
    spec = spc_chart(chart, "rate").to_dict()
    rows = [r for r in _rows(spec) if "value" in r]
    assert all("ucl" not in r for r in rows)
    assert {r["order"] for r in rows if r["signal"]} == {i for s in chart.signals for i in s.points}
    assert rows[0]["centre"] == chart.phases[0].median
