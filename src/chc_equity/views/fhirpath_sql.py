"""Translate a parsed FHIRPath expression into a DuckDB SQL expression.

Value model (why): FHIRPath works on ordered collections, SQL on scalars. Every compiled value is a
:class:`Val` that is either *many* (a SQL ``LIST``, never NULL, empty list = empty collection) or
*one* (a SQL scalar where NULL = empty collection), with an element type ``elem``:

- ``json``: a JSON fragment of the resource (navigation results: type known only at run time);
- ``varchar`` / ``boolean`` / ``bigint`` / ``double``: typed values from literals, constants,
  operators and functions.

Navigation ``a.b`` maps "for each item take field b; arrays flatten; missing -> empty" onto
``list_transform`` + ``flatten`` over JSON fragments. Singletons stay scalars as long as possible
(``first()``, indexers, ``where`` on a singleton, operators), so simple paths do not build lists.
Fields of the resource root come from one multi-path ``json_extract`` per row (parsed once; see
:class:`RootFields`). Everything is plain SQL (lambdas, CASE, json_*), with ``error()`` raising at
run time where FHIRPath demands an error that only the data can reveal (e.g. a multi-valued
operand of ``=``).

Semantics that deviate from full FHIRPath, on purpose, and documented:
- choice elements must be narrowed with ``ofType(T)`` (``value.ofType(Quantity)`` -> ``valueQuantity``);
  a bare ``value`` only reads a field literally named ``value``;
- dates/times compare as strings (correct for equal precision and equal offsets, which is what FHIR
  data and view constants use); ``~``, ``is``, ``as`` are not supported and raise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import count

from chc_equity.views.fhirpath import (
    Binary,
    Call,
    Env,
    Ident,
    Index,
    Literal,
    Member,
    Node,
    This,
    Unary,
)

SQL_TYPE = {
    "json": "JSON",
    "varchar": "VARCHAR",
    "boolean": "BOOLEAN",
    "bigint": "BIGINT",
    "double": "DOUBLE",
}
NUMERIC = ("bigint", "double")

# FHIR primitive type -> element type of the SQL value it becomes.
INTEGER_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}
STRING_TYPES = {
    "string",
    "code",
    "id",
    "uri",
    "url",
    "canonical",
    "oid",
    "uuid",
    "markdown",
    "base64Binary",
    "date",
    "dateTime",
    "instant",
    "time",
    "xhtml",
}


def elem_of_fhir_type(ftype: str | None) -> str | None:
    """The SQL element type a FHIR primitive type maps to (None for complex/unknown types)."""
    if ftype is None:
        return None
    if ftype == "boolean":
        return "boolean"
    if ftype in INTEGER_TYPES:
        return "bigint"
    if ftype == "decimal":
        return "double"
    if ftype in STRING_TYPES:
        return "varchar"
    return None


class FhirPathCompileError(ValueError):
    """The expression parses but cannot be translated (unsupported or invalid); the caller prefixes
    the element path of the ViewDefinition."""


def q(text: str) -> str:
    """SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _json_key(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise FhirPathCompileError(f"unsupported element name {name!r}")
    return name


@dataclass(frozen=True)
class Val:
    """A compiled FHIRPath value (see module docstring). ``root`` marks the resource itself."""

    sql: str
    many: bool
    elem: str
    ftype: str | None = None
    root: bool = False
    chain: Chain | None = None
    # A cheaper SQL equivalent of as_one(this) (same value, same errors), when a function knows one.
    one: str | None = None
    # For a singleton focus (the resource, a forEach item): where its fields are pre-extracted.
    fields: RootFields | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Chain:
    """This value is plain member navigation ``path`` from the singleton ``base``; ``frag`` is a small
    JSON fragment containing everything the chain can reach (the first field when ``base`` is the
    resource). Lets singleton consumers try one ``json_extract`` before the general list machinery,
    and lets navigation skip work when a key does not occur in ``frag`` at all (see :func:`member`)."""

    path: str
    base: Val
    frag: str
    # False when the value's SQL is more than plain navigation (ofType's non-choice check), so the
    # key-in-fragment shortcut must not skip evaluating it.
    guard: bool = True
    # True when the value is exactly ``elems(frag)`` (one field of a focus whose fields are
    # extracted): singleton and first() then read ``frag`` directly (see :func:`direct_single`).
    direct: bool = False


@dataclass
class RootFields:
    """Fields of one focus (the resource, or a forEach item) that the view reads, extracted with ONE
    ``json_extract(focus, [paths])`` per row, so that JSON is parsed once, not once per column.
    ``alias`` is the focus column, ``prefix`` the column holding the extracted fragments.

    With ``hoist`` (the resource focus) the fragments become columns of their own (``__f1``,
    ``__f2``, ...: a view then reads only those it uses, not the whole list), and so do the
    collections that member navigation builds from them (``__h<level>_<n>``, level n reading level
    n-1): each is computed once per resource and type, however many columns and views use it (a
    chain such as ``code.coding`` is read by many), and its SQL is planned once instead of once per
    use. Only SQL that cannot raise is hoisted, since a hoisted expression runs for every row, not
    just where the view would evaluate it."""

    alias: str = "__res"
    names: list[str] = field(default_factory=list)
    prefix: str = "__f"
    hoist: bool = False
    levels: list[dict[str, int]] = field(default_factory=list)
    # After :meth:`finalize`: the columns the final SQL reads, and the hoisted columns' SQL.
    live: set[str] | None = None
    final: dict[str, str] | None = None

    def ref(self, path: str) -> str:
        """SQL for the JSON at ``path`` (a JSONPath such as ``$.subject.reference``) of the resource."""
        if path not in self.names:
            self.names.append(path)
        n = self.names.index(path) + 1
        return f"{self.prefix}{n}" if self.hoist else f"{self.prefix}[{n}]"

    def collection(self, sql: str) -> str:
        """``sql`` (a JSON[] over the focus's fields) as a hoisted column, when hoisting."""
        if not self.hoist or "error(" in sql:
            return sql
        level = 1 + max((int(n) for n in _HOISTED.findall(sql)), default=0)
        while len(self.levels) < level:
            self.levels.append({})
        # Lambda variables are numbered per view: name them by first use so that the same
        # navigation compiled for two views is hoisted once.
        names: dict[str, str] = {}
        key = _VAR.sub(lambda m: names.setdefault(m.group(0), f"__q{len(names) + 1}"), sql)
        slots = self.levels[level - 1]
        slot = slots.setdefault(key, len(slots) + 1)
        return f"__h{level}_{slot}"

    def select_sql(self) -> str | None:
        if not self.names:
            return None
        paths = ", ".join(q(n) for n in self.names)
        return f"json_extract(resource, [{paths}]) AS __f"

    def finalize(self, sqls: list[str]) -> list[str]:
        """Decide what the staged source computes, given the final queries; returns them rewritten.

        A hoisted collection that the queries read in one place only goes back inline there:
        staging it would only add a column to materialize and read back (measured: that costs more
        than it saves). Columns no query reads are dropped: a view with ``forEach`` is compiled
        twice (see ``compile_view``), and the first compile's columns would be computed for nothing.
        """
        defs = {f"__h{level}_{n}": e for level, slots in enumerate(self.levels, 1) for e, n in slots.items()}
        uses: Counter[str] = Counter(h for sql in sqls for h in _HCOL.findall(sql))
        stack, reached = list(uses), set()
        while stack:
            h = stack.pop()
            if h not in reached:
                reached.add(h)
                refs = _HCOL.findall(defs[h])
                uses.update(refs)
                stack += refs
        inline = {h for h in reached if uses[h] == 1}
        copies = count(1)

        def expand(text: str) -> str:
            def one(m: re.Match[str]) -> str:
                if m.group(0) not in inline:
                    return m.group(0)
                k = next(copies)  # each inlined copy gets lambda variables of its own
                return "(" + expand(re.sub(r"\b(__q\d+)\b", rf"\1_{k}", defs[m.group(0)])) + ")"

            return _HCOL.sub(one, text)

        out = [expand(sql) for sql in sqls]
        self.final = {h: expand(e) for h, e in defs.items() if h in reached and h not in inline}
        self.live = {c for text in [*out, *self.final.values()] for c in _COLUMN.findall(text)}
        return out

    def with_hoisted(self, sql: str) -> str:
        """Wrap the SELECT that yields the focus and ``__f`` with the fragment and collection columns."""
        if not self.hoist:
            return sql

        def keep(col: str) -> bool:
            return self.live is None or col in self.live

        frags = [f"__f[{n}] AS __f{n}" for n in range(1, len(self.names) + 1) if keep(f"__f{n}")]
        if self.names:
            sql = f"SELECT * EXCLUDE (__f){''.join(', ' + c for c in frags)} FROM ({sql}) AS __hs0"
        final = self.final or {}
        for level, slots in enumerate(self.levels, start=1):
            names = [f"__h{level}_{n}" for n in slots.values()]
            exprs = dict(zip(names, slots, strict=True)) | final
            cols = [f"{exprs[h]} AS {h}" for h in names if keep(h)]
            if cols:
                sql = f"SELECT *, {', '.join(cols)} FROM ({sql}) AS __hs{level}"
        return sql


_HOISTED = re.compile(r"\b__h(\d+)_\d+\b")
_COLUMN = re.compile(r"\b__(?:h\d+_\d+|f\d+)\b")
_HCOL = re.compile(r"\b__h\d+_\d+\b")
_VAR = re.compile(r"\b__(?!h\d|f\d)[a-z]+\d+\b")


@dataclass
class State:
    """Per-view compile state: constants, root fields, fresh lambda variable names."""

    constants: dict[str, Val]
    fields: RootFields = field(default_factory=RootFields)
    counter: int = 0

    def var(self, prefix: str = "x") -> str:
        self.counter += 1
        return f"__{prefix}{self.counter}"


@dataclass(frozen=True)
class Ctx:
    """Evaluation context: the focus ($this), %rowIndex, the element path (for messages) and the
    column's declared type (a hint for lowBoundary()/highBoundary())."""

    state: State
    focus: Val
    row_index: str
    where: str
    type_hint: str | None = None


# ---------------------------------------------------------------------------------------------
# Generic SQL helpers over Val


def let(state: State, value_sql: str, body: Callable[[str], str]) -> str:
    """Evaluate ``value_sql`` once and use it several times in ``body`` (a lambda-bound 'let')."""
    v = state.var("v")
    return f"list_transform([{value_sql}], lambda {v}: {body(v)})[1]"


_SIMPLE = r"[A-Za-z_][A-Za-z0-9_.]*(\[\d+\])?"
_CHEAP = re.compile(rf"{_SIMPLE}|json_extract(_string)?\(__f\d+, '[^']*'\)")


def is_simple(sql: str) -> bool:
    """A column/variable reference: free to repeat."""
    return re.fullmatch(_SIMPLE, sql) is not None


def is_cheap(sql: str) -> bool:
    """Cheaper to repeat than to bind. Measured: at the top level, re-extracting from a root field
    fragment beats the list-based 'let' ~2x; inside lambdas the 'let' wins, so only root fields."""
    return _CHEAP.fullmatch(sql) is not None


def bind(state: State, value_sql: str, body: Callable[[str], str]) -> str:
    return body(value_sql) if is_cheap(value_sql) else let(state, value_sql, body)


def elems(state: State, json_sql: str) -> str:
    """A JSON value (maybe NULL, maybe an array) as a JSON[] collection: arrays flatten one level,
    SQL NULL and JSON ``null`` are empty. Written without CASE (an array casts, anything else does
    not; ``list_distinct`` drops the NULL of ``[NULL]``) because this is the most repeated piece of
    every view: it halves what DuckDB binds for it (benchmarks/README.md, "ingest")."""
    return bind(
        state,
        json_sql,
        lambda v: f"coalesce(TRY_CAST({v} AS JSON[]), list_distinct([nullif({v}, 'null')]))",
    )


def direct_single(ctx: Ctx, frag: str, message: str) -> str:
    """``as_one(elems(frag))`` without building a list: the fragment itself unless it is an array
    (then its only item, or an error for several) or JSON ``null`` (empty)."""
    return bind(
        ctx.state,
        frag,
        lambda f: (
            f"CASE WHEN json_type({f}) NOT IN ('ARRAY', 'NULL') THEN {f} "
            f"WHEN json_array_length({f}) > 1 THEN {error_sql(ctx, message)} ELSE CAST({f} AS JSON[])[1] END"
        ),
    )


def direct_first(ctx: Ctx, frag: str) -> str:
    """``elems(frag).first()`` without building a list."""
    return bind(
        ctx.state,
        frag,
        lambda f: (
            f"CASE WHEN json_type({f}) = 'ARRAY' THEN CAST({f} AS JSON[])[1] "
            f"WHEN json_type({f}) <> 'NULL' THEN {f} END"
        ),
    )


def error_sql(ctx: Ctx, message: str) -> str:
    return f"error({q(f'{ctx.where}: {message}')})"


def as_many(v: Val) -> Val:
    if v.many:
        return v
    typ = SQL_TYPE[v.elem]
    return Val(f"CASE WHEN {v.sql} IS NULL THEN []::{typ}[] ELSE [{v.sql}] END", True, v.elem, v.ftype)


def as_one(ctx: Ctx, v: Val, what: str = "expression") -> Val:
    """Singleton evaluation: more than one item is a run-time error (never a silent first())."""
    if not v.many:
        return v
    if v.one is not None:
        return Val(v.one, False, v.elem, v.ftype)
    msg = f"{what} returned more than one value"
    if v.chain is not None and v.chain.direct:
        return Val(direct_single(ctx, v.chain.frag, msg), False, v.elem, v.ftype)
    sql = bind(
        ctx.state, v.sql, lambda lst: f"CASE WHEN len({lst}) > 1 THEN {error_sql(ctx, msg)} ELSE {lst}[1] END"
    )
    if is_hoisted(v.sql):
        return Val(sql, False, v.elem, v.ftype)
    return Val(fast_single(ctx, v, sql), False, v.elem, v.ftype)


def is_hoisted(sql: str) -> bool:
    """A collection computed once per row already (see :meth:`RootFields.collection`)."""
    return _HOISTED.fullmatch(sql) is not None


def fast_single(ctx: Ctx, v: Val, general: str) -> str:
    """Singleton of a member chain: ``json_extract(base, '$.a.b')`` is non-NULL only when no step
    crossed an array, and then it IS the one item; otherwise (missing, arrays) use ``general``."""
    if v.chain is None:
        return general
    path, base = v.chain.path, v.chain.base
    fast = base.fields.ref(path) if base.fields is not None else f"json_extract({base.sql}, {q(path)})"
    return bind(
        ctx.state,
        fast,
        lambda f: f"CASE WHEN json_type({f}) NOT IN ('ARRAY', 'NULL') THEN {f} ELSE {general} END",
    )


def _cast1(ctx: Ctx, sql: str, src: str, dst: str) -> str:
    if src == dst:
        return sql
    if dst == "json":
        return f"to_json({sql})"
    if src == "json":
        if dst == "varchar":
            return f"json_extract_string({sql}, '$')"
        if dst == "boolean":
            return bind(
                ctx.state,
                sql,
                lambda v: (
                    f"CASE WHEN json_type({v}) = 'BOOLEAN' THEN CAST({v} AS BOOLEAN) "
                    f"WHEN {v} IS NULL THEN NULL ELSE {error_sql(ctx, 'expected a boolean value')} END"
                ),
            )
        return f"TRY_CAST({sql} AS {SQL_TYPE[dst]})"
    if dst == "varchar":
        return f"CAST({sql} AS VARCHAR)"
    if dst in NUMERIC and src in NUMERIC + ("varchar",):
        return f"TRY_CAST({sql} AS {SQL_TYPE[dst]})"
    raise FhirPathCompileError(f"cannot convert a {src} value to {dst}")


def cast(ctx: Ctx, v: Val, dst: str) -> Val:
    """Element-wise conversion to another element type."""
    if v.elem == dst:
        return v
    if not v.many:
        return Val(_cast1(ctx, v.sql, v.elem, dst), False, dst, v.ftype)
    x = ctx.state.var()
    return Val(f"list_transform({v.sql}, lambda {x}: {_cast1(ctx, x, v.elem, dst)})", True, dst, v.ftype)


def typed(v: Val) -> str:
    """Best static element type: JSON known (via ofType/constant type) to be a primitive counts as it."""
    if v.elem == "json":
        return elem_of_fhir_type(v.ftype) or "json"
    return v.elem


def as_bool(ctx: Ctx, v: Val, what: str = "expression") -> str:
    one = as_one(ctx, v, what)
    if one.elem == "boolean":
        return one.sql
    if one.elem == "json":
        return _cast1(ctx, one.sql, "json", "boolean")
    raise FhirPathCompileError(f"{what} must be boolean, got a {one.elem} value")


# ---------------------------------------------------------------------------------------------
# The expression compiler


def compile_expr(node: Node, ctx: Ctx) -> Val:
    """Compile one AST node in context ``ctx``."""
    if isinstance(node, Literal):
        return _literal(node)
    if isinstance(node, This):
        return ctx.focus
    if isinstance(node, Ident):
        return member(ctx, ctx.focus, node.name)
    if isinstance(node, Member):
        return member(ctx, compile_expr(node.base, ctx), node.name)
    if isinstance(node, Env):
        return _env(node, ctx)
    if isinstance(node, Index):
        return _index(node, ctx)
    if isinstance(node, Call):
        return _call(node, ctx)
    if isinstance(node, Binary):
        return _binary(node, ctx)
    if isinstance(node, Unary):
        return _unary(node, ctx)
    raise FhirPathCompileError(f"unsupported expression {node!r}")


def _literal(node: Literal) -> Val:
    value, typ = node.value, node.type
    if typ == "empty":
        return Val("[]::JSON[]", True, "json")
    if typ == "boolean":
        return Val("TRUE" if value else "FALSE", False, "boolean", "boolean")
    if typ == "integer":
        return Val(f"CAST({int(value)} AS BIGINT)", False, "bigint", "integer")  # type: ignore[call-overload]
    if typ == "decimal":
        return Val(f"CAST({float(value)!r} AS DOUBLE)", False, "double", "decimal")  # type: ignore[arg-type]
    return Val(q(str(value)), False, "varchar", typ)


def literal_val(value: object, ftype: str) -> Val:
    """A typed FHIR constant (ViewDefinition ``constant``) as a value."""
    elem = elem_of_fhir_type(ftype) or "varchar"
    if elem == "boolean":
        return Val("TRUE" if value else "FALSE", False, "boolean", ftype)
    if elem == "bigint":
        return Val(f"CAST({int(value)} AS BIGINT)", False, "bigint", ftype)  # type: ignore[call-overload]
    if elem == "double":
        return Val(f"CAST({q(str(value))} AS DOUBLE)", False, "double", ftype)
    return Val(q(str(value)), False, "varchar", ftype)


def _env(node: Env, ctx: Ctx) -> Val:
    if node.name == "rowIndex":
        return Val(ctx.row_index, False, "bigint", "integer")
    if node.name in ("resource", "rootResource"):
        fields = ctx.state.fields
        return Val(fields.alias, False, "json", None, root=True, fields=fields)
    if node.name in ctx.state.constants:
        return ctx.state.constants[node.name]
    raise FhirPathCompileError(f"undefined constant %{node.name}")


def member(ctx: Ctx, base: Val, name: str, ftype: str | None = None) -> Val:
    """``base.name``: field access on each item; arrays flatten; missing -> empty."""
    key = _json_key(name)
    if base.elem != "json":
        raise FhirPathCompileError(f"cannot navigate to '{name}' on a {base.elem} value")
    if base.fields is not None:
        frag = base.fields.ref(f"$.{key}")
        chain = Chain(f"$.{key}", base, frag, direct=True)
        return Val(base.fields.collection(elems(ctx.state, frag)), True, "json", ftype, chain=chain)
    if base.chain is not None:
        c = base.chain
        if base.many:
            x = ctx.state.var()
            inner = elems(ctx.state, f"json_extract({x}, '$.{key}')")
            general = f"flatten(list_transform({base.sql}, lambda {x}: {inner}))"
        else:
            general = bind(ctx.state, base.sql, lambda b: elems(ctx.state, f"json_extract({b}, '$.{key}')"))
        sql = _guard(c.frag, key, general) if c.guard else general
        chain = Chain(f"{c.path}.{key}", c.base, c.frag, c.guard)
        owner = c.base.fields
        if owner is not None and owner.hoist:
            # Computed once per row: read the chain's own fragment first (no array crossed: it IS
            # the one item), so the list machinery runs only for rows that need it.
            fast = owner.ref(chain.path)
            sql = owner.collection(
                f"CASE WHEN json_type({fast}) NOT IN ('ARRAY', 'NULL') THEN [{fast}] ELSE {sql} END"
            )
        return Val(sql, True, "json", ftype, chain=chain)
    if not base.many:
        sql = elems(ctx.state, f"json_extract({base.sql}, '$.{key}')")
        if not is_simple(base.sql):
            return Val(sql, True, "json", ftype)
        return Val(_guard(base.sql, key, sql), True, "json", ftype, chain=Chain(f"$.{key}", base, base.sql))
    x = ctx.state.var()
    inner = elems(ctx.state, f"json_extract({x}, '$.{key}')")
    return Val(f"flatten(list_transform({base.sql}, lambda {x}: {inner}))", True, "json", ftype)


def _guard(frag: str, key: str, general: str) -> str:
    """Skip navigation when the key's text does not occur in the fragment at all (a substring test
    is far cheaper than parsing; FHIR JSON keys are plain ASCII, never escaped)."""
    needle = q(f'"{key}"')
    return f"CASE WHEN contains(CAST({frag} AS VARCHAR), {needle}) THEN {general} ELSE []::JSON[] END"


def _index(node: Index, ctx: Ctx) -> Val:
    base = compile_expr(node.base, ctx)
    if isinstance(node.index, Literal) and node.index.type == "integer":
        n = int(node.index.value)  # type: ignore[call-overload]
        if not base.many:
            return base if n == 0 else Val("NULL", False, base.elem, base.ftype)
        return Val(f"({base.sql})[{n + 1}]", False, base.elem, base.ftype)
    idx = cast(ctx, as_one(ctx, compile_expr(node.index, ctx), "index"), "bigint").sql
    if not base.many:
        return Val(f"CASE WHEN {idx} = 0 THEN {base.sql} END", False, base.elem, base.ftype)
    return Val(f"CASE WHEN {idx} >= 0 THEN ({base.sql})[{idx} + 1] END", False, base.elem, base.ftype)


# ---------------------------------------------------------------------------------------------
# Operators


def _common(a: Val, b: Val) -> str:
    ta, tb = typed(a), typed(b)
    if ta == tb:
        return ta
    if ta in NUMERIC and tb in NUMERIC:
        return "double"
    if "json" in (ta, tb):
        other = tb if ta == "json" else ta
        # An untyped JSON number may be a decimal: never truncate it to compare with an integer.
        return "double" if other in NUMERIC else other
    return "varchar"


def _compare(ctx: Ctx, op: str, a: Val, b: Val) -> Val:
    sql_op = {"=": "=", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">="}[op]
    a1, b1 = as_one(ctx, a, f"left operand of '{op}'"), as_one(ctx, b, f"right operand of '{op}'")
    common = _common(a1, b1)
    if common != "json":
        if common == "boolean" and op not in ("=", "!="):
            raise FhirPathCompileError(f"operator '{op}' is not defined for booleans")
        ca, cb = cast(ctx, a1, common), cast(ctx, b1, common)
        return Val(f"({ca.sql} {sql_op} {cb.sql})", False, "boolean")
    # Both sides untyped JSON: decide at run time (numbers numerically, everything else as text).
    num = "('BIGINT', 'UBIGINT', 'DOUBLE')"

    def body(x: str, y: str) -> str:
        return (
            f"CASE WHEN json_type({x}) IN {num} AND json_type({y}) IN {num} "
            f"THEN CAST({x} AS DOUBLE) {sql_op} CAST({y} AS DOUBLE) "
            f"ELSE json_extract_string({x}, '$') {sql_op} json_extract_string({y}, '$') END"
        )

    sql = bind(ctx.state, a1.sql, lambda x: bind(ctx.state, b1.sql, lambda y: body(x, y)))
    return Val(sql, False, "boolean")


def _arith(ctx: Ctx, op: str, a: Val, b: Val) -> Val:
    a1, b1 = as_one(ctx, a, f"left operand of '{op}'"), as_one(ctx, b, f"right operand of '{op}'")
    ta, tb = typed(a1), typed(b1)
    if op == "+" and ta == "varchar" and tb == "varchar":
        return Val(f"({a1.sql} || {b1.sql})", False, "varchar", "string")
    num = "bigint" if ta == tb == "bigint" and op != "/" else "double"
    ca, cb = cast(ctx, a1, num).sql, cast(ctx, b1, num).sql
    if op == "/":
        return Val(f"(CAST({ca} AS DOUBLE) / NULLIF({cb}, 0))", False, "double", "decimal")
    if op == "div":
        return Val(f"CAST(trunc({ca} / NULLIF({cb}, 0)) AS BIGINT)", False, "bigint", "integer")
    if op == "mod":
        return Val(f"({ca} % NULLIF({cb}, 0))", False, num, None)
    return Val(f"({ca} {op} {cb})", False, num, "integer" if num == "bigint" else "decimal")


def _union(ctx: Ctx, a: Val, b: Val) -> Val:
    elem = a.elem if a.elem == b.elem else "json"
    la, lb = as_many(cast(ctx, a, elem)), as_many(cast(ctx, b, elem))
    x, i = ctx.state.var(), ctx.state.var("i")

    def dedupe(lst: str) -> str:
        return f"list_filter({lst}, lambda {x}, {i}: NOT list_contains(list_slice({lst}, 1, {i} - 1), {x}))"

    return Val(bind(ctx.state, f"list_concat({la.sql}, {lb.sql})", dedupe), True, elem)


def _binary(node: Binary, ctx: Ctx) -> Val:
    op = node.op
    if op in ("is", "as"):
        return _type_test(ctx, op, node.left, node.right)
    a = compile_expr(node.left, ctx)
    b = compile_expr(node.right, ctx)
    if op in ("=", "!=", "<", ">", "<=", ">="):
        return _compare(ctx, op, a, b)
    if op in ("and", "or", "xor", "implies"):
        x, y = as_bool(ctx, a, f"left operand of '{op}'"), as_bool(ctx, b, f"right operand of '{op}'")
        sql = {
            "and": f"({x} AND {y})",
            "or": f"({x} OR {y})",
            "xor": f"({x} <> {y})",
            "implies": f"((NOT {x}) OR {y})",
        }[op]
        return Val(sql, False, "boolean")
    if op in ("+", "-", "*", "/", "div", "mod"):
        return _arith(ctx, op, a, b)
    if op == "&":
        sa = cast(ctx, as_one(ctx, a, "left operand of '&'"), "varchar").sql
        sb = cast(ctx, as_one(ctx, b, "right operand of '&'"), "varchar").sql
        return Val(f"(coalesce({sa}, '') || coalesce({sb}, ''))", False, "varchar", "string")
    if op == "|":
        return _union(ctx, a, b)
    if op in ("in", "contains"):
        item, coll = (a, b) if op == "in" else (b, a)
        one = as_one(ctx, item, f"operand of '{op}'")
        elem = _common(one, coll)
        elem = "varchar" if elem == "json" else elem
        lst, it = as_many(cast(ctx, coll, elem)).sql, cast(ctx, one, elem).sql
        return Val(f"CASE WHEN {it} IS NULL THEN NULL ELSE list_contains({lst}, {it}) END", False, "boolean")
    raise FhirPathCompileError(f"unsupported operator '{op}'")


def _unary(node: Unary, ctx: Ctx) -> Val:
    v = as_one(ctx, compile_expr(node.operand, ctx), f"operand of unary '{node.op}'")
    t = typed(v)
    num = t if t in NUMERIC else "double"
    c = cast(ctx, v, num)
    return c if node.op == "+" else Val(f"(-{c.sql})", False, num, c.ftype)


# ---------------------------------------------------------------------------------------------
# Functions


def type_name(node: Node) -> str:
    """A type specifier argument (``Quantity``, ``FHIR.string``, ``System.Integer``) as a name."""
    if isinstance(node, Ident):
        name = node.name
        namespace, _, rest = name.rpartition(".")
        if namespace in ("FHIR", "System"):
            name = rest if namespace == "FHIR" else rest[:1].lower() + rest[1:]
    elif isinstance(node, Member) and isinstance(node.base, Ident) and node.base.name in ("FHIR", "System"):
        name = node.name
        if node.base.name == "System":
            name = name[:1].lower() + name[1:]
    else:
        raise FhirPathCompileError("expected a type name argument")
    return name


def _input(node: Call, ctx: Ctx) -> Val:
    return ctx.focus if node.base is None else compile_expr(node.base, ctx)


def _arity(node: Call, lo: int, hi: int) -> None:
    if not lo <= len(node.args) <= hi:
        want = str(lo) if lo == hi else f"{lo}..{hi}"
        raise FhirPathCompileError(f"function '{node.name}()' takes {want} argument(s), got {len(node.args)}")


def _filter(ctx: Ctx, base: Val, crit: Node, fname: str) -> Val:
    if not base.many:
        inner = replace(ctx, focus=base)
        cond = as_bool(inner, compile_expr(crit, inner), f"{fname}() criteria")
        return Val(f"CASE WHEN {cond} THEN {base.sql} END", False, base.elem, base.ftype)
    x = ctx.state.var()
    inner = replace(ctx, focus=Val(x, False, base.elem, base.ftype))
    cond = as_bool(inner, compile_expr(crit, inner), f"{fname}() criteria")
    return Val(f"list_filter({base.sql}, lambda {x}: {cond})", True, base.elem, base.ftype)


_JSON_TYPES = {
    "varchar": "('VARCHAR')",
    "boolean": "('BOOLEAN')",
    "bigint": "('BIGINT', 'UBIGINT')",
    "double": "('BIGINT', 'UBIGINT', 'DOUBLE')",
}


def _type_filter(ctx: Ctx, coll: Val, tname: str) -> str:
    """Keep the items of a JSON collection whose JSON type fits the primitive FHIR type ``tname``."""
    want = elem_of_fhir_type(tname)
    if want is None:
        raise FhirPathCompileError(
            f"ofType({tname}) is only supported on a choice element (e.g. value.ofType(X)) "
            "or for primitive types"
        )
    x = ctx.state.var()
    return f"list_filter({as_many(coll).sql}, lambda {x}: json_type({x}) IN {_JSON_TYPES[want]})"


def _of_type(node: Call, ctx: Ctx) -> Val:
    """``X.ofType(T)``. On a choice element (``value``), the JSON field ``valueT``. Without a FHIR
    schema we cannot know statically that ``X`` is a choice element, so when the data holds a plain
    ``X`` field the value is type-filtered instead (primitive ``T``) or an error is raised (complex
    ``T``): never a silently empty column for a mistyped ``gender.ofType(code)``."""
    _arity(node, 1, 1)
    tname = type_name(node.args[0])
    suffix = tname[:1].upper() + tname[1:]
    if isinstance(node.base, (Member, Ident)):
        owner = compile_expr(node.base.base, ctx) if isinstance(node.base, Member) else ctx.focus
        name = node.base.name

        def narrowed(owner: Val) -> tuple[Val, str]:
            choice = member(ctx, owner, name + suffix, ftype=tname)
            plain = member(ctx, owner, name)
            if elem_of_fhir_type(tname) is not None:
                alt = _type_filter(ctx, plain, tname)
            else:
                alt = error_sql(ctx, f"ofType({tname}) applied to '{name}', which is not a choice element")
            return choice, f"CASE WHEN len({plain.sql}) > 0 THEN {alt} ELSE {choice.sql} END"

        choice, sql = narrowed(owner)
        if owner.fields is None and not is_simple(owner.sql):
            # The owner (``timing.repeat`` in ``timing.repeat.bounds.ofType(Period)``) is used twice
            # above: evaluate (and plan) it once instead of pasting its SQL twice.
            oftype = owner.ftype
            sql = let(ctx.state, owner.sql, lambda v: narrowed(Val(v, owner.many, owner.elem, oftype))[1])
        # The chain shortcut stays valid (it only answers when the choice field itself is present),
        # but the key-in-fragment guard would skip the check above.
        chain = replace(choice.chain, guard=False, direct=False) if choice.chain is not None else None
        return replace(choice, sql=sql, chain=chain)
    base = _input(node, ctx)
    want = elem_of_fhir_type(tname)
    if base.elem != "json":
        if want is None:
            raise FhirPathCompileError(f"ofType({tname}) is only supported on JSON elements")
        return base if base.elem == want else Val("[]::JSON[]", True, "json")
    return Val(_type_filter(ctx, base, tname), True, "json", tname)


def _type_test(ctx: Ctx, op: str, operand: Node, type_node: Node) -> Val:
    """``X as T`` is ``X.ofType(T)`` (singleton); ``X is T`` is whether that is non-empty (so false,
    not empty, for an empty ``X``: a choice element has no value of its own to test for presence)."""
    narrowed = compile_expr(Call(operand, "ofType", (type_node,)), ctx)
    if op == "as":
        return as_one(ctx, narrowed, "operand of 'as'")
    return Val(f"(len({as_many(narrowed).sql}) > 0)", False, "boolean")


def _iif(node: Call, ctx: Ctx) -> Val:
    """``iif(criterion, true-result [, otherwise-result])``."""
    _arity(node, 2, 3)
    if node.base is not None:
        raise FhirPathCompileError("iif() must be called without an input collection")
    cond = as_bool(ctx, compile_expr(node.args[0], ctx), "iif() criterion")
    a = compile_expr(node.args[1], ctx)
    b = compile_expr(node.args[2], ctx) if len(node.args) == 3 else Val("NULL", False, a.elem, a.ftype)
    if not a.many and not b.many and a.elem == b.elem:
        return Val(f"CASE WHEN {cond} THEN {a.sql} ELSE {b.sql} END", False, a.elem, a.ftype)
    elem = a.elem if a.elem == b.elem else "json"
    la, lb = as_many(cast(ctx, a, elem)), as_many(cast(ctx, b, elem))
    return Val(f"CASE WHEN {cond} THEN {la.sql} ELSE {lb.sql} END", True, elem)


def _string_arg(ctx: Ctx, node: Node, fname: str) -> str:
    v = as_one(ctx, compile_expr(node, ctx), f"argument of {fname}()")
    if typed(v) not in ("varchar", "json"):
        raise FhirPathCompileError(f"{fname}() expects a string argument")
    return cast(ctx, v, "varchar").sql


_REF_ID = r"[A-Za-z0-9\-\.]{1,64}"


def _reference_key(ctx: Ctx, ref_json: str, rtype: str | None, *, from_reference: bool = False) -> str:
    """The key (id) a Reference points at; NULL when it is not a resolvable (type-matching) reference.

    Accepted: ``[base/]Type/id[/_history/v]`` (with the wanted type) and ``urn:uuid:<id>``
    (transaction bundles: no type to check, so any type matches). Conditional (``Type?search``) and
    contained (``#id``) references have no key. One anchored ``regexp_matches`` validates, string
    functions cut out the id: capture-group extraction (``regexp_extract``) is ~15x slower in
    DuckDB, and the reference text is used only twice (each use re-reads the JSON fragment).
    """
    type_re = re.escape(rtype) if rtype else "[A-Z][A-Za-z0-9]+"
    pat = q(f"^(urn:uuid:[A-Za-z0-9\\-]+|([^?#]*/)?{type_re}/{_REF_ID}(/_history/{_REF_ID})?)$")

    def body(r: str) -> str:
        key = f"split_part(split_part(split_part({r}, '/_history/', 1), '/', -1), ':', -1)"
        return f"CASE WHEN regexp_matches({r}, {pat}) THEN {key} END"

    path = "$" if from_reference else "$.reference"
    return bind(ctx.state, f"json_extract_string({ref_json}, '{path}')", body)


def _call(node: Call, ctx: Ctx) -> Val:  # noqa: C901 - a dispatch table in disguise
    name = node.name
    if name == "ofType":
        return _of_type(node, ctx)
    if name in ("is", "as"):
        _arity(node, 1, 1)
        return _type_test(ctx, name, node.base if node.base is not None else This(), node.args[0])
    if name == "iif":
        return _iif(node, ctx)
    if name == "extension":
        _arity(node, 1, 1)
        url = _string_arg(ctx, node.args[0], name)
        ext = member(ctx, _input(node, ctx), "extension")
        x = ctx.state.var()
        return Val(
            f"list_filter({ext.sql}, lambda {x}: json_extract_string({x}, '$.url') = {url})", True, "json"
        )
    if name == "getResourceKey":
        _arity(node, 0, 0)
        base = _input(node, ctx)
        if not base.root:
            raise FhirPathCompileError("getResourceKey() must be called on the resource (not inside forEach)")
        return Val(f"json_extract_string({ctx.state.fields.ref('$.id')}, '$')", False, "varchar", "id")
    if name == "getReferenceKey":
        _arity(node, 0, 1)
        rtype = type_name(node.args[0]) if node.args else None
        base = _input(node, ctx)
        if base.elem != "json":
            raise FhirPathCompileError("getReferenceKey() must be called on Reference elements")
        if not base.many:
            return Val(_reference_key(ctx, base.sql, rtype), False, "varchar", "id")
        x, k = ctx.state.var(), ctx.state.var("k")
        keys = f"list_transform({base.sql}, lambda {x}: {_reference_key(ctx, x, rtype)})"
        general = Val(f"list_filter({keys}, lambda {k}: {k} IS NOT NULL)", True, "varchar", "id")
        if base.chain is None:
            return general
        # Fast path: the usual single Reference object reached without crossing arrays.
        c = base.chain
        path = f"{c.path}.reference"
        fr = (
            c.base.fields.ref(path) if c.base.fields is not None else f"json_extract({c.base.sql}, {q(path)})"
        )
        fast = _reference_key(ctx, fr, rtype, from_reference=True)
        slow = as_one(ctx, general, "getReferenceKey() input").sql
        absent = f"WHEN {c.frag} IS NULL THEN NULL " if c.guard else ""
        one = f"CASE WHEN json_type({fr}) = 'VARCHAR' THEN {fast} {absent}ELSE {slow} END"
        return replace(general, one=one)
    base = _input(node, ctx)
    if name == "where":
        _arity(node, 1, 1)
        return _filter(ctx, base, node.args[0], name)
    if name in ("exists", "empty"):
        _arity(node, 0, 1 if name == "exists" else 0)
        if node.args:
            base = _filter(ctx, base, node.args[0], name)
        if base.many:
            sql = f"(len({base.sql}) {'>' if name == 'exists' else '='} 0)"
        else:
            sql = f"({base.sql} IS {'NOT ' if name == 'exists' else ''}NULL)"
        return Val(sql, False, "boolean")
    if name in ("first", "last", "single"):
        _arity(node, 0, 0)
        if not base.many:
            return base
        if name == "single":
            return as_one(ctx, base, "single()")
        general = f"({base.sql})[{1 if name == 'first' else -1}]"
        if name == "last" or base.chain is None:
            return Val(general, False, base.elem, base.ftype)
        # '$.a.b[0]' is non-NULL only when a is an object and b an array: then it IS b.first()
        # (FHIR fixes each element's cardinality, so first() is applied to arrays; others fall back).
        c = base.chain
        first = Chain(f"{c.path}[0]", c.base, c.frag, c.guard)
        if name == "first" and c.direct:
            return Val(direct_first(ctx, c.frag), False, base.elem, base.ftype, chain=first)
        if is_hoisted(base.sql):
            return Val(general, False, base.elem, base.ftype, chain=first)
        sql = fast_single(ctx, Val(general, True, base.elem, chain=first), general)
        return Val(sql, False, base.elem, base.ftype, chain=first)
    if name == "count":
        _arity(node, 0, 0)
        sql = f"len({base.sql})" if base.many else f"CASE WHEN {base.sql} IS NULL THEN 0 ELSE 1 END"
        return Val(f"CAST({sql} AS BIGINT)", False, "bigint", "integer")
    if name == "not":
        _arity(node, 0, 0)
        return Val(f"(NOT {as_bool(ctx, base, 'input of not()')})", False, "boolean")
    if name in ("hasValue",):
        _arity(node, 0, 0)
        return Val(f"({as_one(ctx, base, 'input of hasValue()').sql} IS NOT NULL)", False, "boolean")
    if name == "join":
        _arity(node, 0, 1)
        sep = _string_arg(ctx, node.args[0], name) if node.args else "''"
        lst = as_many(cast(ctx, base, "varchar")).sql
        return Val(f"array_to_string({lst}, {sep})", False, "varchar", "string")
    if name == "select":
        _arity(node, 1, 1)
        lst = as_many(base)
        x = ctx.state.var()
        inner = replace(ctx, focus=Val(x, False, lst.elem, lst.ftype))
        proj = as_many(compile_expr(node.args[0], inner))
        return Val(f"flatten(list_transform({lst.sql}, lambda {x}: {proj.sql}))", True, proj.elem, proj.ftype)
    if name in ("tail", "skip", "take"):
        _arity(node, 0 if name == "tail" else 1, 0 if name == "tail" else 1)
        lst = as_many(base).sql
        if name == "tail":
            return Val(f"list_slice({lst}, 2, len({lst}))", True, base.elem, base.ftype)
        n = cast(ctx, as_one(ctx, compile_expr(node.args[0], ctx), f"argument of {name}()"), "bigint").sql
        sl = f"list_slice({lst}, {n} + 1, len({lst}))" if name == "skip" else f"list_slice({lst}, 1, {n})"
        return Val(sl, True, base.elem, base.ftype)
    if name == "distinct":
        _arity(node, 0, 0)
        return _union(ctx, base, Val("[]", True, base.elem))
    if name in ("lowBoundary", "highBoundary"):
        _arity(node, 0, 1)
        if node.args:
            raise FhirPathCompileError(f"{name}(precision) is not supported; call {name}() without arguments")
        from chc_equity.views.boundary import boundary

        return boundary(ctx, as_one(ctx, base, f"input of {name}()"), high=name == "highBoundary")
    if name in _STRING_FUNCS:
        return _string_func(node, ctx, base)
    raise FhirPathCompileError(f"unsupported function '{name}()'")


_STRING_FUNCS = {
    "startsWith": (1, lambda s, a: f"starts_with({s}, {a[0]})", "boolean"),
    "endsWith": (1, lambda s, a: f"ends_with({s}, {a[0]})", "boolean"),
    "contains": (1, lambda s, a: f"contains({s}, {a[0]})", "boolean"),
    "upper": (0, lambda s, a: f"upper({s})", "varchar"),
    "lower": (0, lambda s, a: f"lower({s})", "varchar"),
    "trim": (0, lambda s, a: f"trim({s})", "varchar"),
    "length": (0, lambda s, a: f"CAST(length({s}) AS BIGINT)", "bigint"),
    "toString": (0, lambda s, a: s, "varchar"),
    "matches": (1, lambda s, a: f"regexp_full_match({s}, {a[0]})", "boolean"),
    "replace": (2, lambda s, a: f"replace({s}, {a[0]}, {a[1]})", "varchar"),
    "indexOf": (1, lambda s, a: f"CAST(strpos({s}, {a[0]}) - 1 AS BIGINT)", "bigint"),
}


def _string_func(node: Call, ctx: Ctx, base: Val) -> Val:
    if node.name == "substring":
        _arity(node, 1, 2)
        s = cast(ctx, as_one(ctx, base, "input of substring()"), "varchar").sql
        start = cast(ctx, as_one(ctx, compile_expr(node.args[0], ctx)), "bigint").sql
        length = ""
        if len(node.args) == 2:
            length = ", " + cast(ctx, as_one(ctx, compile_expr(node.args[1], ctx)), "bigint").sql
        sql = f"CASE WHEN {start} >= 0 AND {start} < length({s}) THEN substr({s}, {start} + 1{length}) END"
        return Val(sql, False, "varchar", "string")
    nargs, fn, out = _STRING_FUNCS[node.name]
    _arity(node, nargs, nargs)
    s = cast(ctx, as_one(ctx, base, f"input of {node.name}()"), "varchar").sql
    args = [_string_arg(ctx, a, node.name) for a in node.args]
    return Val(fn(s, args), False, out, "string" if out == "varchar" else None)
