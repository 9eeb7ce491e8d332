"""Every implemented eCQM agrees with every population of every official test patient (expected.csv).

All official test folders load into one warehouse (views built once) and every measure runs once
(``conformance.check_measures``); each measure is then compared on its own folder's patients.
"""

from __future__ import annotations

import pytest

from chc_equity.measures.conformance import MeasureConformance, check_measures
from chc_equity.measures.registry import all_measures
from conftest import shared_dir

MEASURES = all_measures()


@pytest.fixture(scope="module")
def conformance() -> dict[str, MeasureConformance]:
    return check_measures(shared_dir("ecqm"), MEASURES)


@pytest.mark.parametrize("module", MEASURES, ids=[m.measure.cms_id for m in MEASURES])
def test_measure_agrees_with_official_test_cases(conformance, module):
    result = conformance[module.measure.name]
    assert result.compared > 0, f"no expected rows for {module.measure.name}"
    assert not result.disagreements, (
        f"{module.measure.cms_id}: {result.agreed}/{result.compared} populations agree; first "
        "disagreements:\n"
        + "\n".join(result.disagreements[:25])
    )
