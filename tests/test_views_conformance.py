"""The HL7 SQL-on-FHIR v2 conformance suite (../shared) must pass in full through compile_view."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from chc_equity.views.conformance import run_suite, summarize
from conftest import shared_dir


def test_full_suite_passes() -> None:
    suite = shared_dir("sql-on-fhir-v2", "tests")
    report = run_suite(suite)
    failures = [
        f"{name} :: {t['name']}: {t['result'].get('reason')}"
        for name, body in report.items()
        for t in body["tests"]
        if not t["result"]["passed"]
    ]
    totals = summarize(report).values()
    assert sum(total for _, total in totals) == 134
    assert failures == []
    assert sum(ok for ok, _ in totals) == 134


def test_report_matches_schema_shape(tmp_path: Path) -> None:
    suite = shared_dir("sql-on-fhir-v2", "tests")
    small = tmp_path / "suite"
    small.mkdir()
    for name in ("basic.json", "validate.json"):
        (small / name).write_text((suite / name).read_text())
    report = run_suite(small)
    assert set(report) == {"basic.json", "validate.json"}
    for body in report.values():
        assert set(body) == {"tests"}
        for test in body["tests"]:
            assert isinstance(test["name"], str)
            assert isinstance(test["result"]["passed"], bool)


def _suite(tmp_path: Path, tests: list[dict]) -> Path:
    d = tmp_path / "suite"
    d.mkdir()
    doc = {
        "title": "t",
        "resources": [{"resourceType": "Patient", "id": "p1", "gender": "male"}],
        "tests": tests,
    }
    (d / "mini.json").write_text(json.dumps(doc))
    return d


def test_failures_carry_a_reason(tmp_path: Path) -> None:
    view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender", "type": "code"}]}]}
    d = _suite(tmp_path, [{"title": "wrong", "view": view, "expect": [{"g": "female"}]}])
    result = run_suite(d)["mini.json"]["tests"][0]["result"]
    assert result["passed"] is False
    assert "not found" in result["reason"]


def test_cli_writes_report_and_exit_code(tmp_path: Path) -> None:
    from chc_equity.cli import app
    from chc_equity.cli import views as _views  # noqa: F401  (registers the sub-app)

    view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender", "type": "code"}]}]}
    d = _suite(tmp_path, [{"title": "ok", "view": view, "expect": [{"g": "male"}]}])
    out = tmp_path / "report.json"
    res = CliRunner().invoke(app, ["views", "conformance", str(d), "--report", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["mini.json"]["tests"][0]["result"] == {"passed": True}
    assert "1/1" in res.output

    bad = tmp_path / "bad"
    bad.mkdir()
    doc = json.loads((d / "mini.json").read_text())
    doc["tests"][0]["expect"] = [{"g": "female"}]
    (bad / "mini.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(app, ["views", "conformance", str(bad), "--report", str(out)])
    assert res.exit_code == 1
