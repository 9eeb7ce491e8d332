"""Which views cannot yield a row for the staged resources, decided before planning them.

Why: most ``*_code``/``*_reason`` views iterate one element (``forEach: reasonCode.coding``) that
many centers never send; planning and running such a view still cost as much as one with rows
(issue 12: 49 of 83 views empty at 1M patients, ~26 % of the views time). A view whose only
row source is a top-level ``forEach`` over plain navigation from the resource yields nothing when
the resource keys that navigation starts from are absent from every staged resource, and -- its
other top-level columns being ``getResourceKey()`` -- nothing in it can raise either. So the
build asks the staged table once per type which keys occur and skips the rest (exact: a skipped
view's result is the empty table it would have produced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chc_equity.views.fhirpath import Call, FhirPathSyntaxError, Ident, Literal, Member, Node, parse
from chc_equity.views.fhirpath_sql import FhirPathCompileError, type_name

# Functions that map an empty input collection to an empty output without evaluating anything
# that could raise (``where`` criteria run per item; there are none).
_EMPTY_STAYS_EMPTY = ("where", "first", "last")


def _keys(node: Node | None) -> frozenset[str] | None:
    """Top-level keys of the resource such that, all absent, ``node`` is empty (None: unknown)."""
    if isinstance(node, Ident):
        return frozenset({node.name})
    if isinstance(node, Member):
        return _keys(node.base)
    if not isinstance(node, Call):
        return None
    if node.name in _EMPTY_STAYS_EMPTY and node.base is not None:
        return _keys(node.base)
    if node.name == "extension" and all(isinstance(a, Literal) for a in node.args):
        return _keys(node.base) if node.base is not None else frozenset({"extension"})
    if node.name == "ofType" and len(node.args) == 1:
        # X.ofType(T) reads the choice field XT, or X itself (then filters it or raises).
        try:
            tname = type_name(node.args[0])
        except FhirPathCompileError:
            return None
        if isinstance(node.base, Ident):
            name = node.base.name
            return frozenset({name, name + tname[:1].upper() + tname[1:]})
        if isinstance(node.base, Member):
            return _keys(node.base.base)
    return None


def required_keys(view: Mapping[str, Any]) -> frozenset[str] | None:
    """Top-level resource keys of which at least one must be present for ``view`` to yield a row,
    or None when the view's shape is not one this can vouch for."""
    if view.get("where"):
        return None
    keys: frozenset[str] | None = None
    for node in view.get("select", []):
        iterators = [k for k in ("forEach", "forEachOrNull", "repeat", "unionAll") if k in node]
        if not iterators:
            if node.get("select") or any(c.get("path") != "getResourceKey()" for c in node.get("column", [])):
                return None
            continue
        if iterators != ["forEach"] or keys is not None or not isinstance(node["forEach"], str):
            return None
        try:
            keys = _keys(parse(node["forEach"]))
        except FhirPathSyntaxError:
            return None
        if keys is None:
            return None
    return keys
