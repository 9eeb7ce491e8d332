"""Translate ELM expressions into DuckDB SQL, set-based over every patient at once.

Representation (what a compiled expression is):

- the patient in context is the row ``_pt`` (``center``, ``patient_id``, ``res`` = the Patient JSON)
  of the relation a define is evaluated over; every compiled expression may read it;
- a **list** is a SQL subquery returning column ``v`` (and ``_k``, its sort key, when sorted), one row
  per element, correlated to ``_pt``; a **scalar** is a SQL expression;
- FHIR values (resources and their elements) are DuckDB ``JSON`` read straight from the ``resources``
  table; a retrieve finds its rows through the flat view of its type (``flat.encounter`` ...), which
  carries the patient link (the views resolve ``subject`` references; a test Bundle is one record);
- CQL values: Boolean, Integer (BIGINT), Decimal (DOUBLE), String, DateTime (TIMESTAMP, UTC), Date,
  Code ``STRUCT(system, code)``, Concept (a list of Codes), Quantity ``STRUCT(value, unit)``,
  ``Interval<T>`` ``STRUCT(lo T, hi T, lc BOOLEAN, hc BOOLEAN)`` (closed flags), a CQL choice a STRUCT
  with one field per alternative (``Is`` tests the field, ``As`` reads it);
- FHIRHelpers conversions are native (JSON -> CQL value); every other library function is compiled
  from its ELM body, its operands bound to the argument SQL.

Three-valued logic is SQL's own (CQL ``and``/``or``/``not`` have the same truth tables). Anything
without a translation raises :class:`Unsupported` ``unsupported: <node> at <library>.<define>``; the
compiler never guesses.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace

from chc_equity.ingest.fhir import RESOURCE_TYPES
from chc_equity.measures.elm.library import ElmError, Library, Node, Package
from chc_equity.measures.vocabulary import (
    US_CORE_OBSERVATION_CODES,
    condition_problem_or_health_concern,
    medication_not_requested,
    medication_requested,
    observation_cancelled,
    service_not_requested,
    service_requested,
    sql_str,
    us_core_observation,
)

SYSTEM = "{urn:hl7-org:elm-types:r1}"
FHIR = "{http://hl7.org/fhir}"
QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
USCORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

# Profiles whose meaning is a constraint on the base resource (see vocabulary.retrieve): a retrieve of
# one adds that constraint; any other profile retrieve returns every resource of the base type.
CONSTRAINT_PROFILES = {
    QICORE + "qicore-servicenotrequested": service_not_requested,
    QICORE + "qicore-servicerequest": service_requested,
    QICORE + "qicore-medicationnotrequested": medication_not_requested,
    QICORE + "qicore-medicationrequest": medication_requested,
    QICORE + "qicore-observationcancelled": observation_cancelled,
    QICORE + "qicore-condition-problems-health-concerns": condition_problem_or_health_concern,
    **{
        USCORE + p: (lambda o, p=p: us_core_observation(o, p))
        for p in (*US_CORE_OBSERVATION_CODES, "us-core-smokingstatus")
    },
}

_UNITS = {  # CQL calendar / UCUM duration units -> DuckDB interval part
    "year": "year",
    "years": "year",
    "a": "year",
    "month": "month",
    "months": "month",
    "mo": "month",
    "week": "week",
    "weeks": "week",
    "wk": "week",
    "day": "day",
    "days": "day",
    "d": "day",
    "hour": "hour",
    "hours": "hour",
    "h": "hour",
    "minute": "minute",
    "minutes": "minute",
    "min": "minute",
    "second": "second",
    "seconds": "second",
    "s": "second",
    "millisecond": "millisecond",
    "milliseconds": "millisecond",
    "ms": "millisecond",
}


# UCUM units a conversion may meet: unit -> (dimension, factor to the dimension's base unit). CQL
# calendar durations (``day``, ``weeks``) convert as their UCUM definite durations (``d``, ``wk``); a
# month is 'mo' = 30.4375 days and a year 'a' = 365.25 days, as UCUM defines them.
_UCUM: dict[str, tuple[str, float]] = {
    **{u: ("time", 0.001) for u in ("ms", "millisecond", "milliseconds")},
    **{u: ("time", 1.0) for u in ("s", "second", "seconds")},
    **{u: ("time", 60.0) for u in ("min", "minute", "minutes")},
    **{u: ("time", 3600.0) for u in ("h", "hour", "hours")},
    **{u: ("time", 86400.0) for u in ("d", "day", "days")},
    **{u: ("time", 604800.0) for u in ("wk", "week", "weeks")},
    **{u: ("time", 2629800.0) for u in ("mo", "month", "months")},
    **{u: ("time", 31557600.0) for u in ("a", "year", "years")},
    "kg": ("mass", 1000.0),
    "g": ("mass", 1.0),
    "mg": ("mass", 1e-3),
    "ug": ("mass", 1e-6),
    "ng": ("mass", 1e-9),
    "L": ("volume", 1.0),
    "dL": ("volume", 0.1),
    "mL": ("volume", 1e-3),
    "uL": ("volume", 1e-6),
    "m": ("length", 1.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "[in_i]": ("length", 0.0254),
    "[ft_i]": ("length", 0.3048),
    "[lb_av]": ("mass", 453.59237),
    "[oz_av]": ("mass", 28.349523125),
    "g/dL": ("mass/volume", 10.0),
    "mg/dL": ("mass/volume", 0.01),
    "g/L": ("mass/volume", 1.0),
    "mg/L": ("mass/volume", 1e-3),
    "kg/m2": ("mass/area", 1.0),
    "mm[Hg]": ("pressure", 1.0),
    "%": ("fraction", 0.01),
    "1": ("fraction", 1.0),
}


def _value_parts(h: str, path) -> list[tuple[str, str]]:
    """FHIRHelpers.ToValue of the choice element ``<p>[x]`` of JSON object ``h``, one SQL expression per
    CQL type it may convert to; ``path(suffix)`` is the SQL of the JSON path ``$.<p><suffix>``."""

    def txt(sfx: str) -> str:
        return f"({h}->>{path(sfx)})"

    def js(sfx: str) -> str:
        return f"json_extract({h}, {path(sfx)})"

    return [
        ("DateTime", f"coalesce(fhir_ts({txt('DateTime')}), fhir_ts({txt('Instant')}))"),
        ("Date", f"fhir_date({txt('Date')})"),
        ("Interval_DateTime", f"cql_period({js('Period')})"),
        ("Quantity", f"cql_quantity(coalesce({js('Quantity')}, {js('Age')}, {js('Duration')}))"),
        (
            "Interval_Quantity",
            f"CASE WHEN {js('Range')} IS NULL THEN NULL ELSE struct_pack("
            f"lo := cql_quantity({js('Range.low')}), hi := cql_quantity({js('Range.high')}), "
            "lc := TRUE, hc := TRUE) END",
        ),
        ("Concept", f"cql_concept({js('CodeableConcept')})"),
        ("Code", f"cql_code({js('Coding')})"),
        ("String", f"coalesce({txt('String')}, {txt('Code')})"),
        ("Boolean", f"CAST({txt('Boolean')} AS BOOLEAN)"),
        ("Integer", f"CAST({txt('Integer')} AS BIGINT)"),
        ("Decimal", f"CAST({txt('Decimal')} AS DOUBLE)"),
    ]


_PATIENTS = "_elm_patients"  # the relation of patients in context (measure.PATIENTS)

# Resource types outside the Patient compartment: a retrieve in Patient context returns all of them.
NO_SUBJECT = ("Medication", "Organization", "Practitioner", "PractitionerRole", "Location")


def _macro(name: str, params: str, body: str) -> str:
    """``CREATE MACRO name(params) AS body`` with the first parameter bound once, by a lambda over a
    one-element list: DuckDB expands a macro by copying its argument into every use, so nested calls
    (``fhir_value(fhir_get(fhir_get(x, 'a'), 'b'))``: x read 4 x 4 x 6 times) grew the expression
    exponentially, and binding and optimising it took seconds per statement."""
    first = params.split(",")[0].strip()
    bound = f"{name}_{first}"
    inner = re.sub(rf"\b{first}\b", bound, body)
    once = f"list_transform([{first}], lambda {bound}: {inner})[1]"
    return f"CREATE OR REPLACE TEMP MACRO {name}({params}) AS {once}"


# SQL macros the compiled SQL calls (created per connection by the runner, with the engine's MACROS).
# cql_quantity: a unit that is only a UCUM annotation (``{INR}``, ``{score}``) is the unit 1, as UCUM
# defines annotations (so 3.5 '{INR}' > 3.0 compares, as the reference engine's UCUM conversion does).
MACROS: tuple[str, ...] = (
    _macro(
        "cql_concept",
        "j",
        "CASE WHEN j IS NULL THEN NULL ELSE "
        "list_transform(coalesce(CASE WHEN json_type(j) = 'ARRAY' THEN json_extract(j, '$[*].coding[*]') "
        "ELSE json_extract(j, '$.coding[*]') END, []), "
        "lambda c: struct_pack(system := c->>'system', code := c->>'code', version := c->>'version', "
        "display := c->>'display')) END",
    ),
    _macro(
        "cql_code",
        "j",
        "CASE WHEN j IS NULL THEN NULL ELSE struct_pack(system := j->>'system', code := j->>'code', "
        "version := j->>'version', display := j->>'display') END",
    ),
    _macro(
        "cql_period",
        "j",
        "CASE WHEN j IS NULL THEN NULL ELSE struct_pack(lo := fhir_ts(j->>'start'), "
        "hi := fhir_ts(j->>'end'), lc := (j->>'start') IS NOT NULL, hc := TRUE) END",
    ),
    _macro(
        "cql_quantity",
        "j",
        "CASE WHEN j IS NULL OR (j->>'value') IS NULL THEN NULL "
        "ELSE struct_pack(value := CAST(j->>'value' AS DOUBLE), "
        "unit := regexp_replace(coalesce(j->>'code', j->>'unit', '1'), '^\\{[^}]*\\}$', '1')) END",
    ),
    _macro(
        "cql_prim",
        "j",
        "CASE WHEN json_type(j) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(j, '$') END",
    ),
    # a CQL calendar duration (Quantity of years, months ... as UCUM or CQL unit) as an INTERVAL
    _macro(
        "cql_duration",
        "q",
        "CASE "
        + " ".join(
            f"WHEN q.unit IN ({', '.join(repr(u) for u, p in _UNITS.items() if p == part)}) "
            f"THEN to_{part}s(CAST(trunc(q.value) AS BIGINT))"
            for part in dict.fromkeys(_UNITS.values())
            if part != "millisecond"
        )
        + " END",
    ),
    # UCUM conversion of a Quantity to unit u: null when either unit is unknown or of another dimension
    # (a CQL engine raises an error there; the compiler never guesses a factor)
    "CREATE OR REPLACE TEMP MACRO ucum_dim(u) AS CASE u "
    + " ".join(f"WHEN {sql_str(u)} THEN {sql_str(d)}" for u, (d, _) in _UCUM.items())
    + " END",
    "CREATE OR REPLACE TEMP MACRO ucum_factor(u) AS CASE u "
    + " ".join(f"WHEN {sql_str(u)} THEN {f!r}::DOUBLE" for u, (_, f) in _UCUM.items())
    + " END",
    _macro(
        "cql_convert",
        "q, u",
        "CASE WHEN q IS NULL OR u IS NULL THEN NULL "
        "WHEN q.unit = u THEN q WHEN ucum_dim(q.unit) = ucum_dim(u) THEN struct_pack("
        "value := q.value * ucum_factor(q.unit) / ucum_factor(u), unit := u) END",
    ),
    # a CQL choice value (one STRUCT field per alternative) is null when no alternative is set: an
    # absent element's FHIRHelpers.ToValue is null, not a STRUCT of nulls (``X.value is null``)
    _macro(
        "cql_choice",
        "s",
        "CASE WHEN "
        + " AND ".join(f"s.{f} IS NULL" for f, _ in _value_parts("h", lambda sfx: ""))
        + " THEN NULL ELSE s END",
    ),
    # CQL Code equality: code, system, version and display all equal (an element null on both sides is
    # equal, null on one side unknown, and then the result is null); null when either Code is null
    _macro(
        "cql_code_eq2",
        "p",
        "CASE WHEN p.a IS NULL OR p.b IS NULL THEN NULL WHEN "
        + " OR ".join(
            f"(p.a.{f} IS NULL) <> (p.b.{f} IS NULL)" for f in ("code", "system", "version", "display")
        )
        + " THEN NULL ELSE "
        + " AND ".join(
            f"p.a.{f} IS NOT DISTINCT FROM p.b.{f}" for f in ("code", "system", "version", "display")
        )
        + " END",
    ),
    "CREATE OR REPLACE TEMP MACRO cql_code_eq(x, y) AS cql_code_eq2(struct_pack(a := x, b := y))",
    # FHIRHelpers.ToValue of the choice element <p>[x] of JSON object h (<p>DateTime, <p>Period, ...)
    _macro(
        "cql_value",
        "h, p",
        "cql_choice(struct_pack("
        + ", ".join(f"{f} := {v}" for f, v in _value_parts("h", lambda sfx: f"('$.' || p || '{sfx}')"))
        + "))",
    ),
    # the items of a FHIR element that may repeat (an array, one value, or absent: no items)
    _macro(
        "fhir_items",
        "j",
        "CASE WHEN j IS NULL THEN CAST([] AS JSON[]) WHEN json_type(j) = 'ARRAY' THEN CAST(j AS JSON[]) "
        "ELSE [j] END",
    ),
    # element of a FHIR primitive: the JSON itself (FHIR JSON has no wrapper object for primitives)
    # element p of a FHIR JSON object; a choice element p[x] is stored under its typed key (valueQuantity)
    _macro(
        "fhir_get",
        "j, p",
        "coalesce(json_extract(j, '$.' || p), "
        "CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, '$.' || list_filter(json_keys(j), "
        "lambda k: starts_with(k, p) AND regexp_matches(k[length(p) + 1:length(p) + 1], '[A-Z]'))[1]) END)",
    ),
    _macro("fhir_value", "j", "CASE WHEN json_type(j) = 'OBJECT' THEN fhir_get(j, 'value') ELSE j END"),
)

# Point type -> (SQL type, minimum, maximum) for unbounded closed interval ends.
_POINT = {
    "DateTime": ("TIMESTAMP", "TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999'"),
    "Date": ("DATE", "DATE '0001-01-01'", "DATE '9999-12-31'"),
    "Integer": ("BIGINT", "(-2147483648)::BIGINT", "2147483647::BIGINT"),
    "Decimal": ("DOUBLE", "(-1e28)::DOUBLE", "1e28::DOUBLE"),
    "Quantity": ("STRUCT(value DOUBLE, unit VARCHAR)", "NULL", "NULL"),
}
_PRECISION = {
    "Year": "year",
    "Month": "month",
    "Day": "day",
    "Hour": "hour",
    "Minute": "minute",
    "Second": "second",
    "Millisecond": "millisecond",
}
# FHIRHelpers.ToValue of a choice element: one field per CQL type a FHIR choice converts to (macro
# cql_value), the same STRUCT type for every element so that any two choices mix in a CASE.
_VALUE_FIELDS = (
    ("DateTime", "DateTime"),
    ("Date", "Date"),
    ("Interval_DateTime", "Interval<DateTime>"),
    ("Quantity", "Quantity"),
    ("Interval_Quantity", "Interval<Quantity>"),
    ("Concept", "Concept"),
    ("Code", "Code"),
    ("String", "String"),
    ("Boolean", "Boolean"),
    ("Integer", "Integer"),
    ("Decimal", "Decimal"),
)


_PRIMITIVES = ("DateTime", "Date", "String", "Integer", "Decimal", "Boolean")
# a CQL Code: every element, as CQL equality compares them all (equivalence only system and code)
_CODE_SQL = "STRUCT(system VARCHAR, code VARCHAR, version VARCHAR, display VARCHAR)"
_QUANTITY_SQL = "STRUCT(value DOUBLE, unit VARCHAR)"
_SQL_TYPES = {
    "DateTime": "TIMESTAMP",
    "Date": "DATE",
    "Interval<DateTime>": "STRUCT(lo TIMESTAMP, hi TIMESTAMP, lc BOOLEAN, hc BOOLEAN)",
    "Quantity": _QUANTITY_SQL,
    "Interval<Quantity>": f"STRUCT(lo {_QUANTITY_SQL}, hi {_QUANTITY_SQL}, lc BOOLEAN, hc BOOLEAN)",
    "Concept": f"{_CODE_SQL}[]",
    "Code": _CODE_SQL,
    "String": "VARCHAR",
    "Boolean": "BOOLEAN",
    "Integer": "BIGINT",
    "Decimal": "DOUBLE",
}


class Unsupported(ElmError):
    """An ELM node the compiler has no translation for."""


@dataclass(frozen=True)
class Sql:
    """One compiled expression: SQL text, whether it is a list (a subquery of column ``v``), its CQL
    type (``Boolean``, ``DateTime``, ``Interval<DateTime>``, ``json`` for FHIR values, ``Choice`` ...)
    and, for a choice, its alternatives (field name -> type)."""

    text: str
    type: str = "any"
    is_list: bool = False
    sorted: bool = False
    fields: tuple[tuple[str, str], ...] = ()
    parts: tuple[tuple[str, str], ...] = ()  # field -> SQL of a STRUCT built here (read without rebuilding)
    profile: str = ""  # the profile (templateId) of the retrieve FHIR resources come from, when known

    def part(self, name: str) -> str:
        """SQL of field ``name`` of this STRUCT value (its own text when built here)."""
        return dict(self.parts).get(name) or f"({self.text}).{name}"


def type_name(node: Node | None) -> str:
    """The CQL type an ELM type specifier or name denotes, as this compiler spells it."""
    if node is None:
        return "any"
    if isinstance(node, str):
        if node.startswith(SYSTEM):
            return node[len(SYSTEM) :]
        if node.startswith(FHIR):
            return "json"
        return node
    kind = node.get("type")
    if kind == "NamedTypeSpecifier":
        return type_name(node["name"])
    if kind == "IntervalTypeSpecifier":
        return f"Interval<{type_name(node['pointType'])}>"
    if kind == "ListTypeSpecifier":
        return f"List<{type_name(node['elementType'])}>"
    if kind == "ChoiceTypeSpecifier":
        return "Choice"
    if kind == "TupleTypeSpecifier":
        return "Tuple"
    return "any"


def _spec_key(node: Node | None) -> str:
    """An ELM type specifier spelled with its full type names (to pick a function overload)."""
    if node is None:
        return "?"
    if isinstance(node, str):
        return node
    kind = node.get("type")
    if kind == "NamedTypeSpecifier":
        return node["name"]
    if kind == "IntervalTypeSpecifier":
        return f"Interval<{_spec_key(node.get('pointType'))}>"
    if kind == "ListTypeSpecifier":
        return f"List<{_spec_key(node.get('elementType'))}>"
    if kind == "ChoiceTypeSpecifier":
        return "Choice<" + ",".join(sorted(_spec_key(c) for c in node.get("choice", []))) + ">"
    return repr(sorted((k, v) for k, v in node.items() if k != "localId"))


def _source_text(node: Node) -> str:
    """The CQL text the translator kept in a definition's annotation (empty when it kept none)."""

    def walk(n) -> str:
        if isinstance(n, dict):
            return "".join(walk(v) for k, v in n.items() if k in ("s", "value"))
        if isinstance(n, list):
            return "".join(walk(v) for v in n)
        return n if isinstance(n, str) else ""

    return "".join(walk(a.get("s")) for a in node.get("annotation", []) if isinstance(a, dict))


