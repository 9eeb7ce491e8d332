"""UDS+ submission: round trip to the aggregate tables, privacy scan, re-link, validator (docs/udsplus.md).

Round trip: the reader (chc_equity.udsplus.reader, no warehouse table) recomputes Tables 3A, 3B, 4, 6B
and 7 from the NDJSON alone; they equal the UDS module's tables for the same center and year cell for
cell -- on the hand-built UDS fixture (tests/test_uds_fixture.py) and on a generated network with names,
phones, MRNs and addresses in its input. The IG computes ages on December 31 and carries no birth date,
so the comparison is with the tables built with ``age_as_of="12-31"``; with the UDS default (June 30)
only the age lines of 3A and the age split of Table 4 lines 7-12 can differ (tested too).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from chc_equity.ingest import load
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import find
from chc_equity.synth import generate
from chc_equity.synth import load_config as synth_config
from chc_equity.uds import build_report, load_config
from chc_equity.uds.config import UdsConfig
from chc_equity.udsplus.deid import deidentify_zip, restricted_zip3
from chc_equity.udsplus.package import Submission, export, load_health_center
from chc_equity.udsplus.reader import read_package, tables_from_package
from chc_equity.udsplus.relink import TABLE, RelinkError, relink
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect, connect_memory
from test_uds_fixture import FIXTURE, build, load_measure_results

KEY = b"test-only udsplus key: 0123456789abcdef0123456789abcdef"
OTHER_KEY = b"another key, not the one used: 0123456789abcdef0123456789"
HC = Path(__file__).parent / "fixtures" / "udsplus" / "health_centers.yaml"
NET_YEAR = 2026
MEASURES = ["CMS165", "CMS122", "CMS138", "CMS155", "CMS347", "CMS125"]


def dec31(config: UdsConfig) -> UdsConfig:
    return replace(config, age_as_of="12-31")


@pytest.fixture(scope="module")
def fixture_con() -> Any:
    """The hand-built UDS fixture (two centers) with its hand-set measure results."""
    con = connect_memory()
    folder = Path(__import__("tempfile").mkdtemp(prefix="udsplus_fx"))
    for center, path in build(folder).items():
        load(con, [path], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    load_measure_results(con)
    yield con
    con.close()
    shutil.rmtree(folder, ignore_errors=True)


def _add_addresses(path: Path) -> None:
    """Street lines for everyone, a ZIP in a small 3-digit area (036) for every 7th patient and a
    Canadian address for every 11th: the generator writes city/state/ZIP only."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for i, r in enumerate(rows):
        for a in r.get("address", []):
            a["line"] = [f"{100 + i} Synthetic Elm Street", f"Apt {i % 9 + 1}"]
            if i % 7 == 3:
                a["postalCode"] = f"036{i % 100:02d}"
            if i % 11 == 5:
                a.update(postalCode="M5V 2T6", country="CA", state="ON")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated two-center network (names, phones, MRNs, addresses in the input), six eCQMs run."""
    root = tmp_path_factory.mktemp("udsplus_net")
    summary = generate(
        root / "net",
        centers=2,
        patients=200,
        seed=16,
        period_end=date(NET_YEAR, 12, 31),
        cfg=synth_config(disparities=True),
        gz=False,
    )
    for c in summary["centers"]:
        _add_addresses(root / "net" / c["id"] / "Patient.ndjson")
    con = connect(root / "w.duckdb")
    for c in summary["centers"]:
        load(
            con, [root / "net" / c["id"]], c["id"], after_load=lambda cn, ctr: build_views(cn, centers=[ctr])
        )
    run_measures(con, find(MEASURES), period_start=date(NET_YEAR, 1, 1), period_end=date(NET_YEAR, 12, 31))
    con.close()
    return root / "w.duckdb"


@pytest.fixture(scope="module")
def network_packages(network: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each center's UDS+ package of the generated network (export stores the re-link rows)."""
    out = tmp_path_factory.mktemp("udsplus_pkgs")
    con = connect(network)
    centers = [r[0] for r in con.execute("SELECT DISTINCT center FROM flat.patient ORDER BY 1").fetchall()]
    packages = {}
    for c in centers:
        _, _, violations = export(
            con, NET_YEAR, c, KEY, load_health_center(HC, c), out / c, config=dec31(UdsConfig())
        )
        assert violations == [], violations[:5]
        packages[c] = out / c
    con.close()
    return packages


