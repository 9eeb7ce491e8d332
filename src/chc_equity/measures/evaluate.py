"""`chc-equity measures evaluate`: run measures over a folder of test data, one row per population.

Each FHIR Bundle file is evaluated in isolation, as its own data set (a test case is a self-contained
patient record; two test cases may reuse resource ids with different content); a Bundle holding exactly
one Patient is that patient's whole record. NDJSON and single
resources in the folder form one data set together. MeasureReports in the input are loaded like any
resource but never read: the measures only read the flat clinical tables.

The profile rule is ``profiles="strict"`` by default here (test content; see
:mod:`chc_equity.measures.profiles`, the one place it is implemented): clinical resources declaring no
QI-Core or US Core profile are left out before the views are built.

Output columns (stable, used by outside test suites): measure, group_id, patient_id,
population_code, count — populations with count 0 are written too.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import orjson

from chc_equity.exports import dict_writer
from chc_equity.ingest.loader import load
from chc_equity.ingest.sources import discover
from chc_equity.measures.engine import RESULTS_TABLE, MeasureModule, run_measures
from chc_equity.measures.model import POPULATION_COLUMNS
from chc_equity.measures.profiles import apply_profile_rule, check_profile_rule
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect_memory

OUTPUT_COLUMNS = ("measure", "group_id", "patient_id", "population_code", "count")


def _is_bundle(path: Path) -> bool:
    """True when the file is a single JSON document whose resourceType is Bundle."""
    name = path.name.lower()
    if not (name.endswith(".json") or name.endswith(".json.gz")):
        return False
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    # Cheap check first; full parse only to confirm.
    if b'"Bundle"' not in head and b"Bundle" not in head:
        return False
    try:
        with opener(path, "rb") as fh:
            return orjson.loads(fh.read()).get("resourceType") == "Bundle"
    except (orjson.JSONDecodeError, OSError, AttributeError):
        return False


def _bundle_is_one_record(con) -> None:
    """A test-case Bundle is one patient's record: every patient-linked row of a bundle that holds
    exactly one Patient belongs to that patient, even when its subject reference is malformed or
    points elsewhere (reference engines evaluate the bundle as the patient's whole record)."""
    tables = con.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'flat' AND column_name = 'patient_id' AND table_name <> 'patient'"
    ).fetchall()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE single_patient AS SELECT center, any_value(id) AS patient_id "
        "FROM flat.patient WHERE center LIKE 'bundle:%' GROUP BY center HAVING count(*) = 1"
    )
    for (table,) in tables:
        con.execute(
            f"UPDATE flat.{table} t SET patient_id = s.patient_id FROM single_patient s "
            "WHERE t.center = s.center AND t.patient_id IS DISTINCT FROM s.patient_id"
        )


def evaluate_into(
    input_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    measures: Sequence[MeasureModule],
    *,
    period_start: date,
    period_end: date,
    profiles: str = "strict",
) -> duckdb.DuckDBPyConnection:
    """Load ``input_dir`` into a fresh in-memory warehouse, run ``measures``; return the open connection.

    The caller reads ``measure_results`` (and ``flat.patient``) and closes the connection. Each Bundle
    is its own center (``bundle:<relative path>``); the rest of the folder is center ``input``.
    Several folders (a list) load into the one warehouse, views built once: their centers are
    ``bundle:<folder name>/<relative path>`` and ``input:<folder name>``.
    ``profiles``: the profile rule, ``strict`` or ``lenient`` (:mod:`chc_equity.measures.profiles`).
    """
    check_profile_rule(profiles)
    several = not isinstance(input_dir, str | os.PathLike)
    roots = [Path(p) for p in input_dir] if several else [Path(input_dir)]
    con = connect_memory()
    for root in roots:
        prefix = f"{root.name}/" if several else ""
        others = []
        for path in discover([root]):
            if _is_bundle(path):
                load(con, [path], f"bundle:{prefix}{path.relative_to(root)}")
            else:
                others.append(path)
        if others:
            load(con, others, f"input:{root.name}" if several else "input")
    apply_profile_rule(con, profiles)
    build_views(con)
    _bundle_is_one_record(con)
    run_measures(con, measures, period_start=period_start, period_end=period_end)
    return con


def population_rows(
    con: duckdb.DuckDBPyConnection, measures: Sequence[MeasureModule], center_prefix: str = ""
) -> list[dict[str, object]]:
    """One row per (measure, group, patient of ``flat.patient``, population), counts 0 included;
    only the patients of centers starting with ``center_prefix``."""
    rows: list[dict[str, object]] = []
    for module in measures:
        m = module.measure
        for group in m.groups:
            counts = ", ".join(
                f"count(r.subject_id) FILTER (WHERE r.{POPULATION_COLUMNS[p]})" for p in group.populations
            )
            query = f"""
                SELECT p.id, {counts}
                FROM flat.patient p
                LEFT JOIN {RESULTS_TABLE} r
                  ON r.center = p.center AND r.patient_id = p.id
                 AND r.measure = ? AND r.group_id = ?
                WHERE starts_with(p.center, ?)
                GROUP BY p.center, p.id
                ORDER BY p.id, p.center
            """
            for record in con.execute(query, [m.name, group.id, center_prefix]).fetchall():
                patient_id, values = record[0], record[1:]
                for population, count in zip(group.populations, values, strict=True):
                    rows.append(
                        {
                            "measure": m.name,
                            "group_id": group.id,
                            "patient_id": patient_id,
                            "population_code": population,
                            "count": int(count),
                        }
                    )
    return rows


def evaluate(
    input_dir: str | os.PathLike[str],
    measures: Sequence[MeasureModule],
    *,
    period_start: date,
    period_end: date,
    profiles: str = "strict",
) -> list[dict[str, object]]:
    """Evaluate ``measures`` on every patient in ``input_dir``; return one dict per output row.

    ``profiles``: see :func:`evaluate_into`.
    """
    con = evaluate_into(
        input_dir, measures, period_start=period_start, period_end=period_end, profiles=profiles
    )
    try:
        return population_rows(con, measures)
    finally:
        con.close()


def write_csv(rows: Sequence[dict[str, object]], output: str | os.PathLike[str]) -> None:
    """Write evaluate rows with exactly :data:`OUTPUT_COLUMNS`."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as fh:
        writer = dict_writer(fh, OUTPUT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
