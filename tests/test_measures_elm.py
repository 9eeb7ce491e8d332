"""Every CQL define of every measure library is accounted for in the measure's SQL (issue 23).

Read from the official ELM (``../shared/ecqm/elm/<Measure>.json``): each expression define of the
measure's own library (functions excluded) must be either

- implemented as a named define: a CTE named after it (``define "Initial Population"`` ->
  ``initial_population``), or
- listed as folded into another one: quoted by name in a ``--`` comment of the measure's SQL, above
  or inside the define that computes it (``-- CQL: define "Denominator": the initial population``).

Supplemental data elements (``SDE ...``) are not measure logic: chc-equity reports race, ethnicity,
payer and sex from ``patient_attributes`` (the equity stage), so they are listed here once.
"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from chc_equity.measures.defines import snake, split_with
from chc_equity.measures.engine import Context, render
from chc_equity.measures.registry import all_measures
from chc_equity.measures.vocabulary import Period
from conftest import shared_dir

MEASURES = all_measures()
SUPPLEMENTAL = re.compile(r"^SDE ")


def elm_defines(measure_name: str) -> list[str]:
    """Expression defines of the measure's own library, in ELM order (not functions, not "Patient")."""
    path = shared_dir("ecqm", "elm") / f"{measure_name}.json"
    library = json.loads(path.read_text())["library"]
    return [
        d["name"]
        for d in library["statements"]["def"]
        if d.get("type") != "FunctionDef" and "operand" not in d and d["name"] != "Patient"
    ]


def comment_text(sql: str) -> str:
    """Every ``--`` comment of the SQL as one line of text, whitespace collapsed, so a long define name
    may wrap onto the next comment line."""
    return " ".join(" ".join(m.group(1).split()) for m in re.finditer(r"--([^\n]*)", sql))


@pytest.mark.parametrize("module", MEASURES, ids=[m.measure.cms_id for m in MEASURES])
def test_every_cql_define_is_implemented_or_folded(module) -> None:
    defines = elm_defines(module.measure.name)
    rendered = render(module, Context(Period(date(2026, 1, 1), date(2026, 12, 31))))
    named = {c.name for c in split_with(rendered.criteria)[0]}
    comments = comment_text(rendered.criteria)
    missing = [
        d for d in defines
        if not SUPPLEMENTAL.match(d) and snake(d) not in named and f'"{d}"' not in comments
    ]
    assert defines
    assert not missing, f"{module.measure.cms_id}: CQL defines neither implemented nor listed: {missing}"
