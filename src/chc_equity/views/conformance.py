"""Run the HL7 SQL-on-FHIR v2 conformance suite against :func:`compile_view` and report the results.

Each test file's resources are loaded into an in-memory warehouse (the same ``resources`` table the
real pipeline uses), so the suite exercises exactly the SQL the pipeline runs. Results are compared
with ``expect`` as the suite specifies: rows as a multiset (order is not significant), values by
JSON equality with a small tolerance for decimals, collections in order; ``expectColumns`` checks
the column names in order; ``expectError`` passes when compiling or executing raises. The report
follows test_report/test-report.schema.json, with a ``reason`` on failures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from chc_equity.views.compiler import ViewDefinitionError, compile_view
from chc_equity.warehouse import connect_memory

__all__ = ["load_resources", "run_suite", "run_test", "summarize"]

_CENTER = "conformance"


def load_resources(con: duckdb.DuckDBPyConnection, resources: Iterable[Mapping[str, Any]]) -> None:
    """Insert test resources into ``resources``; resources without an id get a unique synthetic row
    key (the view still sees the resource JSON unchanged)."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for n, res in enumerate(resources):
        rtype = str(res.get("resourceType", ""))
        rid = str(res.get("id") or f"__noid{n}")
        while (rtype, rid) in seen:
            rid += "_dup"
        seen.add((rtype, rid))
        rows.append((_CENTER, rtype, rid, json.dumps(res)))
    if rows:
        con.executemany("INSERT INTO resources (center, type, id, resource) VALUES (?, ?, ?, ?)", rows)


def _values_equal(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_values_equal(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_values_equal(got[k], want[k]) for k in want)
    return bool(got == want)


def _rows_match(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str | None:
    """None when the row multisets are equal, else a short reason."""
    if len(got) != len(want):
        return f"expected {len(want)} rows, got {len(got)}: {got[:5]}"
    remaining = list(got)
    for w in want:
        for k, g in enumerate(remaining):
            if g.keys() == w.keys() and all(_values_equal(g[c], w[c]) for c in w):
                del remaining[k]
                break
        else:
            return f"expected row {w} not found in result {got[:10]}"
    return None


def _execute(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[dict[str, Any]]]:
    rel = con.sql(sql)
    names = list(rel.columns)
    json_cols = {n for n, t in zip(names, rel.types, strict=True) if str(t) == "JSON"}
    out = []
    for row in rel.fetchall():
        rec = {}
        for n, v in zip(names, row, strict=True):
            rec[n] = json.loads(v) if n in json_cols and v is not None else v
        out.append(rec)
    return names, out


def run_test(con: duckdb.DuckDBPyConnection, test: Mapping[str, Any]) -> dict[str, Any]:
    """Run one suite test; returns the report's ``result`` object."""
    try:
        names, rows = _execute(con, compile_view(test.get("view", {})))
    except (ViewDefinitionError, duckdb.Error) as exc:
        if test.get("expectError"):
            return {"passed": True}
        return {"passed": False, "reason": f"{type(exc).__name__}: {exc}"}
    if test.get("expectError"):
        return {"passed": False, "reason": f"expected an error, got {len(rows)} rows"}
    if "expectColumns" in test and names != list(test["expectColumns"]):
        return {"passed": False, "reason": f"expected columns {test['expectColumns']}, got {names}"}
    if "expectCount" in test and len(rows) != test["expectCount"]:
        return {"passed": False, "reason": f"expected {test['expectCount']} rows, got {len(rows)}"}
    if "expect" in test:
        want = list(test["expect"])
        if want and set(names) != set(want[0].keys()):
            return {"passed": False, "reason": f"expected columns {sorted(want[0])}, got {names}"}
        reason = _rows_match(rows, want)
        if reason:
            return {"passed": False, "reason": reason}
    return {"passed": True}


def run_suite(test_dir: Path) -> dict[str, Any]:
    """Run every ``*.json`` suite file in ``test_dir``; returns the test-report structure."""
    report: dict[str, Any] = {}
    for path in sorted(Path(test_dir).glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        con = connect_memory()
        try:
            load_resources(con, suite.get("resources", []))
            results = [
                {"name": t.get("title", f"test {k}"), "result": run_test(con, t)}
                for k, t in enumerate(suite.get("tests", []))
            ]
        finally:
            con.close()
        report[path.name] = {"tests": results}
    return report


def summarize(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """{file: (passed, total)} for a report from :func:`run_suite`."""
    return {
        name: (sum(1 for t in body["tests"] if t["result"]["passed"]), len(body["tests"]))
        for name, body in report.items()
    }
