"""The contract estimator reproduces the worked example of docs/vbp.md to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from chc_equity.vbp.contract import (
    ContractError,
    Count,
    Inputs,
    estimate,
    gap_values,
    load_contract,
    money,
    parse_contract,
    patient_values,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "vbp" / "worked_contract.yaml"
INPUTS = Inputs(
    {"CBP": Count(138, 200), "HBD": Count(70, 100), "BCS": Count(45, 90)}, 12000, Fraction(4560000)
)


@pytest.fixture(scope="module")
def contract():
    return load_contract(EXAMPLE)


def test_worked_example_payment(contract):
    e = estimate(contract, INPUTS)
    assert [(s.id, s.points) for s in e.measures] == [("CBP", 50), ("HBD", 50), ("BCS", 100)]
    assert e.quality_score == Fraction(125, 2)  # (2*50 + 1*50 + 1*100) / 4 = 62.5
    assert e.gate_passed
    assert money(e.quality_pool) == Decimal("11250.00")  # 1.50 * 12,000 * 62.5 %
    assert e.benchmark == 4_800_000 and e.savings == 240_000 and e.savings_rate == Fraction(1, 20)
    assert money(e.shared_savings) == Decimal("75000.00")  # 240,000 * 50 % * 62.5 %
    assert money(e.bonuses) == Decimal("2760.00")  # 138 * $20
    assert money(e.total) == Decimal("89010.00")


def test_worked_example_gap_values(contract):
    g = {v.measure: v for v in gap_values(contract, INPUTS)}
    assert (money(g["CBP"].next_gap), g["CBP"].to_next_step, money(g["CBP"].per_gap)) == (
        Decimal("20.00"),
        2,
        Decimal("17270.00"),
    )
    assert (money(g["HBD"].next_gap), g["HBD"].to_next_step) == (Decimal("1725.00"), 1)
    assert money(g["BCS"].per_gap) == Decimal("0.00") and g["BCS"].open_gaps == 45
    ranked = patient_values(contract, INPUTS, {"A": ["CBP", "HBD"], "B": ["CBP"], "C": ["BCS"], "D": ["XX"]})
    assert [(p, money(v)) for p, v, _ in ranked] == [
        ("A", Decimal("18995.00")),
        ("B", Decimal("17270.00")),
        ("C", Decimal("0.00")),
    ]


def test_gate_and_minimum_savings(contract):
    low = Inputs(
        {"CBP": Count(100, 200), "HBD": Count(50, 100), "BCS": Count(40, 90)}, 12000, Fraction(4560000)
    )
    e = estimate(contract, low)  # every measure under its first step: score 0 < 40
    assert not e.gate_passed and e.quality_pool == 0 and e.shared_savings == 0
    assert money(e.total) == Decimal("2000.00")  # bonuses are still paid: 100 * $20
    small = Inputs(INPUTS.counts, 12000, Fraction(4_750_000))  # savings 1.04 % < 2 %
    assert estimate(contract, small).shared_savings == 0


def test_bad_contract_names_the_field():
    with pytest.raises(ContractError, match=r"measures\.0: .*exactly one of tiers or linear"):
        parse_contract(
            {
                "id": "x",
                "payer": "p",
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
                "measures": [{"id": "m", "source": "CMS165"}],
            },
            "c.yaml",
        )
