"""Write a :class:`~chc_equity.uds.report.UdsReport` as CSV (one file per table), JSON and Excel.

The three carry the same cells: one row per (scope, line) with the UDS column keys as headers, so a
reviewer (and the test) can check the workbook against the CSVs. The workbook has a sheet per table
laid out like the UDS form: title, the column labels as printed on the form, then the keyed header row
and the lines; plus an "Edits" sheet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from chc_equity.exports import csv_writer, dict_writer, set_cell
from chc_equity.uds.edits import Edit
from chc_equity.uds.model import Column, Line, UdsTable
from chc_equity.uds.report import TABLES, UdsReport

CSV_NAMES = {t: f"table_{t.lower()}.csv" for t in TABLES}
EDIT_FIELDS = ["center", "edit", "severity", "table", "line", "message", "value", "expected"]
HEADER_ROW = 3  # 1-based row of the keyed header in every table sheet


def header(table: UdsTable) -> list[str]:
    return ["center", "line", "label", *(c.key for c in table.columns), "note"]


def rows(report: UdsReport, table: str) -> Iterable[list[Any]]:
    """The table's rows over all scopes (centers, then the network), as written to every format."""
    for scope in report.scopes:
        t = report.tables[scope][table]
        for line in t.lines:
            yield [scope, line.line, line.label, *(line.values.get(c.key) for c in t.columns), line.note]


def _csv_cell(v: Any) -> str:
    return "" if v is None else str(v)


def write_csv(report: UdsReport, out: Path) -> list[Path]:
    paths = []
    for table in TABLES:
        path = out / CSV_NAMES[table]
        first = report.tables[report.scopes[0]][table]
        with path.open("w", newline="") as f:
            w = csv_writer(f)
            w.writerow(header(first))
            for row in rows(report, table):
                w.writerow([_csv_cell(v) for v in row])
        paths.append(path)
    path = out / "edits.csv"
    with path.open("w", newline="") as f:
        w = dict_writer(f, EDIT_FIELDS)
        w.writeheader()
        for e in report.edits:
            w.writerow({k: _csv_cell(v) for k, v in e.as_row().items()})
    paths.append(path)
    return paths


def write_xlsx(report: UdsReport, path: Path) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    for table in TABLES:
        first = report.tables[report.scopes[0]][table]
        ws = wb.create_sheet(f"Table {table}")
        suffix = " (network roll-up small-cell suppressed)" if report.suppressed else ""
        ws.cell(1, 1, f"UDS {report.year} Table {table}: {first.title}{suffix}").font = Font(
            bold=True, size=13
        )
        for j, label in enumerate(["Center", "Line", "", *(c.label for c in first.columns), "Note"], 1):
            cell = ws.cell(2, j, label)
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for j, key in enumerate(header(first), 1):
            ws.cell(HEADER_ROW, j, key).font = bold
        for i, row in enumerate(rows(report, table), HEADER_ROW + 1):
            for j, v in enumerate(row, 1):
                if v is not None:
                    set_cell(ws, i, j, v)
        ws.column_dimensions["C"].width = 60
        ws.freeze_panes = ws.cell(HEADER_ROW + 1, 4)
    ws = wb.create_sheet("Edits")
    for j, key in enumerate(EDIT_FIELDS, 1):
        ws.cell(1, j, key).font = bold
    for i, e in enumerate(report.edits, 2):
        for j, v in enumerate(e.as_row().values(), 1):
            if v is not None:
                set_cell(ws, i, j, v)
    wb.save(path)
    return path


def to_json(report: UdsReport) -> dict[str, Any]:
    def table_json(t: UdsTable) -> dict[str, Any]:
        return {
            "title": t.title,
            "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in t.columns],
            "lines": [
                {"line": ln.line, "label": ln.label, "values": ln.values, "note": ln.note} for ln in t.lines
            ],
        }

    return {
        "year": report.year,
        "suppressed": report.suppressed,
        "scopes": {s: {t: table_json(tab) for t, tab in ts.items()} for s, ts in report.tables.items()},
        "edits": [e.as_row() for e in report.edits],
    }


def write_json(report: UdsReport, path: Path) -> Path:
    path.write_text(json.dumps(to_json(report), indent=1))
    return path


def read_json(path: Path) -> dict[str, dict[str, UdsTable]]:
    """A previous ``uds.json`` as scope -> table id -> table (for the year-over-year edits)."""
    raw = json.loads(Path(path).read_text())
    out: dict[str, dict[str, UdsTable]] = {}
    for scope, tables in raw["scopes"].items():
        out[scope] = {}
        for tid, t in tables.items():
            cols = [Column(c["key"], c["label"], c["kind"]) for c in t["columns"]]
            lines = [Line(ln["line"], ln["label"], ln["values"], ln["note"]) for ln in t["lines"]]
            out[scope][tid] = UdsTable(tid, t["title"], scope, cols, lines)
    return out


def workbook_bytes(con: Any, *, year: int, center: str | None = None) -> bytes:
    """The ``uds.xlsx`` of one center (or all centers + network) as bytes, for the web download.

    Needs a writable connection: the build (re)creates ``uds_visits``, ``patient_attributes`` and
    ``uds_patients``.
    """
    import io
    import tempfile

    from chc_equity.uds.report import build_report

    report = build_report(con, year, centers=[center] if center else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_xlsx(report, Path(tmp) / "uds.xlsx")
        return io.BytesIO(path.read_bytes()).getvalue()


def write_all(report: UdsReport, out: Path) -> list[Path]:
    """``uds.xlsx``, ``uds.json``, ``table_3a.csv`` ... ``table_7.csv`` and ``edits.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_xlsx(report, out / "uds.xlsx"),
        write_json(report, out / "uds.json"),
        *write_csv(report, out),
    ]


__all__ = [
    "Edit",
    "read_json",
    "workbook_bytes",
    "to_json",
    "write_all",
    "write_csv",
    "write_json",
    "write_xlsx",
]
