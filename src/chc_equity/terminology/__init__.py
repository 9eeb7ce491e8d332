"""Value sets and direct-reference codes, shipped as package data and loaded into DuckDB.

Measure SQL joins ``valueset_codes(valueset, oid, system, code)`` on (system, code); the value sets are
keyed by their canonical VSAC URL. Expansions that VSAC truncated at 1,000 codes are shipped rebuilt
(see ``build``); the few that cannot be rebuilt exactly are flagged ``complete = false`` and warned
about by name. See docs/terminology.md.
"""

from chc_equity.terminology.catalog import (
    IncompleteValueSetWarning,
    ValueSetInfo,
    codes,
    incomplete_valuesets,
    terminology,
    valueset_info,
    valueset_oid,
    valueset_url,
)
from chc_equity.terminology.elm import DirectCode, ValueSetDeclaration
from chc_equity.terminology.load import load_terminology

__all__ = [
    "DirectCode",
    "IncompleteValueSetWarning",
    "ValueSetDeclaration",
    "ValueSetInfo",
    "codes",
    "incomplete_valuesets",
    "load_terminology",
    "terminology",
    "valueset_info",
    "valueset_oid",
    "valueset_url",
]
