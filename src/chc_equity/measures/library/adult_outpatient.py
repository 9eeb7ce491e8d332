"""CQL library ``AdultOutpatientEncounters`` (4.19.000): ``"Qualifying Encounters"``.

Unlike the other library functions this one returns encounter rows
(``SELECT center, patient_id, id``) because measures use the encounters themselves, not only whether
one exists.
"""

from __future__ import annotations

from chc_equity.measures.engine import Context
from chc_equity.measures.library import status
from chc_equity.measures.library.retrieve import code_in, table

# name -> OID, as declared in the library
VALUE_SETS: dict[str, str] = {
    "Office Visit": "2.16.840.1.113883.3.464.1003.101.12.1001",
    "Annual Wellness Visit": "2.16.840.1.113883.3.526.3.1240",
    "Preventive Care Services Established Office Visit, 18 and Up":
        "2.16.840.1.113883.3.464.1003.101.12.1025",
    "Preventive Care Services Initial Office Visit, 18 and Up": "2.16.840.1.113883.3.464.1003.101.12.1023",
    "Home Healthcare Services": "2.16.840.1.113883.3.464.1003.101.12.1016",
    "Virtual Encounter": "2.16.840.1.113883.3.464.1003.101.12.1089",
    "Telephone Visits": "2.16.840.1.113883.3.464.1003.101.12.1080",
}


def qualifying_encounters(ctx: Context) -> str:
    """``define "Qualifying Encounters"``: performed outpatient encounters during day of the period."""
    mp = ctx.period
    types = "\n       OR ".join(
        f"{code_in('Encounter', 'e', oid)}  -- \"{name}\"" for name, oid in VALUE_SETS.items()
    )
    return f"""
-- CQL (AdultOutpatientEncounters): define "Qualifying Encounters"
SELECT e.center, e.patient_id, e.id FROM {table("Encounter")} e
WHERE ({types}
      )
  AND {status.is_encounter_performed("e")}
  AND fhir_date(e.period_start) BETWEEN {mp.start_date} AND {mp.end_date}
  AND fhir_date(e.period_end) BETWEEN {mp.start_date} AND {mp.end_date}
"""