def assert_same(expected: dict, got: dict) -> None:
    for tid in ("3A", "3B", "4", "6B", "7"):
        for le, lg in zip(expected[tid].lines, got[tid].lines, strict=True):
            assert (le.line, le.values, le.note) == (lg.line, lg.values, lg.note), (
                f"Table {tid} line {le.line}"
            )


# --- round trip ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("center", ["hc1", "hc2"])
def test_round_trip_on_the_hand_built_fixture(fixture_con: Any, center: str, tmp_path: Path) -> None:
    config = dec31(load_config(FIXTURE / "config.yaml"))
    _, _, violations = export(
        fixture_con, 2025, center, KEY, load_health_center(HC, center), tmp_path, config=config
    )
    assert violations == []
    expected = build_report(fixture_con, 2025, centers=[center], config=config, network=False).tables[center]
    got = tables_from_package(tmp_path, center)
    assert_same(expected, got)
    assert got["3B"].count("8", "d") == {"hc1": 8, "hc2": 2}[center]  # the fixture's hand count
    if center == "hc1":  # the fixture exercises every Table 4 special line and a 6B/7 line with results
        assert [got["4"].count(ln, "a") for ln in ("14", "17", "24", "25", "26")] == [
            expected["4"].count(ln, "a") for ln in ("14", "17", "24", "25", "26")
        ]
        assert any(ln.values.get("a") for ln in got["6B"].lines)


def test_round_trip_on_a_generated_network(network: Path, network_packages: dict[str, Path]) -> None:
    con = connect(network, read_only=False)
    for center, folder in network_packages.items():
        expected = build_report(con, NET_YEAR, centers=[center], config=dec31(UdsConfig()), network=False)
        got = tables_from_package(folder, center)
        assert_same(expected.tables[center], got)
        assert got["3B"].count("8", "d") > 50
        for line in ("14a", "11a", "12", "17a"):  # single, combined-all and combined-any 6B lines
            assert got["6B"].get(line, "a"), line
        assert got["7"].get("i", "2a") and got["7"].get("i", "3a")
    con.close()


def test_june30_tables_differ_only_in_the_age_cells(fixture_con: Any, tmp_path: Path) -> None:
    """The filing's ages are on June 30; the IG's on December 31: nothing else may differ."""
    config = load_config(FIXTURE / "config.yaml")
    export(fixture_con, 2025, "hc1", KEY, load_health_center(HC, "hc1"), tmp_path, config=dec31(config))
    june = build_report(fixture_con, 2025, centers=["hc1"], config=config, network=False).tables["hc1"]
    got = tables_from_package(tmp_path, "hc1")
    for tid in ("3B", "6B", "7"):
        assert june[tid] == got[tid]
    assert june["3A"].line("39").values == got["3A"].line("39").values
    assert june["3A"] != got["3A"]  # P2 (born 2000-07-15) is 24 on June 30 and 25 on December 31
    for ln in june["4"].lines:
        if ln.line not in ("7", "8a", "8b", "8", "9a", "9", "10a", "10b", "10", "11", "12"):
            assert ln.values == got["4"].line(ln.line).values


# --- nothing identifying leaves -------------------------------------------------------------------------
def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)] + list(node)
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)] if isinstance(node, str) else []


