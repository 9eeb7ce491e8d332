"""A measure's named defines, read back from its SQL: print one, or keep them all as tables.

A measure's criteria query is one ``WITH`` whose common table expressions are its CQL defines, one
CTE per define, named after it (``define "Initial Population"`` -> ``initial_population``); library
defines are relations of their own (``lib_hospice_has_hospice_services``). This module splits that
``WITH`` (a small scanner that respects strings, quoted names and comments, not a SQL parser) so

- ``chc-equity measures sql CMS122 --define "Numerator"`` prints the SQL of one define, and
- ``chc-equity measures run --materialize-defines`` keeps every define as a table in schema
  ``defines`` (``defines.cms122__numerator``, ``defines.lib_hospice_has_hospice_services``), so
  "why is this patient excluded?" is a SELECT.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chc_equity.measures.engine import Rendered

SCHEMA = "defines"


@dataclass(frozen=True)
class Cte:
    """One common table expression of a ``WITH``: its name, body and the comment written above it."""

    name: str
    body: str
    comment: str = ""


def _skip_quoted_or_comment(sql: str, i: int) -> int:
    """Index after the string literal, quoted identifier or comment starting at ``i`` (``i`` if none)."""
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        if end < 0:
            raise ValueError("unterminated /* comment in SQL")
        return end + 2
    if sql[i] in "'\"":
        quote, j = sql[i], i + 1
        while True:
            j = sql.find(quote, j)
            if j < 0:
                raise ValueError("unterminated quote in SQL")
            if sql.startswith(quote * 2, j):  # '' or "" escapes
                j += 2
                continue
            return j + 1
    return i


def _skip_space(sql: str, i: int) -> int:
    while i < len(sql):
        if sql[i].isspace():
            i += 1
            continue
        j = _skip_quoted_or_comment(sql, i)
        if j == i or sql[i] in "'\"":
            return i
        i = j
    return i


def _closing_paren(sql: str, open_at: int) -> int:
    depth, i = 0, open_at
    while i < len(sql):
        j = _skip_quoted_or_comment(sql, i)
        if j != i:
            i = j
            continue
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parentheses in SQL")


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_with(sql: str) -> tuple[list[Cte], str]:
    """The top-level ``WITH`` of ``sql`` as CTEs and the final query; ``([], sql)`` without one."""
    i = _skip_space(sql, 0)
    word = _WORD.match(sql, i)
    if not word or word.group().upper() != "WITH":
        return [], sql
    i += 4
    ctes: list[Cte] = []
    while True:
        start = i
        i = _skip_space(sql, i)
        comment = "\n".join(
            line.strip() for line in sql[start:i].strip().splitlines() if line.strip().startswith("--")
        )
        name = _WORD.match(sql, i)
        if not name:
            raise ValueError(f"expected a CTE name at {sql[i:i + 40]!r}")
        i = _skip_space(sql, name.end())
        if sql[i : i + 2].upper() != "AS":
            raise ValueError(f"expected AS after CTE {name.group()!r}")
        i = _skip_space(sql, i + 2)
        if sql[i] != "(":
            raise ValueError(f"expected ( after {name.group()} AS")
        close = _closing_paren(sql, i)
        ctes.append(Cte(name.group(), sql[i + 1 : close], comment))
        i = _skip_space(sql, close + 1)
        if i < len(sql) and sql[i] == ",":
            i += 1
            continue
        return ctes, sql[i:]


def snake(name: str) -> str:
    """CQL define name -> SQL name: ``"Has Hospice Services"`` -> ``has_hospice_services``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def with_query(ctes: list[Cte], final: str) -> str:
    """``WITH`` the given CTEs (their comments kept) and a final query."""
    if not ctes:
        return final
    parts = [(f"{c.comment}\n" if c.comment else "") + f"{c.name} AS ({c.body})" for c in ctes]
    return "WITH\n" + ",\n".join(parts) + "\n" + final


def define_names(rendered: Rendered) -> list[str]:
    """SQL names of every define a rendered measure has: library relations, then its own CTEs."""
    return [d.table for d in rendered.library] + [c.name for c in split_with(rendered.criteria)[0]]


def define_sql(rendered: Rendered, define: str) -> list[str]:
    """Statements that compute ``define`` (a CQL or SQL name) alone: the library relations it needs,
    then a SELECT of the define. Raises KeyError naming the defines there are."""
    key = snake(define)
    for i, lib in enumerate(rendered.library):
        if key == lib.table or lib.table.endswith("_" + key):
            needed = rendered.library[: i + 1]
            return [f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}" for d in needed] + [
                f"SELECT * FROM {lib.table}"
            ]
    ctes, _ = split_with(rendered.criteria)
    names = [c.name for c in ctes]
    if key not in names:
        known = ", ".join(define_names(rendered))
        raise KeyError(f"{rendered.measure.cms_id} has no define {define!r}; it has: {known}")
    final = f"SELECT * FROM {key}"
    used = _referenced(ctes[: names.index(key) + 1], final, lambda c: c.name, lambda c: c.body)
    query = with_query(used, final)
    libs = _referenced(list(rendered.library), query, lambda d: d.table, lambda d: d.sql)
    return [f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}" for d in libs] + [query]


def _referenced(items: list, text: str, name: Callable, body: Callable) -> list:
    """The ``items`` (in dependency order) that ``text`` reads, directly or through one another."""
    kept = []
    for item in reversed(items):  # users come after what they read
        if re.search(rf"\b{re.escape(name(item))}\b", text):
            kept.insert(0, item)
            text += body(item)
    return kept


def materialize_statements(rendered: Rendered) -> list[str]:
    """``CREATE TABLE defines.<...>`` for every define of a rendered measure (run after the measure,
    while its library relations exist): ``defines.<cms>__<define>``, ``defines.lib_...`` and
    ``defines.<cms>__criteria`` (the per-subject criteria the engine scores)."""
    cms = rendered.measure.cms_id.lower()
    out = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"]
    for lib in rendered.library:
        out.append(f"CREATE OR REPLACE TABLE {SCHEMA}.{lib.table} AS SELECT * FROM {lib.table}")
    ctes, _ = split_with(rendered.criteria)
    for n, cte in enumerate(ctes):
        out.append(
            f"CREATE OR REPLACE TABLE {SCHEMA}.{cms}__{cte.name} AS "
            + with_query(ctes[: n + 1], f"SELECT * FROM {cte.name}")
        )
    out.append(f"CREATE OR REPLACE TABLE {SCHEMA}.{cms}__criteria AS {rendered.criteria}")
    return out
