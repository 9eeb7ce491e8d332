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
    counts = page[page.index("Network measure results") : page.index("Largest inequities")]
    counts += page[page.index("<h2>By center") :]
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


def test_demo_help_documents_options_and_deletes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    import pytest

    from chc_equity import demo

    monkeypatch.chdir(tmp_path)
    previous = tmp_path / "out" / "demo"
    previous.mkdir(parents=True)
    (previous / "summary.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--no-serve", "--port", "--out", "--size"):
        assert option in text
    assert (previous / "summary.json").exists()  # --help touched nothing


def test_demo_refuses_to_replace_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    import pytest

    from chc_equity.demo import _clear

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("x")
    with pytest.raises(SystemExit, match="not a previous demo run"):
        _clear(keep)
    assert (keep / "thesis.tex").exists()
    old = tmp_path / "old"
    (old / "network").mkdir(parents=True)
    _clear(old)
    assert not old.exists()
