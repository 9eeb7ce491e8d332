"""A measure compiled from its ELM: read the Measure resource, compile the defines its populations
name, and score them with the engine's population rules (:func:`engine.scored_sql`).

Patient-based (``boolean``) and episode-based (Encounter, Procedure, Observation) population bases,
proportion, ratio, cohort and continuous-variable scoring (:mod:`.episodes`). Ratio scoring applies
the proportion rules (the MeasureReport counts are the same); a continuous-variable group's
measure-population and its exclusion are stored in the ``denominator`` and ``denominator_exclusion``
columns of ``measure_results`` (:data:`CV_COLUMNS`), which the engine's rules score identically
(measure population = initial population AND criteria; exclusion = measure population AND criteria).
Measure observations are rows of their own (:meth:`Compiled.observations_sql`). A group's stratifiers
are its Measure's ``stratifier.criteria`` defines, compiled like populations: a subject's ``strata``
lists the names of those it meets (:func:`episodes.stratum`), as the hand-written measures write it.

``compile_measure`` is pure (no connection): it returns the statements that build each define as a
temporary relation and the scored SELECT, the same per-subject rows ``measure_results`` holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from chc_equity.measures.elm import episodes
from chc_equity.measures.elm.compiler import MACROS, Compiler, Define
from chc_equity.measures.elm.library import ElmError, Node, Package
from chc_equity.measures.engine import scored_sql
from chc_equity.measures.model import POPULATION_COLUMNS, POPULATIONS, Group, Measure
from chc_equity.measures.vocabulary import MACROS as ENGINE_MACROS
from chc_equity.measures.vocabulary import Period, sql_str

PATIENTS = episodes.PATIENTS
SCORING = ("proportion", "ratio", "cohort", "continuous-variable")
BASES = ("boolean", "Encounter", "Procedure", "Observation")

# A continuous-variable population -> the measure_results column that holds it (see module docstring).
CV_COLUMNS = {"measure-population": "denominator", "measure-population-exclusion": "denominator_exclusion"}


@dataclass(frozen=True)
class Observation:
    """One measure-observation of a group: its id, CQL function, the population code it observes and
    its aggregate method (Sum, Count, Average ...)."""

    id: str
    function: str
    population: str
    aggregate: str


@dataclass(frozen=True)
class Stratifier:
    """One stratifier of a group: the CQL define of its criteria and the Measure's description."""

    expression: str
    description: str = ""


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
    observations: tuple[tuple[Observation, ...], ...] = ()  # per group
    stratifiers: tuple[tuple[Stratifier, ...], ...] = ()  # per group

    @classmethod
    def read(cls, path: str | Path) -> MeasureDef:
        doc: Node = json.loads(Path(path).read_text())
        ref = doc["library"][0]
        url, _, version = ref.partition("|")
        basis, scoring = "boolean", doc.get("scoring", {}).get("coding", [{}])[0].get("code", "proportion")
        groups, observations, stratifiers = [], [], []
        for n, g in enumerate(doc.get("group", []), start=1):
            for ext in g.get("extension", []):
                if ext["url"].endswith("cqfm-populationBasis"):
                    basis = ext["valueCode"]
                elif ext["url"].endswith("cqfm-scoring"):
                    scoring = ext["valueCodeableConcept"]["coding"][0]["code"]
            populations = g.get("population", [])
            codes = {p.get("id"): p["code"]["coding"][0]["code"] for p in populations}
            pops, observed = {}, []
            for p in populations:
                code = p["code"]["coding"][0]["code"]
                if code != "measure-observation":
                    pops[code] = p["criteria"]["expression"]
                    continue
                ext = {e["url"].rsplit("/", 1)[-1]: e.get("valueString") for e in p.get("extension", [])}
                ref = ext.get("cqfm-criteriaReference")
                observed.append(
                    Observation(
                        p.get("id", ""),
                        p["criteria"]["expression"],
                        codes.get(ref, f"unresolved reference {ref}"),
                        ext.get("cqfm-aggregateMethod") or "",
                    )
                )
            groups.append((g.get("id", f"Group_{n}"), pops))
            observations.append(tuple(observed))
            stratifiers.append(
                tuple(
                    Stratifier(st.get("criteria", {}).get("expression", ""), st.get("description", ""))
                    for st in g.get("stratifier", [])
                )
            )
        return cls(
            doc["name"],
            doc.get("version", ""),
            url.rsplit("/", 1)[-1],
            version or None,
            basis,
            scoring,
            tuple(groups),
            tuple(observations),
            tuple(stratifiers),
        )

    @property
    def columns(self) -> dict[str, str]:
        """measure_results column -> the population code it reports for this measure's scoring."""
        out = {column: code for code, column in POPULATION_COLUMNS.items()}
        if self.scoring == "continuous-variable":
            out.update({column: code for code, column in CV_COLUMNS.items()})
        return out

    def model(self) -> Measure:
        """The engine's metadata of this measure (what :func:`scored_sql` reads)."""
        stored = {column: code for code, column in POPULATION_COLUMNS.items()}
        groups = []
        for (gid, pops), strata in zip(self.groups, self.stratifiers or [()] * len(self.groups), strict=True):
            labels = tuple(s.description for s in strata)
            groups.append(
                Group(
                    gid,
                    tuple(c for c in POPULATIONS if c in {stored.get(CV_COLUMNS.get(p), p) for p in pops}),
                    stratifiers=tuple(s.expression for s in strata),
                    stratifier_labels=labels if all(labels) else (),
                )
            )
        return Measure(
            self.name,
            self.name,
            self.version,
            self.name,
            tuple(groups),
            basis=self.basis,
            scoring=self.scoring,
        )


