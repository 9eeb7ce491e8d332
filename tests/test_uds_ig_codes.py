"""UDS+ IG code systems read by the UDS tables: every code of the IG's CodeSystems is recognised.

Input may be coded with the UDS+ IG 2.0.0 (http://fhir.org/guides/hrsa/uds-plus) or its 1.x base
(http://hl7.org/fhir/us/uds-plus); the tables must read both (checked against the IG's own files).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from chc_equity.uds import patients

DEFINITIONS = Path(__file__).resolve().parents[1].parent / "shared" / "uds-plus" / "definitions"


def _code_system(name: str) -> dict:
    path = DEFINITIONS / f"CodeSystem-{name}.json"
    if not path.exists():
        pytest.skip(f"{path} absent (the UDS+ IG from ../shared/uds-plus)")
    return json.loads(path.read_text())


def test_every_ig_insurance_code_maps_to_a_table4_category() -> None:
    cs = _code_system("uds-plus-insurance-codes")
    assert cs["url"] in patients.UDSPLUS_INSURANCE
    con = duckdb.connect()
    sql = patients._map("code", patients.UDSPLUS_INSURANCE_CATEGORY)
    got = {
        c["code"]: con.execute(f"SELECT {sql} FROM (SELECT ? AS code)", [c["code"]]).fetchone()[0]
        for c in cs["concept"]
    }
    assert None not in got.values(), got
    assert got["medicaid-title-19-21"] == "medicaid"
    assert got["dually-eligible-medicaid-medicare"] == "dual"
    assert got["none-or-uninsured"] == "uninsured"
    assert got["medicare-and-private"] == "medicare"


@pytest.mark.parametrize(
    ("name", "systems", "known"),
    [
        ("udsplus-housing-status-codes", patients.UDSPLUS_HOUSING, set(patients.SHELTER_LINE)),
        (
            "udsplus-agriculture-worker-status-codes",
            patients.UDSPLUS_AG,
            set(patients.MIGRATORY_CODES) | set(patients.SEASONAL_CODES),
        ),
    ],
)
def test_ig_housing_and_agricultural_codes_are_read(
    name: str, systems: tuple[str, ...], known: set[str]
) -> None:
    cs = _code_system(name)
    assert cs["url"] in systems
    assert {c["code"] for c in cs["concept"]} <= known
