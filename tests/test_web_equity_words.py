"""Plain-words sentences, suppression reasons, reference re-selection and the inequity ranking (issue 17).

Pure functions on hand-made rows: every number asserted is computed by hand in the comment next to it,
or by the equity package itself (a re-selected reference must give what the package gives directly).
"""

from __future__ import annotations

from datetime import date

from chc_equity.equity.ranking import largest_inequities
from chc_equity.equity.stats import compare_strata
from chc_equity.web import equityview, plainwords
from chc_equity.web.analytics import Cell, EquityStratum, Plan
from chc_equity.web.data import CenterSummary, UnknownRate
from chc_equity.web.privacy import (
    COMPLEMENTARY,
    SMALL,
    suppress_cell,
    suppress_center,
    suppress_rate,
    suppress_stratum,
)


def stratum(label: str, x: int | None, n: int | None, **kw) -> EquityStratum:
    rate = None if x is None or n is None else x / n
    base = dict(
        group_id="Group_1", dimension="race_ethnicity", dimension_label="Race and ethnicity", stratum=label,
        numerator=x, denominator=n, rate=rate, ci_low=None, ci_high=None, is_reference=False,
        rate_difference=None, p_value=None, q_value=None, gap_to_equity=None, worse=False, unreliable=False,
        suppressed=x is None, measure="CMS165FHIRControllingHighBloodPressure",
    )  # fmt: skip
    base.update(kw)
    return EquityStratum(**base)


REF = stratum("Hispanic", 720, 1000, is_reference=True)
# 400 patients at 55 %: 17 points below 72 %; gap = ceil(0.72 * 400 - 220) = 288 - 220 = 68.
BLACK = stratum(
    "Black non-Hispanic", 220, 400, rate_difference=-0.17, q_value=0.0001, gap_to_equity=68, worse=True
)


def test_sentence_higher_is_better() -> None:
    text = plainwords.stratum_sentence(
        BLACK, REF, cms_id="CMS165", inverse=False, unit="patients", where=" at c03"
    )
    assert text == (
        "Black non-Hispanic patients at c03 are 17 points less likely to meet CMS165 than Hispanic patients"
        " (the reference group: the largest group); 68 more patients would need to meet it to close the gap."
    )


def test_sentence_inverse_measure_says_fewer_in_the_numerator() -> None:
    # CMS122 (HbA1c > 9 %, lower is better): 30 % vs the reference's 20 %; gap = ceil(120 - 0.2 * 400) = 40.
    ref = stratum("White non-Hispanic", 200, 1000, is_reference=True)
    row = stratum("Black non-Hispanic", 120, 400, gap_to_equity=40, worse=True, q_value=0.001)
    text = plainwords.stratum_sentence(row, ref, cms_id="CMS122", inverse=True, unit="patients")
    assert "10 points more likely to be in CMS122's numerator (lower is better)" in text
    assert text.endswith("40 fewer patients would need to be in the numerator to close the gap.")
    assert "more patients would need to meet" not in text


def test_sentence_episode_measure_counts_encounters() -> None:
    assert plainwords.unit_of("CMS22") == "encounters"
    assert plainwords.unit_of("CMS165") == "patients"
    text = plainwords.stratum_sentence(BLACK, REF, cms_id="CMS22", inverse=False, unit="encounters")
    assert text.startswith("Encounters of Black non-Hispanic patients are 17 points less likely")
    assert "68 more encounters would need" in text and "patients would need" not in text


def test_not_significant_gap_says_so_and_headline_picks_the_largest_gap() -> None:
    small = stratum("Asian non-Hispanic", 60, 100, gap_to_equity=12, worse=False, q_value=0.2)
    text = plainwords.stratum_sentence(small, REF, cms_id="CMS165", inverse=False, unit="patients")
    assert text.endswith("(not statistically significant: q ≥ 0.05).")
    rows = [REF, BLACK, small]
    head = plainwords.headline(rows, cms_id="CMS165", inverse=False, unit="patients")
    assert head.startswith("Black non-Hispanic patients are 17 points less likely")
    quiet = plainwords.headline([REF, small], cms_id="CMS165", inverse=False, unit="patients")
    assert quiet.startswith("No group is significantly worse than its reference group on CMS165")


