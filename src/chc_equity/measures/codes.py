"""Value-set and direct-code tests as SQL, mirroring CQL retrieves (``[Encounter: "Office Visit"]``)
and code equivalence (``T ~ "Some code"``).

Codes live in child tables of the flat views (``flat.encounter_type(center, id, system, code)``, ...);
value sets live in ``valueset_codes(valueset, system, code)`` (see chc_equity.terminology). A CQL
``in "Value Set"`` on a CodeableConcept is true when any of its codings is in the value set; ``~`` a
direct code is true when any coding has the same system and code (display is ignored).
"""

from __future__ import annotations

from functools import cache

from chc_equity.measures.cql import sql_str
from chc_equity.terminology import valueset_url

FLAT = "flat"


@cache
def vs(name_or_oid: str, library: str | None = None) -> str:
    """SQL literal of a value set's canonical URL, looked up by CQL name, OID or URL."""
    return sql_str(valueset_url(name_or_oid, library=library))


def in_valueset(
    child: str, alias: str, valueset: str, *, system_col: str = "system", code_col: str = "code"
) -> str:
    """``<alias>.<element> in "<valueset>"``: some row of child table ``flat.<child>`` for the resource
    ``alias`` (same center and id) has a (system, code) in the value set (name, OID or URL)."""
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.{child} c_ JOIN valueset_codes v_ "
        f"ON v_.system = c_.{system_col} AND v_.code = c_.{code_col} "
        f"WHERE c_.center = {alias}.center AND c_.id = {alias}.id AND v_.valueset = {vs(valueset)})"
    )


def has_code(
    child: str, alias: str, system: str, code: str, *, system_col: str = "system", code_col: str = "code"
) -> str:
    """``<alias>.<element> ~ <direct code>``: some coding of the element has this system and code."""
    return (
        f"EXISTS (SELECT 1 FROM {FLAT}.{child} c_ WHERE c_.center = {alias}.center AND c_.id = {alias}.id "
        f"AND c_.{system_col} = {sql_str(system)} AND c_.{code_col} = {sql_str(code)})"
    )
