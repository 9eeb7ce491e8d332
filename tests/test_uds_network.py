"""UDS on a generated network: 3A = 3B = 4 totals, edits fire on crafted bad data, YoY, suppression, CLI."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import find
from chc_equity.synth import generate, load_config
from chc_equity.uds import NETWORK, build_report
from chc_equity.uds.export import read_json, write_json
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

YEAR = 2026
TOTAL_EDITS = {
    "E01-3A-3B-TOTAL",
    "E02-4-INCOME-TOTAL",
    "E03-4-INSURANCE-TOTAL",
    "E04-3B-SO-TOTAL",
    "E05-3B-GI-TOTAL",
    "E06-SUM",
}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uds_net")
    summary = generate(
        root / "net",
        centers=2,
        patients=240,
        seed=11,
        period_end=date(YEAR, 12, 31),
        cfg=load_config(disparities=True),
        gz=False,
    )
    con = connect(root / "w.duckdb")
    for c in summary["centers"]:
        load(
            con, [root / "net" / c["id"]], c["id"], after_load=lambda cn, ctr: build_views(cn, centers=[ctr])
        )
    run_measures(
        con,
        find(["CMS165", "CMS122", "CMS2", "CMS138"]),
        period_start=date(YEAR, 1, 1),
        period_end=date(YEAR, 12, 31),
    )
    con.close()
    return root / "w.duckdb"


def test_generated_network_totals_agree(network: Path) -> None:
    con = connect(network)
    report = build_report(con, YEAR)
    con.close()
    assert not {e.edit for e in report.edits} & TOTAL_EDITS
    assert not [e for e in report.edits if e.severity == "error"]
    for scope in report.scopes:
        t = report.tables[scope]
        total = t["3B"].count("8", "d")
        assert total > 0
        assert t["3A"].count("39", "a") + t["3A"].count("39", "b") == total
        assert t["4"].count("6", "a") == total == t["4"].count("12", "a") + t["4"].count("12", "b")
    assert report.tables[NETWORK]["3B"].count("8", "d") == 240  # every synthetic patient has a visit
    assert report.tables[NETWORK]["7"].count("i", "2a") > 0


def test_edits_fire_on_crafted_bad_data(network: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    pts = [
        {"resourceType": "Patient", "id": "bad-nosex", "birthDate": "1980-01-01"},
        {
            "resourceType": "Patient",
            "id": "bad-future",
            "birthDate": f"{YEAR + 1}-01-01",
            "extension": [
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"}
            ],
        },
    ]
    encs = [
        {
            "resourceType": "Encounter",
            "id": f"enc-{p['id']}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{p['id']}"},
            "period": {"start": f"{YEAR}-05-05T10:00:00Z"},
        }
        for p in pts
    ]
    obs = {
        "resourceType": "Observation",
        "id": "bad-income",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "99500-1"}]},
        "subject": {"reference": "Patient/bad-nosex"},
        "effectiveDateTime": f"{YEAR}-05-05",
        "valueQuantity": {"value": -40, "unit": "%"},
    }
    for name, rows in (("Patient", pts), ("Encounter", encs), ("Observation", [obs])):
        (bad / f"{name}.ndjson").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    shutil.copy(network, tmp_path / "copy.duckdb")  # keep the module's warehouse clean
    con = connect(tmp_path / "copy.duckdb")
    center = con.execute("SELECT min(center) FROM flat.patient").fetchone()[0]
    load(con, [bad], center, after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    report = build_report(con, YEAR, centers=[center])
    con.close()
    got = {e.edit for e in report.edits if e.severity == "error"}
    assert {"E01-3A-3B-TOTAL", "E09-SEX-UNKNOWN", "E10-AGE-INVALID", "E11-INCOME-IMPOSSIBLE"} <= got
    e01 = next(e for e in report.edits if e.edit == "E01-3A-3B-TOTAL")
    assert e01.expected - e01.value == 2  # both crafted patients are missing from 3A
    assert report.scopes == [center]  # one center asked for: no network roll-up


def test_year_over_year_and_unknown_income(network: Path, tmp_path: Path) -> None:
    con = connect(network)
    report = build_report(con, YEAR)
    write_json(report, tmp_path / "prior.json")
    prior = read_json(tmp_path / "prior.json")
    assert not [e for e in build_report(con, YEAR, prior=prior).edits if e.edit.startswith("W06")]
    scope = report.scopes[0]
    line = prior[scope]["3B"].line("8")
    line.values["d"] = int(line.values["d"] * 2)  # last year: twice the patients
    prior[scope]["6B"].line("21").values["rate"] = 0.05
    edits = build_report(con, YEAR, prior=prior).edits
    con.close()
    assert any(e.edit == "W06-YOY-COUNT" and e.center == scope and e.line == "8" for e in edits)
    assert any(e.edit == "W07-YOY-RATE" and e.center == scope and e.line == "21" for e in edits)


def test_network_rollup_suppression(network: Path) -> None:
    con = connect(network)
    plain = build_report(con, YEAR)
    hidden = build_report(con, YEAR, suppress_network=True)
    con.close()
    for table in ("3A", "3B", "4", "6B", "7"):
        a, b = plain.tables[NETWORK][table], hidden.tables[NETWORK][table]
        for la, lb in zip(a.lines, b.lines, strict=True):
            for k, v in lb.values.items():
                if isinstance(v, int):
                    assert v == la.values[k] and not 0 < v < 11
                elif v is None and la.values[k] not in (None, 0):
                    assert "suppressed" in lb.note
    # the centers' own filings are never suppressed
    assert plain.tables[plain.scopes[0]]["3A"].lines == hidden.tables[hidden.scopes[0]]["3A"].lines
    t7 = hidden.tables[NETWORK]["7"]
    for ln in t7.lines:
        if ln.values.get("2c") is None or ln.values.get("2b") is None:
            assert ln.values.get("htn_rate") is None


def test_cli_writes_every_file(network: Path, tmp_path: Path) -> None:
    from chc_equity.cli import _register, app
    from chc_equity.cli import uds as _uds  # noqa: F401  (registers the command until _register does)

    _register()

    cfg = tmp_path / "uds.yaml"
    cfg.write_text("default:\n  visits:\n    classes: [AMB]\n")
    result = CliRunner().invoke(
        app,
        [
            "uds",
            "--year",
            str(YEAR),
            "--out",
            str(tmp_path / "o"),
            "--warehouse",
            str(network),
            "--config",
            str(cfg),
            "--suppress",
        ],
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "o").iterdir()}
    assert {
        "uds.xlsx",
        "uds.json",
        "edits.csv",
        "table_3a.csv",
        "table_3b.csv",
        "table_4.csv",
        "table_6b.csv",
        "table_7.csv",
    } <= names
    assert "UDS patients" in result.output
