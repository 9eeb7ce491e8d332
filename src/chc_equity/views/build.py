"""Materialize the built-in ViewDefinitions as flat tables (``flat.<name>``).

The measure and equity stages read only these flat tables, never the raw JSON, so every element the
eCQMs need is exposed here once (see docs/views.md). The definitions are plain SQL-on-FHIR v2
ViewDefinition JSON shipped as package data, so they stay portable to any other view runner.

``build_views`` deliberately does not open or commit a transaction: ingest calls it inside its own
load transaction so that raw resources and flat tables change together (or not at all).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from types import MappingProxyType
from typing import Any

import duckdb

from chc_equity.views.compiler import compile_view
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


def _table(name: str) -> str:
    return f'"{FLAT_SCHEMA}"."{name}"'


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [FLAT_SCHEMA, name],
    ).fetchone()
    return bool(row and row[0])


def _table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [FLAT_SCHEMA, name],
    ).fetchall()
    return [r[0] for r in rows]


def _query_columns(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """Column names the compiled query produces, without running it over the data."""
    return [d[0] for d in con.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0").description]


def _count(con: duckdb.DuckDBPyConnection, name: str, where: str | None = None) -> int:
    sql = f"SELECT count(*) FROM {_table(name)}" + (f" WHERE {where}" if where else "")
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _resolve(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return sorted(BUILTIN_VIEWS)
    unknown = [n for n in names if n not in BUILTIN_VIEWS]
    if unknown:
        raise KeyError(f"unknown built-in view(s): {', '.join(unknown)}")
    return list(dict.fromkeys(names))


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
    definition (the definition changed), it is rebuilt for all centers instead, since rows of the
    old shape cannot be mixed with the new one.
    """
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{FLAT_SCHEMA}"')
    counts: dict[str, int] = {}
    for name in _resolve(names):
        view = BUILTIN_VIEWS[name]
        full = compile_view(view, passthrough=PASSTHROUGH)
        if centers is None:
            con.execute(f"CREATE OR REPLACE TABLE {_table(name)} AS {full}")
            counts[name] = _count(con, name)
            continue
        where = center_filter(centers)
        filtered = compile_view(view, passthrough=PASSTHROUGH, filter_sql=where)
        if not _table_exists(con, name):
            con.execute(f"CREATE TABLE {_table(name)} AS {filtered}")
        elif _table_columns(con, name) != _query_columns(con, filtered):
            con.execute(f"CREATE OR REPLACE TABLE {_table(name)} AS {full}")
        else:
            con.execute(f"DELETE FROM {_table(name)} WHERE {where}")
            con.execute(f"INSERT INTO {_table(name)} BY NAME {filtered}")
        counts[name] = _count(con, name, where)
    return counts
