"""Which patients a load touched: the scope of its measure and patient-attribute refresh.

Every eCQM and every patient attribute is a per-patient computation over the flat tables, so a load only
makes the results of some patients stale: the subjects of the resources it inserted, replaced or deleted.
:func:`refresh_views_and_scope` is the views hook every load runs (`ingest`, `pull`): it refreshes the
flat rows of the touched resources (``views.build.refresh_touched``) and, in the same transaction,
narrows the load's ``pending_patients`` row from "whole center" (written by ``ingest.mark_stale``) to
those patients, so :func:`chc_equity.refresh.finish_pending` re-runs measures for them alone.

Why through the flat views, before and after their refresh: the flat rows still hold the *old* state of
a replaced or deleted resource (its raw JSON is already gone), the refreshed ones the new state; a
resource moved from patient A to patient B makes both stale. Rules, all read off the ViewDefinitions:

- a Patient is its own subject; a resource of another type is resolved through the views whose rows
  name it (``getResourceKey()``) and its patient (``getReferenceKey(Patient)``) -- :func:`patient_views`;
- a resource that another patient's resource points at through such a view's reference column (an
  Observation's ``encounter_id`` naming another patient's Encounter) makes that patient stale too;
- a resource type that has views but no patient (Organization, Location, Practitioner, Medication ...)
  can change any patient's results: the whole center stays in scope;
- a type no view reads (Provenance, Questionnaire ...) changes no flat row, hence no result.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from chc_equity.views.build import BUILTIN_VIEWS, quote_literal, refresh_touched
from chc_equity.warehouse import FLAT_SCHEMA, PENDING_PATIENTS

_REF = re.compile(r"getReferenceKey\((\w+)\)")
_NESTED = ("forEach", "forEachOrNull", "repeat", "unionAll")
SCOPE = "_touched_patients"  # temp table (patient_id) collected during one load's hook


@dataclass(frozen=True, slots=True)
class PatientView:
    """A view whose every row names its resource (key column) and that resource's patient."""

    name: str
    key: str
    patient: str
    references: tuple[tuple[str, str], ...]  # (column, referenced resource type), Patient excluded


def _top_columns(view: Mapping) -> list[dict]:
    return [
        col
        for node in view.get("select", [])
        if not any(k in node for k in _NESTED)
        for col in node.get("column", [])
        if not col.get("collection")
    ]


def _patient_view(name: str) -> PatientView | None:
    view = BUILTIN_VIEWS[name]
    columns = _top_columns(view)
    key = next((c["name"] for c in columns if c.get("path") == "getResourceKey()"), None)
    if key is None:
        return None
    if view["resource"] == "Patient":
        patient = key
    else:
        patient = next((c["name"] for c in columns if "getReferenceKey(Patient)" in c.get("path", "")), None)
        if patient is None:
            return None
    refs = tuple(
        (c["name"], m.group(1))
        for c in columns
        if (m := _REF.search(c.get("path", ""))) and m.group(1) != "Patient"
    )
    return PatientView(name, key, patient, refs)


@functools.cache
def patient_views() -> Mapping[str, tuple[PatientView, ...]]:
    """Resource type -> the views that name each row's patient, for every type whose flat rows all
    belong to one patient: the type has a one-row-per-resource view naming the patient (``observation``),
    or every view of the type names it (``care_team_member`` and ``care_team_participant``). A resource
    with no flat row at all cannot change any result."""
    by_type: dict[str, list[str]] = {}
    for name in sorted(BUILTIN_VIEWS):
        by_type.setdefault(BUILTIN_VIEWS[name]["resource"], []).append(name)
    out: dict[str, tuple[PatientView, ...]] = {}
    for rtype, names in by_type.items():
        found = {n: v for n in names if (v := _patient_view(n)) is not None}
        flat = [
            n for n in found if not any(k in node for node in BUILTIN_VIEWS[n]["select"] for k in _NESTED)
        ]
        if flat or len(found) == len(names):
            out[rtype] = tuple(found.values())
    return out


