"""UDS on a generated network: 3A = 3B = 4 totals, edits fire on crafted bad data, YoY, suppression, CLI."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
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
    # the suppressed publication is the roll-up alone: no center's unsuppressed filing, no edit
    assert hidden.scopes == [NETWORK] and hidden.edits == [] and hidden.suppressed
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


def test_suppressed_uds_files_recover_no_hidden_cell(network: Path, tmp_path: Path) -> None:
    """Everything `uds --suppress` writes (JSON; CSV and Excel carry the same cells), with every table's
    sums, the totals shared across tables and the rates: an exact MILP pins no hidden count down."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    from chc_equity.cli import _register, app
    from chc_equity.cli import uds as _uds  # noqa: F401
    from chc_equity.uds.report import SAME_TOTAL, TOTAL_PATIENTS

    _register()
    out = tmp_path / "pub"
    result = CliRunner().invoke(
        app, ["uds", "--year", str(YEAR), "--out", str(out), "--warehouse", str(network), "--suppress"]
    )
    assert result.exit_code == 0, result.output
    published = json.loads((out / "uds.json").read_text())
    con = connect(network)
    plain = build_report(con, YEAR)
    con.close()
    centers = [s for s in plain.scopes if s != NETWORK]
    keys = [
        (scope, tid, ln.line, col.key)
        for scope in plain.scopes
        for tid, t in plain.tables[scope].items()
        for ln in t.lines
        for col in t.columns
        if col.kind == "count" and isinstance(ln.values.get(col.key), int)
    ]
    index = {k: i for i, k in enumerate(keys)}
    truth = np.array([plain.tables[s][t].get(line, c) for s, t, line, c in keys], dtype=float)
    rows: list[dict[int, float]] = []
    rhs: list[float] = []
    for scope in plain.scopes:  # each table's own sums, and the totals every table shares
        for tid, t in plain.tables[scope].items():
            for total, members in t.equations:
                ks = [(scope, tid, *total), *((scope, tid, *m) for m in members)]
                if all(k in index for k in ks):
                    rows.append({index[ks[0]]: 1.0} | {index[k]: -1.0 for k in ks[1:]})
                    rhs.append(0.0)
            for mirror, source in t.mirrors.items():  # records reviewed = denominator
                for ln in t.lines:
                    ks = [(scope, tid, ln.line, mirror), (scope, tid, ln.line, source)]
                    if all(k in index for k in ks):
                        rows.append({index[ks[0]]: 1.0, index[ks[1]]: -1.0})
                        rhs.append(0.0)
        for tid, line, cols in SAME_TOTAL:
            ks = [(scope, tid, line, c) for c in cols]
            if all(k in index for k in ks):
                rows.append({index[(scope, *TOTAL_PATIENTS)]: 1.0} | {index[k]: -1.0 for k in ks})
                rhs.append(0.0)
    for k in keys:  # the roll-up is the sum of the centers (the attacker knows how it is made)
        if k[0] == NETWORK:
            parts = [(c, *k[1:]) for c in centers]
            if all(p in index for p in parts):
                rows.append({index[k]: 1.0} | {index[p]: -1.0 for p in parts})
                rhs.append(0.0)
    hidden: list[tuple[str, str, str, str]] = []
    for scope, tables in published["scopes"].items():
        for tid, t in tables.items():
            for ln in t["lines"]:
                for col, v in ln["values"].items():
                    k = (scope, tid, ln["line"], col)
                    if k not in index:
                        continue
                    if isinstance(v, int):
                        rows.append({index[k]: 1.0})
                        rhs.append(float(v))
                    elif scope == NETWORK and truth[index[k]] > 0:
                        hidden.append(k)
    assert hidden, "nothing suppressed: the test would prove nothing"
    a = np.zeros((len(rows), len(keys)))
    for r, row in enumerate(rows):
        for j, c in row.items():
            a[r, j] = c
    b = np.array(rhs)
    assert np.allclose(a @ truth, b), "published files inconsistent with the warehouse"
    cons = LinearConstraint(a, b, b)
    recovered = []
    for k in hidden:
        cost = np.zeros(len(keys))
        cost[index[k]] = 1.0
        lo = milp(cost, constraints=cons, integrality=np.ones(len(keys)), bounds=Bounds(0, np.inf))
        hi = milp(-cost, constraints=cons, integrality=np.ones(len(keys)), bounds=Bounds(0, np.inf))
        if hi.status == 0 and -hi.fun - lo.fun < 0.5:
            recovered.append(k)
    print(f"uds --suppress: {len(recovered)} of {len(hidden)} hidden cells recovered")
    assert recovered == []
