"""Every implemented eCQM agrees with every population of every official test patient (expected.csv).

All official test folders load into one warehouse (views built once) and every measure runs once (the
session fixture ``official_cases``, shared with the MeasureReport and profile-rule tests); each measure
is then compared on its own folder's patients (``conformance.compare_official``).
"""

from __future__ import annotations

import pytest

from chc_equity.measures.conformance import MeasureConformance, compare_official
from chc_equity.measures.registry import all_measures

MEASURES = all_measures()


@pytest.fixture(scope="module")
def conformance(official_cases) -> dict[str, MeasureConformance]:
    ecqm, con = official_cases
    return compare_official(con, ecqm, MEASURES)


@pytest.mark.parametrize("module", MEASURES, ids=[m.measure.cms_id for m in MEASURES])
def test_measure_agrees_with_official_test_cases(conformance, module):
    result = conformance[module.measure.name]
    assert result.compared > 0, f"no expected rows for {module.measure.name}"
    assert not result.disagreements, (
        f"{module.measure.cms_id}: {result.agreed}/{result.compared} populations agree; first "
        "disagreements:\n"
        + "\n".join(result.disagreements[:25])
    )
