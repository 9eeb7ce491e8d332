"""`make demo` end to end on a small network: report, equity and UDS files, nothing small published."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb

from chc_equity.demo import run


def test_demo_writes_report_equity_and_uds(tmp_path: Path) -> None:
    report = run(tmp_path / "demo", centers=3, patients=900)
    page = report.read_text()
    for section in ("Network measure results", "Largest inequities", "UDS Table 6B", "By center"):
        assert section in page
    assert "<svg" in page  # headline forest plots inline, no JavaScript needed
    # Published counts (network and per-center measure tables): none from 1 to 10.
    counts = page[page.index("Network measure results"):page.index("Largest inequities")]
    counts += page[page.index("<h2>By center"):]
    cells = re.findall(r"<td>(\d+)</td>", counts)
    assert cells and not [c for c in cells if 0 < int(c) < 11]
    assert "suppressed" in counts  # a network this small must have suppressed something
    out = report.parent
    with open(out / "equity" / "equity.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["dimension"] for r in rows} >= {"race_ethnicity", "language", "insurance", "center"}
    small = [r for r in rows if r["numerator"] not in ("", "None") and 0 < int(r["numerator"]) < 11]
    assert not small
    for name in ("uds.xlsx", "table_3a.csv", "table_6b.csv", "table_7.csv", "edits.csv"):
        assert (out / "uds" / name).exists()
    # the social-needs stage ran too, so the web app's Social needs page has data
    con = duckdb.connect(str(out / "chc_equity.duckdb"), read_only=True)
    try:
        eligible = con.execute(
            "SELECT sum(numerator) FROM sdoh_metrics "
            "WHERE metric = 'eligible' AND site = 'All' AND domain = 'any' AND center <> '*'"  # not network
        ).fetchone()[0]
        strata = con.execute("SELECT count(*) FROM sdoh_equity").fetchone()[0]
    finally:
        con.close()
    assert eligible and eligible > 0 and strata > 0
