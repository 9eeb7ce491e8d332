"""The profile rule, one switch for every measure run: trust ``meta.profile`` (strict) or not (lenient).

- ``strict``: a clinical resource that declares no QI-Core or US Core profile (or only a misspelled one)
  is not data for a profile retrieve, and is left out before the measures run. The official test cases
  expect exactly this (CMS177 "IPFail-EncB4MP" carries an untagged Encounter in the period; CMS131 a
  retinal exam whose profile URL is misspelled). Default of ``measures evaluate`` (test content).
- ``lenient``: every resource counts, because EHR exports rarely tag profiles. Default of
  ``measures run`` (production data).

Either way a resource that *does* declare profiles is judged by them where a profile's meaning is a
constraint (``vocabulary.in_profile``). The rule is documented once, in docs/measures.md ("Profiles").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

import duckdb

from chc_equity.measures.vocabulary import sql_str
from chc_equity.views.build import build_views
from chc_equity.warehouse import DDL

ProfileRule = Literal["strict", "lenient"]
LEFT_OUT = "profile_left_out"  # TEMP table: the resources ``strict`` left out (center, type, id)
SCRATCH = "profile_scratch"  # the in-memory copy ``measures run --profiles strict`` evaluates
PROFILE_RULES: tuple[ProfileRule, ...] = ("strict", "lenient")

# Resource types that carry no clinical facts for a retrieve; they are kept whatever they declare.
PROFILE_EXEMPT = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Coverage",
    "Medication",
    "RelatedPerson",
    "MeasureReport",
)
CONFORMING_PROFILE_PREFIXES = (
    "http://hl7.org/fhir/us/qicore/StructureDefinition/",
    "http://hl7.org/fhir/us/core/StructureDefinition/",  # incl. pediatric-bmi-for-age
)


def check_profile_rule(value: str) -> ProfileRule:
    """``value`` as a profile rule; ValueError naming the choices otherwise."""
    if value not in PROFILE_RULES:
        raise ValueError(f"profiles must be one of {', '.join(PROFILE_RULES)}, not {value!r}")
    return cast(ProfileRule, value)


def unprofiled_where() -> str:
    """SQL condition on the raw ``resources`` table: a clinical resource declaring no QI-Core / US Core
    profile (what ``strict`` leaves out)."""
    exempt = ", ".join(sql_str(t) for t in PROFILE_EXEMPT)
    prefixes = ", ".join(sql_str(p) for p in CONFORMING_PROFILE_PREFIXES)
    return f"""
        type NOT IN ({exempt})
        AND NOT coalesce(len(list_filter(
              coalesce(CAST(json_extract_string(resource, '$.meta.profile[*]') AS VARCHAR[]), []),
              lambda p: len(list_filter([{prefixes}], lambda x: starts_with(p, x))) > 0)) > 0, FALSE)
    """


def apply_profile_rule(con: duckdb.DuckDBPyConnection, profiles: str) -> int:
    """Apply the rule to the raw ``resources`` of a scratch warehouse, before its views are built.

    ``strict`` deletes the clinical resources declaring no QI-Core / US Core profile (never on a center's
    own warehouse: ``measures run --profiles strict`` works on a copy, :func:`strict_copy`). Returns how
    many resources were left out; which ones (``center, type, id``) stays in the TEMP table
    ``profile_left_out`` of the connection.
    """
    if check_profile_rule(profiles) == "lenient":
        return 0
    where = unprofiled_where()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {LEFT_OUT} AS SELECT center, type, id FROM resources WHERE {where}"
    )
    con.execute(f"DELETE FROM resources WHERE {where}")
    return int(con.execute(f"SELECT count(*) FROM {LEFT_OUT}").fetchone()[0])


@contextmanager
def strict_copy(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Make an in-memory copy of the warehouse's raw resources, apply ``strict`` to it and build its
    views; while the block runs it is the connection's default database (so measures read its flat
    tables and write its ``measure_results``). Yields the name of the warehouse's own database, whose
    data is never changed here. Costs a view build over every resource: for test content, not a network.
    """
    home = con.execute("SELECT current_database()").fetchone()[0]
    con.execute(f"ATTACH ':memory:' AS {SCRATCH}")
    try:
        con.execute(f"USE {SCRATCH}")
        con.execute(DDL)
        con.execute(f'INSERT INTO resources SELECT * FROM "{home}".main.resources')
        apply_profile_rule(con, "strict")
        build_views(con)
        yield home
    finally:
        con.execute(f'USE "{home}"')
        con.execute(f"DETACH {SCRATCH}")
