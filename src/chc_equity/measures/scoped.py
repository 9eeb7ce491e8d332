"""A copy of the flat tables holding only what some patients' measures read, for the refresh after a load.

Restricting ``Context.patients()`` to a few patients restricts every measure's *result*, but the measure
SQL still scans and value-set-joins the whole ``flat.observation``, ``flat.encounter`` ...: at 100k
patients re-running 98 patients cost as much as the full run (benchmarks/README.md). So
``run_measures(subjects=...)`` evaluates on :func:`scoped_copy` instead: an in-memory database whose
``flat`` schema holds, for every view, only the rows of

- the subjects' own resources (per resource type, through the views naming each row's patient:
  ``chc_equity.touched.patient_views``), with every child row of those resources (same key);
- the resources those point at through a reference column of such a view (an Observation's
  ``encounter_id`` naming another patient's Encounter) -- the one hop measures follow;
- every resource, of the subjects' centers, whose type names no patient (Organization, Location,
  Medication ...).

That is everything a subject's measures read, so they compute exactly what they would over the whole
warehouse (tests/test_refresh_incremental.py compares against full rebuilds). Same mechanism as the
profile rule's ``strict_copy``: while the block runs the copy is the connection's default database, so
the unchanged measure SQL reads its ``flat.*``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from chc_equity.touched import patient_views
from chc_equity.views.build import BUILTIN_VIEWS, quote_literal
from chc_equity.warehouse import FLAT_SCHEMA

SCOPE_DB = "measure_scope"
_KEYS = "_scope_keys"  # temp table (type, center, id): the resources whose rows are copied


@contextmanager
def scoped_copy(con: duckdb.DuckDBPyConnection, subjects: str) -> Iterator[str]:
    """Make the in-memory copy for the patients in table ``subjects`` (``center, patient_id``) and make
    it the default database for the block; yields the name of the warehouse's own database (unchanged)."""
    home = con.execute("SELECT current_database()").fetchone()[0]
    flat = f'"{home}"."{FLAT_SCHEMA}"'
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?",
            [home, FLAT_SCHEMA],
        ).fetchall()
    }
    _select_keys(con, flat, present, subjects)
    centers = f"SELECT DISTINCT center FROM {subjects}"
    con.execute(f"ATTACH ':memory:' AS {SCOPE_DB}")
    try:
        con.execute(f"USE {SCOPE_DB}")
        con.execute(f'CREATE SCHEMA "{FLAT_SCHEMA}"')
        owned = patient_views()
        for name in sorted(present):
            view = BUILTIN_VIEWS.get(name)
            rtype = view["resource"] if view else None
            if rtype in owned:
                keys = f"SELECT center, id FROM {_KEYS} WHERE type = {quote_literal(rtype)}"
                where = f'(center, "{_key(name)}") IN ({keys})'
            else:  # no patient (or not a built-in view): all of the subjects' centers
                where = f"center IN ({centers})"
            con.execute(
                f'CREATE TABLE "{FLAT_SCHEMA}"."{name}" AS SELECT * FROM {flat}."{name}" WHERE {where}'
            )
        yield home
    finally:
        con.execute(f'USE "{home}"')
        con.execute(f"DETACH {SCOPE_DB}")
        con.execute(f"DROP TABLE IF EXISTS {_KEYS}")


def _key(name: str) -> str:
    """The view's ``getResourceKey()`` column (every built-in view has one at the top level)."""
    for node in BUILTIN_VIEWS[name].get("select", []):
        for col in node.get("column", []):
            if col.get("path") == "getResourceKey()":
                return col["name"]
    raise ValueError(f"view {name} has no getResourceKey() column")


def _select_keys(con: duckdb.DuckDBPyConnection, flat: str, present: set[str], subjects: str) -> None:
    """Fill :data:`_KEYS`: the subjects' resources of every type, then those their rows point at."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} (type VARCHAR, center VARCHAR, id VARCHAR)")
    owned = patient_views()
    mine = f"SELECT center, patient_id FROM {subjects}"
    for rtype, views in sorted(owned.items()):
        t = quote_literal(rtype)
        if rtype == "Patient":
            con.execute(f"INSERT INTO {_KEYS} SELECT {t}, center, patient_id FROM {subjects}")
            continue
        for v in views:
            if v.name in present:
                con.execute(
                    f'INSERT INTO {_KEYS} SELECT {t}, center, "{v.key}" FROM {flat}."{v.name}" '
                    f'WHERE (center, "{v.patient}") IN ({mine})'
                )
    pointed = []
    for rtype, views in sorted(owned.items()):
        for v in views:
            for column, target in v.references:
                if target in owned and v.name in present:
                    pointed.append(
                        f'SELECT {quote_literal(target)}, center, "{column}" FROM {flat}."{v.name}" '
                        f'WHERE "{column}" IS NOT NULL AND (center, "{v.key}") IN '
                        f"(SELECT center, id FROM {_KEYS} WHERE type = {quote_literal(rtype)})"
                    )
    if pointed:
        con.execute(f"INSERT INTO {_KEYS} " + " UNION ALL ".join(pointed))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} AS SELECT DISTINCT * FROM {_KEYS}")