@dataclass(frozen=True)
class Compiled:
    """A compiled measure: the statements that build its defines, and its scored SELECT."""

    measure: MeasureDef
    defines: tuple[Define, ...]
    select: str
    episodes: tuple[tuple[str, str], ...] = ()  # (table, SQL) of each episode relation
    observations: tuple[str, ...] = ()  # SELECTs over the scored rows (table episodes.SCORED)

    @property
    def observations_sql(self) -> str | None:
        """Every measure observation: ``(center, patient_id, group_id, subject_id, observation, value)``."""
        return "\nUNION ALL\n".join(self.observations) or None

    def statements(self, patients_where: str = "") -> list[str]:
        """Every statement of a run, in order: the patient relation, then one TEMP table per define."""
        where = f"WHERE {patients_where}" if patients_where else ""
        out = [
            f"CREATE OR REPLACE TEMP TABLE {PATIENTS} AS SELECT p.center, p.id AS patient_id, "
            f"r.resource AS res FROM flat.patient p JOIN resources r ON r.center = p.center "
            f"AND r.type = 'Patient' AND r.id = p.id {where}"
        ]
        out += [f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}" for d in self.defines]
        out += [f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}" for table, sql in self.episodes]
        return out


def compile_measure(
    measure: MeasureDef, elm_dir: str | Path, period: Period, valueset_table: str = "valueset_codes"
) -> Compiled:
    """Compile every define the measure's populations name (and what they read), and its observations."""
    if measure.basis not in BASES:
        raise ElmError(f"unsupported: population basis {measure.basis} at {measure.library}")
    if measure.scoring not in SCORING:
        raise ElmError(f"unsupported: {measure.scoring} scoring at {measure.library}")
    package = Package(elm_dir)
    lib = package.library(measure.library, measure.library_version)
    package.load_includes(lib)
    compiler = Compiler(package, (period.start_ts, period.end_ts), valueset_table)
    stored = {column: code for code, column in POPULATION_COLUMNS.items()}  # column -> proportion code
    selects, episode_tables, observations = [], {}, []
    no_groups = [()] * len(measure.groups)
    for (gid, pops), observed, strata in zip(
        measure.groups, measure.observations or no_groups, measure.stratifiers or no_groups, strict=True
    ):
        ip = None
        if measure.basis != "boolean":
            if "initial-population" not in pops:
                raise ElmError(f"unsupported: group {gid} without an initial population at {lib.name}")
            ip = compiler.define(lib, pops["initial-population"])
            where = f"{lib.name}.{pops['initial-population']}"
            episode_tables[episodes.episodes_table(ip)] = episodes.episodes_sql(ip, measure.basis, where)
        # population code as the proportion columns name it (continuous-variable: see CV_COLUMNS)
        by_column = {stored.get(CV_COLUMNS.get(code), code): define for code, define in pops.items()}
        unknown = set(by_column) - set(POPULATIONS)
        if unknown:
            raise ElmError(f"unsupported: population {sorted(unknown)[0]} at {lib.name}")
        cols = []
        for code in POPULATIONS:
            column = POPULATION_COLUMNS[code]
            if code in by_column:
                d = compiler.define(lib, by_column[code])
                where = f"{lib.name}.{by_column[code]}"
                cols.append(f"{episodes.member(d, measure.basis, where)} AS {column}")
            else:
                cols.append(f"{'TRUE' if code == 'denominator' else 'FALSE'} AS {column}")
        tests = []
        for st in strata:
            if not st.expression:
                raise ElmError(f"unsupported: stratifier without criteria (components) at {lib.name}")
            d = compiler.define(lib, st.expression)
            where = f"{lib.name}.{st.expression}"
            tests.append(
                f"CASE WHEN {episodes.stratum(d, measure.basis, where)} THEN {sql_str(st.expression)} END"
            )
        strata_sql = f"list_filter([{', '.join(tests)}], lambda s_: s_ IS NOT NULL)" if tests else None
        selects.append(episodes.criteria_select(gid, cols, measure.basis, ip, strata_sql))
        for obs in observed:
            if ip is None:
                raise ElmError(f"unsupported: measure observation of a patient-based group at {lib.name}")
            observations.append(
                episodes.observation_sql(compiler, lib, obs.function, ip, gid, obs.id, obs.population)
            )
    criteria = "\nUNION ALL\n".join(selects)
    return Compiled(
        measure,
        tuple(compiler.order),
        scored_sql(measure.model(), criteria, period),
        tuple(episode_tables.items()),
        tuple(observations),
    )


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """The macros compiled SQL calls (the engine's and the compiler's), per connection."""
    for macro in (*ENGINE_MACROS, *MACROS):
        con.execute(macro)


def run_compiled(con: duckdb.DuckDBPyConnection, compiled: Compiled, patients_where: str = "") -> list[tuple]:
    """Build the defines and return the scored rows (the columns of ``measure_results``); they stay in
    TEMP table ``_elm_scored`` for :func:`run_observations`."""
    prepare(con)
    for statement in compiled.statements(patients_where):
        con.execute(statement)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {episodes.SCORED} AS {compiled.select}")
    return con.execute(f"SELECT * FROM {episodes.SCORED}").fetchall()


def run_observations(con: duckdb.DuckDBPyConnection, compiled: Compiled) -> list[tuple]:
    """The measure observations of the last :func:`run_compiled` of ``compiled``: rows
    ``(center, patient_id, group_id, subject_id, observation id, value)``."""
    sql = compiled.observations_sql
    return con.execute(sql).fetchall() if sql else []


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
