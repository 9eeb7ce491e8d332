"""Which resources would make a built-in view fail, decided in Python at ingest, per resource.

Why: the views run inside the load's transaction, and the compiled SQL raises (``error()``) where
FHIRPath demands an error that only the data can reveal -- a non-collection column that gets two
values (``"gender": ["male", "female"]``), a boolean column holding a string (``valueBoolean:
"yes"``), an ``ofType(Quantity)`` on a plain ``value`` field, ``repeat`` nesting deeper than the
compiler unrolls. One such record would roll the whole load back. So ingest runs this screen on
every resource and quarantines the ones a view could not read, naming the offending element.

The screen is derived from the built-in ViewDefinitions themselves, not from a hand list: each
FHIRPath expression a view evaluates (columns, ``where``, ``forEach``/``forEachOrNull``,
``repeat``, ``unionAll``) is compiled once into Python closures that mirror, for the subset of
FHIRPath the views use, exactly the run-time failure rules of ``fhirpath_sql`` / ``compiler``
(see ``as_one``, ``_cast1``, ``_of_type``, ``_reference_key``, ``repeat``). A view that uses a
construct this module does not model makes :func:`screen_for` raise at import, so a new view can
never be silently unchecked (tests compile the screen for every built-in view). Values are never
quoted in a problem (rejects are listed without patient data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from chc_equity.views.compiler import REPEAT_MAX_DEPTH
from chc_equity.views.fhirpath import Binary, Call, Ident, Literal, Member, Node, This, parse
from chc_equity.views.fhirpath_sql import elem_of_fhir_type

# A collection -> a collection, in FHIRPath's model (JSON values; arrays are flattened on navigation).
Fn = Callable[[list], list]


class ShapeError(Exception):
    """A resource a view cannot read: ``element`` is the FHIRPath the view evaluates there."""

    def __init__(self, element: str, problem: str) -> None:
        super().__init__(f"{element}: {problem}")
        self.element = element
        self.problem = problem


class UnsupportedView(ValueError):
    """A built-in view uses FHIRPath this screen does not model (so it could not vouch for it)."""


@dataclass(frozen=True)
class Problem:
    """Why a resource was screened out: the element path and a value-free explanation."""

    element: str
    detail: str


def _elems(value: Any) -> list:
    """A JSON value as a collection, as ``fhirpath_sql.elems``: arrays flatten one level, null is empty."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _json_type(value: Any) -> str:
    """The DuckDB json_type family of a Python JSON value (bool before int: bool is an int)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "varchar"
    return "other"


# ofType(T) on a primitive type keeps items of these JSON types (``fhirpath_sql._JSON_TYPES``).
_TYPE_FILTER = {
    "varchar": {"varchar"},
    "boolean": {"boolean"},
    "bigint": {"bigint"},
    "double": {"bigint", "double"},
}

_REF_ID = r"[A-Za-z0-9\-\.]{1,64}"


def _reference_re(rtype: str | None) -> re.Pattern[str]:
    type_re = re.escape(rtype) if rtype else "[A-Z][A-Za-z0-9]+"
    return re.compile(rf"(urn:uuid:[A-Za-z0-9\-]+|([^?#]*/)?{type_re}/{_REF_ID}(/_history/{_REF_ID})?)")


def _member(name: str) -> Callable[[list], list]:
    """``.name`` on each item: objects only (``json_extract`` of a key is NULL on anything else)."""

    def navigate(items: list) -> list:
        if len(items) == 1:  # the usual case, without building a new list
            item = items[0]
            value = item.get(name) if type(item) is dict else None
            if value is None:
                return []
            return value if type(value) is list else [value]
        out: list = []
        for item in items:
            if type(item) is dict:
                value = item.get(name)
                if value is not None:
                    out.extend(value if type(value) is list else (value,))
        return out

    return navigate


def _then(first: Fn, second: Fn) -> Fn:
    return lambda items: second(first(items))


def _single(items: list, element: str, what: str) -> Any:
    """``as_one``: more than one item is an error (never a silent first())."""
    if len(items) > 1:
        raise ShapeError(element, f"{what} returned more than one value")
    return items[0] if items else None


def _as_boolean(value: Any, element: str) -> Any:
    """``_cast1(json -> boolean)``: only a JSON boolean (or nothing) converts."""
    if value is not None and not isinstance(value, bool):
        raise ShapeError(element, "expected a boolean value")
    return value


@dataclass(frozen=True)
class _Expr:
    """A compiled expression and what is known about it before any data is seen.

    ``roots``: the keys of the focus it reads (None: the focus itself); ``single``: never more than
    one item; ``fallible``: may raise by itself; ``json``: items are JSON (not operator results).
    Together they let the screen skip expressions that cannot fail and keys a resource lacks.
    """

    fn: Fn
    roots: frozenset[str] | None = frozenset()
    single: bool = False
    fallible: bool = False
    ftype: str | None = None
    json: bool = True


def _union_roots(*roots: frozenset[str] | None) -> frozenset[str] | None:
    if any(r is None for r in roots):
        return None
    return frozenset().union(*roots)  # type: ignore[arg-type]


class _Compiler:
    """FHIRPath AST -> closures, for the functions and operators the built-in views use."""

    def __init__(self, element: str) -> None:
        self.element = element

    def expr(self, node: Node) -> _Expr:
        if isinstance(node, This):
            return _Expr(lambda items: items, roots=None, single=True)
        if isinstance(node, Ident):
            return _Expr(_member(node.name), roots=frozenset([node.name]))
        if isinstance(node, Member):
            base = self.expr(node.base)
            return _Expr(_then(base.fn, _member(node.name)), base.roots, fallible=base.fallible)
        if isinstance(node, Literal):
            value = node.value
            return _Expr(
                lambda _items: [] if value is None else [value], single=True, ftype=node.type, json=False
            )
        if isinstance(node, Binary) and node.op in ("=", "!="):
            return self._compare(node)
        if isinstance(node, Call):
            return self._call(node)
        raise UnsupportedView(f"{self.element}: the ingest screen does not model {node!r}")

    def _input(self, node: Call) -> _Expr:
        return self.expr(node.base) if node.base is not None else self.expr(This())

    def _compare(self, node: Binary) -> _Expr:
        left, right = self.expr(node.left), self.expr(node.right)
        element = self.element
        # _compare: both operands as_one; a JSON operand against a boolean is cast to boolean.
        left_bool = left.json and not right.json and right.ftype == "boolean"
        right_bool = right.json and not left.json and left.ftype == "boolean"

        def compare(items: list) -> list:
            a = _single(left.fn(items), element, f"left operand of '{node.op}'")
            b = _single(right.fn(items), element, f"right operand of '{node.op}'")
            if left_bool:
                _as_boolean(a, element)
            if right_bool:
                _as_boolean(b, element)
            if a is None or b is None:
                return []
            return [(a == b) if node.op == "=" else (a != b)]

        fallible = (
            left.fallible or right.fallible or not (left.single and right.single) or left_bool or right_bool
        )
        roots = _union_roots(left.roots, right.roots)
        return _Expr(compare, roots, single=True, fallible=fallible, ftype="boolean", json=False)

    def _call(self, node: Call) -> _Expr:  # noqa: C901 - a dispatch table in disguise
        name, element = node.name, self.element
        if name == "ofType":
            return self._of_type(node)
        if name == "extension":
            url = node.args[0].value if len(node.args) == 1 and isinstance(node.args[0], Literal) else None
            if not isinstance(url, str):
                raise UnsupportedView(f"{element}: extension() needs a string literal here")
            base = self._input(node)
            ext = _then(base.fn, _member("extension"))
            roots = frozenset(["extension"]) if base.roots is None else base.roots
            return _Expr(
                lambda items: [x for x in ext(items) if isinstance(x, dict) and x.get("url") == url],
                roots,
                fallible=base.fallible,
            )
        if name == "first" and not node.args:
            base = self._input(node)
            fn = base.fn
            return _Expr(lambda items: fn(items)[:1], base.roots, single=True, fallible=base.fallible)
        if name == "where" and len(node.args) == 1:
            base, crit = self._input(node), self.expr(node.args[0])

            def keep(item: Any) -> bool:
                value = _single(crit.fn([item]), element, "where() criteria")
                if crit.json:
                    _as_boolean(value, element)
                return value is True

            fallible = base.fallible or crit.fallible or crit.json or not crit.single
            fn = base.fn
            return _Expr(lambda items: [x for x in fn(items) if keep(x)], base.roots, base.single, fallible)
        if name == "getResourceKey" and not node.args:
            # the resource id: one value, never fails
            return _Expr(lambda _items: [], single=True, json=False)
        if name == "getReferenceKey" and len(node.args) <= 1:
            rtype = _type_name(node.args[0]) if node.args else None
            pattern, base = _reference_re(rtype), self._input(node)
            fn = base.fn

            def keys(items: list) -> list:
                out = []
                for ref in fn(items):
                    text = ref.get("reference") if isinstance(ref, dict) else None
                    if isinstance(text, str) and pattern.fullmatch(text):
                        out.append(text)
                return out

            return _Expr(keys, base.roots, base.single, base.fallible, json=False)
        if name == "join" and len(node.args) <= 1:
            base = self._input(node)  # one string, whatever the input
            return _Expr(lambda _items: [""], base.roots, single=True, fallible=base.fallible, json=False)
        raise UnsupportedView(f"{element}: the ingest screen does not model {name}()")

    def _of_type(self, node: Call) -> _Expr:
        """``X.ofType(T)`` as ``fhirpath_sql._of_type``: the choice field ``XT``, unless a plain ``X``
        field is present: then primitive ``T`` filters it by JSON type, complex ``T`` is an error."""
        tname = _type_name(node.args[0]) if len(node.args) == 1 else ""
        want = elem_of_fhir_type(tname)
        element = self.element
        if isinstance(node.base, (Member, Ident)):
            owner = self.expr(node.base.base) if isinstance(node.base, Member) else self.expr(This())
            name = node.base.name
            choice_name = name + tname[:1].upper() + tname[1:]
            plain, choice, focus_of = _member(name), _member(choice_name), owner.fn

            def narrow(items: list) -> list:
                focus = focus_of(items)
                present = plain(focus)
                if not present:
                    return choice(focus)
                if want is None:
                    raise ShapeError(
                        element, f"ofType({tname}) applied to '{name}', which is not a choice element"
                    )
                return [x for x in present if _json_type(x) in _TYPE_FILTER[want]]

            roots = frozenset([name, choice_name]) if owner.roots is None else owner.roots
            return _Expr(narrow, roots, fallible=owner.fallible or want is None, ftype=tname)
        if want is None:
            raise UnsupportedView(f"{element}: ofType({tname}) off a choice element is not modelled")
        base = self._input(node)
        fn = base.fn
        return _Expr(
            lambda items: [x for x in fn(items) if _json_type(x) in _TYPE_FILTER[want]],
            base.roots,
            fallible=base.fallible,
            ftype=tname,
        )


def _type_name(node: Node) -> str:
    if isinstance(node, Ident):
        return node.name
    raise UnsupportedView(f"expected a type name, got {node!r}")


Check = Callable[[Any], None]  # raises ShapeError for a focus item the view cannot read


@dataclass(frozen=True)
class _Rule:
    """One check on a focus item: ``sig`` identifies it (equal rules of several views run once),
    ``roots`` are the focus keys it reads (None: always run)."""

    sig: str
    roots: frozenset[str] | None
    check: Check


def _text(path: str, prefix: str) -> str:
    return f"{prefix}.{path}" if prefix else path


class _Gate:
    """Runs rules on a focus item, each only when the item has a key the rule reads: a rule reading
    only absent keys (or any key of a non-object) finds nothing, and nothing cannot fail."""

    def __init__(self, rules: Sequence[_Rule]) -> None:
        unique = list({r.sig: r for r in rules}.values())
        by_key: dict[str, list[Check]] = {}
        for r in unique:
            for key in r.roots or ():
                by_key.setdefault(key, []).append(r.check)  # a check may run twice: harmless
        self.by_key = {k: tuple(v) for k, v in by_key.items()}
        self.always = tuple(r.check for r in unique if not r.roots)
        self.count = len(unique)

    def __call__(self, focus: Any) -> None:
        if type(focus) is dict:
            by_key = self.by_key
            for key in focus:
                checks = by_key.get(key)
                if checks is not None:
                    for check in checks:
                        check(focus)
        for check in self.always:
            check(focus)


def _run_all(rules: Sequence[_Rule]) -> Check | None:
    return _Gate(rules) if rules else None


def _column(col: Mapping[str, Any], prefix: str) -> _Rule | None:
    element = _text(col["path"], prefix)
    expr = _Compiler(element).expr(parse(col["path"]))
    many, name = bool(col.get("collection", False)), col["name"]
    boolean = col.get("type") == "boolean" and expr.json
    if not (expr.fallible or boolean or (not many and not expr.single)):
        return None  # nothing the data could make fail
    what = f"column '{name}' (not collection: true)"
    fn = expr.fn

    def check(focus: Any) -> None:
        values = fn([focus])
        if not many:
            _single(values, element, what)
        if boolean:
            for value in values:
                _as_boolean(value, element)

    return _Rule(f"col {element} {many} {boolean}", expr.roots, check)


def _condition(path: str, prefix: str) -> _Rule:
    element = _text(path, prefix)
    expr = _Compiler(element).expr(parse(path))

    def check(item: Any) -> None:
        value = _single(expr.fn([item]), element, "where path")
        if expr.json:
            _as_boolean(value, element)

    return _Rule(f"where {element}", expr.roots, check)


def _rules(node: Mapping[str, Any], prefix: str) -> list[_Rule]:
    """The rules of one select node, for one focus item (the resource or a forEach item)."""
    for key in ("forEach", "forEachOrNull"):
        if key in node:
            element = _text(node[key], prefix)
            items = _Compiler(element).expr(parse(node[key]))
            body = _body(node, element)
            if body is None and not items.fallible:
                return []
            each = _each(items.fn, _run_all(body))
            sig = f"each {element} [" + ", ".join(r.sig for r in body) + "]"
            return [_Rule(sig, items.roots, each)]
    if "repeat" in node:
        return [_repeat(node, prefix)]
    return _body(node, prefix)


def _each(items: Fn, inner: Check | None) -> Check:
    def each(focus: Any) -> None:
        for item in items([focus]):  # navigating can fail even without a body
            if inner is not None:
                inner(item)

    return each


def _repeat(node: Mapping[str, Any], prefix: str) -> _Rule:
    element = _text("repeat(" + ", ".join(node["repeat"]) + ")", prefix)
    children = [_Compiler(element).expr(parse(p)) for p in node["repeat"]]
    inner = _run_all(_body(node, element))
    fns = [c.fn for c in children]

    def check(focus: Any) -> None:
        level = [focus]
        for _depth in range(REPEAT_MAX_DEPTH + 1):
            level = [child for item in level for fn in fns for child in fn([item])]
            if inner is not None:
                for item in level:
                    inner(item)
            if not level:
                return
        raise ShapeError(element, f"nesting deeper than {REPEAT_MAX_DEPTH} levels")

    return _Rule(f"repeat {element}", _union_roots(*(c.roots for c in children)), check)


def _body(node: Mapping[str, Any], prefix: str) -> list[_Rule]:
    rules = [r for col in node.get("column", []) if (r := _column(col, prefix)) is not None]
    for sub in (*node.get("select", []), *node.get("unionAll", [])):
        rules += _rules(sub, prefix)
    return rules


def view_rules(view: Mapping[str, Any]) -> list[_Rule]:
    """Every rule a resource must pass for ``view`` to read it without a run-time error."""
    resource = view["resource"]
    rules = [r for node in view.get("select", []) for r in _rules(node, resource)]
    rules += [_condition(w["path"], resource) for w in view.get("where", [])]
    return rules


Screen = Callable[[str, dict], "Problem | None"]


def screen_for(views: Mapping[str, Mapping[str, Any]]) -> Screen:
    """A per-resource screen for ``views``: ``screen(type, resource)`` -> None, or the first Problem."""
    rules: dict[str, list[_Rule]] = {}
    for _name, view in sorted(views.items()):
        rules.setdefault(view["resource"], []).extend(view_rules(view))
    by_type = {rtype: _Gate(r) for rtype, r in rules.items()}

    def screen(rtype: str, resource: dict) -> Problem | None:
        checks = by_type.get(rtype)
        if checks is None:
            return None
        try:
            checks(resource)
        except ShapeError as exc:
            return Problem(exc.element, exc.problem)
        except RecursionError:
            return Problem(rtype, "nested too deeply to check")
        return None

    return screen


@cache
def builtin_screen() -> Screen:
    """The screen for the built-in views (the ones ingest refreshes); built once per process."""
    from chc_equity.views.build import BUILTIN_VIEWS

    return screen_for(BUILTIN_VIEWS)


__all__: Sequence[str] = [
    "Problem",
    "Screen",
    "ShapeError",
    "UnsupportedView",
    "builtin_screen",
    "screen_for",
]
