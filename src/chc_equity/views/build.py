"""Materialize the built-in ViewDefinitions as flat tables (``flat.<name>``).

The measure and equity stages read only these flat tables, never the raw JSON, so every element the
eCQMs need is exposed here once (see docs/views.md). The definitions are plain SQL-on-FHIR v2
ViewDefinition JSON shipped as package data, so they stay portable to any other view runner.

``build_views`` and ``refresh_touched`` deliberately do not open or commit a transaction: ingest
calls them inside its own load transaction so that raw resources and flat tables change together
(or not at all).

Why the work is grouped by resource type: the views of one type are compiled against ONE shared
list of JSON paths (:class:`RootFields`), so each resource in scope is parsed once into a staged
temp table (``_views_src``) that all of them read, instead of once per view; a type with no rows
in scope costs no query at all (its tables are created empty from the static column types when
missing); and an ingest rebuilds only the rows of the resources it inserted or updated
(``refresh_touched``), which equals a full rebuild because every flat row derives from exactly
one resource, identified by the view's ``getResourceKey()`` column.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

import duckdb

from chc_equity.views.absent import required_keys
from chc_equity.views.compiler import RootFields, compile_view, staged_source_sql, view_columns
from chc_equity.warehouse import FLAT_SCHEMA

ViewDefinition = dict[str, Any]

_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# Raw-table columns carried into every flat row: partitioning by health center is what lets one
# center be rebuilt (and its measures compared) without touching the others.
PASSTHROUGH = ("center",)


def _load_builtin() -> Mapping[str, ViewDefinition]:
    """Read every ``definitions/*.json`` shipped with the package, keyed by the view's ``name``."""
    folder = resources.files("chc_equity.views").joinpath("definitions")
    views: dict[str, ViewDefinition] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        view = json.loads(entry.read_text(encoding="utf-8"))
        name = view.get("name")
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ValueError(f"built-in view {entry.name}: name {name!r} is not a safe SQL identifier")
        if name in views:
            raise ValueError(f"built-in view name {name!r} is defined twice")
        views[name] = view
    return MappingProxyType(views)


BUILTIN_VIEWS: Mapping[str, ViewDefinition] = _load_builtin()


def quote_literal(value: str) -> str:
    """SQL string literal with embedded quotes doubled (center names come from users/config)."""
    return "'" + value.replace("'", "''") + "'"


def center_filter(centers: Sequence[str]) -> str:
    """The ``filter_sql`` restricting a compiled view to the given centers."""
    if not centers:
        raise ValueError("center_filter needs at least one center")
    return "center IN (" + ", ".join(quote_literal(c) for c in centers) + ")"


STAGE = "_views_src"


def _table(name: str) -> str:
    return f'"{FLAT_SCHEMA}"."{name}"'


def _resolve(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return sorted(BUILTIN_VIEWS)
    unknown = [n for n in names if n not in BUILTIN_VIEWS]
    if unknown:
        raise KeyError(f"unknown built-in view(s): {', '.join(unknown)}")
    return list(dict.fromkeys(names))


def _by_type(names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(BUILTIN_VIEWS[name]["resource"], []).append(name)
    return {rtype: tuple(members) for rtype, members in groups.items()}


def _key_column(view: ViewDefinition) -> str | None:
    """The output column holding ``getResourceKey()`` at the top level (one per resource row), if any:
    it is what lets an update delete exactly the flat rows of the resources it replaces."""
    for node in view.get("select", []):
        if any(k in node for k in ("forEach", "forEachOrNull", "repeat", "unionAll")):
            continue
        for col in node.get("column", []):
            if col.get("path") == "getResourceKey()" and not col.get("collection"):
                return col["name"]
    return None


@dataclass(frozen=True)
class _Group:
    """The views of one resource type compiled against one staged source (each resource parsed once)."""

    resource: str
    fields: RootFields
    queries: Mapping[str, str]
    keep_resource: bool
    # View -> staged fragment columns of which one must be non-NULL for it to yield a row.
    needs: Mapping[str, tuple[str, ...]]

    def stage_sql(self, where: str) -> str:
        rtype = quote_literal(self.resource)
        return staged_source_sql(
            self.fields,
            passthrough=PASSTHROUGH,
            where=f"type = {rtype} AND ({where})",
            keep_resource=self.keep_resource,
        )


@functools.cache
def _group(resource: str, names: tuple[str, ...]) -> _Group:
    fields = RootFields(hoist=True)
    queries = {
        n: compile_view(BUILTIN_VIEWS[n], source=STAGE, passthrough=PASSTHROUGH, staged=fields) for n in names
    }
    queries = dict(zip(queries, fields.finalize(list(queries.values())), strict=True))
    hoisted = [sql for level in fields.levels for sql in level]
    keep = any(re.search(rf"\b{fields.alias}\b", sql) for sql in [*queries.values(), *hoisted])
    needs = {}
    for n in names:
        paths = [f"$.{k}" for k in sorted(required_keys(BUILTIN_VIEWS[n]) or ())]
        if paths and all(p in fields.names for p in paths):
            needs[n] = tuple(fields.ref(p) for p in paths)
            assert fields.live is not None
            fields.live.update(needs[n])  # staged even where no query reads them
    return _Group(resource, fields, MappingProxyType(queries), keep, MappingProxyType(needs))


def _productive(con: duckdb.DuckDBPyConnection, group: _Group, members: Sequence[str]) -> set[str]:
    """The members that can yield a row from the staged resources: one query per type instead of
    planning and running views whose elements no staged resource has (see ``views.absent``)."""
    cols = sorted({c for n in members for c in group.needs.get(n, ())})
    if not cols:
        return set(members)
    row = con.execute(f"SELECT {', '.join(f'count({c}) > 0' for c in cols)} FROM {STAGE}").fetchone()
    present = {c for c, found in zip(cols, row or (), strict=True) if found}
    return {n for n in members if n not in group.needs or any(c in present for c in group.needs[n])}


@functools.cache
def expected_columns(name: str) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of ``flat.<name>``, passthrough first, known without running anything."""
    return tuple((p, "VARCHAR") for p in PASSTHROUGH) + tuple(view_columns(BUILTIN_VIEWS[name]))


def _create_empty(con: duckdb.DuckDBPyConnection, name: str, *, replace: bool) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in expected_columns(name))
    con.execute(f"CREATE {'OR REPLACE ' if replace else ''}TABLE {_table(name)} ({cols})")


Columns = tuple[tuple[str, str], ...]


def _flat_tables(con: duckdb.DuckDBPyConnection) -> dict[str, Columns]:
    """Every flat table's (column, type) in order, from ONE catalog query: asking per view cost
    ~2 ms each, 83 times per load (a tenth of the views time of a small load)."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
        [FLAT_SCHEMA],
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        tables.setdefault(table, []).append((column, dtype))
    return {t: tuple(cols) for t, cols in tables.items()}


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Run a statement that reports a row count (CREATE TABLE AS, INSERT, SELECT count(*))."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _count(con: duckdb.DuckDBPyConnection, name: str, where: str | None = None) -> int:
    return _rows(con, f"SELECT count(*) FROM {_table(name)}" + (f" WHERE {where}" if where else ""))


def _stage(con: duckdb.DuckDBPyConnection, group: _Group, where: str) -> int:
    """Stage the group's resources matching ``where``; returns how many there are."""
    return _rows(con, f"CREATE OR REPLACE TEMP TABLE {STAGE} AS {group.stage_sql(where)}")


def _drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {STAGE}")


def _present_types(con: duckdb.DuckDBPyConnection, where: str) -> set[str]:
    return {r[0] for r in con.execute(f"SELECT DISTINCT type FROM resources WHERE {where}").fetchall()}


def _rebuild(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> dict[str, int]:
    """Replace ``flat.<name>`` from all raw resources, one staged parse per resource type."""
    counts: dict[str, int] = {}
    groups = _by_type(names)
    # Staging an absent type would still plan its whole staged source: ask which types exist first.
    present = _present_types(con, "TRUE") if len(groups) > 1 else set(groups)
    for rtype, members in groups.items():
        group = _group(rtype, members)
        if rtype not in present or not _stage(con, group, "TRUE"):
            for name in members:
                _create_empty(con, name, replace=True)
                counts[name] = 0
            continue
        live = _productive(con, group, members)
        for name in members:
            if name in live:
                counts[name] = _rows(con, f"CREATE OR REPLACE TABLE {_table(name)} AS {group.queries[name]}")
            else:
                _create_empty(con, name, replace=True)
                counts[name] = 0
    _drop_stage(con)
    return counts


def _replace_rows(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str],
    rows_where: str,
    delete_where: dict[str, str],
    tables: Mapping[str, Columns],
) -> dict[str, int]:
    """In each ``flat.<name>``: delete the rows matching ``delete_where[name]``, then insert the view's
    rows for the raw resources matching ``rows_where``. A missing table is created first; one whose
    columns no longer match its definition (the definition changed) is rebuilt whole instead, since
    rows of the old shape cannot be mixed with the new one. ``tables``: :func:`_flat_tables` as it
    was before this call. Returns the rows inserted per view."""
    counts: dict[str, int] = {}
    stale = []
    for name in names:
        columns = tables.get(name)
        if columns is None:
            _create_empty(con, name, replace=False)
        elif columns != expected_columns(name):
            stale.append(name)
    if stale:
        counts.update(_rebuild(con, stale))
    todo = [n for n in names if n not in stale]
    for rtype, members in _by_type(todo).items():
        group = _group(rtype, members)
        for name in members:
            con.execute(f"DELETE FROM {_table(name)} WHERE {delete_where[name]}")
        staged = _stage(con, group, rows_where)
        live = _productive(con, group, members) if staged else set()
        for name in members:
            if name in live:
                counts[name] = _rows(con, f"INSERT INTO {_table(name)} BY NAME {group.queries[name]}")
            else:
                counts[name] = 0
    _drop_stage(con)
    return counts


def build_views(
    con: duckdb.DuckDBPyConnection,
    *,
    centers: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, int]:
    """(Re)materialize built-in views as ``flat.<name>``; returns rows per view for the built scope.

    Without ``centers`` each table is replaced from all raw resources. With ``centers`` only those
    centers' rows are deleted and re-inserted, so other centers' rows stay exactly as they were
    (a center's re-load must not disturb the others). If a table's columns no longer match its
    definition (the definition changed), it is rebuilt for all centers instead.
    """
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{FLAT_SCHEMA}"')
    chosen = _resolve(names)
    if centers is None:
        return _rebuild(con, chosen)
    where = center_filter(centers)
    present = _present_types(con, where)
    tables = _flat_tables(con)
    for name in chosen:
        if BUILTIN_VIEWS[name]["resource"] in present:
            continue
        # No resource of this type in these centers: no query to plan, only stale rows to drop.
        columns = tables.get(name)
        if columns is None:
            _create_empty(con, name, replace=False)
        elif columns != expected_columns(name):
            _rebuild(con, [name])
        else:
            con.execute(f"DELETE FROM {_table(name)} WHERE {where}")
    todo = [n for n in chosen if BUILTIN_VIEWS[n]["resource"] in present]
    _replace_rows(con, todo, where, dict.fromkeys(todo, where), tables)
    return {n: _count(con, n, where) for n in chosen}


def refresh_touched(con: duckdb.DuckDBPyConnection, center: str, touched: str) -> dict[str, int]:
    """Bring ``center``'s flat rows up to date after a load that inserted, replaced or deleted the
    resources listed in the table ``touched`` (columns ``type``, ``id``; a deleted key's rows are
    removed, since no resource is left to insert them from), and ONLY those: views of other
    types are not run, and the other resources' rows are left as they are. Result: exactly what
    ``build_views`` would produce (tested). Tables missing entirely are built from all resources.
    Returns the rows inserted per refreshed view (all rows, for a table built whole)."""
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{FLAT_SCHEMA}"')
    types = {r[0] for r in con.execute(f"SELECT DISTINCT type FROM {touched}").fetchall()}
    # A missing table (first load, or a view added since) is built whole, from every center's
    # resources: only then does it equal a full rebuild. Types with no rows cost no query.
    tables = _flat_tables(con)
    missing = [n for n in sorted(BUILTIN_VIEWS) if n not in tables]
    counts: dict[str, int] = _rebuild(con, missing) if missing else {}
    keyed, whole = [], []
    for name in sorted(BUILTIN_VIEWS):
        if BUILTIN_VIEWS[name]["resource"] in types and name not in missing:
            (keyed if _key_column(BUILTIN_VIEWS[name]) else whole).append(name)
    c = quote_literal(center)
    if whole:  # no resource key column to delete by: redo the center's rows of those views
        counts.update(build_views(con, centers=[center], names=whole))
    for rtype, members in _by_type(keyed).items():
        ids = f"SELECT id FROM {touched} WHERE type = {quote_literal(rtype)}"
        delete = {n: f'center = {c} AND "{_key_column(BUILTIN_VIEWS[n])}" IN ({ids})' for n in members}
        counts.update(_replace_rows(con, members, f"center = {c} AND id IN ({ids})", delete, tables))
    return counts
