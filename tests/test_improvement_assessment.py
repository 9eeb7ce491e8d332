"""Readiness rubrics as data and assessment scoring (pure functions): the packaged instrument, errors
that name file, line and field, a program's own rubric, scores computed by hand, network suppression."""

from __future__ import annotations

from pathlib import Path

import pytest

from chc_equity.improvement import rubric as rubrics
from chc_equity.improvement.assessment import Response, change, network_means, score

SMALL = """\
id: small
version: "2"
title: A two-domain test rubric
domains:
  - id: a
    title: Domain A
    items:
      - id: a.1
        text: First item
        levels: [{level: 1, anchor: low}, {level: 2, anchor: mid}, {level: 3, anchor: high}]
      - id: a.2
        text: Second item
        levels: [{level: 1, anchor: low}, {level: 2, anchor: mid}, {level: 3, anchor: high}]
  - id: b
    title: Domain B
    items:
      - id: b.1
        text: Only item of B
        levels: [{level: 1, anchor: low}, {level: 2, anchor: mid}, {level: 3, anchor: high}]
"""


def test_packaged_rubric_follows_the_framework_domains() -> None:
    r = rubrics.default()
    assert r.key == "chc-equity-readiness@1.0"
    assert [d.title for d in r.domains] == [
        "Equity as a strategic priority",
        "Infrastructure and data (collection, stratification, use)",
        "Addressing social determinants of health",
        "Eliminating racism and oppression",
        "Community partnership",
    ]
    assert len(r.items) == 15
    for item in r.items.values():
        assert [lv.level for lv in item.levels] == [1, 2, 3, 4]
        assert item.guidance and item.evidence and all(lv.anchor for lv in item.levels)
    data = r.domain_of("data.stratification")
    assert data.id == "data" and r.level_name(4) == "Established"


def test_a_bad_rubric_names_file_line_and_field(tmp_path: Path) -> None:
    three = "[{level: 1, anchor: low}, {level: 2, anchor: mid}, {level: 3, anchor: high}]"
    bad = SMALL.replace(f"{three}\n  - id: b", "[{level: 1, anchor: low}, {level: 2}]\n  - id: b")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(rubrics.RubricError) as err:
        rubrics.load_rubric(path)
    # a.2's levels are on line 13; the missing field is the second level's anchor
    assert str(err.value).startswith(f"{path}:13: domains.0.items.1.levels.1.anchor: Field required")

    path.write_text(SMALL.replace("id: b.1", "id: a.1"))
    with pytest.raises(rubrics.RubricError, match="item id 'a.1' is used twice"):
        rubrics.load_rubric(path)
    path.write_text(
        SMALL.replace("{level: 2, anchor: mid}, {level: 3", "{level: 3, anchor: mid}, {level: 2", 1)
    )
    with pytest.raises(rubrics.RubricError, match=r":8: domains.0.items.0.*increasing order"):
        rubrics.load_rubric(path)
    path.write_text("id: x\n  version: [")
    with pytest.raises(rubrics.RubricError, match=r"bad.yaml:2: not valid YAML"):
        rubrics.load_rubric(path)


def test_a_program_loads_its_own_rubric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    monkeypatch.setenv(rubrics.ENV_DIR, str(tmp_path))
    assert set(rubrics.available()) == {"chc-equity-readiness@1.0", "small@2"}
    assert rubrics.get("small", "2").items["b.1"].anchor(2) == "mid"
    monkeypatch.delenv(rubrics.ENV_DIR)
    with pytest.raises(KeyError):
        rubrics.get("small", "2")


def test_scores_by_hand() -> None:
    r = rubrics.parse_rubric(SMALL)
    responses = [
        Response("a.1", "Ana", 1),
        Response("a.1", "Ben", 3),  # a.1: mean 2, spread 2
        Response("a.2", "Ana", 3),  # a.2: 3
        Response("b.1", "Ben", 2),  # b.1: 2
    ]
    s = score(r, responses)
    assert s.items["a.1"].score == 2 and s.items["a.1"].spread == 2 and s.items["a.1"].raters == 2
    assert s.domain("a").score == 2.5 and s.domain("a").spread == 2 and s.domain("a").answered == 2
    assert s.domain("b").score == 2
    assert s.overall == 2.25  # domains weigh the same: (2.5 + 2) / 2, not the item mean 7/3
    assert s.raters == ("Ana", "Ben")

    earlier = score(r, [Response("a.1", "Ana", 1), Response("a.2", "Ana", 1)])  # B not answered
    assert earlier.domain("b").score is None and earlier.overall == 1
    assert change(s, earlier) == {"a": 1.5, "b": None, "overall": 1.25}
    assert change(s, None) == {"a": None, "b": None, "overall": None}

    with pytest.raises(ValueError, match="level 4 is not one of its levels"):
        score(r, [Response("a.1", "Ana", 4)])
    with pytest.raises(ValueError, match="answered twice"):
        score(r, [Response("a.1", "Ana", 1), Response("a.1", "Ana", 2)])
    with pytest.raises(ValueError, match="not in rubric small@2"):
        score(r, [Response("zz", "Ana", 1)])


def test_network_mean_is_suppressed_below_three_centers() -> None:
    r = rubrics.parse_rubric(SMALL)
    one = score(r, [Response("a.1", "x", 1), Response("b.1", "x", 3)])
    two = score(r, [Response("a.1", "x", 2)])
    three = score(r, [Response("a.1", "x", 3), Response("b.1", "x", 1)])
    means = network_means({"c1": one, "c2": two}, ["a", "b"])
    assert means == {"a": (None, 2), "b": (None, 1), "overall": (None, 2)}
    means = network_means({"c1": one, "c2": two, "c3": three}, ["a", "b"])
    assert means["a"] == (2.0, 3)
    assert means["b"] == (None, 2)  # only two centers answered B
    assert means["overall"] == ((2.0 + 2.0 + 2.0) / 3, 3)