def test_privacy_scan_of_the_package(network: Path, network_packages: dict[str, Path]) -> None:
    con = duckdb.connect(str(network), read_only=True)
    for center, folder in network_packages.items():
        contact = con.execute(
            "SELECT name, mrn, phone FROM patient_contact WHERE center = ?", [center]
        ).fetchall()
        assert len(contact) > 50 and all(n and m for n, m, _ in contact), "the input carries names and MRNs"
        assert sum(bool(p) for _, _, p in contact) > len(contact) / 2, "... and phones"
        names = {tok.lower() for n, _, _ in contact for tok in re.findall(r"[A-Za-z]{3,}", n)}
        mrns = {m for _, m, _ in contact}
        phones = {re.sub(r"\D", "", p) for _, _, p in contact if p}
        ids = {r[0] for r in con.execute("SELECT id FROM resources WHERE center = ?", [center]).fetchall()}
        streets, zips = set(), set()
        for (raw,) in con.execute(
            "SELECT resource FROM resources WHERE center = ? AND type = 'Patient'", [center]
        ).fetchall():
            for a in json.loads(raw).get("address", []):
                streets.update(a.get("line", []))
                if a.get("postalCode"):
                    zips.add(a["postalCode"])
        assert streets and zips
        reasons: Counter[str | None] = Counter()
        res = read_package(folder)
        assert set(res) >= {"Patient", "Encounter", "Observation", "Coverage", "Parameters", "Condition"}
        for rtype, resources in res.items():
            for r in resources:
                where = f"{center} {rtype}/{r.get('id')}"
                assert "text" not in r, where
                strings = _strings(r)
                words = [s for s in strings if not s.startswith(("http://", "https://", "urn:"))]
                tokens = {t.lower() for s in words for t in re.findall(r"[A-Za-z]{3,}", s)}
                assert not tokens & names, f"{where}: name part {tokens & names}"
                for s in strings:
                    assert s not in ids, f"{where}: original id {s}"
                    assert s not in mrns and s not in streets, where
                    assert re.sub(r"\D", "", s) not in phones or len(re.sub(r"\D", "", s)) < 7, where
                    assert not re.match(r"\d{4}-\d{2}", s), f"{where}: date finer than a year: {s}"
                    assert s not in zips or (s.endswith("00") and s[:3] not in restricted_zip3()), where
                for ref in re.findall(r'"reference": ?"([A-Za-z]+)/([^"]+)"', json.dumps(r)):
                    assert ref[1] not in ids, where
                for a in r.get("address", []):
                    z = a["postalCode"]
                    reasons[a.get("_postalCode", {}).get("extension", [{}])[0].get("valueCode")] += 1
                    assert z == "00000" or (re.fullmatch(r"\d{3}00", z) and z[:3] not in restricted_zip3()), (
                        where
                    )
                    assert set(a) <= {"postalCode", "_postalCode"}, where
        assert reasons["masked"] and reasons["unsupported"] and reasons[None], reasons  # each ZIP rule ran
        text = "\n".join(p.read_text() for p in folder.glob("*.ndjson"))
        assert '"display"' not in text and '"div"' not in text and '"identifier"' not in text
    con.close()


def test_age_reference_day_is_configurable_and_checked() -> None:
    from chc_equity.uds import parse_config

    assert parse_config({}).age_as_of == "06-30"
    assert parse_config({"age_as_of": "12-31"}).age_as_of == "12-31"
    with pytest.raises(ValueError, match="age_as_of"):
        parse_config({"age_as_of": "01-01"})


def test_manifest_partial_replacement_and_incremental() -> None:
    from chc_equity.udsplus.package import manifest

    hc = load_health_center(HC, "hc1")
    m = manifest(
        hc, {"Patient": "Patient.ndjson"}, Submission(partial_name="site A", replaces="s-1", incremental=True)
    )
    names = {p["name"]: p for p in m["parameter"]}
    assert names["replaceSubmissionId"]["valueString"] == "s-1" and names["partialSubmission"]["valueBoolean"]
    assert {"name": "incrementalData", "valueBoolean": True} in names["udsData"]["part"]
    assert names["udsData"]["part"][1]["valueUrl"].endswith(f"/{m['id']}/Patient.ndjson")
    from chc_equity.udsplus.validate import validate

    assert validate(m) == []
    with pytest.raises(ValueError, match="incremental"):
        manifest(hc, {}, Submission(incremental=True))


