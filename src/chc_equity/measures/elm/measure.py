"""A measure compiled from its ELM: read the Measure resource, compile the defines its populations
name, and score them with the engine's population rules (:func:`engine.scored_sql`).

``compile_measure`` is pure (no connection): it returns the statements that build each define as a
temporary relation and the scored SELECT, the same per-subject rows ``measure_results`` holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.measures.elm.compiler import MACROS, Compiler, Define
from chc_equity.measures.elm.library import ElmError, Node, Package
from chc_equity.measures.engine import scored_sql
from chc_equity.measures.model import POPULATION_COLUMNS, POPULATIONS, Group, Measure
from chc_equity.measures.vocabulary import MACROS as ENGINE_MACROS
from chc_equity.measures.vocabulary import Period, sql_str

PATIENTS = "_elm_patients"


@dataclass(frozen=True)
class MeasureDef:
    """What a Measure resource says: its library, basis, scoring and each group's population defines."""

    name: str
    version: str
    library: str
    library_version: str | None
    basis: str
    scoring: str
    groups: tuple[tuple[str, dict[str, str]], ...]  # (group id, population code -> define name)

    @classmethod
    def read(cls, path: str | Path) -> MeasureDef:
        doc: Node = json.loads(Path(path).read_text())
        ref = doc["library"][0]
        url, _, version = ref.partition("|")
        basis, scoring = "boolean", doc.get("scoring", {}).get("coding", [{}])[0].get("code", "proportion")
        groups = []
        for n, g in enumerate(doc.get("group", []), start=1):
            for ext in g.get("extension", []):
                if ext["url"].endswith("cqfm-populationBasis"):
                    basis = ext["valueCode"]
                elif ext["url"].endswith("cqfm-scoring"):
                    scoring = ext["valueCodeableConcept"]["coding"][0]["code"]
            pops = {
                p["code"]["coding"][0]["code"]: p["criteria"]["expression"] for p in g.get("population", [])
            }
            groups.append((g.get("id", f"Group_{n}"), pops))
        return cls(
            doc["name"],
            doc.get("version", ""),
            url.rsplit("/", 1)[-1],
            version or None,
            basis,
            scoring,
            tuple(groups),
        )

    def model(self) -> Measure:
        """The engine's metadata of this measure (what :func:`scored_sql` reads)."""
        groups = tuple(Group(gid, tuple(c for c in POPULATIONS if c in pops)) for gid, pops in self.groups)
        return Measure(self.name, self.name, self.version, self.name, groups, scoring=self.scoring)


@dataclass(frozen=True)
class Compiled:
    """A compiled measure: the statements that build its defines, and its scored SELECT."""

    measure: MeasureDef
    defines: tuple[Define, ...]
    select: str

    def statements(self, patients_where: str = "") -> list[str]:
        """Every statement of a run, in order: the patient relation, then one TEMP table per define."""
        where = f"WHERE {patients_where}" if patients_where else ""
        out = [
            f"CREATE OR REPLACE TEMP TABLE {PATIENTS} AS SELECT p.center, p.id AS patient_id, "
            f"r.resource AS res FROM flat.patient p JOIN resources r ON r.center = p.center "
            f"AND r.type = 'Patient' AND r.id = p.id {where}"
        ]
        out += [f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}" for d in self.defines]
        return out


def compile_measure(
    measure: MeasureDef, elm_dir: str | Path, period: Period, valueset_table: str = "valueset_codes"
) -> Compiled:
    """Compile every define the measure's populations name (and what they read)."""
    if measure.basis != "boolean":
        raise ElmError(f"unsupported: population basis {measure.basis} at {measure.library}")
    if measure.scoring not in ("proportion", "cohort"):
        raise ElmError(f"unsupported: {measure.scoring} scoring at {measure.library}")
    package = Package(elm_dir)
    lib = package.library(measure.library, measure.library_version)
    compiler = Compiler(package, (period.start_ts, period.end_ts), valueset_table)
    selects = []
    for gid, pops in measure.groups:
        cols = []
        for code in POPULATIONS[:]:
            column = POPULATION_COLUMNS[code]
            if code in pops:
                d = compiler.define(lib, pops[code])
                if d.result.is_list or d.result.type not in ("Boolean", "any"):
                    raise ElmError(
                        f"unsupported: population {code} of type {d.result.type} at {lib.name}.{pops[code]}"
                    )
                cols.append(
                    f"coalesce((SELECT d_.v FROM {d.table} d_ WHERE d_.center = ip.center "
                    f"AND d_.patient_id = ip.patient_id), FALSE) AS {column}"
                )
            else:
                cols.append(f"{'TRUE' if code == 'denominator' else 'FALSE'} AS {column}")
        selects.append(
            f"SELECT ip.center, ip.patient_id, ip.patient_id AS subject_id, {sql_str(gid)} AS group_id, "
            + ", ".join(cols)
            + f", CAST(NULL AS VARCHAR[]) AS strata FROM {PATIENTS} ip"
        )
    criteria = "\nUNION ALL\n".join(selects)
    return Compiled(measure, tuple(compiler.order), scored_sql(measure.model(), criteria, period))


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """The macros compiled SQL calls (the engine's and the compiler's), per connection."""
    for macro in (*ENGINE_MACROS, *MACROS):
        con.execute(macro)


def run_compiled(con: duckdb.DuckDBPyConnection, compiled: Compiled, patients_where: str = "") -> list[tuple]:
    """Build the defines and return the scored rows (the columns of ``measure_results``)."""
    prepare(con)
    for statement in compiled.statements(patients_where):
        con.execute(statement)
    return con.execute(compiled.select).fetchall()


def load_valuesets(con: duckdb.DuckDBPyConnection, vocabulary_dir: str | Path, table: str) -> int:
    """Load a package's ValueSet expansions (``vocabulary/*.json``) into ``table(valueset, system, code)``."""
    rows = []
    for path in sorted(Path(vocabulary_dir).rglob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("resourceType") != "ValueSet":
            continue
        for c in doc.get("expansion", {}).get("contains", []):
            rows.append((doc["url"], c.get("system"), c.get("code")))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (valueset VARCHAR, system VARCHAR, code VARCHAR)")
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)
    return len(rows)


def period_of(start: str, end: str) -> Period:
    return Period(date.fromisoformat(start), date.fromisoformat(end))
