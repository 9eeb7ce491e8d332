"""The UDS+ validator on the IG's own examples (they pass) and on broken copies (each fails on its rule).

Needs the IG in ../shared/uds-plus (skipped with the reason when absent); the validator itself runs
from the rules shipped in the package (scripts/udsplus_ig.py compiles them from the same IG).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from chc_equity.udsplus.validate import validate
from conftest import shared_dir

Resource = dict[str, Any]
PROFILE_BASES = ("http://fhir.org/guides/hrsa/uds-plus/", "http://hl7.org/fhir/us/uds-plus/")


def examples(folder: str = "") -> dict[str, Resource]:
    root = shared_dir("uds-plus", "examples", *([folder] if folder else []))
    out = {}
    for path in sorted(root.glob("*.json")):
        r = json.loads(path.read_text())
        if any(p.startswith(PROFILE_BASES) for p in r.get("meta", {}).get("profile", [])):
            out[path.name] = r
    return out


def found(r: Resource, strict: bool = False) -> set[tuple[str, str]]:
    return {(v.path, v.rule) for v in validate(r, strict=strict)}


# The current examples that break their own profile: `text` is 0..0 in these profiles.
TEXT_IN_EXAMPLE = {"AdverseEvent-deidentified-example.json", "AllergyIntolerance-deidentified-example.json"}


def test_the_igs_current_examples_pass() -> None:
    ex = examples()
    assert len(ex) >= 20
    for name, r in ex.items():
        if name in TEXT_IN_EXAMPLE:
            assert found(r) == {(f"{r['resourceType']}.text", "cardinality")}, name
            assert found({k: v for k, v in r.items() if k != "text"}) == set(), name
        else:
            assert validate(r) == [], name


# "validated-udsplus-examples" were validated against an earlier IG version (their profiles still carry
# the old canonical http://hl7.org/fhir/us/uds-plus, which the validator maps to the current one). What
# the current snapshots require and those older examples lack, with the IG change that explains it:
DRIFT = {
    "Parameters-manifest.json": {
        ("Parameters.parameter:submissionTime", "cardinality"),  # changes.md 1.0.1 #13: submissionTime added
        ("Parameters.parameter:hcInformation.part", "cardinality"),  # 7 parts since prenatalReferralOnly
        ("Parameters.parameter:hcInformation.part:hcPrenatalCareByReferralOnly", "cardinality"),  # 1.0.0 #3
    },
    # 2.0.0 #11: sex is conveyed by the UDS+ sex/birthsex extension, not US Core's us-core-birthsex
    "Patient-de-identified.json": {("Patient.extension:uds-plus-birthsex", "cardinality")},
    "Patient-de-identified-smallpop.json": {("Patient.extension:uds-plus-birthsex", "cardinality")},
    # the profile types patientReference as a Reference; this older example used valueCode "Patient/101"
    "Reporting-Parameters-example.json": {("Parameters.parameter:patientReference.value[x]", "type")},
}


def test_the_igs_validated_examples_pass_but_for_documented_version_drift() -> None:
    ex = examples("validated-udsplus-examples")
    assert len(ex) >= 15
    for name, r in ex.items():
        assert found(r) == DRIFT.get(name, set()), name


def _ext(url_part: str) -> Callable[[Resource], Any]:
    def get(r: Resource) -> Resource:
        return next(e for e in r["extension"] if url_part in e["url"])

    return get


def _drop_ext(url_part: str) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        r["extension"] = [e for e in r["extension"] if url_part not in e["url"]]

    return mutate


def _set(path: list[Any], value: Any) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        node = r
        for k in path[:-1]:
            node = node(r) if callable(k) else node[k]
        node[path[-1]] = value

    return mutate


def _del(path: list[Any]) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        node = r
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]

    return mutate


def _param(name: str, fn: Callable[[list[Resource]], None]) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        fn(r["parameter"])

    return mutate


def _birthsex(r: Resource) -> None:
    _ext("birthsex")(r)["valueCode"] = "X"


def _age_as_string(r: Resource) -> None:
    e = _ext("age-extension")(r)
    del e["valueQuantity"]
    e["valueString"] = "36"


def _dar(r: Resource) -> None:
    r["address"][0]["_postalCode"] = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "bogus"}
        ]
    }


def _drop_part(part: str) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        for p in r["parameter"]:
            if "part" in p:
                p["part"] = [q for q in p["part"] if q["name"] != part]

    return mutate


def _drop_param(name: str) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        r["parameter"] = [p for p in r["parameter"] if p["name"] != name]

    return mutate


def _param_value(name: str, key: str, value: Any) -> Callable[[Resource], None]:
    def mutate(r: Resource) -> None:
        p = next(p for p in r["parameter"] if p["name"] == name)
        for k in [k for k in p if k.startswith("value")]:
            del p[k]
        p[key] = value

    return mutate


PATIENT, ENCOUNTER, COVERAGE = (
    "Patient-de-identified.json",
    "Encounter-de-identified-example.json",
    ("Coverage-de-identified-example.json"),
)
INCOME, REPORTING, MANIFEST = (
    "Observation-de-identified-income.json",
    "Reporting-Parameters-example.json",
    "Parameters-manifest.json",
)
MUTATIONS: list[tuple[str, str, Callable[[Resource], None], tuple[str, str]]] = [
    ("no race", PATIENT, _drop_ext("us-core-race"), ("Patient.extension:uds-plus-race", "cardinality")),
    (
        "no age",
        PATIENT,
        _drop_ext("age-extension"),
        ("Patient.extension:uds-plus-age-extension", "cardinality"),
    ),
    ("a name", PATIENT, _set(["name"], [{"family": "Doe"}]), ("Patient.name", "cardinality")),
    ("a birth date", PATIENT, _set(["birthDate"], "1980-02-03"), ("Patient.birthDate", "cardinality")),
    (
        "a phone",
        PATIENT,
        _set(["telecom"], [{"system": "phone", "value": "555"}]),
        ("Patient.telecom", "cardinality"),
    ),
    ("an MRN", PATIENT, _set(["identifier"], [{"value": "MRN1"}]), ("Patient.identifier", "cardinality")),
    (
        "narrative",
        PATIENT,
        _set(["text"], {"status": "generated", "div": "<div/>"}),
        ("Patient.text", "cardinality"),
    ),
    ("no address", PATIENT, _del(["address"]), ("Patient.address", "cardinality")),
    (
        "no postal code",
        PATIENT,
        _set(["address"], [{"state": "MA"}]),
        ("Patient.address.postalCode", "cardinality"),
    ),
    ("sex code", PATIENT, _birthsex, ("Patient.extension:uds-plus-birthsex.value[x]", "binding")),
    ("age type", PATIENT, _age_as_string, ("Patient.extension:uds-plus-age-extension.value[x]", "type")),
    (
        "absent reason",
        PATIENT,
        _dar,
        ("Patient.address.postalCode.extension:dataAbsentReason.value[x]", "binding"),
    ),
    ("gender code", PATIENT, _set(["gender"], "woman"), ("Patient.gender", "binding")),
    (
        "unknown element",
        PATIENT,
        _set(["favouriteColour"], "blue"),
        ("Patient.favouriteColour", "unknown-element"),
    ),
    ("no type", ENCOUNTER, _del(["type"]), ("Encounter.type", "cardinality")),
    ("status code", ENCOUNTER, _set(["status"], "done"), ("Encounter.status", "binding")),
    (
        "encounter age",
        ENCOUNTER,
        _drop_ext("age-extension"),
        ("Encounter.extension:uds-plus-age-extension", "cardinality"),
    ),
    ("coverage status", COVERAGE, _set(["status"], "draft"), ("Coverage.status", "fixed")),
    ("no payor", COVERAGE, _del(["payor"]), ("Coverage.payor", "cardinality")),
    (
        "income code",
        INCOME,
        _set(["code"], {"coding": [{"system": "http://loinc.org", "code": "99500-1"}]}),
        ("Observation.code", "pattern"),
    ),
    ("income status", INCOME, _set(["status"], "preliminary"), ("Observation.status", "fixed")),
    (
        "immunization source",
        "Immunization-de-identified-example.json",
        _del(["primarySource"]),
        ("Immunization.primarySource", "cardinality"),
    ),
    (
        "intent code",
        "MedicationRequest-de-identified-example.json",
        _set(["intent"], "wish"),
        ("MedicationRequest.intent", "binding"),
    ),
    (
        "procedure status",
        "Procedure-de-identified-example.json",
        _set(["status"], "done"),
        ("Procedure.status", "binding"),
    ),
    (
        "no category",
        "Condition-de-identified-diagnosis.json",
        _del(["category"]),
        ("Condition.category", "cardinality"),
    ),
    (
        "no table3A flag",
        REPORTING,
        _drop_part("table3A"),
        ("Parameters.parameter:reportNames.part:table3A", "cardinality"),
    ),
    (
        "patient as string",
        REPORTING,
        _param_value("patientReference", "valueString", "Patient/1"),
        ("Parameters.parameter:patientReference.value[x]", "type"),
    ),
    (
        "no funding streams",
        REPORTING,
        _drop_param("combinedFundingStreams"),
        ("Parameters.parameter:combinedFundingStreams", "cardinality"),
    ),
    (
        "protocol",
        MANIFEST,
        _param_value("importProtocol", "valueCode", "ftp"),
        ("Parameters.parameter:importProtocol.value[x]", "fixed"),
    ),
    (
        "no UEI",
        MANIFEST,
        _drop_part("uei"),
        ("Parameters.parameter:hcInformation.part:ueiNumber", "cardinality"),
    ),
    ("no data", MANIFEST, _drop_param("udsData"), ("Parameters.parameter:udsData", "cardinality")),
]


@pytest.mark.parametrize(("what", "name", "mutate", "expected"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_example_fails_on_its_rule(
    what: str, name: str, mutate: Callable[[Resource], None], expected: tuple[str, str]
) -> None:
    original = examples()[name]
    assert validate(original) == []
    broken = copy.deepcopy(original)
    mutate(broken)
    assert expected in found(broken), (what, found(broken))


def test_the_shipped_rules_are_the_igs_snapshots(tmp_path) -> None:
    """data/ig_rules.json is exactly what scripts/udsplus_ig.py compiles from ../shared/uds-plus."""
    import importlib.util
    from importlib import resources
    from pathlib import Path

    ig_dir = shared_dir("uds-plus")
    script = Path(__file__).resolve().parents[1] / "scripts" / "udsplus_ig.py"
    spec = importlib.util.spec_from_file_location("udsplus_ig", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(ig_dir, tmp_path / "rules.json")
    shipped = resources.files("chc_equity.udsplus.data").joinpath("ig_rules.json").read_text()
    assert (tmp_path / "rules.json").read_text() == shipped


def test_enough_mutations() -> None:
    assert len(MUTATIONS) >= 20 and len({m[3] for m in MUTATIONS}) == len(MUTATIONS)


def test_strict_rules_for_our_own_output() -> None:
    r = copy.deepcopy(examples()[ENCOUNTER])
    assert ("Encounter.location.location.display", "narrative") in found(
        r, strict=True
    )  # display: a site name
    r = copy.deepcopy(examples()[PATIENT])
    r["maritalStatus"] = {"coding": [{"code": "M"}]}  # 0..0 in the profile
    r["active"] = True  # allowed by FHIR, not supported by the profile: not submitted
    assert {("Patient.maritalStatus", "cardinality"), ("Patient.active", "must-support")} <= found(
        r, strict=True
    )
