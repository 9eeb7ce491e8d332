"""Builder of the hand-made UDS fixture: a few synthetic patients whose every fact is chosen so that each
line of Tables 3A, 3B, 4, 6B and 7 is exercised (see the expectations in tests/test_uds_tables.py)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

CDC = "urn:oid:2.16.840.1.113883.6.238"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SOPT = "https://nahdo.org/sopt"
NULLFLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
UDSPLUS_HOUSING = "http://hl7.org/fhir/us/uds-plus/CodeSystem/udsplus-housing-status-codes"
EXT = "http://hl7.org/fhir/us/core/StructureDefinition/"
YEAR = 2025
FIXTURE = Path(__file__).parent / "fixtures" / "uds"


class Center:
    """Collects one center's resources; ``write`` emits NDJSON files per resource type."""

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.resources: list[dict[str, Any]] = []
        self.n = 0

    def add(self, r: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        r.setdefault("id", f"{self.cid}-r{self.n}")
        self.resources.append(r)
        return r

    def location(self, lid: str, type_code: str | None = None) -> None:
        loc: dict[str, Any] = {"resourceType": "Location", "id": lid, "name": lid, "status": "active"}
        if type_code:
            loc["type"] = [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": type_code}
                    ]
                }
            ]
        self.add(loc)

    def patient(
        self,
        pid: str,
        birth: str | None,
        sex: str | None,
        race: list[tuple[str, str]] = (),  # type: ignore[assignment]  # (category, code)
        eth: list[tuple[str, str]] = (),  # type: ignore[assignment]
        lang: str | None = "en",
        gi: tuple[str, str] | None = None,
    ) -> str:
        ext: list[dict[str, Any]] = []
        if race:
            ext.append(
                {
                    "url": EXT + "us-core-race",
                    "extension": [
                        {
                            "url": cat,
                            "valueCoding": {"system": NULLFLAVOR if code == "UNK" else CDC, "code": code},
                        }
                        for cat, code in race
                    ],
                }
            )
        if eth:
            ext.append(
                {
                    "url": EXT + "us-core-ethnicity",
                    "extension": [
                        {"url": cat, "valueCoding": {"system": CDC, "code": code}} for cat, code in eth
                    ],
                }
            )
        if sex:
            ext.append({"url": EXT + "us-core-birthsex", "valueCode": sex})
        if gi:
            ext.append(
                {
                    "url": EXT + "us-core-genderIdentity",
                    "valueCodeableConcept": {"coding": [{"system": gi[0], "code": gi[1]}]},
                }
            )
        p: dict[str, Any] = {"resourceType": "Patient", "id": pid, "extension": ext}
        if birth:
            p["birthDate"] = birth
        if lang:
            p["communication"] = [
                {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]}, "preferred": True}
            ]
        self.add(p)
        return pid

    def visit(
        self,
        pid: str,
        day: str,
        *,
        code: tuple[str, str] = (CPT, "99213"),
        status: str = "finished",
        cls: str = "AMB",
        location: str | None = None,
    ) -> None:
        enc: dict[str, Any] = {
            "resourceType": "Encounter",
            "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "type": [{"coding": [{"system": code[0], "code": code[1]}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": f"{day}T09:00:00-05:00", "end": f"{day}T09:30:00-05:00"},
        }
        if location:
            enc["location"] = [{"location": {"reference": f"Location/{location}"}}]
        self.add(enc)

    def obs(
        self,
        pid: str,
        loinc: str,
        day: str,
        *,
        qty: float | None = None,
        code: tuple[str, str] | None = None,
        absent: str | None = None,
    ) -> None:
        o: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "social-history",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": f"{day}T08:00:00-05:00",
        }
        if qty is not None:
            o["valueQuantity"] = {
                "value": qty,
                "unit": "%",
                "system": "http://unitsofmeasure.org",
                "code": "%",
            }
        if code:
            o["valueCodeableConcept"] = {"coding": [{"system": code[0], "code": code[1]}]}
        if absent:
            o["dataAbsentReason"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": absent}
                ]
            }
        self.add(o)

    def coverage(self, pid: str, sopt: str, start: str = "2024-01-01", end: str | None = None) -> None:
        period = {"start": start} | ({"end": end} if end else {})
        self.add(
            {
                "resourceType": "Coverage",
                "status": "active",
                "type": {"coding": [{"system": SOPT, "code": sopt}]},
                "beneficiary": {"reference": f"Patient/{pid}"},
                "payor": [{"display": "payer"}],
                "period": period,
            }
        )

    def write(self, folder: Path) -> Path:
        out = folder / self.cid
        out.mkdir(parents=True, exist_ok=True)
        by_type: dict[str, list[str]] = {}
        for r in self.resources:
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
        for t, lines in by_type.items():
            (out / f"{t}.ndjson").write_text("\n".join(lines) + "\n")
        return out


