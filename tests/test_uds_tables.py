"""UDS tables on a hand-built fixture: every line equals a value computed by hand (tests/uds_fixture.py).

Hand computation (hc1 = P1..P8 after the visit rule drops P10 CHW-only, P11 last year, P12 cancelled,
P13 inpatient; hc2 = Q1 counted through hc2's CHW override, Q2). Ages are on June 30, 2025.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from chc_equity.ingest import load
from chc_equity.uds import NETWORK, build_report, load_config
from chc_equity.uds.export import CSV_NAMES, HEADER_ROW, write_all
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect_memory
from test_uds_fixture import FIXTURE, build, load_measure_results


@pytest.fixture(scope="module")
def fixture_con(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("uds_fixture")
    con = connect_memory()
    for center, path in build(folder).items():
        load(con, [path], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == 0
    load_measure_results(con)
    return con


@pytest.fixture(scope="module")
def report(fixture_con):
    return build_report(fixture_con, 2025, config=load_config(FIXTURE / "config.yaml"))


def nonzero(table, cols: str | None = None) -> dict[tuple[str, str], object]:
    return {
        (ln.line, k): v
        for ln in table.lines
        for k, v in ln.values.items()
        if v not in (0, None, "") and (cols is None or k in cols)
    }


def test_visit_rule_and_per_center_override(fixture_con, report) -> None:
    pts = fixture_con.execute("SELECT center, patient_id FROM uds_patients ORDER BY 1, 2").fetchall()
    assert pts == [("hc1", f"P{i}") for i in range(1, 9)] + [("hc2", "Q1"), ("hc2", "Q2")]
    assert report.scopes == ["hc1", "hc2", NETWORK]


def test_table_3a(report) -> None:
    t = report.tables["hc1"]["3A"]
    assert nonzero(t) == {
        ("1", "a"): 1,  # P1 under 1
        ("11", "b"): 1,  # P5 age 10
        ("25", "b"): 1,  # P2 age 24
        ("28", "b"): 1,  # P4 35 exactly on June 30
        ("29", "b"): 1,  # P7 40
        ("32", "a"): 1,  # P8 55
        ("33", "a"): 1,  # P6 64 (turns 65 on Dec 31)
        ("36", "a"): 1,  # P3 75
        ("39", "a"): 4,
        ("39", "b"): 4,
    }
    assert nonzero(report.tables["hc2"]["3A"]) == {
        ("21", "a"): 1,
        ("38", "b"): 1,
        ("39", "a"): 1,
        ("39", "b"): 1,
    }
    assert nonzero(report.tables[NETWORK]["3A"], "ab")[("39", "a")] == 5


def test_table_3b(report) -> None:
    t = report.tables["hc1"]["3B"]
    grid = {
        ("1b", "b"): 1,
        ("1", "b"): 1,  # P2 Chinese
        ("1g", "a3"): 1,
        ("1", "a3"): 1,  # P7 Korean + Japanese -> Other Asian; Cuban
        ("2a", "a1"): 1,
        ("2", "a1"): 1,  # P4 Native Hawaiian, Mexican
        ("3", "a2"): 1,  # P3 Black, Puerto Rican
        ("5", "b"): 1,
        ("5", "a4"): 1,  # P1 White non-Hispanic; P8 White Dominican (another Hispanic)
        ("6", "a5"): 1,  # P5 White + Black, Hispanic without subgroup
        ("7", "c"): 1,  # P6 unreported both
    }
    rows = {"1", "1b", "1g", "2", "2a", "3", "5", "6", "7"}
    for ln in rows:  # column a = sum of a1..a5, d = a + b + c
        a = sum(v for (r, c), v in grid.items() if r == ln and c.startswith("a"))
        if a:
            grid[(ln, "a")] = a
        grid[(ln, "d")] = sum(v for (r, c), v in list(grid.items()) if r == ln and c in ("a", "b", "c"))
    totals = {"a1": 1, "a2": 1, "a3": 1, "a4": 1, "a5": 1, "a": 5, "b": 2, "c": 1, "d": 8}
    grid |= {("8", c): v for c, v in totals.items()}
    assert nonzero(t, [c.key for c in t.columns if c.key != "d"] + ["d"]) | {} == grid | {
        ("12", "d"): 2,  # P2 Chinese, P3 Spanish
        ("13", "d"): 1,
        ("14", "d"): 1,
        ("15", "d"): 1,
        ("16", "d"): 1,
        ("17", "d"): 1,
        ("18", "d"): 1,
        ("18a", "d"): 2,
        ("19", "d"): 8,  # P1 (child) and P5 have no orientation record
        ("20", "d"): 2,
        ("21", "d"): 2,
        ("22", "d"): 1,
        ("24", "d"): 1,
        ("25", "d"): 1,
        ("25a", "d"): 1,
        ("26", "d"): 8,
    }


def test_table_4(report) -> None:
    t = report.tables["hc1"]["4"]
    assert nonzero(t) == {
        ("1", "a"): 2,
        ("2", "a"): 2,
        ("3", "a"): 1,
        ("4", "a"): 2,
        ("5", "a"): 1,
        ("6", "a"): 8,
        # children: P1 Medicaid, P5 no coverage (uninsured)
        ("7", "a"): 1,
        ("8a", "a"): 1,
        ("8", "a"): 1,
        ("12", "a"): 2,
        # adults: P6 self-pay, P4 CHIP, P3 dual, P7 state program, P2 + P8 private (P8's Medicaid ended)
        ("7", "b"): 1,
        ("8b", "b"): 1,
        ("8", "b"): 1,
        ("9a", "b"): 1,
        ("9", "b"): 1,
        ("10a", "b"): 1,
        ("10", "b"): 1,
        ("11", "b"): 2,
        ("12", "b"): 6,
        ("14", "a"): 1,
        ("16", "a"): 2,  # P4 migratory; P6 PRAPARE farm work (not split)
        ("17", "a"): 1,
        ("22", "a"): 1,
        ("23", "a"): 2,  # P3 shelter (UDS+ code); P5 homeless, type unknown
        ("24", "a"): 1,
        ("25", "a"): 1,
        ("26", "a"): 1,  # P4 school site; P3 veteran; P5 public housing site
    }


def test_table_6b(report) -> None:
    t = report.tables["hc1"]["6B"]
    got = {
        ln.line: (ln.values["a"], ln.values["c"], ln.values["rate"])
        for ln in t.lines
        if ln.values["a"] is not None
    }
    assert got == {
        "12": (2, 1, 0.5),  # CMS155: P1 meets all three rates, P5 misses one
        "14a": (2, 1, 0.5),  # CMS138 population 3 only: P2 no, P8 yes
        "17a": (2, 1, 0.5),  # CMS347 any group: P3 (met in group 1), P8; P6's exception removes him
        "21": (1, 1, 1.0),  # CMS2: P4's exception removes her
    }
    assert t.line("10").note.startswith("not available")  # no CMS117 results loaded
    assert t.line("22").note.startswith("not available")
    assert all(ln.values["a"] == ln.values["b"] for ln in t.lines)


def test_table_7(report) -> None:
    t = report.tables["hc1"]["7"]
    assert nonzero(t, ["2a", "2c", "3a", "3f"]) == {
        ("1c", "2a"): 1,
        ("1c", "2c"): 1,  # P3 Black Puerto Rican, controlled
        (
            "h",
            "2a",
        ): 1,  # P6 race and ethnicity unreported, not controlled; P8 excluded; P10 not a UDS patient
        ("1a", "3a"): 1,  # P7 Asian Cuban
        ("2a", "3a"): 1,
        ("2a", "3f"): 1,  # P2 Asian non-Hispanic, HbA1c > 9
        ("Subtotal Hispanic", "2a"): 1,
        ("Subtotal Hispanic", "2c"): 1,
        ("Subtotal Hispanic", "3a"): 1,
        ("Subtotal Non-Hispanic", "3a"): 1,
        ("Subtotal Non-Hispanic", "3f"): 1,
        ("i", "2a"): 2,
        ("i", "2c"): 1,
        ("i", "3a"): 2,
        ("i", "3f"): 1,
    }
    assert t.get("i", "htn_rate") == 0.5 and t.get("i", "dm_rate") == 0.5
    assert t.line("A").note.startswith("not available")
    net = report.tables[NETWORK]["7"]
    assert (net.get("i", "2a"), net.get("i", "2c"), net.get("i", "htn_rate")) == (3, 2, 0.6667)


def test_fixture_edits_are_exactly_the_expected_warnings(report) -> None:
    got = {(e.center, e.edit) for e in report.edits}
    assert got == {
        ("hc1", "W02-RACE-UNREPORTED"),
        ("hc1", "W03-ETHNICITY-UNREPORTED"),  # P6: 1 of 8
        ("hc1", "W05-INSURANCE-NOT-RECORDED"),  # P5: 1 of 8
        ("hc2", "W01-INCOME-UNKNOWN"),
        ("hc2", "W04-ORIENTATION-UNKNOWN"),  # Q2: 1 of 2
        (NETWORK, "W04-ORIENTATION-UNKNOWN"),
        (NETWORK, "W05-INSURANCE-NOT-RECORDED"),  # 3 of 10, 1 of 10
    }


def _norm(v: object) -> object:
    """A cell as a number when it is one (Excel keeps 1.0 as 1), else its text; empty for None."""
    text = "" if v is None else str(v)
    try:
        return float(text)
    except ValueError:
        return text


def test_excel_equals_csv(report, tmp_path: Path) -> None:
    write_all(report, tmp_path)
    wb = load_workbook(tmp_path / "uds.xlsx")
    for table, name in CSV_NAMES.items():
        with (tmp_path / name).open() as f:
            expected = list(csv.reader(f))
        ws = wb[f"Table {table}"]
        got = [
            [_norm(v) for v in row]
            for row in ws.iter_rows(min_row=HEADER_ROW, max_col=len(expected[0]), values_only=True)
        ]
        assert len(got) == len(expected) > 10
        assert got == [[_norm(v) for v in row] for row in expected], table
    with (tmp_path / "edits.csv").open() as f:
        expected = list(csv.reader(f))
    got = [[_norm(v) for v in r] for r in wb["Edits"].iter_rows(values_only=True)]
    assert got == [[_norm(v) for v in row] for row in expected] and len(got) == len(report.edits) + 1


def test_workbook_bytes_for_one_center(fixture_con) -> None:
    import io

    from chc_equity.uds.export import workbook_bytes

    wb = load_workbook(io.BytesIO(workbook_bytes(fixture_con, year=2025, center="hc2")))
    centers = {r[0] for r in wb["Table 3A"].iter_rows(min_row=HEADER_ROW + 1, values_only=True)}
    assert centers == {"hc2"}
