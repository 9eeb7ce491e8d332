"""FHIRPath ``lowBoundary()`` / ``highBoundary()`` as SQL string arithmetic on the FHIR text.

Why text: a partial date such as ``1970-06`` or a decimal such as ``1.0`` carries its precision in
its spelling; parsing into DATE/DOUBLE first would lose exactly what the boundary depends on.
The value's kind (decimal, date, dateTime, time) comes from ``ofType()``/constant types, else from
the column's declared ``type``, else from the shape of the value at run time (a date-only value is
then read as ``date``). Unspecified offsets widen to +14:00 (low) / -12:00 (high), per FHIRPath.
"""

from __future__ import annotations

from chc_equity.views.fhirpath_sql import Ctx, Val, bind, cast, q

DATE_RE = r"^\d{4}(-\d{2}(-\d{2})?)?$"
TIME_RE = r"^\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?$"
DATETIME_RE = (
    r"^(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:T(\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?))?(Z|[+-]\d{2}:\d{2})?$"
)

_KIND = {
    "decimal": "decimal",
    "integer": "decimal",
    "date": "date",
    "dateTime": "dateTime",
    "instant": "dateTime",
    "time": "time",
}


def _decimal(s: str, high: bool) -> str:
    digits = f"(CASE WHEN contains({s}, '.') THEN length({s}) - strpos({s}, '.') ELSE 0 END)"
    sign = "+" if high else "-"
    return f"round(CAST({s} AS DOUBLE) {sign} 0.5 * pow(10, -{digits}), CAST({digits} + 1 AS INTEGER))"


def _date(d: str, high: bool) -> str:
    if high:
        month_end = f"CAST(last_day(CAST({d} || '-01' AS DATE)) AS VARCHAR)"
        return f"(CASE length({d}) WHEN 4 THEN {d} || '-12-31' WHEN 7 THEN {month_end} ELSE {d} END)"
    return f"(CASE length({d}) WHEN 4 THEN {d} || '-01-01' WHEN 7 THEN {d} || '-01' ELSE {d} END)"


def _time(t: str, high: bool) -> str:
    if high:
        return (
            f"(CASE length({t}) WHEN 2 THEN {t} || ':59:59.999' WHEN 5 THEN {t} || ':59.999' "
            f"WHEN 8 THEN {t} || '.999' ELSE rpad({t}, CAST(greatest(length({t}), 12) AS INTEGER), '9') END)"
        )
    return (
        f"(CASE length({t}) WHEN 2 THEN {t} || ':00:00.000' WHEN 5 THEN {t} || ':00.000' "
        f"WHEN 8 THEN {t} || '.000' ELSE rpad({t}, CAST(greatest(length({t}), 12) AS INTEGER), '0') END)"
    )


def _datetime(ctx: Ctx, s: str, high: bool) -> str:
    pat = q(DATETIME_RE)

    def body(parts: str) -> str:
        d, t, tz = f"{parts}[1]", f"{parts}[2]", f"{parts}[3]"
        default_time = "'23:59:59.999'" if high else "'00:00:00.000'"
        default_tz = "'-12:00'" if high else "'+14:00'"
        return (
            f"CASE WHEN {parts} IS NULL THEN NULL ELSE {_date(d, high)} || 'T' || "
            f"(CASE WHEN {t} = '' THEN {default_time} ELSE {_time(t, high)} END) || "
            f"(CASE WHEN {tz} = '' THEN {default_tz} ELSE {tz} END) END"
        )

    parts = (
        f"CASE WHEN regexp_matches({s}, {pat}) THEN [regexp_extract({s}, {pat}, 1), "
        f"regexp_extract({s}, {pat}, 2), regexp_extract({s}, {pat}, 3)] END"
    )
    return bind(ctx.state, parts, body)


def boundary(ctx: Ctx, v: Val, *, high: bool) -> Val:
    """The low/high boundary of a singleton date, dateTime, time or decimal value (NULL otherwise)."""
    kind = _KIND.get(v.ftype or "") or _KIND.get(ctx.type_hint or "")
    text = cast(ctx, v, "varchar").sql
    if kind == "decimal":
        if v.elem == "json":
            text = f"CASE WHEN json_type({v.sql}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN {text} END"
        return Val(bind(ctx.state, text, lambda s: _decimal(s, high)), False, "double", "decimal")
    if v.elem == "json":
        text = f"CASE WHEN json_type({v.sql}) = 'VARCHAR' THEN {text} END"

    def by_shape(s: str) -> str:
        if kind == "date":
            return f"CASE WHEN regexp_matches({s}, {q(DATE_RE)}) THEN {_date(s, high)} END"
        if kind == "time":
            return f"CASE WHEN regexp_matches({s}, {q(TIME_RE)}) THEN {_time(s, high)} END"
        if kind == "dateTime":
            return _datetime(ctx, s, high)
        return (
            f"CASE WHEN regexp_matches({s}, {q(DATE_RE)}) THEN {_date(s, high)} "
            f"WHEN regexp_matches({s}, {q(TIME_RE)}) THEN {_time(s, high)} "
            f"ELSE {_datetime(ctx, s, high)} END"
        )

    return Val(bind(ctx.state, text, by_shape), False, "varchar", kind or None)