def build(folder: Path) -> dict[str, Path]:
    """Write the fixture's two centers under ``folder``; returns center id -> folder."""
    h = Center("hc1")
    h.location("hc1-main")
    h.location("hc1-school", "SCHOOL")
    h.location("hc1-housing")
    d = f"{YEAR}-03-10"
    # P1: boy under 1, White non-Hispanic, Medicaid, income 80 %
    h.patient(
        "P1",
        f"{YEAR}-03-01",
        "M",
        [("ombCategory", "2106-3")],
        [("ombCategory", "2186-5")],
        gi=(SNOMED, "446151000124109"),
    )
    h.visit("P1", d, location="hc1-main")
    h.obs("P1", "99500-1", d, qty=80)
    h.coverage("P1", "2")
    # P2: woman 24, Chinese, not Hispanic, Chinese-speaking, private, 120 %, lesbian
    h.patient(
        "P2",
        "2000-07-15",
        "F",
        [("ombCategory", "2028-9"), ("detailed", "2034-7")],
        [("ombCategory", "2186-5")],
        lang="zh",
        gi=(SNOMED, "446141000124107"),
    )
    h.visit("P2", d)
    h.obs("P2", "99500-1", d, qty=120)
    h.coverage("P2", "5")
    h.obs("P2", "76690-7", d, code=(SNOMED, "38628009"))
    # P3: man 75, Black, Puerto Rican, Spanish, Medicare + Medicaid, 175 %, veteran, shelter, trans man
    h.patient(
        "P3",
        "1950-01-10",
        "M",
        [("ombCategory", "2054-5")],
        [("ombCategory", "2135-2"), ("detailed", "2180-8")],
        lang="es",
        gi=(SNOMED, "407377005"),
    )
    h.visit("P3", d)
    h.visit("P3", f"{YEAR}-11-02")
    h.obs("P3", "99500-1", d, qty=175)
    h.coverage("P3", "1")
    h.coverage("P3", "2")
    h.obs("P3", "93034-7", d, code=(SNOMED, "373066001"))
    h.obs("P3", "71802-3", d, code=(UDSPLUS_HOUSING, "homeless-shelter"))
    h.obs("P3", "76690-7", d, code=(SNOMED, "20430005"))
    # P4: woman 35 on June 30, Native Hawaiian, Mexican, CHIP, 250 %, migratory farm worker, school site
    h.patient(
        "P4",
        "1990-06-30",
        "F",
        [("ombCategory", "2076-8"), ("detailed", "2079-0")],
        [("ombCategory", "2135-2"), ("detailed", "2148-5")],
        gi=(SNOMED, "446131000124102"),
    )
    h.visit("P4", d, location="hc1-school")
    h.obs("P4", "99500-1", d, qty=250)
    h.coverage("P4", "23")
    h.obs("P4", "11341-5", d, code=(SNOMED, "10660007"))
    h.obs("P4", "76690-7", d, code=(SNOMED, "42035005"))
    # P5: girl 10, White + Black, Hispanic (no subgroup), no income, no coverage, homeless, public housing
    h.patient(
        "P5",
        "2015-02-01",
        "F",
        [("ombCategory", "2106-3"), ("ombCategory", "2054-5")],
        [("ombCategory", "2135-2")],
    )
    h.visit("P5", d, location="hc1-housing")
    h.obs("P5", "71802-3", d, code=(SNOMED, "32911000"))
    # P6: man 64 on June 30, race and ethnicity unreported, no language, self-pay, 100 %, PRAPARE farm work
    h.patient("P6", "1960-12-31", "M", [("ombCategory", "UNK")], [], lang=None, gi=(NULLFLAVOR, "ASKU"))
    h.visit("P6", d, cls="VR")
    h.obs("P6", "99500-1", d, qty=100)
    h.coverage("P6", "81")
    h.obs("P6", "93035-4", d, code=(LOINC, "LA33-6"))
    h.obs("P6", "76690-7", d, code=(NULLFLAVOR, "OTH"))
    # P7: woman 40, Korean + Japanese, Cuban, state program (other public), 150 %, declined orientation
    h.patient(
        "P7",
        "1985-05-05",
        "F",
        [("ombCategory", "2028-9"), ("detailed", "2040-4"), ("detailed", "2039-6")],
        [("ombCategory", "2135-2"), ("detailed", "2182-4")],
        gi=(SNOMED, "446141000124107"),
    )
    h.visit("P7", d)
    h.obs("P7", "99500-1", d, qty=150)
    h.coverage("P7", "36")
    h.obs("P7", "76690-7", d, absent="asked-declined")
    # P8: man 55, White, Dominican, private (old Medicaid ended before the last visit), 300 %, don't know
    h.patient(
        "P8",
        "1970-03-03",
        "M",
        [("ombCategory", "2106-3")],
        [("ombCategory", "2135-2"), ("detailed", "2184-0")],
        gi=(SNOMED, "446151000124109"),
    )
    h.visit("P8", f"{YEAR}-01-15")
    h.visit("P8", f"{YEAR}-09-15")
    h.coverage("P8", "2", "2024-01-01", f"{YEAR}-06-30")
    h.coverage("P8", "5", f"{YEAR}-07-01")
    h.obs("P8", "99500-1", f"{YEAR - 1}-12-01", qty=300)
    h.obs("P8", "76690-7", d, code=(NULLFLAVOR, "UNK"))
    # Not UDS patients of hc1: CHW-only, last year's visit, cancelled, inpatient
    for pid, kw in (
        ("P10", {"code": (HCPCS, "G0019")}),
        ("P11", {}),
        ("P12", {"status": "cancelled"}),
        ("P13", {"cls": "IMP"}),
    ):
        h.patient(pid, "1980-01-01", "F", [("ombCategory", "2106-3")], [("ombCategory", "2186-5")])
        h.visit(pid, f"{YEAR - 1}-05-05" if pid == "P11" else d, **kw)  # type: ignore[arg-type]

    g = Center("hc2")
    # Q1: man 20, CHW-only visit (counts under hc2's config), Medicaid, 90 %
    g.patient(
        "Q1",
        "2005-01-01",
        "M",
        [("ombCategory", "2106-3")],
        [("ombCategory", "2186-5")],
        gi=(SNOMED, "446151000124109"),
    )
    g.visit("Q1", d, code=(HCPCS, "G0019"))
    g.obs("Q1", "99500-1", d, qty=90)
    g.coverage("Q1", "2")
    g.obs("Q1", "76690-7", d, code=(SNOMED, "20430005"))
    # Q2: woman 90, Black non-Hispanic, Medicare, income unknown
    g.patient(
        "Q2",
        "1935-01-01",
        "F",
        [("ombCategory", "2054-5")],
        [("ombCategory", "2186-5")],
        gi=(SNOMED, "446141000124107"),
    )
    g.visit("Q2", d)
    g.coverage("Q2", "1")
    return {c.cid: c.write(folder) for c in (h, g)}


