"""De-identification rules as pure functions (docs/udsplus.md lists each rule with its source).

HIPAA Safe Harbor (45 CFR 164.514(b)(2)) as the UDS+ IG restates it in its de-identified Patient profile:
every date element reduced to its year, ages over 89 aggregated into "90 or older", a ZIP code reduced to
its first three digits (+ "00") only where that three-digit area holds more than 20,000 people, and every
resource id replaced by a keyed pseudonym (HMAC-SHA256) so that only the key holder can re-link it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

AGE_CAP = 90  # Safe Harbor: "all ages over 89 ... aggregated into a single category of age 90 or older"
MASKED_ZIP = "00000"


@cache
def restricted_zip3() -> frozenset[str]:
    """The three-digit ZIP areas of 20,000 people or fewer (data/restricted_zip3.json, with its source)."""
    raw = json.loads(resources.files("chc_equity.udsplus.data").joinpath("restricted_zip3.json").read_text())
    return frozenset(raw["restricted"])


@dataclass(frozen=True)
class Zip:
    """A de-identified postal code: ``value`` and, when masked, the IG's dataAbsentReason code."""

    value: str
    absent_reason: str | None = None


def deidentify_zip(postal_code: str | None, country: str | None = None) -> Zip:
    """First three digits + "00", or "00000" with ``masked`` (small area), ``unknown`` or ``unsupported``.

    A US ZIP (5 digits, optionally ZIP+4) keeps its 3-digit area unless the area is restricted; no ZIP ->
    ``unknown``; an address outside the US (a country other than US/USA, or a postal code that is not a US
    ZIP) -> ``unsupported``, as the IG's de-identified Patient profile says.
    """
    if country and country.strip().upper() not in ("US", "USA", "UNITED STATES"):
        return Zip(MASKED_ZIP, "unsupported")
    if postal_code is None or not postal_code.strip():
        return Zip(MASKED_ZIP, "unknown")
    digits = postal_code.strip()
    if not re.fullmatch(r"\d{5}(-?\d{4})?", digits):
        return Zip(MASKED_ZIP, "unsupported")
    area = digits[:3]
    if area in restricted_zip3() or area == "000":
        return Zip(MASKED_ZIP, "masked")
    return Zip(area + "00")


def year_of(value: str | date | None) -> str | None:
    """The year of a FHIR date/dateTime/instant (its first four characters), else None."""
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, date) else str(value)
    return text[:4] if re.match(r"\d{4}", text) else None


def age_on_dec31(birth: date | None, year: int) -> int | None:
    """Whole years on December 31 of ``year`` (the IG's age computation); None if unknown or unborn."""
    if birth is None or birth.year > year:
        return None
    return year - birth.year  # December 31 is the last day: every birthday of the year has passed


def age_quantity(age: int) -> dict[str, object]:
    """The IG's age extension value: years, or 90 with comparator ">=" for anyone older than 89."""
    q: dict[str, object] = {"value": min(age, AGE_CAP), "unit": "a", "system": "http://unitsofmeasure.org"}
    q["code"] = "a"
    if age > AGE_CAP - 1:
        q["comparator"] = ">="
    return q


class Pseudonymizer:
    """Keyed pseudonyms: HMAC-SHA256(key, year|center|type|id), 32 hex characters (128 bits).

    Stable within a reporting year (a replacement or incremental submission finds its records by id, as
    the IG's incrementalData flag requires), different across years and centers, and not computable
    without the key, so a submitted id says nothing about the warehouse id.
    """

    def __init__(self, key: bytes, year: int, center: str) -> None:
        self._key = hmac.new(key, b"chc-equity udsplus pseudonym v1", hashlib.sha256).digest()
        self.year, self.center = year, center

    def __call__(self, resource_type: str, resource_id: str) -> str:
        msg = f"{self.year}|{self.center}|{resource_type}|{resource_id}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]
