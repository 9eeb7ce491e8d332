"""CQL library ``AdultOutpatientEncounters`` (4.19.000): ``"Qualifying Encounters"``.

Unlike the other library functions this one returns encounter rows
(``SELECT center, patient_id, id``) because measures use the encounters themselves, not only whether
one exists.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.vocabulary import (
    code_in,
    performed_encounters,
)

# The outpatient visit value sets (name -> OID) this library and several measures' own "Qualifying
# Encounters" (CMS122, CMS131 ...) declare alike.
OUTPATIENT_VISITS: dict[str, str] = {
    "Office Visit": "2.16.840.1.113883.3.464.1003.101.12.1001",
    "Annual Wellness Visit": "2.16.840.1.113883.3.526.3.1240",
    "Preventive Care Services Established Office Visit, 18 and Up":
        "2.16.840.1.113883.3.464.1003.101.12.1025",
    "Preventive Care Services Initial Office Visit, 18 and Up": "2.16.840.1.113883.3.464.1003.101.12.1023",
    "Home Healthcare Services": "2.16.840.1.113883.3.464.1003.101.12.1016",
}
TELEPHONE_VISITS = {"Telephone Visits": "2.16.840.1.113883.3.464.1003.101.12.1080"}

# name -> OID, as declared in the library
VALUE_SETS: dict[str, str] = {
    **OUTPATIENT_VISITS,
    "Virtual Encounter": "2.16.840.1.113883.3.464.1003.101.12.1089",
    **TELEPHONE_VISITS,
}


def qualifying_encounters(ctx: Context) -> str:
    """``define "Qualifying Encounters"``: performed outpatient encounters during day of the period."""
    return "-- CQL (AdultOutpatientEncounters): define \"Qualifying Encounters\"" + performed_encounters(
        encounter_types(VALUE_SETS), ctx.period
    )


def encounter_types(value_sets: dict[str, str]) -> str:
    """The type test of ``[Encounter: A] union [Encounter: B] ...`` on alias ``e``, one line a value set."""
    return "\n         OR ".join(
        f"{code_in('Encounter', 'e', oid)}  -- \"{name}\"" for name, oid in value_sets.items()
    )
