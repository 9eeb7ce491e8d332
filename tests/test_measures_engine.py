"""The measure engine itself: registry, pure rendering, shared library defines, population scoring."""

from __future__ import annotations

import itertools
from datetime import date

import duckdb
import pytest

from chc_equity.measures.engine import (
    CRITERIA_COLUMNS,
    Context,
    MeasureModule,
    library_table,
    render,
    scored_sql,
    statements,
)
from chc_equity.measures.library import hospice
from chc_equity.measures.model import Group, Measure
from chc_equity.measures.registry import MODULES, all_measures, load_modules
from chc_equity.measures.vocabulary import Period

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))
CRITERIA = ("ip", "den", "denex", "denexcep", "num", "numex")


def test_registry_loads_every_module() -> None:
    assert [m.measure.cms_id.lower() for m in all_measures()] == list(MODULES)


def test_registry_fails_loudly_on_a_module_that_does_not_import() -> None:
    with pytest.raises(ImportError, match="chc_equity.measures.ecqm.cms_typo"):
        load_modules(("cms122", "cms_typo"))


def _reference(c: dict[str, bool | None]) -> tuple[bool, ...]:
    """The proportion-scoring rules as the engine docstring (and the FHIR Quality Measure IG) state them;
    a missing (NULL) criterion is false."""
    ip, den_c, denex_c, exc_c, num_c, numex_c = (bool(c[k]) for k in CRITERIA)
    den = ip and den_c
    denex = den and denex_c
    num = den and not denex_c and num_c
    numex = num and numex_c
    denexcep = den and not denex_c and not num_c and exc_c
    return (ip, den, denex, denexcep, num, numex)


def _score(rows: list[tuple[bool | None, ...]]) -> list[tuple[bool, ...]]:
    m = Measure("TestMeasure", "CMS0", "0", "test", (Group("Group_1", ()),))
    values = ",\n".join(
        f"('c', 'p{i}', 's{i}', 'Group_1', " + ", ".join("NULL" if v is None else str(v).upper() for v in r)
        + ", NULL)"
        for i, r in enumerate(rows)
    )
    criteria = f"SELECT * FROM (VALUES {values}) AS t({', '.join(CRITERIA_COLUMNS)})"
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT initial_population, denominator, denominator_exclusion, denominator_exception, "
            f"numerator, numerator_exclusion FROM ({scored_sql(m, criteria, PERIOD)}) "
            "ORDER BY CAST(substr(subject_id, 2) AS INTEGER)"
        ).fetchall()
    finally:
        con.close()
    return [tuple(r) for r in got]


def test_scored_sql_truth_table_every_combination() -> None:
    """All 3^6 combinations of true / false / null criteria against the stated rules."""
    rows = list(itertools.product((True, False, None), repeat=6))
    got = _score(rows)
    want = [_reference(dict(zip(CRITERIA, r, strict=True))) for r in rows]
    assert len(got) == len(rows) == 729
    assert got == want


@pytest.mark.parametrize(
    ("criteria", "populations"),
    [
        # ip, den, denex, denexcep, num, numex  ->  IP, DENOM, DENEX, DENEXCEP, NUMER, NUMEX
        ((False, True, True, True, True, True), (False, False, False, False, False, False)),
        ((True, False, True, True, True, True), (True, False, False, False, False, False)),
        ((True, True, False, False, False, False), (True, True, False, False, False, False)),
        # excluded: stays in the denominator, never in the numerator nor an exception
        ((True, True, True, True, True, True), (True, True, True, False, False, False)),
        # numerator wins over the exception
        ((True, True, False, True, True, False), (True, True, False, False, True, False)),
        ((True, True, False, True, False, False), (True, True, False, True, False, False)),
        ((True, True, False, False, True, True), (True, True, False, False, True, True)),
        ((True, True, None, None, None, None), (True, True, False, False, False, False)),
    ],
)
def test_scored_sql_named_cases(criteria: tuple, populations: tuple) -> None:
    assert _score([criteria]) == [populations]


def test_rendering_needs_no_connection_and_shares_library_defines_by_identity() -> None:
    ctx = Context(PERIOD)
    rendered = [render(module, ctx) for module in all_measures()]
    tables = [d.table for d in ctx.library.values()]
    assert len(tables) == len(set(tables)), "one relation per library define"
    assert hospice.has_hospice_services in ctx.library
    assert ctx.library[hospice.has_hospice_services].table == library_table(hospice.has_hospice_services)
    users = [r.measure.cms_id for r in rendered if ctx.library[hospice.has_hospice_services] in r.library]
    assert len(users) > 10
    for r in rendered:
        for define in r.library:  # dependency order: what a define reads comes before it
            position = r.library.index(define)
            for dep in define.reads:
                assert r.library.index(ctx.library[dep]) < position


def test_library_defines_are_created_once_per_run() -> None:
    ctx = Context(PERIOD)
    done: set[str] = set()
    created: list[str] = []
    for module in all_measures():
        for statement in statements(render(module, ctx), ctx, done):
            if statement.startswith("CREATE OR REPLACE TEMP TABLE"):
                created.append(statement.split()[5])
    assert len(created) == len(set(created)) == len(ctx.library)
    assert "lib_hospice_has_hospice_services" in created


def test_render_is_deterministic() -> None:
    module: MeasureModule = all_measures()[0]
    a, b = render(module, Context(PERIOD)), render(module, Context(PERIOD))
    assert a.select == b.select and [d.sql for d in a.library] == [d.sql for d in b.library]
