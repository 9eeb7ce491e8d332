"""FHIR R4 ``Claim`` resources as a second claims format: a Bundle (``.json``), one Claim (``.json``) or
NDJSON (``.ndjson``), read into the same claim lines as the CSV/Excel template.

Mapping (one claim line per ``Claim.item``):

| claim line | FHIR |
| --- | --- |
| provider_id | ``Claim.provider.reference`` (``Organization/<id>`` or ``Practitioner/<id>``: the id) |
| claim_no | ``Claim.identifier[0].value`` (else ``Claim.id``) |
| claim_line | ``item.sequence`` |
| voucher_id | ``Claim.insurance[0].preAuthRef[0]`` (the voucher number is the prior authorization) |
| patient_id | ``Claim.patient.reference`` (``Patient/<id>``: the id) |
| service_date | ``item.servicedDate`` (else ``item.servicedPeriod.start``, ``Claim.billablePeriod.start``) |
| service_code | ``item.productOrService.coding[0].code`` |
| units | ``item.quantity.value`` (default 1) |
| billed_amount | ``item.net.value`` (else ``item.unitPrice.value`` x units) |
| received_date | ``Claim.created`` (its date) |

A resource that is not a Claim, or a Claim without a field above, is a reject naming the entry (its line in
NDJSON, its position in a Bundle) and the FHIR path; the other claims load.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from chc_equity.vouchers.claims_file import ClaimsFileError, ParsedFile, Reject
from chc_equity.vouchers.rules import ClaimLine

CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"


class _Bad(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path


def _ref_id(ref: Any, path: str) -> str:
    value = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise _Bad(path, "missing")
    return value.rstrip("/").split("/")[-1][:64]


def _day(value: Any, path: str) -> date:
    if not isinstance(value, str) or len(value) < 10:
        raise _Bad(path, "missing")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise _Bad(path, f"{value!r} is not a date") from None


def _decimal(value: Any, path: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _Bad(path, f"{value!r} is not a number") from None


def _claim_lines(claim: dict[str, Any]) -> list[ClaimLine]:
    if claim.get("resourceType") != "Claim":
        raise _Bad("resourceType", f"{claim.get('resourceType')!r} is not a Claim")
    provider = _ref_id(claim.get("provider"), "Claim.provider")
    patient = _ref_id(claim.get("patient"), "Claim.patient")
    ids = claim.get("identifier") or []
    claim_no = (ids[0].get("value") if ids and isinstance(ids[0], dict) else None) or claim.get("id")
    if not claim_no:
        raise _Bad("Claim.identifier", "missing (and no Claim.id)")
    insurance = claim.get("insurance") or [{}]
    pre_auth = insurance[0].get("preAuthRef") if isinstance(insurance[0], dict) else None
    if not pre_auth or not isinstance(pre_auth[0], str):
        raise _Bad("Claim.insurance[0].preAuthRef", "missing (the voucher number)")
    received = _day(claim.get("created"), "Claim.created")
    items = claim.get("item") or []
    if not items:
        raise _Bad("Claim.item", "missing")
    out = []
    for i, item in enumerate(items):
        where = f"Claim.item[{i}]"
        coding = (item.get("productOrService") or {}).get("coding") or [{}]
        code = coding[0].get("code")
        if not code:
            raise _Bad(f"{where}.productOrService.coding[0].code", "missing")
        served = item.get("servicedDate") or (item.get("servicedPeriod") or {}).get("start")
        served = served or (claim.get("billablePeriod") or {}).get("start")
        units = _decimal((item.get("quantity") or {}).get("value", 1), f"{where}.quantity.value")
        if units != units.to_integral_value() or not 1 <= units <= 10_000:
            raise _Bad(f"{where}.quantity.value", f"{units} is not a whole number of units from 1 to 10000")
        if "net" in item:
            billed = _decimal((item["net"] or {}).get("value"), f"{where}.net.value")
        elif "unitPrice" in item:
            billed = _decimal((item["unitPrice"] or {}).get("value"), f"{where}.unitPrice.value") * units
        else:
            raise _Bad(f"{where}.net", "missing (and no unitPrice)")
        if billed < 0 or billed != billed.quantize(Decimal("0.01")):
            raise _Bad(f"{where}.net.value", f"{billed} is not an amount in dollars and cents")
        sequence = item.get("sequence")
        if not isinstance(sequence, int) or sequence < 1:
            raise _Bad(f"{where}.sequence", "missing")
        out.append(
            ClaimLine(provider, str(claim_no)[:64], sequence, pre_auth[0][:64], patient,
                      _day(served, f"{where}.servicedDate"), str(code)[:32], int(units), int(billed * 100),
                      received)
        )  # fmt: skip
    return out


def read_fhir_claims(path: str | Path, data: bytes | None = None) -> ParsedFile:
    """Read Claims from a Bundle / single resource (.json) or NDJSON (.ndjson)."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ClaimsFileError(f"{path}: {exc.strerror}") from exc
    entries: list[tuple[int, Any]] = []
    try:
        if path.suffix.lower() == ".ndjson":
            for n, raw in enumerate(data.decode("utf-8-sig").splitlines(), start=1):
                if raw.strip():
                    try:
                        entries.append((n, json.loads(raw)))
                    except json.JSONDecodeError as exc:
                        entries.append((n, _Bad("(line)", f"not JSON: {exc.msg}")))
        else:
            doc = json.loads(data.decode("utf-8-sig"))
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                entries = [
                    (n, (e or {}).get("resource")) for n, e in enumerate(doc.get("entry") or [], start=1)
                ]
            else:
                entries = [(1, doc)]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClaimsFileError(f"{path.name}: not a FHIR JSON document ({exc})") from exc
    lines, rejects = [], []
    for n, resource in entries:
        try:
            if isinstance(resource, _Bad):
                raise resource
            if not isinstance(resource, dict):
                raise _Bad("resource", "missing")
            lines += [(n, x) for x in _claim_lines(resource)]
        except _Bad as exc:
            rejects.append(Reject(n, exc.path, str(exc)))
    return ParsedFile(path.name, hashlib.sha256(data).hexdigest(), lines, rejects)


def claim_resource(lines: list[ClaimLine]) -> dict[str, Any]:
    """The FHIR Claim for lines of one claim (the tests and the synthetic season write them)."""
    first = lines[0]
    return {
        "resourceType": "Claim",
        "id": first.claim_no,
        "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]},
        "use": "claim",
        "identifier": [{"system": f"urn:provider:{first.provider_id}", "value": first.claim_no}],
        "patient": {"reference": f"Patient/{first.patient_id}"},
        "created": first.received_on.isoformat(),
        "provider": {"reference": f"Organization/{first.provider_id}"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Migrant Health vouchers"},
                       "preAuthRef": [first.voucher_id]}],
        "item": [
            {"sequence": x.claim_line, "productOrService": {"coding": [{"code": x.code}]},
             "servicedDate": x.service_date.isoformat(), "quantity": {"value": x.units},
             "net": {"value": x.billed_cents / 100, "currency": "USD"}}
            for x in lines
        ],
    }  # fmt: skip