def _declared_types(fdef: Node) -> list[str] | None:
    """The operand types a function definition's CQL declares (``(MedicationRequest
    MedicationNotRequested)`` -> ``["MedicationNotRequested"]``), from its annotation: where QI-Core
    profiles of one resource type overload a function, the ELM types both operands as that resource."""
    m = re.search(r"function\s+(?:\"[^\"]*\"|[\w.]+)\s*\((.*?)\)\s*(?:returns\b|:)", _source_text(fdef), re.S)
    if m is None:
        return None
    operands, depth, cur = [], 0, ""
    for ch in m.group(1) + ",":
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            operands.append(cur.strip())
            cur = ""
        else:
            cur += ch
    types = [o.split(None, 1)[1].strip().strip('"') if " " in o else "" for o in operands if o]
    return types if len(types) == len(fdef.get("operand", [])) else None


def _by_profile(defs: list[Node], args: list[Sql]) -> list[Node]:
    """Overloads whose declared operand types name the profiles of the arguments' retrieves
    (``[MedicationNotRequested: ...]`` -> the ``MedicationNotRequested`` overload); unchanged when
    the arguments carry no profile or the definitions no CQL text to read the declared types from."""

    def key(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    def profile_name(url: str) -> str:
        return re.sub(r"^(qicore|uscore)", "", key(url.rsplit("/", 1)[-1]))

    if not any(a.profile for a in args):
        return defs
    fits = []
    for d in defs:
        types = _declared_types(d)
        if types and all(
            not a.profile or key(t) == profile_name(a.profile) for t, a in zip(types, args, strict=True)
        ):
            fits.append(d)
    return fits or defs


def result_type(node: Node) -> str:
    if "resultTypeName" in node:
        return type_name(node["resultTypeName"])
    return type_name(node.get("resultTypeSpecifier"))


def _costly(value: Sql) -> bool:
    """Worth computing once rather than repeating: long text, a subquery, or a large macro."""
    return len(value.text) > 160 or "SELECT" in value.text or "cql_value(" in value.text


def _first(j: Sql) -> str:
    """The first item of FHIR element ``j`` (one value or an array)."""
    return f"fhir_items({j.text})[1]"


def _field(t: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", t).strip("_")


def _point_type(t: str) -> str:
    m = re.fullmatch(r"Interval<(.+)>", t)
    return m.group(1) if m else "DateTime"


@dataclass
class Define:
    """A compiled define: its relation name and SQL (over the patients ``_pt``), list or scalar."""

    table: str
    sql: str
    result: Sql


@dataclass
class Scope:
    """What names mean where an expression is compiled: query aliases, lets, function operands."""

    aliases: dict[str, Sql] = field(default_factory=dict)
    lets: dict[str, Sql] = field(default_factory=dict)
    operands: dict[str, Sql] = field(default_factory=dict)
    element: Sql | None = None  # the element a sort ByExpression's IdentifierRef reads


class Compiler:
    """Compiles defines of a package's libraries into SQL relations (memoized, in dependency order)."""

    def __init__(
        self, package: Package, period: tuple[str, str], valueset_table: str = "valueset_codes"
    ) -> None:
        self.package = package
        self.period = period  # SQL TIMESTAMP literals of the Measurement Period's bounds
        self.valueset_table = valueset_table
        self.defines: dict[tuple[str, str, str], Define] = {}
        self.order: list[Define] = []
        self._ids = itertools.count(1)
        self._where: list[str] = []  # library.define being compiled, for error messages
        # per-resource function relations: (library, version, function, overload) -> Define, or None
        # where the body reads the patient context and so is inlined at each call
        self._memo: dict[tuple[str, str, str, int], Define | None] = {}
        self._center = "_pt.center"  # the center of the resources an expression reads

    # --- defines -------------------------------------------------------------------------------------

    def define(self, lib: Library, name: str) -> Define:
        """Compile ``define name`` of ``lib`` (and every define it reads) once."""
        key = (lib.name, lib.version, name)
        if key in self.defines:
            return self.defines[key]
        stmt = lib.defines.get(name)
        if stmt is None:
            raise ElmError(f"{lib.name} has no define {name!r}")
        self._where.append(f"{lib.name}.{name}")
        try:
            body = self.expr(stmt["expression"], lib, Scope())
        finally:
            self._where.pop()
        table = "elm_" + re.sub(r"[^a-z0-9]+", "_", f"{lib.name}_{name}".lower()).strip("_")
        if body.is_list:
            sql = f"SELECT _pt.center, _pt.patient_id, x_.v FROM {_PATIENTS} _pt, LATERAL ({body.text}) x_"
        else:
            sql = f"SELECT _pt.center, _pt.patient_id, ({body.text}) AS v FROM {_PATIENTS} _pt"
        define = Define(table, sql, replace(body, sorted=False, parts=()))
        self.defines[key] = define
        self.order.append(define)
        return define

    def unsupported(self, node: Node, what: str | None = None) -> Unsupported:
        where = self._where[-1] if self._where else "?"
        loc = f" (line {node['locator']})" if "locator" in node else ""
        return Unsupported(f"unsupported: {what or node.get('type')} at {where}{loc}")

    def _alias(self, name: str) -> str:
        return f"a{next(self._ids)}_" + re.sub(r"[^A-Za-z0-9]+", "", name)[:20]

    # --- expressions -----------------------------------------------------------------------------------

    def expr(self, node: Node, lib: Library, scope: Scope) -> Sql:
        kind = node.get("type")
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise self.unsupported(node)
        out = handler(node, lib, scope)
        if out.type == "any":
            t = result_type(node)
            if t != "any" and not t.startswith("List<"):
                out = replace(out, type=t)
        return out

    def scalar(self, node: Node, lib: Library, scope: Scope, to: str | None = None) -> Sql:
        out = self.expr(node, lib, scope)
        if out.is_list:
            raise self.unsupported(node, f"list where a single value is needed ({node.get('type')})")
        return self.coerce(out, to) if to else out

    def as_list(self, node: Node, lib: Library, scope: Scope) -> Sql:
        out = self.expr(node, lib, scope)
        return self.listify(out)

    def listify(self, out: Sql) -> Sql:
        if out.is_list:
            return out
        if out.type == "json":  # a FHIR element that may repeat: one row per item
            text = (
                f"SELECT v FROM (SELECT unnest(CASE WHEN json_type(j_) = 'ARRAY' THEN CAST(j_ AS JSON[]) "
                f"ELSE [j_] END) AS v FROM (SELECT {out.text} AS j_)) WHERE v IS NOT NULL"
            )
            return Sql(text, "json", True)
        return Sql(f"SELECT v FROM (SELECT {out.text} AS v) WHERE v IS NOT NULL", out.type, True)

    def coerce(self, s: Sql, to: str) -> Sql:
        """A FHIR JSON value (or a CQL one) as CQL type ``to``."""
        if s.is_list or s.type == to or to in ("any", "json", "Choice") or s.text == "NULL":
            return s
        if s.fields and to in dict((t, f) for f, t in s.fields):  # the alternative of that type
            return Sql(s.part(dict((t, f) for f, t in s.fields)[to]), to)
        if s.type == "json":
            prim = f"cql_prim({s.text})"
            conv = {
                "String": prim,
                "DateTime": f"fhir_ts({prim})",
                "Date": f"fhir_date({prim})",
                "Integer": f"CAST({prim} AS BIGINT)",
                "Decimal": f"CAST({prim} AS DOUBLE)",
                "Boolean": f"CAST({prim} AS BOOLEAN)",
                "Concept": f"cql_concept({s.text})",
                "Code": f"cql_code({s.text})",
                "Quantity": f"cql_quantity({s.text})",
                "Interval<DateTime>": f"cql_period({s.text})",
            }.get(to)
            if conv is None:
                raise Unsupported(f"unsupported: conversion of a FHIR value to {to} at {self._here()}")
            return Sql(conv, to)
        if s.type == "Date" and to == "DateTime":
            return Sql(f"CAST({s.text} AS TIMESTAMP)", to)
        if s.type == "Integer" and to == "Decimal":
            return Sql(f"CAST({s.text} AS DOUBLE)", to)
        if s.type == "Code" and to == "Concept":
            return Sql(f"[{s.text}]", to)
        return s

    def bind(self, value: Sql, body) -> str:
        """``body(value)`` with ``value`` computed once: a large expression is bound to a column of a
        one-row subquery rather than repeated in the text (an interval test reads its operand five
        times; repeating it would grow the SQL exponentially with nesting)."""
        if not _costly(value):
            return body(value)
        alias = f"b{next(self._ids)}_"
        inner = body(replace(value, parts=(), text=alias))
        if "SELECT" not in inner:  # a lambda over a one-element list: no subquery for the planner
            return f"list_transform([{value.text}], lambda {alias}: {inner})[1]"
        inner = body(replace(value, parts=(), text=f"{alias}.v"))
        return f"(SELECT {inner} FROM (SELECT {value.text} AS v) {alias})"

    def _here(self) -> str:
        return self._where[-1] if self._where else "?"

    # literals and references --------------------------------------------------------------------------

    def _Literal(self, node: Node, lib: Library, scope: Scope) -> Sql:
        t = type_name(node["valueType"])
        v = node.get("value")
        if v is None:
            return Sql("NULL", t)
        if t == "Boolean":
            return Sql("TRUE" if str(v).lower() == "true" else "FALSE", t)
        if t == "Integer":
            return Sql(f"{int(v)}::BIGINT", t)
        if t == "Decimal":
            return Sql(f"{float(v)!r}::DOUBLE", t)
        if t == "String":
            return Sql(sql_str(v), t)
        raise self.unsupported(node, f"Literal of {t}")

    def _Null(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql("NULL", result_type(node))

    def _extreme(self, node: Node, which: int) -> Sql:
        t = type_name(node["valueType"])
        if t not in _POINT or t == "Quantity":
            raise self.unsupported(node, f"{node['type']} of {t}")
        return Sql(_POINT[t][which], t)

    def _MinValue(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._extreme(node, 1)

    def _MaxValue(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._extreme(node, 2)

    def _Quantity(self, node: Node, lib: Library, scope: Scope) -> Sql:
        unit = node.get("unit", "1")
        return Sql(
            f"struct_pack(value := {float(node['value'])!r}::DOUBLE, unit := {sql_str(unit)})", "Quantity"
        )

    def _ParameterRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        target = self.package.included(lib, node["libraryName"]) if "libraryName" in node else lib
        if node["name"] == "Measurement Period":
            lo, hi = self.period
            parts = (("lo", lo), ("hi", hi), ("lc", "TRUE"), ("hc", "TRUE"))
            return Sql(
                f"struct_pack(lo := {lo}, hi := {hi}, lc := TRUE, hc := TRUE)",
                "Interval<DateTime>",
                parts=parts,
            )
        param = target.parameters.get(node["name"])
        if param is None or "default" not in param:
            raise self.unsupported(node, f"parameter {node['name']!r} without a value")
        return self.expr(param["default"], target, Scope())

    def _ExpressionRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        target = self.package.included(lib, node["libraryName"]) if "libraryName" in node else lib
        stmt = target.defines.get(node["name"])
        if stmt is None:
            raise ElmError(f"{target.name} has no define {node['name']!r} (at {self._here()})")
        expression = stmt["expression"]
        if (
            expression.get("type") == "SingletonFrom"
            and expression["operand"].get("type") == "Retrieve"
            and type_name(expression["operand"]["dataType"]) == "json"
            and expression["operand"]["dataType"].endswith("}Patient")
        ):
            return Sql("_pt.res", "json")  # define "Patient": singleton from [Patient]
        define = self.define(target, node["name"])
        corr = "d_.center = _pt.center AND d_.patient_id = _pt.patient_id"
        if define.result.is_list:
            return replace(define.result, parts=(), text=f"SELECT d_.v FROM {define.table} d_ WHERE {corr}")
        return replace(define.result, parts=(), text=f"(SELECT d_.v FROM {define.table} d_ WHERE {corr})")

    def _OperandRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if node["name"] not in scope.operands:
            raise self.unsupported(node, f"operand {node['name']!r}")
        return scope.operands[node["name"]]

    def _AliasRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if node["name"] not in scope.aliases:
            raise self.unsupported(node, f"alias {node['name']!r}")
        return scope.aliases[node["name"]]

    def _QueryLetRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if node["name"] not in scope.lets:
            raise self.unsupported(node, f"let {node['name']!r}")
        return scope.lets[node["name"]]

    def _IdentifierRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if scope.element is None:
            raise self.unsupported(node, f"identifier {node['name']!r}")
        if node["name"] == "$this":  # ``sort by start of $this``: the element itself
            return scope.element
        return self._path(scope.element, node["name"], node)

    def _ValueSetRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        target = self.package.included(lib, node["libraryName"]) if "libraryName" in node else lib
        if node["name"] not in target.valuesets:
            raise ElmError(f"{target.name} declares no value set {node['name']!r}")
        return Sql(sql_str(target.valuesets[node["name"]]), "ValueSet")

    def _CodeRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """A declared code: its system is the code system it names (perhaps an included library's, as
        ``code "Once daily": '229797004' from QICoreCommon."SNOMEDCT"``), with that system's version."""
        target = self.package.included(lib, node["libraryName"]) if "libraryName" in node else lib
        if node["name"] not in target.codes:
            raise ElmError(f"{target.name} declares no code {node['name']!r}")
        code = target.codes[node["name"]]
        ref = code["codeSystem"]
        owner = self.package.included(target, ref["libraryName"]) if "libraryName" in ref else target
        if ref["name"] not in owner.codesystems:
            raise ElmError(f"{owner.name} declares no code system {ref['name']!r}")
        system = owner.codesystems[ref["name"]]

        def text(v: str | None) -> str:
            return sql_str(v) if v is not None else "CAST(NULL AS VARCHAR)"

        return Sql(
            f"struct_pack(system := {text(system['id'])}, code := {text(code['id'])}, "
            f"version := {text(system.get('version'))}, display := {text(code.get('display'))})",
            "Code",
        )

    # retrieve -----------------------------------------------------------------------------------------

    def _Retrieve(self, node: Node, lib: Library, scope: Scope) -> Sql:
        resource = node["dataType"].rsplit("}", 1)[-1]
        if resource == "Patient":
            return Sql("SELECT _pt.res AS v", "json", True)
        flat = re.sub(r"(?<!^)(?=[A-Z])", "_", resource).lower()
        conds = ["f_.center = _pt.center", "f_.patient_id = _pt.patient_id"]
        if resource in NO_SUBJECT:  # no patient compartment: every one of the patient's data set
            conds = ["f_.center = _pt.center"]
        constraint = CONSTRAINT_PROFILES.get(node.get("templateId", ""))
        if constraint is not None:
            conds.append(constraint("f_"))
        if "codes" in node:
            prop = node.get("codeProperty")
            if not prop:
                raise self.unsupported(node, f"Retrieve of {resource} with codes but no codeProperty")
            element = (
                f"coalesce(json_extract(r_.resource, '$.{prop}'), "
                f"json_extract(r_.resource, '$.{prop}CodeableConcept'))"
            )
            conds.append(self._code_filter(node["codes"], lib, scope, f"cql_concept({element})", node))
        for key in ("dateFilter", "otherFilter", "include"):
            if node.get(key):
                raise self.unsupported(node, f"Retrieve {key}")
        text = (
            f"SELECT r_.resource AS v FROM flat.{flat} f_ JOIN resources r_ ON r_.center = f_.center "
            f"AND r_.type = {sql_str(resource)} AND r_.id = f_.id WHERE " + " AND ".join(conds)
        )
        return Sql(text, "json", True, profile=node.get("templateId", ""))

    def _code_filter(self, codes: Node, lib: Library, scope: Scope, concept: str, node: Node) -> str:
        if codes.get("type") == "ValueSetRef":
            return self._concept_in_valueset(concept, self.expr(codes, lib, scope).text)
        wanted = self.as_list(codes, lib, scope)
        if wanted.type not in ("Code", "any") and not wanted.type.startswith("List"):
            raise self.unsupported(node, f"Retrieve codes of type {wanted.type}")
        return (
            f"EXISTS (SELECT 1 FROM (SELECT unnest({concept}) AS c_) u_, ({wanted.text}) w_ "
            f"WHERE u_.c_.system = w_.v.system AND u_.c_.code = w_.v.code)"
        )

    def _concept_in_valueset(self, concept: str, valueset: str) -> str:
        """Some code of ``concept`` is in the value set: the value set's codes are one uncorrelated
        list (computed once per statement), so the test is a plain expression on each row."""
        codes = (
            f"(SELECT list(vs_.system || '|' || vs_.code) FROM {self.valueset_table} vs_ "
            f"WHERE vs_.valueset = {valueset})"
        )
        return (
            f"coalesce(list_has_any(list_transform({concept}, lambda c_: c_.system || '|' || c_.code), "
            f"{codes}), FALSE)"
        )

    # queries ------------------------------------------------------------------------------------------

    def _Query(self, node: Node, lib: Library, scope: Scope) -> Sql:
        single = self._singleton_query(node, lib, scope)
        if single is not None:
            return single
        return self._list_query(node, lib, scope)

    def _singleton_query(self, node: Node, lib: Library, scope: Scope) -> Sql | None:
        """A query over one single value (``(end of X) d return ...``, or over a function's resource
        operand) as a lambda over a one-element list (none when the value is null), not a correlated
        subquery; None when the query
        needs the general translation (lets: nested lambdas of a long let chain exhaust DuckDB's memory,
        so lets are LATERAL columns of the general translation)."""
        if (
            len(node["source"]) != 1
            or node.get("relationship")
            or node.get("sort")
            or node.get("aggregate")
            or node.get("let")
            or self._over_a_list(node)
        ):
            return None
        src = node["source"][0]
        value = self.expr(src["expression"], lib, scope)
        if value.is_list or (value.type == "json" and not self._single_resource(src["expression"])):
            return None
        param = self._alias(src["alias"])
        inner = Scope(
            {**scope.aliases, src["alias"]: Sql(param, value.type, fields=value.fields)},
            dict(scope.lets),
            scope.operands,
            scope.element,
        )
        ret = (
            self.scalar(node["return"]["expression"], lib, inner)
            if node.get("return")
            else inner.aliases[src["alias"]]
        )
        cond = self.scalar(node["where"], lib, inner, "Boolean").text if node.get("where") else None
        body = f"CASE WHEN {cond} THEN {ret.text} END" if cond else ret.text
        if "SELECT" in body:
            return None
        # a query over a null source is null (CQL, FHIR-40225; the reference engine's Query): no element
        # of the list, so [1] is null. QICoreCommon's prevalenceInterval() of an Observation (2025
        # AHAOverall, a union of Observations and Conditions) reaches ``(end of abatementInterval())
        # abatementDate return ...`` with no abatement: null, not Interval[null, null).
        return Sql(
            f"list_transform(list_filter([{value.text}], lambda {param}: {param} IS NOT NULL), "
            f"lambda {param}: {body})[1]",
            ret.type,
            fields=ret.fields,
        )

    @staticmethod
    def _over_a_list(node: Node) -> bool:
        """The ELM says this Query ranges over a list although its source may compile as one FHIR value:
        a source's result type is a list, or a source is the translator's ``$this`` (the form a path
        over a repeating element takes: ``T.statusReason`` -> ``T.statusReason $this return
        ToConcept($this)``). Such a query is a list of every item, never the first item alone."""
        return any(
            src.get("alias") == "$this" or result_type(src["expression"]).startswith("List<")
            for src in node["source"]
        )

    @staticmethod
    def _single_resource(node: Node) -> bool:
        """The ELM declares one FHIR value (a resource operand or alias), not a list of them."""
        name = node.get("resultTypeName")
        return isinstance(name, str) and name.startswith(FHIR)

    def _list_query(self, node: Node, lib: Library, scope: Scope, flatten: bool = False) -> Sql:
        """The general translation of a Query. ``flatten``: the query is the operand of ``Flatten``, so a
        return that is a list for each source element may be flattened here (a list of lists has no
        other representation)."""
        inner = Scope(dict(scope.aliases), dict(scope.lets), scope.operands, scope.element)
        froms, columns = [], []
        all_scalar = not self._over_a_list(node)
        for src in node["source"]:
            s = self.expr(src["expression"], lib, inner)
            # the translator writes a `$this` source only for a path through a list-valued element
            all_scalar = all_scalar and not s.is_list and src["alias"] != "$this"
            s = self.listify(s)
            alias = self._alias(src["alias"])
            froms.append(f"({s.text}) {alias}")
            columns.append(alias)
            inner.aliases[src["alias"]] = Sql(f"{alias}.v", s.type, fields=s.fields, profile=s.profile)
        if node.get("let"):
            # each let is a column of one more projection over the sources (one layer per let, every
            # layer aliased alike): later lets and the body read the column, not the expression's text
            # (a let chain read several times would grow the SQL exponentially). LATERAL one-row
            # subqueries did the same but DuckDB's decorrelation of a LATERAL chain took over a second
            # per row of CumulativeMedicationDuration's twelve lets.
            layer = self._alias("q")
            rows = f"SELECT {', '.join(f'{a}.v AS {a}' for a in columns)} FROM {', '.join(froms)}"
            for src, a in zip(node["source"], columns, strict=True):
                inner.aliases[src["alias"]] = replace(inner.aliases[src["alias"]], text=f"{layer}.{a}")
            for let in node["let"]:
                value = self.expr(let["expression"], lib, inner)
                if value.is_list:
                    # a list let (``claim: [Claim] C where ...``): one LIST column, read back by unnest
                    column = self._alias(let["identifier"])
                    order = " ORDER BY _k" if value.sorted else ""
                    items = f"(SELECT list(v{order}) FROM ({value.text}))"
                    rows = f"SELECT *, {items} AS {column} FROM ({rows}) {layer}"
                    col = f"{layer}.{column}"
                    read = f"SELECT unnest({col}) AS v" + (
                        f", unnest(range(1, len({col}) + 1)) AS _k" if value.sorted else ""
                    )
                    inner.lets[let["identifier"]] = replace(value, parts=(), text=read)
                    continue
                if not _costly(value):
                    inner.lets[let["identifier"]] = value
                    continue
                column = self._alias(let["identifier"])
                rows = f"SELECT *, {value.text} AS {column} FROM ({rows}) {layer}"
                inner.lets[let["identifier"]] = replace(value, parts=(), text=f"{layer}.{column}")
            froms = [f"({rows}) {layer}"]
        conds = []
        for rel in node.get("relationship", []):
            r = self.as_list(rel["expression"], lib, inner)
            alias = self._alias(rel["alias"])
            rel_scope = Scope(
                {**inner.aliases, rel["alias"]: Sql(f"{alias}.v", r.type, fields=r.fields)},
                inner.lets,
                inner.operands,
            )
            such = self.scalar(rel["suchThat"], lib, rel_scope, "Boolean").text
            exists = f"EXISTS (SELECT 1 FROM ({r.text}) {alias} WHERE {such})"
            if rel["type"] == "With":
                conds.append(exists)
            elif rel["type"] == "Without":
                conds.append(f"NOT {exists}")
            else:
                raise self.unsupported(rel)
        if node.get("where"):
            conds.append(f"({self.scalar(node['where'], lib, inner, 'Boolean').text})")
        if node.get("aggregate"):
            raise self.unsupported(node, "Query aggregate")
        distinct = ""
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        if node.get("return"):
            ret = self.expr(node["return"]["expression"], lib, inner)
            distinct = "DISTINCT " if node["return"].get("distinct", True) else ""
            if ret.is_list:
                return self._list_return(node, ret, froms, where, all_scalar, flatten)
        elif len(node["source"]) == 1:
            ret = next(iter(inner.aliases[s["alias"]] for s in node["source"]))
        else:
            raise self.unsupported(node, "multi-source Query without return")
        select = f"{ret.text} AS v"
        is_sorted = False
        if node.get("sort"):
            keys = []
            for by in node["sort"]["by"]:
                direction = "DESC" if by.get("direction", "asc").lower().startswith("desc") else "ASC"
                if by["type"] == "ByDirection":
                    key = ret
                elif by["type"] == "ByExpression":
                    key = self.scalar(by["expression"], lib, replace(inner, element=ret))
                elif by["type"] == "ByColumn":
                    key = self._path(ret, by["path"], by)
                else:
                    raise self.unsupported(by)
                key = self.coerce(key, "DateTime") if key.type == "json" else key
                keys.append(f"{key.text} {direction} NULLS FIRST")
            if len(keys) != 1:
                raise self.unsupported(node, "sort by more than one key")
            select += f", {keys[0].rsplit(' ', 3)[0]} AS _k"
            direction = keys[0].split(" ")[-3]
            is_sorted = direction
        text = f"SELECT {distinct}{select} FROM {', '.join(froms)}{where}"
        if is_sorted == "DESC":  # keep _k ascending: negate by ranking
            text = f"SELECT v, -row_number() OVER (ORDER BY _k ASC NULLS FIRST) AS _k FROM ({text})"
        out = Sql(text, ret.type, True, bool(is_sorted), ret.fields, profile=ret.profile)
        if flatten:  # each element a FHIR element that may repeat (``claim.item``): its items
            if ret.type != "json" or is_sorted:
                raise self.unsupported(node, f"Flatten of a list of {ret.type}")
            return Sql(f"SELECT unnest(fhir_items(f_.v)) AS v FROM ({text}) f_", "json", True)
        if all_scalar and not node.get("sort") and not self._over_a_list(node):
            return Sql(f"(SELECT v FROM ({text}) LIMIT 1)", ret.type, False, False, ret.fields)
        return out

    def _list_return(
        self, node: Node, ret: Sql, froms: list[str], where: str, all_scalar: bool, flatten: bool
    ) -> Sql:
        """A Query whose return is a list. Over single values (``encounter E let ... return claim.diagnosis
        D where ...``) the query's value is that list; over lists, a list for each element, which only
        ``Flatten`` can take (flattened here: the lists' elements in turn)."""
        if node.get("sort") or node.get("aggregate"):
            raise self.unsupported(node, "sorted Query returning a list")
        if not all_scalar and not flatten:
            raise self.unsupported(node, "Query returning a list for each element (a list of lists)")
        if not all_scalar and node["return"].get("distinct", True):
            raise self.unsupported(node, "distinct list of lists")
        r = self._alias("ret")
        key = f", {r}._k" if ret.sorted and all_scalar else ""
        text = f"SELECT {r}.v{key} FROM {', '.join(froms)}, LATERAL ({ret.text}) {r}{where}"
        return Sql(text, ret.type, True, bool(key), ret.fields, profile=ret.profile)

    def _Flatten(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``Flatten`` of a list of lists: of a Query returning a list (or a repeating FHIR element) for
        each element, or of a list of FHIR elements (each an array or one value: its items)."""
        operand = node["operand"]
        if operand.get("type") == "Query":
            return self._list_query(operand, lib, scope, flatten=True)
        src = self.as_list(operand, lib, scope)
        if src.type != "json":
            raise self.unsupported(node, f"Flatten of a list of {src.type}")
        return Sql(f"SELECT unnest(fhir_items(f_.v)) AS v FROM ({src.text}) f_", "json", True)

    # properties, choices, types -------------------------------------------------------------------------

    def _Property(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if "scope" in node:
            if node["scope"] not in scope.aliases:
                raise self.unsupported(node, f"alias {node['scope']!r}")
            source = scope.aliases[node["scope"]]
        else:
            source = self.expr(node["source"], lib, scope)
        out = source
        for part in node["path"].split("."):
            out = self._path(out, part, node)
        return out

    def _path(self, source: Sql, part: str, node: Node) -> Sql:
        if source.is_list:
            raise self.unsupported(node, f"property {part!r} of a list")
        if source.type == "json" or source.type == "any":
            if part == "value":
                return Sql(f"fhir_value({source.text})", "json")
            return Sql(f"fhir_get({source.text}, {sql_str(part)})", "json")
        if source.type.startswith("Interval<"):
            mapped = {"low": "lo", "high": "hi", "lowClosed": "lc", "highClosed": "hc"}.get(part)
            if mapped:
                t = _point_type(source.type) if mapped in ("lo", "hi") else "Boolean"
                return Sql(source.part(mapped), t)
        if source.fields and part not in dict(source.fields):
            # a property of a choice value: read it from every alternative that has it (a choice again)
            picks = []
            for name, t in source.fields:
                if t.startswith("Interval<") and part in ("low", "high"):
                    pt = _point_type(t)
                    picks.append((_field(pt), pt, f"{source.part(name)}.{'lo' if part == 'low' else 'hi'}"))
            if not picks:  # no alternative has it: the property is null
                return Sql("NULL")
            body = ", ".join(f"{n} := {v}" for n, _, v in picks)
            return Sql(
                f"struct_pack({body})",
                "Choice",
                fields=tuple((n, t) for n, t, _ in picks),
                parts=tuple((n, v) for n, _, v in picks),
            )
        if source.type in ("Code", "Quantity", "Tuple") or source.fields:
            known = {
                "Quantity": {"value": "Decimal", "unit": "String"},
                "Code": {"system": "String", "code": "String", "version": "String", "display": "String"},
            }
            t = dict(source.fields).get(part) or known.get(source.type, {}).get(part, "any")
            if t.startswith("List<"):  # a tuple element holding a list (see _tuple_element)
                return Sql(f'SELECT unnest(({source.text})."{_field(part)}") AS v', t[5:-1], True)
            # a tuple element's name may be an SQL keyword (``when``): quoted
            return Sql(f"({source.text})." + (f'"{_field(part)}"' if source.fields else part), t)
        if source.type == "Concept" and part == "codes":
            return Sql(f"SELECT unnest({source.text}) AS v", "Code", True)
        raise self.unsupported(node, f"property {part!r} of {source.type}")

    def _choice_key(self, node: Node) -> str:
        t = node.get("asType") or node.get("isType")
        spec = node.get("asTypeSpecifier") or node.get("isTypeSpecifier")
        named = spec.get("name", "") if isinstance(spec, dict) and not t else ""
        if named.startswith(FHIR) and named[len(FHIR) :] in RESOURCE_TYPES:  # `is FHIR.Condition`
            t = named
        return type_name(t if t else spec) if not (t or "").startswith(FHIR) else "FHIR:" + t[len(FHIR) :]

    def _As(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._cast(node, lib, scope, test=False)

    def _Is(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._cast(node, lib, scope, test=True)

    def _cast(self, node: Node, lib: Library, scope: Scope, *, test: bool) -> Sql:
        key = self._choice_key(node)
        operand = node["operand"]
        if key.startswith("FHIR:") and self._to_value_of_element(operand, lib):
            # FHIRHelpers.ToValue(X.p) as FHIR.Reference: ToValue returns a FHIR type it has no CQL
            # conversion for (Reference ...) unchanged, so this is the choice element X.pReference
            operand = operand["operand"][0]
        if key.startswith("FHIR:") and operand.get("type") == "Property":
            # X.value as FHIR.CodeableConcept -> the choice element X.valueCodeableConcept
            fhir_type = key[5:]
            prop = dict(operand, path=operand["path"] + fhir_type[:1].upper() + fhir_type[1:])
            got = self._Property(prop, lib, scope)
            return Sql(f"({got.text} IS NOT NULL)", "Boolean") if test else got
        src = self.expr(operand, lib, scope)
        if key == "Choice" and not test and src.type == "json" and operand.get("path", "").endswith("value"):
            # a FHIR primitive's value (System type) seen as a choice: the first primitive alternative
            spec = node.get("asTypeSpecifier", {})
            alternatives = [type_name(c) for c in spec.get("choice", [])]
            primitive = next((t for t in alternatives if t in _PRIMITIVES), None)
            if primitive:
                return self.choice_of(self.coerce(src, primitive))
        if key == "Choice" and not test and (src.fields or src.type == "json"):
            return src
        if src.is_list and key.startswith("List<") and not test:
            # a list as a list type (``As List<Choice<Tuple ...>>`` around a union's operands): the
            # elements keep their representation (a tuple's fields are not a choice's alternatives)
            return src
        if src.fields:  # a CQL choice value
            name = _field(key)
            if name not in dict(src.fields):
                return Sql("FALSE", "Boolean") if test else Sql("NULL", key)
            return Sql(f"({src.part(name)} IS NOT NULL)", "Boolean") if test else Sql(src.part(name), key)
        if test:
            if src.text == "NULL":
                return Sql("FALSE", "Boolean")
            if key.startswith("FHIR:") and key[5:] in RESOURCE_TYPES and src.type == "json":
                # a resource is of a resource type by its resourceType (a Choice<AllergyIntolerance,
                # Condition> operand is one or the other: 2025 CMS145 overlapsAfterDayOfEncounter)
                return Sql(
                    f"(json_extract_string({src.text}, '$.resourceType') = {sql_str(key[5:])})", "Boolean"
                )
            if src.type == key or (key.startswith("FHIR:") and src.type == "json"):
                return Sql(f"({src.text} IS NOT NULL)", "Boolean")
            if src.type in _SQL_TYPES and key in _SQL_TYPES:  # statically another type: never
                return Sql("FALSE", "Boolean")
            raise self.unsupported(node, f"Is {key} on {src.type}")
        if src.text == "NULL":
            return Sql("NULL", key if not key.startswith("FHIR:") else "json")
        if key == "Choice" and src.type not in ("json", "any"):  # a value seen as a choice of types
            return self.choice_of(src)
        if key.startswith("FHIR:") or key.startswith("List<") or src.type in (key, "any"):
            return src if src.type != "any" else replace(src, type=key)
        if {key, src.type} == {"Date", "DateTime"}:
            return Sql(f"CAST({src.text} AS {'DATE' if key == 'Date' else 'TIMESTAMP'})", key)
        if src.type in _SQL_TYPES and key in _SQL_TYPES:  # statically another type: null
            return Sql(f"CAST(NULL AS {_SQL_TYPES[key]})", key)
        raise self.unsupported(node, f"As {key} on {src.type}")

    def _to_value_of_element(self, node: Node, lib: Library) -> bool:
        """``node`` is ``FHIRHelpers.ToValue(<property>)``."""
        if node.get("type") != "FunctionRef" or node.get("name") != "ToValue" or "libraryName" not in node:
            return False
        operands = node.get("operand", [])
        return (
            self.package.included(lib, node["libraryName"]).name == "FHIRHelpers"
            and len(operands) == 1
            and operands[0].get("type") == "Property"
        )

    def choice_of(self, value: Sql) -> Sql:
        """``value`` as a CQL choice: the one STRUCT type of every choice here, with only the field of
        the value's own type set (so every branch of a CASE over choices has the same type)."""
        parts = tuple(
            (f, value.text if t == value.type else f"CAST(NULL AS {_SQL_TYPES[t]})") for f, t in _VALUE_FIELDS
        )
        text = "cql_choice(struct_pack(" + ", ".join(f"{f} := {v}" for f, v in parts) + "))"
        return Sql(text, "Choice", fields=_VALUE_FIELDS, parts=parts)

    # functions ----------------------------------------------------------------------------------------

    def _FunctionRef(self, node: Node, lib: Library, scope: Scope) -> Sql:
        lib_alias = node.get("libraryName")
        target = self.package.included(lib, lib_alias) if lib_alias else lib
        args = [self.expr(a, lib, scope) for a in node.get("operand", [])]
        if target.name == "FHIRHelpers":
            return self._fhirhelpers(node, args, lib, scope)
        defs = [d for d in target.functions.get(node["name"], []) if len(d.get("operand", [])) == len(args)]
        if len(defs) > 1:
            # overloads by their exact declared types first (Procedure vs AllergyIntolerance: both are
            # FHIR JSON here, so the compiler's own type names cannot tell them apart)
            sig = [_spec_key(s) for s in node.get("signature", [])]
            exact = [
                d for d in defs if [_spec_key(o.get("operandTypeSpecifier")) for o in d["operand"]] == sig
            ]
            sig = [type_name(s) for s in node.get("signature", [])]
            defs = exact or [
                d for d in defs if [type_name(o.get("operandTypeSpecifier")) for o in d["operand"]] == sig
            ]
            if len(defs) > 1:
                defs = _by_profile(defs, args)
            if len(defs) != 1:
                raise self.unsupported(node, f"ambiguous overload of {target.name}.{node['name']}")
        if not defs:
            raise self.unsupported(node, f"function {target.name}.{node['name']}")
        fdef = defs[0]
        if fdef.get("external") or "expression" not in fdef:
            raise self.unsupported(node, f"external function {target.name}.{node['name']}")
        for i, (param, arg_node) in enumerate(zip(fdef["operand"], node.get("operand", []), strict=True)):
            # a FHIR choice element passed as a Choice operand: its CQL value (FHIRHelpers.ToValue)
            spec = param.get("operandTypeSpecifier", {})
            if (
                spec.get("type") == "ChoiceTypeSpecifier"
                and arg_node.get("type") == "Property"
                and (args[i].type == "json")
            ):
                args[i] = self._to_value({"operand": [arg_node]}, args[i], lib, scope)
            elif (
                spec.get("type") == "ChoiceTypeSpecifier"
                and not args[i].is_list
                and not args[i].fields
                and args[i].type in dict((t, f) for f, t in _VALUE_FIELDS)
            ):
                # a CQL value of one known type passed as a Choice operand: a choice with that
                # alternative set, so the body's other alternatives (``choice.low`` ...) are null
                args[i] = self.choice_of(args[i])
        memo = self._resource_function(node, target, fdef, args)
        if memo is not None:
            return memo
        names = [o["name"] for o in fdef["operand"]]
        big = [(n, a) for n, a in zip(names, args, strict=True) if not a.is_list and _costly(a)]
        if not big:
            return self.expr(fdef["expression"], target, Scope(operands=dict(zip(names, args, strict=True))))
        # a large scalar argument is computed once, as a column of a one-row subquery the body reads
        alias = f"f{next(self._ids)}_"
        operands = dict(zip(names, args, strict=True))
        for n, a in big:
            operands[n] = replace(a, parts=(), text=f"{alias}.{_field(n)}")
        body = self.expr(fdef["expression"], target, Scope(operands=operands))
        if len(big) == 1 and not body.is_list and "SELECT" not in body.text:
            # one large argument, a body without subqueries: a lambda binds it (nothing to decorrelate)
            [(n, a)] = big
            param = f"{alias}{_field(n)}"
            operands[n] = replace(a, parts=(), text=param)
            body = self.expr(fdef["expression"], target, Scope(operands=operands))
            return replace(body, parts=(), text=f"list_transform([{a.text}], lambda {param}: {body.text})[1]")
        cols = ", ".join(f"{a.text} AS {_field(n)}" for n, a in big)
        if body.is_list:
            return replace(
                body,
                parts=(),
                text=f"SELECT {alias}_b.* FROM (SELECT {cols}) {alias}, LATERAL ({body.text}) {alias}_b",
            )
        return replace(body, parts=(), text=f"(SELECT {body.text} FROM (SELECT {cols}) {alias})")

    def _resource_function(self, node: Node, target: Library, fdef: Node, args: list[Sql]) -> Sql | None:
        """A function of one FHIR resource whose body needs no patient context (CumulativeMedicationDuration's
        ``medicationRequestPeriod``: a chain of lets over the request) is computed once per resource, as a
        relation ``(center, id, v)`` over every resource of that type, like a define; each call reads its
        argument's row. Inlined at every call, such a body is re-evaluated per use, per enclosing row.
        None where the function does not qualify (then it is inlined): another operand shape, a list
        result, a body without subqueries (cheap to inline) or one that reads the patient in context."""
        operands = fdef.get("operand", [])
        spec = operands[0].get("operandTypeSpecifier", {}) if len(operands) == 1 else {}
        name = spec.get("name", "") if spec.get("type") == "NamedTypeSpecifier" else ""
        resource = name[len(FHIR) :] if name.startswith(FHIR) else ""
        if resource not in RESOURCE_TYPES or args[0].is_list or args[0].type != "json":
            return None
        overload = target.functions[fdef["name"]].index(fdef)
        key = (target.name, target.version, fdef["name"], overload)
        if key not in self._memo:
            self._memo[key] = self._compile_resource_function(target, fdef, resource, overload)
        memo = self._memo[key]
        if memo is None:
            return None
        m = f"m{next(self._ids)}_"
        lookup = (
            f"(SELECT {m}.v FROM {memo.table} {m} WHERE {m}.center = {self._center} "
            f"AND {m}.id = ({args[0].text}->>'id'))"
        )
        return replace(memo.result, text=lookup)

    def _compile_resource_function(
        self, target: Library, fdef: Node, resource: str, overload: int
    ) -> Define | None:
        res = f"r{next(self._ids)}_"
        saved, self._center = self._center, f"{res}.center"
        self._where.append(f"{target.name}.{fdef['name']}")
        try:
            operand = Sql(f"{res}.resource", "json")
            body = self.expr(
                fdef["expression"], target, Scope(operands={fdef["operand"][0]["name"]: operand})
            )
        finally:
            self._where.pop()
            self._center = saved
        if body.is_list or "SELECT" not in body.text or re.search(r"\b_pt\b", body.text):
            return None
        name = f"{target.name}_{fdef['name']}" + (f"_{overload}" if overload else "")
        table = "elm_fn_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        sql = (
            f"SELECT {res}.center, {res}.id, ({body.text}) AS v FROM resources {res} "
            f"WHERE {res}.type = {sql_str(resource)} AND {res}.center IN (SELECT center FROM {_PATIENTS})"
        )
        define = Define(table, sql, replace(body, sorted=False, parts=()))
        self.order.append(define)
        return define

    def _fhirhelpers(self, node: Node, args: list[Sql], lib: Library, scope: Scope) -> Sql:
        name = node["name"]
        if len(args) != 1:
            raise self.unsupported(node, f"FHIRHelpers.{name}")
        [a] = args
        simple = {
            "ToString": "String",
            "ToBoolean": "Boolean",
            "ToDate": "Date",
            "ToDateTime": "DateTime",
            "ToInteger": "Integer",
            "ToDecimal": "Decimal",
            "ToConcept": "Concept",
            "ToCode": "Code",
            "ToQuantity": "Quantity",
            "ToQuantityIgnoringComparator": "Quantity",
        }
        if name in simple:
            return self.coerce(a, simple[name])
        if name == "ToInterval":
            sig = [type_name(s) for s in node.get("signature", [])]
            if a.type == "json" and sig in ([], ["json"]):
                return Sql(f"cql_period({a.text})", "Interval<DateTime>")
            raise self.unsupported(node, "FHIRHelpers.ToInterval of a Range")
        if name == "ToValue":
            return self._to_value(node, a, lib, scope)
        raise self.unsupported(node, f"FHIRHelpers.{name}")

    def _to_value(self, node: Node, a: Sql, lib: Library, scope: Scope) -> Sql:
        """FHIRHelpers.ToValue of a choice element ``X.p``: a CQL choice with one field per CQL type,
        read from the element's typed keys (``pDateTime``, ``pPeriod`` ...; macro ``cql_value``)."""
        operand = node["operand"][0]
        if operand.get("type") == "IdentifierRef" and scope.element is not None and a.type == "json":
            # ``sort by X.toInterval()``: the sort key reads element X of the row being sorted
            holder, prop = scope.element.text, operand["name"]
            parts = tuple(_value_parts(holder, lambda sfx: sql_str(f"$.{prop}{sfx}")))
            return Sql(f"cql_value({holder}, {sql_str(prop)})", "Choice", fields=_VALUE_FIELDS, parts=parts)
        if operand.get("type") != "Property" or a.type != "json":
            raise self.unsupported(node, "FHIRHelpers.ToValue of a non-element")
        path = operand["path"].split(".")
        holder_node = {k: v for k, v in operand.items() if k != "path"}
        if len(path) > 1:
            holder_node["path"] = ".".join(path[:-1])
            holder = self._Property(holder_node, lib, scope).text
        elif "scope" in operand:
            holder = self._AliasRef({"name": operand["scope"]}, lib, scope).text
        else:
            holder = self.scalar(operand["source"], lib, scope).text
        prop = path[-1]

        parts = tuple(_value_parts(holder, lambda sfx: sql_str(f"$.{prop}{sfx}")))
        return Sql(f"cql_value({holder}, {sql_str(prop)})", "Choice", fields=_VALUE_FIELDS, parts=parts)

    # lists --------------------------------------------------------------------------------------------

    def _List(self, node: Node, lib: Library, scope: Scope) -> Sql:
        items = [self.scalar(e, lib, scope) for e in node.get("element", [])]
        t = items[0].type if items else "any"
        if not items:
            return Sql("SELECT NULL AS v WHERE FALSE", t, True)
        return Sql(f"SELECT unnest([{', '.join(i.text for i in items)}]) AS v", t, True)

    def _ToList(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self.listify(self.scalar(node["operand"], lib, scope))

    def _Exists(self, node: Node, lib: Library, scope: Scope) -> Sql:
        one = self.expr(node["operand"], lib, scope)
        return Sql(f"EXISTS ({self.listify(one).text})", "Boolean")

    def _Count(self, node: Node, lib: Library, scope: Scope) -> Sql:
        one = self.expr(node["source"], lib, scope)
        if not one.is_list and one.type == "json":  # a FHIR element: its items, no subquery
            return Sql(f"len(fhir_items({one.text}))", "Integer")
        src = self.listify(one)
        return Sql(f"(SELECT count(v) FROM ({src.text}))", "Integer")

    def _aggregate(self, node: Node, lib: Library, scope: Scope, fn: str) -> Sql:
        """Min / Max / Sum of a list of numbers or date/times: nulls ignored, an empty list is null
        (SQL's own aggregate semantics); other element types (Quantity ...) are not compiled yet."""
        src = self.listify(self.expr(node["source"], lib, scope))
        t = result_type(node)
        if t == "any":  # an ELM without result types: the element type of the list
            t = src.type
        if t not in ("Integer", "Decimal", "DateTime", "Date") or (
            fn == "sum" and t not in ("Integer", "Decimal")
        ):
            raise self.unsupported(node, f"{node['type']} of {t}")
        return Sql(f"(SELECT {fn}(v) FROM ({src.text}))", t)

    def _Min(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._aggregate(node, lib, scope, "min")

    def _Max(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._aggregate(node, lib, scope, "max")

    def _Sum(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._aggregate(node, lib, scope, "sum")

    def _SingletonFrom(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``singleton from``: the only element, null for an empty list; more than one element is a
        run-time error in CQL (the reference engines raise it and evaluate nothing more for the
        patient), so the run stops with DuckDB ``error()`` naming the define, never a value chosen."""
        one = self.expr(node["operand"], lib, scope)
        loc = f" (line {node['locator']})" if "locator" in node else ""
        error = f"error({sql_str(f'singleton from: more than one element at {self._here()}{loc}')})"
        if not one.is_list and one.type == "json":  # a FHIR element: its only item, no subquery
            return Sql(
                self.bind(
                    one,
                    lambda j: (
                        f"(CASE WHEN len(fhir_items({j.text})) = 1 THEN {_first(j)} "
                        f"WHEN len(fhir_items({j.text})) > 1 THEN {error} END)"
                    ),
                ),
                "json",
            )
        src = self.listify(one)
        return replace(
            src,
            parts=(),
            text=(
                f"(SELECT CASE WHEN count(*) = 1 THEN any_value(v) WHEN count(*) > 1 THEN {error} END "
                f"FROM ({src.text}))"
            ),
            is_list=False,
            sorted=False,
        )

    def _first_last(self, node: Node, lib: Library, scope: Scope, direction: str) -> Sql:
        src = self.as_list(node["source"], lib, scope)
        if not src.sorted:
            raise self.unsupported(node, f"{node['type']} of an unsorted list")
        out = replace(
            src,
            parts=(),
            text=f"(SELECT v FROM ({src.text}) ORDER BY _k {direction} NULLS FIRST LIMIT 1)",
            is_list=False,
            sorted=False,
        )
        # the ELM's signature names the list's element type where the node carries no result type:
        # First of FHIR dateTime values (``First(timing.event sort ascending)``) is a CQL DateTime
        sig = node.get("signature") or [{}]
        element = type_name(sig[0].get("elementType")) if sig[0].get("type") == "ListTypeSpecifier" else "any"
        if out.type == "json" and element in _SQL_TYPES:
            out = self.coerce(out, element)
        return out

    def _First(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._first_last(node, lib, scope, "ASC")

    def _Last(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if node["source"].get("type") == "Split":  # Last(Split(s, '/')): the tail of a reference
            split = node["source"]
            s = self.scalar(split["stringToSplit"], lib, scope, "String").text
            sep = self.scalar(split["separator"], lib, scope, "String").text
            return Sql(f"list_last(string_split({s}, {sep}))", "String")
        return self._first_last(node, lib, scope, "DESC")

    def _set_op(self, node: Node, lib: Library, scope: Scope, op: str) -> Sql:
        parts = [self.as_list(o, lib, scope) for o in node["operand"]]
        if all(p.type == "Tuple" for p in parts) and len({p.fields for p in parts}) > 1:
            parts = self._same_tuples(node, parts)
        text = f" {op} ".join(f"SELECT v FROM ({p.text})" for p in parts)
        return Sql(text, parts[0].type, True, fields=parts[0].fields)

    def _same_tuples(self, node: Node, parts: list[Sql]) -> list[Sql]:
        """Lists of tuples of different shapes (a union of ``{id, medicationStatusReason, authoredOn}`` and
        ``{id, requestStatusReason, authoredOn}``: a list of a choice of tuple types) as lists of one
        STRUCT type: every element name of any of them, null where a tuple has no such element (CQL
        reads an element a tuple type lacks as null); a FHIR value meeting a CQL type is converted."""
        names: dict[str, list[str]] = {}
        for p in parts:
            for name, t in p.fields:
                names.setdefault(name, []).append(t)
        types = {}
        for name, ts in names.items():
            known = {t for t in ts if t not in ("json", "any")}
            if len(known) > 1:
                raise self.unsupported(node, f"{node['type']} of tuples whose {name} differ in type")
            types[name] = known.pop() if known else ts[0]

        def sql_type(t: str) -> str:
            if t.startswith("List<"):
                return sql_type(t[5:-1]) + "[]"
            if t == "json":
                return "JSON"
            if t not in _SQL_TYPES:
                raise self.unsupported(node, f"{node['type']} of tuples with an element of type {t}")
            return _SQL_TYPES[t]

        out = []
        for p in parts:
            have = dict(p.fields)
            cols = []
            for name, t in types.items():
                element = f'u_.v."{name}"'
                if name not in have:
                    cols.append(f'"{name}" := CAST(NULL AS {sql_type(t)})')
                else:
                    value = self.coerce(Sql(element, have[name]), t) if have[name] != t else Sql(element)
                    cols.append(f'"{name}" := {value.text}')
            text = f"SELECT struct_pack({', '.join(cols)}) AS v FROM ({p.text}) u_"
            out.append(Sql(text, "Tuple", True, fields=tuple(types.items())))
        return out

    def _Union(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._set_op(node, lib, scope, "UNION")

    def _Intersect(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._set_op(node, lib, scope, "INTERSECT")

    def _Except(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._set_op(node, lib, scope, "EXCEPT")

    def _Distinct(self, node: Node, lib: Library, scope: Scope) -> Sql:
        src = self.as_list(node["operand"], lib, scope)
        return replace(src, parts=(), text=f"SELECT DISTINCT v FROM ({src.text})", sorted=False)

    # logic --------------------------------------------------------------------------------------------

    def _bools(self, node: Node, lib: Library, scope: Scope) -> list[str]:
        return [self.scalar(o, lib, scope, "Boolean").text for o in node["operand"]]

    def _And(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql("(" + " AND ".join(self._bools(node, lib, scope)) + ")", "Boolean")

    def _Or(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql("(" + " OR ".join(self._bools(node, lib, scope)) + ")", "Boolean")

    def _Implies(self, node: Node, lib: Library, scope: Scope) -> Sql:
        a, b = self._bools(node, lib, scope)
        return Sql(f"(NOT ({a}) OR ({b}))", "Boolean")

    def _Not(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql(f"(NOT {self.scalar(node['operand'], lib, scope, 'Boolean').text})", "Boolean")

    def _IsNull(self, node: Node, lib: Library, scope: Scope) -> Sql:
        element = self._element_query_null(node["operand"], lib, scope)
        if element is not None:
            return Sql(element, "Boolean")
        value = self.expr(node["operand"], lib, scope)
        if value.is_list:
            return Sql(f"({self._list_null(node['operand'], lib, scope)})", "Boolean")
        return Sql(f"({value.text} IS NULL)", "Boolean")

    def _element_query_null(self, node: Node, lib: Library, scope: Scope) -> str | None:
        """``X is null`` where X is a query over a FHIR element the ELM does not type (an ELM without
        result types: CMS646 ``StagingObservation.getStagingProcedure() is not null``, a query over
        ``partOf``), directly or as the body of a function of resources. FHIR JSON writes an element
        that may repeat as an array, always, so the data say which the query is: over an array, a list
        (null only when the element is absent, even if every item returns null); over one value, that
        value (null when the where clause drops it). None where ``node`` is no such query."""
        if node.get("type") == "FunctionRef" and "libraryName" in node:
            target = self.package.included(lib, node["libraryName"])
        elif node.get("type") == "FunctionRef":
            target = lib
        else:
            target = None
        if target is not None:
            defs = [
                d
                for d in target.functions.get(node["name"], [])
                if len(d.get("operand", [])) == len(node.get("operand", []))
            ]
            if target.name == "FHIRHelpers" or len(defs) != 1 or "expression" not in defs[0]:
                return None
            args = [self.expr(a, lib, scope) for a in node.get("operand", [])]
            if any(a.is_list or a.type != "json" for a in args):
                return None
            names = [o["name"] for o in defs[0]["operand"]]
            body_scope = Scope(operands=dict(zip(names, args, strict=True)))
            return self._element_query_null(defs[0]["expression"], target, body_scope)
        if (
            node.get("type") != "Query"
            or len(node["source"]) != 1
            or any(node.get(k) for k in ("let", "relationship", "sort", "aggregate"))
            or result_type(node["source"][0]["expression"]) != "any"  # the ELM types it: one value
        ):
            return None
        source = self.expr(node["source"][0]["expression"], lib, scope)
        if source.is_list or source.type != "json":
            return None
        whole = self.expr(node, lib, scope)
        if whole.is_list:
            return None
        return f"(CASE WHEN json_type({source.text}) = 'ARRAY' THEN FALSE ELSE ({whole.text}) IS NULL END)"

    def _list_null(self, node: Node, lib: Library, scope: Scope) -> str:
        """SQL: list ``node`` is null (not merely empty). A retrieve never is; a query is null when its
        one source is (``not (X.diagnosisSequence $this return $this.value) is null``: the element
        absent); other lists are not compiled here rather than answered as never null."""
        kind = node.get("type")
        if kind == "Retrieve":
            return "FALSE"
        if (
            kind == "Query"
            and len(node["source"]) == 1
            and not any(node.get(k) for k in ("let", "relationship", "where", "aggregate"))
        ):
            src = node["source"][0]["expression"]
            value = self.expr(src, lib, scope)
            return self._list_null(src, lib, scope) if value.is_list else f"{value.text} IS NULL"
        raise self.unsupported(node, f"IsNull of a list ({kind})")

    def _IsTrue(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql(f"coalesce({self.scalar(node['operand'], lib, scope, 'Boolean').text}, FALSE)", "Boolean")

    def _IsFalse(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return Sql(
            f"coalesce(NOT {self.scalar(node['operand'], lib, scope, 'Boolean').text}, FALSE)", "Boolean"
        )

    def _Coalesce(self, node: Node, lib: Library, scope: Scope) -> Sql:
        parts = [self.scalar(o, lib, scope) for o in node["operand"]]
        t = next((p.type for p in parts if p.type not in ("any", "json")), parts[0].type)
        return Sql(f"coalesce({', '.join(self.coerce(p, t).text for p in parts)})", t)

    def _If(self, node: Node, lib: Library, scope: Scope) -> Sql:
        cond = self.scalar(node["condition"], lib, scope, "Boolean").text
        a, b = self.scalar(node["then"], lib, scope), self.scalar(node["else"], lib, scope)
        t = a.type if a.type != "any" else b.type
        return Sql(
            f"(CASE WHEN {cond} THEN {self.coerce(a, t).text} ELSE {self.coerce(b, t).text} END)",
            t,
            fields=a.fields or b.fields,
        )

    def _Case(self, node: Node, lib: Library, scope: Scope) -> Sql:
        comparand = self.scalar(node["comparand"], lib, scope) if "comparand" in node else None
        whens, results = [], []
        for item in node["caseItem"]:
            if comparand is not None:
                w = self.scalar(item["when"], lib, scope)
                cond = f"{comparand.text} = {self.coerce(w, comparand.type).text}"
            else:
                cond = self.scalar(item["when"], lib, scope, "Boolean").text
            whens.append(cond)
            results.append(self.scalar(item["then"], lib, scope))
        default = self.scalar(node["else"], lib, scope)
        t = next((r.type for r in [*results, default] if r.text != "NULL"), default.type)
        fields = next((r.fields for r in [*results, default] if r.fields), ())
        if fields:  # a CASE over choices: every branch the one choice STRUCT type
            results = [r if r.fields or r.text == "NULL" else self.choice_of(r) for r in results]
        body = " ".join(
            f"WHEN {c} THEN {self.coerce(r, t).text}" for c, r in zip(whens, results, strict=True)
        )
        return Sql(f"(CASE {body} ELSE {self.coerce(default, t).text} END)", t, fields=fields)

    # comparison ---------------------------------------------------------------------------------------

    def _pair(self, node: Node, lib: Library, scope: Scope) -> tuple[Sql, Sql]:
        a, b = (self.scalar(o, lib, scope) for o in node["operand"])
        sig = [type_name(s) for s in node.get("signature", [])]
        if len(sig) == 2 and "json" not in sig and "any" not in sig:
            return self.coerce(a, sig[0]), self.coerce(b, sig[1])
        if a.type == "json" and b.type != "json":
            a = self.coerce(a, b.type)
        elif b.type == "json" and a.type != "json":
            b = self.coerce(b, a.type)
        if a.type == "Date" and b.type == "DateTime":
            a = self.coerce(a, "DateTime")
        elif b.type == "Date" and a.type == "DateTime":
            b = self.coerce(b, "DateTime")
        return a, b

    def _compare(self, node: Node, lib: Library, scope: Scope, op: str) -> Sql:
        a, b = self._pair(node, lib, scope)
        if a.type == "Quantity" and b.type == "Quantity":
            # CQL compares quantities of one dimension after converting one to the other's unit, and
            # quantities whose units do not convert (% and kg/m2, or a unit _UCUM does not list) are
            # incomparable: null, never an error. cql_convert is the one conversion (null then).
            def test(x: Sql, y: Sql) -> str:
                return f"({x.text}.value {op} (cql_convert({y.text}, {x.text}.unit)).value)"

            return Sql(self.bind(a, lambda x: self.bind(b, lambda y: test(x, y))), "Boolean")
        if a.type == "Code" and b.type == "Code" and op in ("=", "<>"):
            eq = f"cql_code_eq({a.text}, {b.text})"
            return Sql(eq if op == "=" else f"(NOT {eq})", "Boolean")
        if a.type in ("Code", "Concept", "Quantity", "Tuple", "Choice") or a.type.startswith("Interval"):
            raise self.unsupported(node, f"{node['type']} of {a.type}")
        return Sql(f"({a.text} {op} {b.text})", "Boolean")

    def _Equal(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, "=")

    def _NotEqual(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, "<>")

    def _Less(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, "<")

    def _LessOrEqual(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, "<=")

    def _Greater(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, ">")

    def _GreaterOrEqual(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._compare(node, lib, scope, ">=")

    def _Equivalent(self, node: Node, lib: Library, scope: Scope) -> Sql:
        a, b = self._pair(node, lib, scope)
        if a.type == "json":
            a = self.coerce(a, "Concept" if b.type in ("Code", "Concept") else "String")
        if b.type == "json":
            b = self.coerce(b, "Concept" if a.type in ("Code", "Concept") else "String")
        if {a.type, b.type} <= {"Code", "Concept"}:
            la = a.text if a.type == "Concept" else f"[{a.text}]"
            lb = b.text if b.type == "Concept" else f"[{b.text}]"
            text = (
                f"coalesce(len(list_filter({la}, lambda x_: len(list_filter({lb}, "
                f"lambda y_: x_.system = y_.system AND x_.code = y_.code)) > 0)) > 0, FALSE)"
            )
            return Sql(text, "Boolean")
        if a.type == "String":
            same = f"lower(trim({a.text})) = lower(trim({b.text}))"
            return Sql(f"coalesce({same}, {a.text} IS NULL AND {b.text} IS NULL)", "Boolean")
        return Sql(f"({a.text} IS NOT DISTINCT FROM {b.text})", "Boolean")

    # membership ---------------------------------------------------------------------------------------

    def _valueset(self, node: Node, lib: Library, scope: Scope) -> str:
        """The value set of an (Any)InValueSet: its ``valueset`` reference, or a ``valuesetExpression``
        (a function's ValueSet operand, bound to the caller's value-set reference)."""
        if "valueset" in node:
            return self._ValueSetRef(node["valueset"], lib, scope).text
        vs = self.scalar(node["valuesetExpression"], lib, scope) if "valuesetExpression" in node else None
        if vs is None or vs.type != "ValueSet":
            raise self.unsupported(node, f"{node['type']} of a value set expression")
        return vs.text

    def _InValueSet(self, node: Node, lib: Library, scope: Scope) -> Sql:
        code = self.scalar(node["code"], lib, scope)
        code = self.coerce(code, "Concept") if code.type in ("json", "Code") else code
        if code.type != "Concept":
            raise self.unsupported(node, f"InValueSet of {code.type}")
        vs = self._valueset(node, lib, scope)
        return Sql(
            f"CASE WHEN {code.text} IS NULL THEN NULL ELSE {self._concept_in_valueset(code.text, vs)} END",
            "Boolean",
        )

    def _AnyInValueSet(self, node: Node, lib: Library, scope: Scope) -> Sql:
        codes = self.as_list(node["codes"], lib, scope)
        vs = self._valueset(node, lib, scope)
        concept = (
            "cql_concept(w_.v)" if codes.type == "json" else ("w_.v" if codes.type == "Concept" else "[w_.v]")
        )
        return Sql(
            f"EXISTS (SELECT 1 FROM ({codes.text}) w_ WHERE {self._concept_in_valueset(concept, vs)})",
            "Boolean",
        )

    def _In(self, node: Node, lib: Library, scope: Scope) -> Sql:
        left, right = node["operand"]
        r = self.expr(right, lib, scope)
        if r.is_list:
            x = self.scalar(left, lib, scope)
            x = self.coerce(x, r.type) if x.type == "json" else x
            return Sql(self.bind(x, lambda y: self._list_in(y.text, r)), "Boolean")
        if not r.type.startswith("Interval<"):
            raise self.unsupported(node, f"In of {r.type}")
        point = _point_type(r.type)
        x = self.coerce(self.scalar(left, lib, scope), point)
        if x.type == "Date" and point == "DateTime":
            x = self.coerce(x, "DateTime")
        return Sql(self._point_in(x.text, r, node.get("precision")), "Boolean")

    @staticmethod
    def _list_in(x: str, items: Sql) -> str:
        """``x in list`` (and ``list contains x``): true when some element equals x (a null x is in a list
        that has a null element), false otherwise, never null, as CQL defines list membership; Codes
        compare by CQL Code equality (``cql_code_eq``)."""
        nulls = f"EXISTS (SELECT 1 FROM ({items.text}) n_ WHERE n_.v IS NULL)"
        if items.type == "Code":
            found = f"EXISTS (SELECT 1 FROM ({items.text}) w_ WHERE cql_code_eq({x}, w_.v))"
        elif items.type == "json":
            # FHIR values (a list of Encounters contains an Encounter): equal when structurally equal, as the
            # reference engine compares them (``equalsDeep``); every one is read from the stored resources,
            # so structurally equal values have the same JSON text (json() drops only whitespace)
            found = f"coalesce(json({x}) IN (SELECT json(w_.v) FROM ({items.text}) w_), FALSE)"
        else:
            found = f"coalesce({x} IN (SELECT v FROM ({items.text})), FALSE)"
        return f"(CASE WHEN {x} IS NULL THEN {nulls} ELSE {found} END)"

    def _point_in(self, x: str, ivl: Sql, precision: str | None) -> str:
        t = self._trunc(precision)

        def test(xs: Sql, iv: Sql) -> str:
            x = xs.text
            lo, hi, lc, hc = (iv.part(k) for k in ("lo", "hi", "lc", "hc"))
            low = (
                f"CASE WHEN {lo} IS NULL THEN CASE WHEN {lc} THEN TRUE END "
                f"WHEN {lc} THEN {t(x)} >= {t(lo)} ELSE {t(x)} > {t(lo)} END"
            )
            high = (
                f"CASE WHEN {hi} IS NULL THEN CASE WHEN {hc} THEN TRUE END "
                f"WHEN {hc} THEN {t(x)} <= {t(hi)} ELSE {t(x)} < {t(hi)} END"
            )
            null = f"{x} IS NULL" if iv.parts else f"{x} IS NULL OR {iv.text} IS NULL"
            return f"(CASE WHEN {null} THEN NULL ELSE ({low}) AND ({high}) END)"

        if ivl.parts:
            return self.bind(Sql(x), lambda xs: test(xs, ivl))
        return self.bind(Sql(x), lambda xs: self.bind(ivl, lambda iv: test(xs, iv)))

    @staticmethod
    def _trunc(precision: str | None):
        if precision is None:
            return lambda e: e
        unit = _PRECISION[precision]
        return lambda e: f"date_trunc('{unit}', {e})"

    # intervals ----------------------------------------------------------------------------------------

    def _Interval(self, node: Node, lib: Library, scope: Scope) -> Sql:
        t = result_type(node)
        point = _point_type(t) if t.startswith("Interval<") else None
        lo = self.scalar(node["low"], lib, scope) if "low" in node else Sql("NULL")
        hi = self.scalar(node["high"], lib, scope) if "high" in node else Sql("NULL")
        point = point or next(
            (p.type for p in (lo, hi) if p.type not in ("any", "json", "Choice")), "DateTime"
        )
        lo, hi = self.coerce(lo, point), self.coerce(hi, point)
        sql_type = _POINT.get(point, ("VARCHAR",))[0]
        lc = self._closed(node, "low", lib, scope)
        hc = self._closed(node, "high", lib, scope)
        parts = (
            ("lo", f"CAST({lo.text} AS {sql_type})"),
            ("hi", f"CAST({hi.text} AS {sql_type})"),
            ("lc", lc),
            ("hc", hc),
        )
        text = "struct_pack(" + ", ".join(f"{k} := {v}" for k, v in parts) + ")"
        return Sql(text, f"Interval<{point}>", parts=parts)

    def _closed(self, node: Node, end: str, lib: Library, scope: Scope) -> str:
        if f"{end}ClosedExpression" in node:
            return self.scalar(node[f"{end}ClosedExpression"], lib, scope, "Boolean").text
        return "TRUE" if node.get(f"{end}Closed", True) else "FALSE"

    def _ivl(self, node: Node, lib: Library, scope: Scope) -> Sql:
        s = self.scalar(node, lib, scope)
        if s.type == "json":
            s = self.coerce(s, "Interval<DateTime>")
        if not s.type.startswith("Interval<"):
            raise self.unsupported(node, f"interval operation on {s.type}")
        return s

    def _bound(self, ivl: Sql, which: str) -> str:
        """``start of`` / ``end of`` an interval: a closed null boundary is the minimum / maximum value;
        an open boundary is the predecessor / successor of its value (null when unknown)."""
        point = _point_type(ivl.type)
        sql_type, lo_min, hi_max = _POINT.get(point, ("VARCHAR", "NULL", "NULL"))
        step = {"DateTime": "INTERVAL 1 MILLISECOND", "Date": "INTERVAL 1 DAY", "Integer": "1"}.get(point)
        key, flag, edge = ("lo", "lc", lo_min) if which == "start" else ("hi", "hc", hi_max)
        sign = "+" if which == "start" else "-"

        def bound(value: Sql, closed: str) -> str:
            open_value = f"CAST({value.text} {sign} {step} AS {sql_type})" if step else "NULL"
            return f"(CASE WHEN {closed} THEN coalesce({value.text}, {edge}) ELSE {open_value} END)"

        if ivl.parts:  # an interval built here: no STRUCT to take apart
            return self.bind(Sql(ivl.part(key)), lambda v: bound(v, ivl.part(flag)))
        return self.bind(
            ivl,
            lambda i: (
                f"(CASE WHEN {i.text} IS NULL THEN NULL ELSE "
                f"{bound(Sql(f'({i.text}).{key}'), f'({i.text}).{flag}')} END)"
            ),
        )

    def _Start(self, node: Node, lib: Library, scope: Scope) -> Sql:
        ivl = self._ivl(node["operand"], lib, scope)
        return Sql(self._bound(ivl, "start"), _point_type(ivl.type))

    def _End(self, node: Node, lib: Library, scope: Scope) -> Sql:
        ivl = self._ivl(node["operand"], lib, scope)
        return Sql(self._bound(ivl, "end"), _point_type(ivl.type))

    def _IncludedIn(self, node: Node, lib: Library, scope: Scope) -> Sql:
        left, right = node["operand"]
        b = self._ivl(right, lib, scope)
        a = self.scalar(left, lib, scope)
        if not a.type.startswith("Interval<"):  # point included in interval
            return self._In(node, lib, scope)
        a = self._ivl(left, lib, scope)
        p = node.get("precision")

        def test(x: Sql) -> str:
            start_in = self._point_in(self._bound(x, "start"), b, p)
            end_in = self._point_in(self._bound(x, "end"), b, p)
            return f"(({start_in}) AND ({end_in}))"

        return Sql(self.bind(a, test), "Boolean")

    def _During(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._IncludedIn(node, lib, scope)

    def _Overlaps(self, node: Node, lib: Library, scope: Scope) -> Sql:
        a, b = (self._ivl(o, lib, scope) for o in node["operand"])
        t = self._trunc(node.get("precision"))

        def test(x: Sql, y: Sql) -> str:
            return (
                f"({t(self._bound(x, 'start'))} <= {t(self._bound(y, 'end'))} AND "
                f"{t(self._bound(y, 'start'))} <= {t(self._bound(x, 'end'))})"
            )

        return Sql(self.bind(a, lambda x: self.bind(b, lambda y: test(x, y))), "Boolean")

    def _overlaps_edge(self, node: Node, lib: Library, scope: Scope, edge: str, op: str) -> Sql:
        """``overlaps before`` / ``overlaps after``: the intervals overlap and the first one's start
        (end) is before (after) the second's at the precision; unknown bounds give null."""
        a, b = (self._ivl(o, lib, scope) for o in node["operand"])
        t = self._trunc(node.get("precision"))

        def test(x: Sql, y: Sql) -> str:
            overlap = (
                f"{t(self._bound(x, 'start'))} <= {t(self._bound(y, 'end'))} AND "
                f"{t(self._bound(y, 'start'))} <= {t(self._bound(x, 'end'))}"
            )
            return f"({overlap} AND {t(self._bound(x, edge))} {op} {t(self._bound(y, edge))})"

        return Sql(self.bind(a, lambda x: self.bind(b, lambda y: test(x, y))), "Boolean")

    def _OverlapsBefore(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._overlaps_edge(node, lib, scope, "start", "<")

    def _OverlapsAfter(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._overlaps_edge(node, lib, scope, "end", ">")

    def _ordered(self, node: Node, lib: Library, scope: Scope, op: str) -> Sql:
        """``before`` / ``after`` where an operand is an interval: for ``A before B`` the end of A is
        before the start of B (a point is its own start and end), at the precision when one is given;
        ``same or before`` / ``same or after`` (``<=`` / ``>=``) the same edges, equality allowed."""
        first, second = ("end", "start") if op in ("<", "<=") else ("start", "end")
        a, b = (self.scalar(o, lib, scope) for o in node["operand"])
        point = next(_point_type(s.type) for s in (a, b) if s.type.startswith("Interval<"))
        a = self._ivl(node["operand"][0], lib, scope) if a.type.startswith("Interval") else a
        b = self._ivl(node["operand"][1], lib, scope) if b.type.startswith("Interval") else b
        t = self._trunc(node.get("precision"))

        def edge(s: Sql, which: str) -> str:
            if s.type.startswith("Interval<"):
                return self._bound(s, which)
            return self.coerce(s, point).text

        def test(x: Sql, y: Sql) -> str:
            return f"({t(edge(x, first))} {op} {t(edge(y, second))})"

        return Sql(self.bind(a, lambda x: self.bind(b, lambda y: test(x, y))), "Boolean")

    def _Contains(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``X contains y``: ``y in X`` with the operands swapped (a list or an interval)."""
        container, item = node["operand"]
        c = self.expr(container, lib, scope)
        if c.is_list and c.type in ("Concept", "Tuple", "Choice"):
            raise self.unsupported(node, f"Contains of a {c.type} list")
        return self._In({**node, "operand": [item, container]}, lib, scope)

    def _Collapse(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``collapse`` of a list of intervals: null intervals dropped, the rest sorted by start and
        merged where they overlap or meet (an end's successor reaches the next start), each result a
        closed interval; a fold over the sorted list (``list_reduce``), so no window per patient.
        ``per`` is only taken where it is the point type's own step (``per day`` of Dates)."""
        src = self.as_list(node["operand"][0], lib, scope)
        if not src.type.startswith("Interval<"):
            raise self.unsupported(node, f"Collapse of {src.type}")
        point = _point_type(src.type)
        step = {"DateTime": "INTERVAL 1 MILLISECOND", "Date": "INTERVAL 1 DAY", "Integer": "1"}.get(point)
        per = node["operand"][1] if len(node["operand"]) > 1 else {"type": "Null"}
        if per.get("type") != "Null":
            day = per.get("type") == "Quantity" and per.get("unit") in ("day", "days", "d")
            if not (point == "Date" and day):
                raise self.unsupported(node, f"Collapse per {self.scalar(per, lib, scope).text} of {point}")
        if step is None:
            raise self.unsupported(node, f"Collapse of {src.type}")
        sql_type = _POINT[point][0]
        v = Sql("c_.v", src.type)
        start, end = self._bound(v, "start"), self._bound(v, "end")
        pair = f"STRUCT(lo {sql_type}, hi {sql_type})"
        items = (
            f"(SELECT list(struct_pack(lo := s_, hi := e_) ORDER BY s_ NULLS FIRST) FROM "
            f"(SELECT {start} AS s_, {end} AS e_ FROM ({src.text}) c_ WHERE c_.v IS NOT NULL))"
        )
        last = "acc_[len(acc_)]"
        fold = (
            f"list_reduce({items}, lambda acc_, x_: CASE WHEN len(acc_) = 0 OR x_.lo > {last}.hi + {step} "
            f"THEN list_append(acc_, x_) ELSE list_append(acc_[1:len(acc_) - 1], "
            f"struct_pack(lo := {last}.lo, hi := greatest(x_.hi, {last}.hi))) END, CAST([] AS {pair}[]))"
        )
        text = (
            f"SELECT unnest(list_transform(coalesce({fold}, []), lambda c_: struct_pack(lo := c_.lo, "
            "hi := c_.hi, lc := TRUE, hc := TRUE))) AS v"
        )
        return Sql(text, src.type, True)

    def _Expand(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``expand`` of a list of Integer intervals (``expand { Interval[1, n] }``, CMS871): the unit
        intervals ``[i, i]`` of every whole number they contain (open ends exclude theirs), distinct and
        in order; an interval with a null end adds none. Another point type or a ``per`` is not
        compiled yet."""
        operands = node["operand"] if isinstance(node["operand"], list) else [node["operand"]]
        if len(operands) > 1 and operands[1].get("type") != "Null":
            raise self.unsupported(node, "Expand per a quantity")
        src = self.as_list(operands[0], lib, scope)
        if src.type != "Interval<Integer>":
            raise self.unsupported(node, f"Expand of {src.type}")
        v = Sql("e_.v", src.type)
        start, end = self._bound(v, "start"), self._bound(v, "end")
        ends = "(e_.v).lo IS NOT NULL AND (e_.v).hi IS NOT NULL"
        text = (
            "SELECT DISTINCT struct_pack(lo := i_, hi := i_, lc := TRUE, hc := TRUE) AS v, i_ AS _k FROM "
            f"(SELECT unnest(generate_series({start}, {end})) AS i_ FROM ({src.text}) e_ WHERE {ends})"
        )
        return Sql(text, src.type, True, True)

    def _AnyTrue(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """AnyTrue: true when some element is true; false for an empty list or only false / null."""
        s = self.as_list(node["source"], lib, scope)
        return Sql(f"coalesce((SELECT bool_or(v) FROM ({s.text})), FALSE)", "Boolean")

    def _AllTrue(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """AllTrue: false when some element is false; true otherwise (nulls are ignored)."""
        s = self.as_list(node["source"], lib, scope)
        return Sql(f"coalesce((SELECT bool_and(v) FROM ({s.text}) WHERE v IS NOT NULL), TRUE)", "Boolean")

    # dates and arithmetic -----------------------------------------------------------------------------

    def _same(self, node: Node, lib: Library, scope: Scope, op: str) -> Sql:
        a, b = self._pair(node, lib, scope)
        t = self._trunc(node.get("precision"))
        return Sql(f"({t(a.text)} {op} {t(b.text)})", "Boolean")

    def _SameAs(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._same(node, lib, scope, "=")

    def _SameOrBefore(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if any(self.scalar(o, lib, scope).type.startswith("Interval") for o in node["operand"]):
            return self._ordered(node, lib, scope, "<=")  # ``starts before or on day of`` an interval
        return self._same(node, lib, scope, "<=")

    def _SameOrAfter(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if any(self.scalar(o, lib, scope).type.startswith("Interval") for o in node["operand"]):
            return self._ordered(node, lib, scope, ">=")
        return self._same(node, lib, scope, ">=")

    def _Before(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if any(self.scalar(o, lib, scope).type.startswith("Interval") for o in node["operand"]):
            return self._ordered(node, lib, scope, "<")
        return self._same(node, lib, scope, "<")

    def _After(self, node: Node, lib: Library, scope: Scope) -> Sql:
        if any(self.scalar(o, lib, scope).type.startswith("Interval") for o in node["operand"]):
            return self._ordered(node, lib, scope, ">")
        return self._same(node, lib, scope, ">")

    def _between(self, node: Node, lib: Library, scope: Scope, fn: str) -> Sql:
        """``duration in <precision> between a and b`` (whole periods: DuckDB ``date_sub``) and
        ``difference in <precision> between`` (boundaries crossed: ``date_diff``); a Date meeting a
        DateTime is a DateTime; a null operand gives null."""
        a, b = (self.scalar(o, lib, scope) for o in node["operand"])
        to = "DateTime" if "DateTime" in (a.type, b.type) or "json" in (a.type, b.type) else a.type
        if to not in ("DateTime", "Date") or node.get("precision") not in _PRECISION:
            raise self.unsupported(node, f"{node['type']} of {a.type} and {b.type}")
        a, b = self.coerce(a, to), self.coerce(b, to)
        return Sql(f"{fn}('{_PRECISION[node['precision']]}', {a.text}, {b.text})", "Integer")

    def _DurationBetween(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._between(node, lib, scope, "date_sub")

    def _DifferenceBetween(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._between(node, lib, scope, "date_diff")

    def _DateFrom(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope, "DateTime")
        return Sql(f"CAST({x.text} AS DATE)", "Date")

    def _ToDateTime(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope)
        return Sql(
            f"CAST({self.coerce(x, 'Date').text if x.type == 'json' else x.text} AS TIMESTAMP)", "DateTime"
        )

    def _ToDate(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope, "DateTime")
        return Sql(f"CAST({x.text} AS DATE)", "Date")

    def _ToDecimal(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope)
        return Sql(f"CAST({x.text} AS DOUBLE)", "Decimal")

    def _ToString(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope)
        return self.coerce(x, "String") if x.type == "json" else Sql(f"CAST({x.text} AS VARCHAR)", "String")

    def _ToQuantity(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``ToQuantity`` of an Integer or Decimal (``INR > 3.0``): that value with unit '1', as CQL
        converts a number implicitly; of a String (a quantity to parse) not compiled."""
        x = self.scalar(node["operand"], lib, scope)
        if x.type == "Quantity":
            return x
        if x.type not in ("Integer", "Decimal"):
            raise self.unsupported(node, f"ToQuantity of {x.type}")
        return Sql(
            f"CASE WHEN {x.text} IS NULL THEN NULL ELSE struct_pack(value := CAST({x.text} AS DOUBLE), "
            "unit := '1') END",
            "Quantity",
        )

    def _ToConcept(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope)
        return self.coerce(x, "Concept")

    def _DateTimeComponentFrom(self, node: Node, lib: Library, scope: Scope) -> Sql:
        x = self.scalar(node["operand"], lib, scope, "DateTime")
        return Sql(f"CAST(date_part('{_PRECISION[node['precision']]}', {x.text}) AS BIGINT)", "Integer")

    def _DateTime(self, node: Node, lib: Library, scope: Scope) -> Sql:
        parts = [
            self.scalar(node[k], lib, scope, "Integer").text if k in node else d
            for k, d in (("year", "1"), ("month", "1"), ("day", "1"), ("hour", "0"), ("minute", "0"))
        ]
        sec = self.scalar(node["second"], lib, scope, "Integer").text if "second" in node else "0"
        ms = self.scalar(node["millisecond"], lib, scope, "Integer").text if "millisecond" in node else "0"
        return Sql(f"make_timestamp({', '.join(parts)}, {sec} + {ms} / 1000.0)", "DateTime")

    def _Date(self, node: Node, lib: Library, scope: Scope) -> Sql:
        parts = [
            self.scalar(node[k], lib, scope, "Integer").text if k in node else "1"
            for k in ("year", "month", "day")
        ]
        return Sql(f"make_date({', '.join(parts)})", "Date")

    def _CalculateAgeAt(self, node: Node, lib: Library, scope: Scope) -> Sql:
        a, b = (self.scalar(o, lib, scope, "Date") for o in node["operand"])
        unit = _PRECISION[node.get("precision", "Year")]
        return Sql(f"date_sub('{unit}', CAST({a.text} AS DATE), CAST({b.text} AS DATE))", "Integer")

    def _arith(self, node: Node, lib: Library, scope: Scope, op: str) -> Sql:
        a, b = (self.scalar(o, lib, scope) for o in node["operand"])
        if a.type == "json":
            a = self.coerce(a, "DateTime" if b.type == "Quantity" else b.type)
        if b.type == "Quantity" and a.type in ("DateTime", "Date"):
            cast = "DATE" if a.type == "Date" else "TIMESTAMP"

            def shift(x: Sql, q: Sql) -> str:
                return f"CAST(({x.text} {op} cql_duration({q.text})) AS {cast})"

            return Sql(self.bind(a, lambda x: self.bind(b, lambda q: shift(x, q))), a.type)
        if a.type in ("Integer", "Decimal") and b.type in ("Integer", "Decimal", "json"):
            b = self.coerce(b, a.type) if b.type == "json" else b
            # an Integer meets a Decimal as a Decimal (CQL's implicit conversion); Divide is Decimal
            t = "Decimal" if "Decimal" in (a.type, b.type) or op == "/" else "Integer"
            if t == "Decimal":
                x, y = f"CAST({a.text} AS DOUBLE)", f"CAST({b.text} AS DOUBLE)"
            else:
                x, y = a.text, b.text
            if op == "/":  # division by zero is null in CQL
                return Sql(f"({x} / nullif({y}, 0))", t)
            return Sql(f"({x} {op} {y})", t)
        raise self.unsupported(node, f"{node['type']} of {a.type} and {b.type}")

    def _Add(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._arith(node, lib, scope, "+")

    def _Subtract(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._arith(node, lib, scope, "-")

    def _Multiply(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._arith(node, lib, scope, "*")

    def _Divide(self, node: Node, lib: Library, scope: Scope) -> Sql:
        return self._arith(node, lib, scope, "/")

    def _TruncatedDivide(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``a div b``: the quotient truncated toward zero, of the operands' type; null when b is 0."""
        a, b = (self.scalar(o, lib, scope) for o in node["operand"])
        if a.type not in ("Integer", "Decimal") or b.type not in ("Integer", "Decimal"):
            raise self.unsupported(node, f"TruncatedDivide of {a.type} and {b.type}")
        t = "Decimal" if "Decimal" in (a.type, b.type) else "Integer"
        q = f"trunc(CAST({a.text} AS DOUBLE) / nullif(CAST({b.text} AS DOUBLE), 0))"
        return Sql(f"CAST({q} AS {'DOUBLE' if t == 'Decimal' else 'BIGINT'})", t)

    def _Instance(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``System.Quantity { value: v, unit: u }``: the compiler's Quantity STRUCT (a missing unit is
        CQL's default '1'); other class instances are not compiled yet."""
        if node.get("classType") != SYSTEM + "Quantity":
            raise self.unsupported(node, f"Instance of {type_name(node.get('classType'))}")
        elems = {e["name"]: e["value"] for e in node.get("element", [])}
        if set(elems) - {"value", "unit"}:
            raise self.unsupported(node, "Instance of Quantity with " + ", ".join(sorted(elems)))
        v = self.scalar(elems["value"], lib, scope, "Decimal").text if "value" in elems else "NULL"
        u = self.scalar(elems["unit"], lib, scope, "String").text if "unit" in elems else "'1'"
        return Sql(f"struct_pack(value := CAST({v} AS DOUBLE), unit := CAST({u} AS VARCHAR))", "Quantity")

    def _ConvertQuantity(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``convert q to 'unit'``: a UCUM conversion (macro ``cql_convert``; null where the units are
        unknown or of different dimensions)."""
        q = self.scalar(node["operand"][0], lib, scope, "Quantity")
        u = self.scalar(node["operand"][1], lib, scope, "String")
        return Sql(f"cql_convert({q.text}, {u.text})", "Quantity")

    def _Tuple(self, node: Node, lib: Library, scope: Scope) -> Sql:
        elems = [(e["name"], self._tuple_element(e["value"], lib, scope)) for e in node.get("element", [])]
        body = ", ".join(f'"{_field(n)}" := {v.text}' for n, v in elems)
        return Sql(f"struct_pack({body})", "Tuple", fields=tuple((_field(n), v.type) for n, v in elems))

    def _tuple_element(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """A tuple element's value; a list (``medicationStatusReason: { T.statusReason }``) is a SQL LIST
        of its elements, in order, typed ``List<T>`` (a property read unnests it back into a list)."""
        value = self.expr(node, lib, scope)
        if not value.is_list:
            return value
        if value.fields:
            raise self.unsupported(node, "tuple element of a list of choices or tuples")
        order = " ORDER BY t_._k" if value.sorted else ""
        return Sql(f"(SELECT list(t_.v{order}) FROM ({value.text}) t_)", f"List<{value.type}>")

    def _Message(self, node: Node, lib: Library, scope: Scope) -> Sql:
        """``Message(source, condition, code, severity, message)``: an 'Error' stops the run (DuckDB
        ``error()``), as a CQL engine raises it; other severities only log, so the value is the source."""
        source = self.scalar(node["source"], lib, scope)
        severity = node.get("severity", {})
        if severity.get("type") == "Literal" and severity.get("value") == "Error":
            cond = self.scalar(node["condition"], lib, scope, "Boolean").text
            msg = self.scalar(node["message"], lib, scope, "String").text
            return replace(
                source, parts=(), text=f"(CASE WHEN {cond} THEN error({msg}) ELSE {source.text} END)"
            )
        return source
