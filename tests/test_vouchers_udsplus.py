"""The UDS+ agricultural-worker extension for voucher patients (issue 20, item 6): on the synthetic
season replayed through the real store, every voucher patient of the year -- worked out here from the
generator's truth, not from the store -- is one de-identified UDS+ Patient with its migratory/seasonal
code, every resource passes the UDS+ validator (strict), and nothing identifying leaves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chc_equity.appdb import AppDB
from chc_equity.appdb.engine import database_url
from chc_equity.udsplus import ig
from chc_equity.udsplus.deid import Pseudonymizer, restricted_zip3
from chc_equity.vouchers import season as synth
from chc_equity.vouchers.udsplus import CENTER, voucher_patients
from test_udsplus import _strings

KEY = b"test-only voucher udsplus key: 0123456789abcdef0123456789abcdef"
YEAR = synth.YEAR


@pytest.fixture(scope="module")
def season() -> synth.Season:
    return synth.generate(seed=20, households=8)


@pytest.fixture(scope="module")
def replayed(season: synth.Season, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppDB, Path]]:
    folder = tmp_path_factory.mktemp("vouchers-udsplus")
    url = database_url(folder / "wh.duckdb")  # SQLite next to the warehouse (the default backend)
    assert url.startswith("sqlite")
    db = AppDB(url)
    synth.replay(db, season, folder / "season")
    yield db, folder
    db.dispose()


def _expected(season: synth.Season) -> dict[str, str]:
    """Program id -> category of everyone with a valid (so paid) line in the year: the truth."""
    truth = season.truth
    paid = {x.patient_id for x in season.lines if truth[(x.provider_id, x.claim_no, x.claim_line)] is None}
    category = {v["patient_id"]: v["category"] for v in season.program["verifications"]}
    return {p: category[p] for p in paid}


def _ag_code(patient: dict) -> list[str]:
    return [e["valueCode"] for e in patient["extension"] if e["url"] == ig.EXT_AG]


def test_every_voucher_patient_once_with_its_status_and_valid(
    season: synth.Season, replayed: tuple[AppDB, Path]
) -> None:
    db, _ = replayed
    expected = _expected(season)
    assert len(expected) >= 15 and set(expected.values()) == {"migratory", "seasonal"}
    with db.read() as s:
        result = voucher_patients(s, YEAR, KEY)
    assert result.missing == {}
    assert result.violations == []
    pseudonym = Pseudonymizer(KEY, YEAR, CENTER)
    by_id = {pseudonym("Patient", p): c for p, c in expected.items()}
    got = [r["id"] for r in result.patients]
    assert len(got) == len(set(got)) == len(expected)  # once each
    assert {r["id"]: _ag_code(r) for r in result.patients} == {i: [c] for i, c in by_id.items()}
    ages = {
        r["id"]: next(e["valueQuantity"]["value"] for e in r["extension"] if e["url"] == ig.EXT_AGE)
        for r in result.patients
    }
    born = {p["id"]: p["birth_date"] for p in season.program["people"]}
    assert ages == {pseudonym("Patient", p): YEAR - int(born[p][:4]) for p in expected}  # age on Dec 31


def test_a_patient_without_birth_date_is_listed_not_guessed(replayed: tuple[AppDB, Path]) -> None:
    from chc_equity.appdb.models import VoucherPerson

    db, _ = replayed
    with db.read() as s:
        before = voucher_patients(s, YEAR, KEY)
        victim = sorted(before.extract.ids)[0][1]
        s.get(VoucherPerson, victim).birth_date = None  # in this read session only: never committed
        s.flush()
        after = voucher_patients(s, YEAR, KEY)
        s.rollback()
    assert after.missing == {victim: "birth date"}
    assert len(after.patients) == len(before.patients) - 1 and after.violations == []


def test_cli_writes_the_resources_and_nothing_identifying_leaves(
    season: synth.Season, replayed: tuple[AppDB, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chc_equity.cli import _register, app

    _register("vouchers")
    _, folder = replayed
    key_file = tmp_path / "udsplus.key"
    key_file.write_bytes(KEY)
    out = tmp_path / "udsplus"
    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    res = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        ["vouchers", "report", "--out", str(tmp_path / "report"), "--year", str(YEAR),
         "--warehouse", str(folder / "wh.duckdb"), "--udsplus-out", str(out), "--key-file", str(key_file)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    expected = _expected(season)
    assert f"{len(expected)} UDS+ Patients" in res.output and "0 violations" in res.output
    assert (out / "validation.csv").read_text() == "resource,path,rule,message\n"
    text = (out / "Patient.ndjson").read_text()
    patients = [json.loads(line) for line in text.splitlines()]
    assert len(patients) == len(expected)
    people = season.program["people"]
    ids = {p["id"] for p in people} | {p["household"] for p in people}
    zips = {p["zip"] for p in people}
    births = {p["birth_date"] for p in people}
    for r in patients:
        assert set(r) <= {"resourceType", "id", "meta", "extension", "address"}, r.keys()
        for s in _strings(r):
            assert s not in ids and s not in zips and s not in births, s
            assert not re.search(r"\d{4}-\d{2}", s), f"date finer than a year: {s}"
            assert not any(i in s for i in ids), s
        (address,) = r["address"]
        z = address["postalCode"]
        assert z == "00000" or (re.fullmatch(r"\d{3}00", z) and z[:3] not in restricted_zip3()), z
    assert '"identifier"' not in text and '"name"' not in text and '"birthDate"' not in text
    assert {r["address"][0]["postalCode"] for r in patients} <= {z[:3] + "00" for z in zips} | {"00000"}