def measure_rows() -> list[tuple[str, str, str, str, bool, bool, bool, bool]]:
    """Hand-written ``measure_results`` rows: (center, CMS id, group, patient, den, excl, except, numer)."""
    return [
        ("hc1", "CMS165", "Group_1", "P3", True, False, False, True),
        ("hc1", "CMS165", "Group_1", "P6", True, False, False, False),
        ("hc1", "CMS165", "Group_1", "P8", True, True, False, True),  # excluded
        ("hc1", "CMS165", "Group_1", "P10", True, False, False, True),  # not a UDS patient
        ("hc1", "CMS122", "Group_1", "P2", True, False, False, True),
        ("hc1", "CMS122", "Group_1", "P7", True, False, False, False),
        ("hc1", "CMS138", "Group_1", "P2", True, False, False, True),
        ("hc1", "CMS138", "Group_3", "P2", True, False, False, False),
        ("hc1", "CMS138", "Group_3", "P8", True, False, False, True),
        *[("hc1", "CMS155", f"Group_{g}", "P5", True, False, False, g != 3) for g in (1, 2, 3)],
        *[("hc1", "CMS155", f"Group_{g}", "P1", True, False, False, True) for g in (1, 2, 3)],
        ("hc1", "CMS347", "Group_1", "P3", True, False, False, True),
        ("hc1", "CMS347", "Group_3", "P3", True, False, False, False),
        ("hc1", "CMS347", "Group_2", "P8", True, False, False, False),
        ("hc1", "CMS347", "Group_4", "P6", True, False, True, False),  # exception
        ("hc1", "CMS2", "Group_1", "P2", True, False, False, True),
        ("hc1", "CMS2", "Group_1", "P4", True, False, True, False),
        ("hc2", "CMS165", "Group_1", "Q2", True, False, False, True),
    ]


def load_measure_results(con: Any) -> None:
    """Insert :func:`measure_rows` into ``measure_results`` (the measure stage's output table)."""
    from chc_equity.measures.engine import RESULTS_DDL
    from chc_equity.measures.registry import find

    con.execute(RESULTS_DDL)
    for center, cms, group, pid, den, excl, exc, num in measure_rows():
        name = find([cms])[0].measure.name
        con.execute(
            "INSERT INTO measure_results VALUES "
            "(?, ?, ?, ?, ?, 'Patient', ?, ?, true, ?, ?, ?, ?, false, NULL)",
            [center, name, group, date(YEAR, 1, 1), date(YEAR, 12, 31), pid, pid, den, excl, exc, num],
        )


def test_config_center_block_overrides_default_field_by_field() -> None:
    import pytest

    from chc_equity.uds.config import load_config, parse_config

    cfg = load_config(FIXTURE / "config.yaml")
    assert cfg.for_center("hc2").visits.exclude_types == ()
    assert cfg.for_center("hc1").public_housing_sites == ("hc1-housing",)
    assert cfg.for_center("other").visits == cfg.default.visits
    with pytest.raises(ValueError, match="unknown VisitRule"):
        parse_config({"default": {"visits": {"clases": ["AMB"]}}})
