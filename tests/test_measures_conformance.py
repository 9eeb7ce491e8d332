"""Every implemented eCQM agrees with every population of every official test patient (expected.csv)."""

from __future__ import annotations

import pytest

from chc_equity.measures.conformance import check_measure
from chc_equity.measures.registry import all_measures
from conftest import shared_dir

MEASURES = all_measures()


@pytest.mark.parametrize("module", MEASURES, ids=[m.measure.cms_id for m in MEASURES])
def test_measure_agrees_with_official_test_cases(module):
    ecqm = shared_dir("ecqm")
    result = check_measure(ecqm, module)
    assert result.compared > 0, f"no expected rows for {module.measure.name}"
    assert not result.disagreements, (
        f"{module.measure.cms_id}: {result.agreed}/{result.compared} populations agree; first "
        "disagreements:\n"
        + "\n".join(result.disagreements[:25])
    )