def test_ranking_keeps_significant_worse_strata_largest_gap_first() -> None:
    a = stratum("A", 50, 100, worse=True, gap_to_equity=22, q_value=0.01)
    b = stratum("B", 50, 300, worse=True, gap_to_equity=166, q_value=0.001)
    c = stratum("C", None, None, worse=False, suppressed=True)
    d = stratum("D", 10, 100, worse=False, gap_to_equity=500, q_value=0.3)  # not significant: left out
    ranked = largest_inequities(
        [a, b, c, d],
        worse=lambda s: s.worse,
        gap=lambda s: s.gap_to_equity,
        q=lambda s: s.q_value,
        suppressed=lambda s: s.suppressed,
    )
    assert [r.stratum for r in ranked] == ["B", "A"]


def test_choosing_another_reference_is_the_equity_package_with_that_reference() -> None:
    rows = [REF, BLACK, stratum("White non-Hispanic", 700, 900), stratum("Asian non-Hispanic", None, None)]
    again = equityview.with_reference(rows, "White non-Hispanic", inverse=False)
    direct = compare_strata(
        ["Hispanic", "Black non-Hispanic", "White non-Hispanic"],
        [720, 220, 700],
        [1000, 400, 900],
        reference="named",
        reference_label="White non-Hispanic",
    )
    by_label = {s.label: s for s in direct.strata}
    for row in again[:3]:
        want = by_label[row.stratum]
        assert row.is_reference == want.is_reference
        assert row.q_value == want.q_value and row.gap_to_equity == want.gap_to_equity
    assert again[3] == rows[3]  # suppressed: untouched, takes no part
    # 700/900 = 77.8 %: Black non-Hispanic 55 % -> gap ceil(0.7778 * 400 - 220) = ceil(91.1) = 92
    assert again[1].gap_to_equity == 92 and again[1].worse
    assert equityview.with_reference(rows, "Asian non-Hispanic", inverse=False) == rows  # hidden: no
    assert equityview.reference_choices(rows) == ["Hispanic", "Black non-Hispanic", "White non-Hispanic"]


def _cell(numerator: int, denominator: int) -> Cell:
    return Cell(
        "M", "CMS1", "t", "Group_1", None, False, None, "c1", denominator, denominator, 0, 0, numerator, 0,
        denominator, numerator / denominator, 0.1, 0.9, 0.5, 0.5, "as expected", "inside 95%",
        date(2026, 1, 1), date(2026, 12, 31),
    )  # fmt: skip


def test_hidden_cells_say_small_or_complementary_without_the_value() -> None:
    plan = Plan(numerator_hidden=True, not_met_hidden=True, denominator_hidden=True, network_withheld=False)
    small = suppress_cell(_cell(4, 60), plan)  # 4 met: a small number
    assert small.numerator is None
    assert small.hidden == {"numerator": SMALL, "performance_denominator": COMPLEMENTARY}
    near_all = suppress_cell(_cell(55, 60), plan)  # 5 not met: the numerator is hidden for a small count
    assert near_all.hidden["numerator"] == SMALL
    other = suppress_cell(_cell(47, 102), plan)  # 47 and 55, 102: hidden only to protect another cell
    assert other.hidden == {"numerator": COMPLEMENTARY, "performance_denominator": COMPLEMENTARY}
    assert "47" not in repr(other.hidden) and other.numerator is None and other.rate is None
    row = suppress_stratum(stratum("X", 47, 102, suppressed=True))
    assert row.hidden_reason == COMPLEMENTARY and row.numerator is None
    assert suppress_stratum(stratum("Y", 3, 102)).hidden_reason == SMALL


def test_location_and_organization_counts_are_not_suppressed() -> None:
    summary = CenterSummary(
        "c1", 1, None, None, 0, {"Patient": 40, "Encounter": 5, "Location": 3, "Organization": 2}
    )
    out = suppress_center(summary)
    assert out.by_type["Location"] == 3 and out.by_type["Organization"] == 2  # not people
    assert out.by_type["Encounter"] is None and out.hidden["Encounter"] == SMALL
    # people total 45 published -> Patient 40 alone with it would give 5 back: hidden as a complement
    assert out.by_type["Patient"] is None and out.hidden["Patient"] == COMPLEMENTARY
    rate = suppress_rate(UnknownRate("c1", "race", 40, 5))
    assert rate.unknown is None and rate.hidden["unknown"] == SMALL
