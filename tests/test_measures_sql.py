"""The SQL of a measure is visible: `measures sql`, its defines by name, and `--materialize-defines`."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from chc_equity.cli import app
from chc_equity.cli import measures as _measures_cli  # noqa: F401  (registers the commands)
from chc_equity.measures.conformance import test_folder as official_folder
from chc_equity.measures.defines import define_names, define_sql, snake, split_with
from chc_equity.measures.engine import RESULTS_TABLE, Context, render, run_measures, statements
from chc_equity.measures.evaluate import evaluate_into
from chc_equity.measures.registry import all_measures, find
from chc_equity.measures.vocabulary import Period
from conftest import shared_dir

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))


def test_split_with_respects_strings_comments_and_nesting() -> None:
    sql = """
-- a comment with ( and ,
WITH a AS (SELECT ')' AS x, "we(ird" FROM t /* ) */),
-- CQL: define "B"
b AS (SELECT * FROM (SELECT 1) s WHERE x IN (SELECT x FROM a))
SELECT * FROM b"""
    ctes, final = split_with(sql)
    assert [c.name for c in ctes] == ["a", "b"]
    assert ctes[0].body == """SELECT ')' AS x, "we(ird" FROM t /* ) */"""
    assert ctes[1].comment == '-- CQL: define "B"'
    assert final == "SELECT * FROM b"
    assert split_with("SELECT 1") == ([], "SELECT 1")


def test_every_measure_splits_into_named_defines() -> None:
    ctx = Context(PERIOD)
    for module in all_measures():
        rendered = render(module, ctx)
        ctes, final = split_with(rendered.criteria)
        names = [c.name for c in ctes]
        assert names and len(names) == len(set(names)), module.measure.cms_id
        assert final.lstrip().upper().startswith("SELECT"), module.measure.cms_id
        assert "initial_population" in names or module.measure.cms_id in {"CMS2", "CMS347"}, names


def test_define_sql_by_cql_name_keeps_only_what_it_reads() -> None:
    rendered = render(find(["CMS122"])[0], Context(PERIOD))
    [query] = define_sql(rendered, "Numerator")
    assert query.rstrip().endswith("SELECT * FROM numerator")
    assert "lib_hospice" not in query and "initial_population AS" not in query
    creates = define_sql(rendered, "Denominator Exclusions")
    assert any(s.startswith("CREATE OR REPLACE TEMP TABLE lib_hospice_has_hospice_services") for s in creates)
    hospice = define_sql(rendered, "Has Hospice Services")
    assert hospice[-1] == "SELECT * FROM lib_hospice_has_hospice_services"
    with pytest.raises(KeyError, match="glycemic_status_assessment"):
        define_sql(rendered, "No Such Define")
    assert snake('"Has Most Recent Elevated Glycemic Status Assessment"') == (
        "has_most_recent_elevated_glycemic_status_assessment"
    )


def test_cli_prints_exactly_the_statements_a_run_executes() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["measures", "sql", "CMS75", "--period-start", "2026-01-01"])
    assert result.exit_code == 0, result.output
    ctx = Context(PERIOD)
    expected = statements(render(find(["CMS75"])[0], ctx), ctx)
    assert result.output.count(";\n") == len(expected) == 3
    assert "CREATE OR REPLACE TEMP TABLE lib_hospice_has_hospice_services AS" in result.output
    assert f"INSERT INTO {RESULTS_TABLE}" in result.output
    one = runner.invoke(app, ["measures", "sql", "CMS75", "--define", "Numerator"])
    assert one.exit_code == 0 and "SELECT * FROM numerator;" in one.output
    bad = runner.invoke(app, ["measures", "sql", "CMS75", "--define", "Nope"])
    assert bad.exit_code != 0 and "qualifying_encounters" in bad.output


def test_materialize_defines_keeps_every_define_as_a_table() -> None:
    [module] = find(["CMS75"])
    folder = official_folder(shared_dir("ecqm"), module)
    con = evaluate_into(folder, [module], period_start=PERIOD.start, period_end=PERIOD.end)
    try:
        run_measures(
            con, [module], period_start=PERIOD.start, period_end=PERIOD.end, materialize_defines=True
        )
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'defines'"
        ).fetchall()}
        rendered = render(module, Context(PERIOD))
        for name in define_names(rendered):
            assert (name if name.startswith("lib_") else f"cms75__{name}") in tables
        ip = con.execute("SELECT count(*) FROM defines.cms75__initial_population").fetchone()[0]
        numerator = con.execute("SELECT count(*) FROM defines.cms75__numerator").fetchone()[0]
        scored = con.execute(
            f"SELECT count(*) FILTER (WHERE initial_population), count(*) FILTER (WHERE numerator) "
            f"FROM {RESULTS_TABLE} WHERE measure = ?", [module.measure.name]
        ).fetchone()
        assert ip == scored[0] > 0
        assert numerator >= scored[1] > 0  # the numerator define also holds patients outside the IP
    finally:
        con.close()
