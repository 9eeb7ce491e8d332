"""The UDS+ agricultural-worker extension for the voucher program's patients (issue 20, item 6).

The program reports its patients in the UDS as the health center does, so each voucher patient of a
year (a voucher-paid service in it: :func:`report.served`, the same universe as Table 4 lines 14-16)
becomes a de-identified UDS+ Patient carrying the IG's ``udsplus-agriculture-worker-status`` extension
(``migratory`` / ``seasonal``). Nothing here de-identifies on its own: the resource is built by the
UDS+ Patient builder (:func:`chc_equity.udsplus.extract.build_patient`: age on December 31 capped at 90,
three-digit ZIP or masked, no name, identifier, address line or date finer than the year), the id is
the UDS+ keyed pseudonym (:class:`chc_equity.udsplus.extract.Extract`), the Table 4 line -> code map
is the warehouse's (``AG_CODE``), and the result is checked by the UDS+ validator (strict).

The program knows no race, ethnicity or veteran status: race and ethnicity go as the IG's ``UNK``, the
optional veteran extension is left out. A patient without a birth date or a sex at birth cannot make a
valid Patient (both extensions are 1..1) and is listed in ``missing``, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chc_equity.appdb.models import VoucherPerson
from chc_equity.udsplus.extract import AG_CODE, Extract, build_patient
from chc_equity.udsplus.validate import Violation, validate_all
from chc_equity.vouchers.report import served

CENTER = "voucher-program"  # the pseudonym scope: keeps the program's ids apart from any center's
AG_LINE = {code: line for line, code in AG_CODE.items()}  # migratory -> "14", seasonal -> "15"
SEX = {"F": "Female", "M": "Male"}


@dataclass
class VoucherPatients:
    """The Patients of one year, the (program id -> pseudonym) map, who could not be reported, and the
    validator's findings."""

    extract: Extract
    missing: dict[str, str]  # patient id -> what is missing
    violations: list[Violation]

    @property
    def patients(self) -> list[dict[str, Any]]:
        return self.extract.resources.get("Patient", [])


def _facts(person: VoucherPerson, category: str) -> dict[str, Any]:
    """The person as the UDS+ Patient builder reads a warehouse row (``uds_patients``)."""
    return {
        "sex": SEX.get(person.sex or ""),
        "birth": person.birth_date,
        "gender_line": None,
        "agricultural_line": AG_LINE.get(category),
        "homeless_line": None,
        "veteran": None,
        "deceased_datetime": None,
        "deceased_boolean": None,
        "postal_code": person.zip,
        "country": "US",
        "lang": None,
        "lep": None,
    }


def voucher_patients(session: Session, year: int, key: bytes, center: str = CENTER) -> VoucherPatients:
    """One de-identified UDS+ Patient per voucher patient of ``year``, validated."""
    patients = served(session, year)
    people = {p.id: p for p in session.scalars(select(VoucherPerson).where(VoucherPerson.id.in_(patients)))}
    ex = Extract(year, center, key)
    missing: dict[str, str] = {}
    for pid, category in patients.items():
        person = people.get(pid)
        gaps = [
            what
            for what, ok in (
                ("person record", person is not None),
                ("birth date", person is not None and person.birth_date is not None),
                ("sex at birth", person is not None and (person.sex or "") in SEX),
                ("verified category", category in AG_LINE),
            )
            if not ok
        ]
        if gaps:
            missing[pid] = ", ".join(gaps)
            continue
        ex.add(build_patient(_facts(person, category), ex.ps("Patient", pid), year, [], []))
    return VoucherPatients(ex, missing, validate_all(ex.resources.get("Patient", []), strict=True))


def write(result: VoucherPatients, out: Path) -> dict[str, Path]:
    """``Patient.ndjson`` (the IG's bulk form) and ``validation.csv`` (empty but for its header when
    every resource conforms). The program-id -> pseudonym map is not written: only the key holder can
    recompute it."""
    out.mkdir(parents=True, exist_ok=True)
    patients = out / "Patient.ndjson"
    with patients.open("w") as fh:
        for r in result.patients:
            fh.write(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n")
    report = out / "validation.csv"
    with report.open("w") as fh:
        fh.write("resource,path,rule,message\n")
        for v in result.violations:
            fh.write(",".join(json.dumps(x) for x in (v.resource, v.path, v.rule, v.message)) + "\n")
    return {"Patient": patients, "validation": report}
