"""Parents and guardians of children, and the family's language (``child_guardian``; docs/child.md).

Two FHIR shapes of the same fact, both read: a **RelatedPerson** (view ``related_person``: name, phone,
relationship and the language the person prefers) and a **Patient.contact** entry (view
``patient_guardian``: name, phone, relationship; R4's contact has no language). The *family's language*
is the preferred (else first) language of the child's first listed parent or guardian RelatedPerson, named
by the equity layer's language table; Unknown when no guardian records one.

Patient-level: the web shows these rows only to roles allowed to see the center's patients.
"""

from __future__ import annotations

import duckdb

from chc_equity.child.bands import children_sql
from chc_equity.equity.attributes import LANGUAGES, UNKNOWN_LANGUAGE_CODES
from chc_equity.equity.labels import UNKNOWN
from chc_equity.views.build import quote_literal
from chc_equity.warehouse import FLAT_SCHEMA

F = FLAT_SCHEMA
TABLE = "child_guardian"
# v3 RoleCode / v2 0131 relationships ranked first: parents and legal guardians before other contacts.
PARENT_CODES = ("MTH", "FTH", "PRN", "NMTH", "NFTH", "STPMTH", "STPFTH", "GRD", "GUARD", "FMRCAT", "N")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def language_name_sql(code: str) -> str:
    """A BCP-47 code as the equity layer names it (primary subtag; Unknown when absent or unknown)."""
    c = f"lower(split_part(trim({code}), '-', 1))"
    cases = " ".join(f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in LANGUAGES.items())
    return (
        f"CASE WHEN {code} IS NULL OR trim({code}) = '' OR {c} IN {_in(UNKNOWN_LANGUAGE_CODES)} "
        f"THEN {quote_literal(UNKNOWN)} ELSE coalesce(CASE {c} {cases} END, {c}) END"
    )


def guardian_sql(pe: str, cf: str) -> str:
    return f"""CREATE OR REPLACE TABLE {TABLE} AS
    WITH kids AS ({children_sql(F, pe, cf)}),
    people AS (
      SELECT r.center, r.patient_id, 'RelatedPerson' AS source, r.id AS source_id,
             coalesce(r.relationship_code, r.relationship_text) AS relationship,
             r.relationship_code IN {_in(PARENT_CODES)} AS parent,
             trim(concat_ws(', ', r.name_family, r.name_given)) AS name, r.phone,
             {language_name_sql("coalesce(r.preferred_language_code, r.first_language_code)")} AS language
        FROM {F}.related_person r
       WHERE r.{cf} AND coalesce(r.active, true)
      UNION ALL
      SELECT c.center, c.id, 'Patient.contact', c.id, c.relationship_code,
             c.relationship_code IN {_in(PARENT_CODES)},
             trim(concat_ws(', ', c.name_family, c.name_given)), c.phone, '{UNKNOWN}'
        FROM {F}.patient_guardian c
       WHERE c.{cf} AND (c.name_family IS NOT NULL OR c.name_given IS NOT NULL OR c.phone IS NOT NULL)
    ),
    ranked AS (
      SELECT p.*, row_number() OVER (PARTITION BY p.center, p.patient_id
               ORDER BY p.parent DESC, p.source = 'RelatedPerson' DESC, p.source_id, p.name) AS rank
        FROM people p JOIN kids k ON k.center = p.center AND k.patient_id = p.patient_id
    )
    SELECT r.* EXCLUDE (parent),
           coalesce((SELECT x.language FROM ranked x WHERE x.center = r.center AND x.patient_id = r.patient_id
                       AND x.source = 'RelatedPerson' AND x.language <> '{UNKNOWN}'
                     ORDER BY x.rank LIMIT 1), '{UNKNOWN}') AS family_language
      FROM ranked r"""


def build(con: duckdb.DuckDBPyConnection, *, period_end_sql: str, cf: str) -> None:
    con.execute(guardian_sql(period_end_sql, cf))