def global_types() -> frozenset[str]:
    """Resource types some view reads whose rows belong to no one patient: a change to one is center-wide."""
    return frozenset(v["resource"] for v in BUILTIN_VIEWS.values()) - set(patient_views())


def this_load(con: duckdb.DuckDBPyConnection, center: str) -> int | None:
    """The id of the load in progress: its ``loads`` row is written before the hooks run."""
    row = con.execute("SELECT max(load_id) FROM loads WHERE center = ?", [center]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def refresh_views_and_scope(con: duckdb.DuckDBPyConnection, center: str, touched: str) -> dict[str, int]:
    """The views refresh of a load (``refresh_touched``), recording which patients it made stale.

    Runs inside the load's transaction. Only a load that marked its center stale (a ``pending_patients``
    row with patient_id NULL for this load) is narrowed; a load touching a resource of a
    :func:`global_types` type keeps the whole center. Returns what ``refresh_touched`` returns.
    """
    load_id = this_load(con, center)
    marked = load_id is not None and _marked_whole(con, center, load_id)
    types = {r[0] for r in con.execute(f"SELECT DISTINCT type FROM {touched}").fetchall()}
    if not marked or types & global_types():
        return refresh_touched(con, center, touched)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SCOPE} (patient_id VARCHAR)")
    _collect(con, center, touched, types, references=False)  # old state: the flat rows not yet refreshed
    counts = refresh_touched(con, center, touched)
    _collect(con, center, touched, types, references=True)  # new state, and who points at the changes
    con.execute(
        f"DELETE FROM {PENDING_PATIENTS} WHERE center = ? AND load_id = ? AND patient_id IS NULL",
        [center, load_id],
    )
    con.execute(
        f"INSERT INTO {PENDING_PATIENTS} (center, load_id, patient_id) "
        f"SELECT DISTINCT ?, ?, patient_id FROM {SCOPE} WHERE patient_id IS NOT NULL",
        [center, load_id],
    )
    con.execute(f"DROP TABLE {SCOPE}")
    return counts


def _marked_whole(con: duckdb.DuckDBPyConnection, center: str, load_id: int) -> bool:
    """Whether this load marked its center stale (``ingest.mark_stale``: a whole-center row)."""
    sql = f"SELECT count(*) FROM {PENDING_PATIENTS} WHERE center = ? AND load_id = ? AND patient_id IS NULL"
    row = con.execute(sql, [center, load_id]).fetchone()
    return bool(row and row[0])


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? AND NOT temporary",
            [FLAT_SCHEMA, name],
        ).fetchone()[0]
    )


def _collect(
    con: duckdb.DuckDBPyConnection, center: str, touched: str, types: set[str], *, references: bool
) -> None:
    """Add to :data:`SCOPE` the patients of the touched resources as the flat tables hold them now
    (and, with ``references``, the patients whose resources point at a touched resource)."""
    c = quote_literal(center)
    owned = patient_views()

    def ids(rtype: str) -> str:
        return f"SELECT id FROM {touched} WHERE type = {quote_literal(rtype)}"

    for rtype in sorted(types & set(owned)):
        if rtype == "Patient":
            con.execute(f"INSERT INTO {SCOPE} {ids(rtype)}")
            continue
        for view in owned[rtype]:
            if _exists(con, view.name):
                con.execute(
                    f'INSERT INTO {SCOPE} SELECT "{view.patient}" FROM {FLAT_SCHEMA}."{view.name}" '
                    f'WHERE center = {c} AND "{view.key}" IN ({ids(rtype)})'
                )
    if not references:
        return
    for views in owned.values():
        for view in views:
            pointing = [(col, target) for col, target in view.references if target in types]
            if not pointing or not _exists(con, view.name):
                continue
            hit = " OR ".join(f'"{col}" IN ({ids(target)})' for col, target in pointing)
            con.execute(
                f'INSERT INTO {SCOPE} SELECT "{view.patient}" FROM {FLAT_SCHEMA}."{view.name}" '
                f"WHERE center = {c} AND ({hit})"
            )