@pytest.mark.parametrize(
    ("zip_code", "country", "expected"),
    [
        ("94110", None, ("94100", None)),
        ("94110-1234", "US", ("94100", None)),
        ("03601", None, ("00000", "masked")),  # 036: a three-digit area of 20,000 or fewer people
        ("89301", None, ("00000", "masked")),
        (None, None, ("00000", "unknown")),
        ("M5V 2T6", "CA", ("00000", "unsupported")),
        ("12345", "Mexico", ("00000", "unsupported")),
    ],
)
def test_zip_rule(zip_code: str | None, country: str | None, expected: tuple[str, str | None]) -> None:
    z = deidentify_zip(zip_code, country)
    assert (z.value, z.absent_reason) == expected


def test_relink_works_only_with_the_key(network: Path, network_packages: dict[str, Path]) -> None:
    center, folder = next(iter(network_packages.items()))
    con = duckdb.connect(str(network), read_only=True)
    patient = read_package(folder)["Patient"][0]["id"]
    original = relink(con, KEY, NET_YEAR, center, "Patient", patient)
    assert (
        con.execute(
            "SELECT count(*) FROM resources WHERE center = ? AND type = 'Patient' AND id = ?",
            [center, original],
        ).fetchone()[0]
        == 1
    )
    with pytest.raises(RelinkError, match="wrong key"):
        relink(con, OTHER_KEY, NET_YEAR, center, "Patient", patient)
    with pytest.raises(RelinkError, match="no Patient"):
        relink(con, KEY, NET_YEAR - 1, center, "Patient", patient)
    sealed = b"".join(bytes(r[0]) for r in con.execute(f"SELECT sealed FROM {TABLE}").fetchall())
    assert original.encode() not in sealed  # encrypted at rest
    con.close()


def test_cli_export_validate_relink(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chc_equity.cli import _register, app

    _register()
    key = tmp_path / "udsplus.key"
    key.write_bytes(KEY)
    copy = tmp_path / "w.duckdb"
    shutil.copy(network, copy)
    runner = CliRunner()
    out = tmp_path / "pkg"
    res = runner.invoke(
        app,
        [
            "udsplus",
            "export",
            "--year",
            str(NET_YEAR),
            "--center",
            "c01",
            "--out",
            str(out),
            "--hc-config",
            str(HC),
            "--key-file",
            str(key),
            "--warehouse",
            str(copy),
            "--partial",
            "site-A",
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    names = [p["name"] for p in manifest["parameter"]]
    assert names.count("udsData") == len(list(out.glob("*.ndjson"))) and "partialSubmission" in names
    assert runner.invoke(app, ["udsplus", "validate", str(out)]).exit_code == 0
    pid = read_package(out)["Patient"][0]["id"]
    res = runner.invoke(
        app,
        [
            "udsplus",
            "relink",
            "--year",
            str(NET_YEAR),
            "--center",
            "c01",
            f"Patient/{pid}",
            "--key-file",
            str(key),
            "--warehouse",
            str(copy),
        ],
    )
    assert res.exit_code == 0 and res.output.strip()
    monkeypatch.delenv("CHC_EQUITY_UDSPLUS_KEY", raising=False)
    res = runner.invoke(
        app,
        [
            "udsplus",
            "export",
            "--year",
            str(NET_YEAR),
            "--center",
            "c01",
            "--out",
            str(out),
            "--hc-config",
            str(HC),
            "--warehouse",
            str(copy),
        ],
    )
    assert res.exit_code == 2 and "key" in res.output
