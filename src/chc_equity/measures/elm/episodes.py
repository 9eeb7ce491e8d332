"""Population criteria of a compiled measure, per subject: a patient (``boolean`` basis) or an episode
(a resource of the population basis: Encounter, Procedure, Observation), and measure observations.

An episode-based measure's population defines return lists of resources; a subject belongs to a
population when its resource id is in the define's list (a Boolean define, allowed by CQL for a
patient-level criterion, holds for every episode of a patient it is true for). The SELECT this module
writes has :data:`engine.CRITERIA_COLUMNS`, so the engine's scoring rules (:func:`engine.scored_sql`)
apply unchanged: episode-based counts are the number of a patient's episodes in each population,
as the official MeasureReports count them.

A measure observation (ratio and continuous-variable scoring) is a CQL function of one episode,
evaluated for every episode of the population it refers to (less that population's exclusions).
"""

from __future__ import annotations

from chc_equity.measures.elm.compiler import Compiler, Define, Scope, Sql
from chc_equity.measures.elm.library import ElmError, Library
from chc_equity.measures.vocabulary import sql_str

PATIENTS = "_elm_patients"
SCORED = "_elm_scored"

# The measure_results column an observation's population reference selects, less its exclusion
# (continuous-variable populations are stored in the proportion columns, see measure.CV_COLUMNS).
OBSERVED = {
    "denominator": "denominator AND NOT denominator_exclusion",
    "numerator": "numerator AND NOT numerator_exclusion",
    "measure-population": "denominator AND NOT denominator_exclusion",
    "initial-population": "initial_population",
}


def episodes_table(ip: Define) -> str:
    return f"{ip.table}_episodes"


def episodes_sql(ip: Define, basis: str, where: str) -> str:
    """One row per episode of the initial population: ``(center, patient_id, episode, res)``."""
    if not ip.result.is_list or ip.result.type not in ("json", "any"):
        raise ElmError(
            f"unsupported: initial population of type {ip.result.type} for basis {basis} at {where}"
        )
    return (
        f"SELECT center, patient_id, v->>'id' AS episode, any_value(v) AS res FROM {ip.table} "
        f"WHERE v->>'id' IS NOT NULL GROUP BY center, patient_id, v->>'id'"
    )


def member(define: Define, basis: str, where: str) -> str:
    """SQL: the subject ``ip`` meets ``define`` (a list of resources, or a Boolean per patient)."""
    patient = "d_.center = ip.center AND d_.patient_id = ip.patient_id"
    if not define.result.is_list and define.result.type in ("Boolean", "any"):
        return f"coalesce((SELECT d_.v FROM {define.table} d_ WHERE {patient}), FALSE)"
    if basis == "boolean" or not define.result.is_list or define.result.type not in ("json", "any"):
        raise ElmError(
            f"unsupported: population of type {'List<' if define.result.is_list else ''}"
            f"{define.result.type}{'>' if define.result.is_list else ''} for basis {basis} at {where}"
        )
    return f"EXISTS (SELECT 1 FROM {define.table} d_ WHERE {patient} AND d_.v->>'id' = ip.episode)"


def stratum(define: Define, basis: str, where: str) -> str:
    """SQL: the subject ``ip`` meets stratifier ``define``: as a population (:func:`member`), or, for a
    list of Booleans (a query returning a Boolean per row: 2026 CMS159's age at each index
    assessment), when one of them is true."""
    if define.result.is_list and define.result.type == "Boolean":
        patient = "d_.center = ip.center AND d_.patient_id = ip.patient_id"
        return f"EXISTS (SELECT 1 FROM {define.table} d_ WHERE {patient} AND d_.v)"
    return member(define, basis, where)


def criteria_select(
    group: str, columns: list[str], basis: str, ip: Define | None, strata: str | None = None
) -> str:
    """The criteria SELECT of one group: ``columns`` (``<sql> AS <population column>``) per subject,
    and ``strata`` (SQL of the stratifier names it meets; NULL when the group has none)."""
    if basis == "boolean":
        source, subject = PATIENTS, "ip.patient_id"
    else:
        assert ip is not None
        source, subject = episodes_table(ip), "ip.episode"
    return (
        f"SELECT ip.center, ip.patient_id, {subject} AS subject_id, {sql_str(group)} AS group_id, "
        + ", ".join(columns)
        + f", {strata or 'CAST(NULL AS VARCHAR[])'} AS strata FROM {source} ip"
    )


def observation_sql(
    compiler: Compiler, lib: Library, function: str, ip: Define, group: str, observation: str, population: str
) -> str:
    """Rows ``(center, patient_id, group_id, subject_id, observation, value)``: CQL function
    ``function`` of each episode in the scored ``population`` of ``group`` (table :data:`SCORED`)."""
    where = f"{lib.name}.{function}"
    defs = [f for f in lib.functions.get(function, []) if len(f.get("operand", [])) == 1]
    if len(defs) != 1 or "expression" not in defs[0]:
        raise ElmError(f"unsupported: measure observation {where} (needs one function of one episode)")
    if population not in OBSERVED:
        raise ElmError(f"unsupported: measure observation of population {population} at {where}")
    operand = defs[0]["operand"][0]["name"]
    compiler._where.append(where)
    try:
        body = compiler.expr(defs[0]["expression"], lib, Scope(operands={operand: Sql("ep_.res", "json")}))
    finally:
        compiler._where.pop()
    if body.is_list:
        raise ElmError(f"unsupported: measure observation returning a list at {where}")
    return (
        f"SELECT ep_.center, ep_.patient_id, {sql_str(group)} AS group_id, ep_.episode AS subject_id, "
        f"{sql_str(observation)} AS observation, CAST(({body.text}) AS DOUBLE) AS value "
        f"FROM {PATIENTS} _pt JOIN {episodes_table(ip)} ep_ ON ep_.center = _pt.center "
        f"AND ep_.patient_id = _pt.patient_id JOIN {SCORED} s_ ON s_.center = ep_.center "
        f"AND s_.patient_id = ep_.patient_id AND s_.subject_id = ep_.episode "
        f"AND s_.group_id = {sql_str(group)} WHERE {OBSERVED[population]}"
    )
