"""patient_attributes: hand-built FHIR edge cases, and agreement with the generator's own person facts."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chc_equity.equity.attributes import DIMENSIONS, build_patient_attributes, ensure_patient_attributes
from chc_equity.ingest import load
from chc_equity.synth import generate, load_config
from chc_equity.synth.generator import plan_centers
from chc_equity.synth.people import sample_person
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect_memory

PS, PE = date(2026, 1, 1), date(2026, 12, 31)
CDC = "urn:oid:2.16.840.1.113883.6.238"
US = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"


def _patient(pid: str, **kw: Any) -> dict[str, Any]:
    ext: list[dict[str, Any]] = []
    race = [{"url": "ombCategory", "valueCoding": {"system": CDC, "code": c}} for c in kw.get("race", [])]
    race += [
        {"url": "detailed", "valueCoding": {"system": CDC, "code": c, "display": d}}
        for c, d in kw.get("race_detailed", [])
    ]
    if race:
        ext.append({"url": US + "us-core-race", "extension": race})
    eth = [{"url": "ombCategory", "valueCoding": {"system": CDC, "code": c}} for c in kw.get("eth", [])]
    eth += [
        {"url": "detailed", "valueCoding": {"system": CDC, "code": c, "display": d}}
        for c, d in kw.get("eth_detailed", [])
    ]
    if eth:
        ext.append({"url": US + "us-core-ethnicity", "extension": eth})
    if "birthsex" in kw:
        ext.append({"url": US + "us-core-birthsex", "valueCode": kw["birthsex"]})
    r: dict[str, Any] = {"resourceType": "Patient", "id": pid, "extension": ext}
    for key in ("birthDate", "gender"):
        if key in kw:
            r[key] = kw[key]
    if "lang" in kw:
        r["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": kw["lang"]}]}}]
    if "zip" in kw:
        r["address"] = [{"postalCode": kw["zip"]}]
    return r


def _obs(oid: str, pid: str, loinc: str, day: str, value: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": kw.get("status", "final"),
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
        **value,
    }


def _concept(code: str, system: str = SCT) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


def _coverage(cid: str, pid: str, code: str, start: str, end: str | None = None, order: int | None = None):
    period = {"start": start} | ({"end": end} if end else {})
    r = {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": code}]},
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"display": "x"}],
        "period": period,
    }
    if order is not None:
        r["order"] = order
    return r


def _load(tmp_path: Path, resources: list[dict[str, Any]], center: str = "cA"):
    folder = tmp_path / center
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    con = connect_memory()
    load(con, [folder], center)
    build_views(con)
    build_patient_attributes(con, period_start=PS, period_end=PE)
    rows = con.execute("SELECT * FROM patient_attributes ORDER BY patient_id").fetchall()
    cols = [d[0] for d in con.description]
    return {r[1]: dict(zip(cols, r, strict=True)) for r in rows}


def test_schema_one_row_per_patient_and_never_null(tmp_path: Path) -> None:
    got = _load(tmp_path, [_patient("bare"), _patient("p2", birthDate="1990-05-05", gender="female")])
    assert set(got) == {"bare", "p2"}
    for row in got.values():
        assert list(row) == ["center", "patient_id", *(d for d in DIMENSIONS if d != "center")]
        assert all(isinstance(v, str) and v for v in row.values())
    bare = got["bare"]
    for dim in DIMENSIONS:
        if dim not in ("center", "sdoh_risk"):
            assert bare[dim] == "Unknown", dim
    assert bare["sdoh_risk"] == "unscreened"
    assert bare["center"] == "cA"
    assert got["p2"]["sex"] == "Female"  # administrative gender as a last fallback


def test_demographic_mapping_edge_cases(tmp_path: Path) -> None:
    resources = [
        _patient(
            "multi",
            race=["2106-3", "2054-5"],
            eth=["2186-5"],
            birthDate="2008-12-31",
            birthsex="M",
            lang="en-US",
            zip="02128-1234",
        ),
        _patient(
            "hisp",
            race=["2106-3"],
            race_detailed=[("2108-9", "European")],
            eth=["2135-2"],
            eth_detailed=[("2180-8", "Puerto Rican")],
            birthDate="2009-01-01",
            lang="es",
        ),
        _patient("detail-only", eth_detailed=[("2184-0", "Dominican")], race=["2028-9"], birthDate="1961"),
        _patient("asian", race=["2028-9"], eth=["2186-5"], lang="kea", birthDate="1987-06"),
        _patient("unk-eth", race=["2106-3"], lang="und", birthDate="1950-02-03"),
        _patient("other", race=["1002-5"], eth=["2186-5"], lang="xx"),
    ]
    got = _load(tmp_path, resources)
    m = got["multi"]
    assert (m["race"], m["race_detailed"], m["ethnicity"]) == ("More than one race",) * 2 + (
        "Not Hispanic or Latino",
    )
    assert m["race_ethnicity"] == "Other non-Hispanic"
    assert (m["language"], m["lep"], m["sex"]) == ("English", "English proficient", "Male")
    assert m["postal_code"] == "02128"
    assert m["age_band"] == "18-39"  # 18th birthday on the period end
    h = got["hisp"]
    assert (h["race"], h["race_detailed"]) == ("White", "European")
    assert (h["ethnicity"], h["ethnicity_detailed"], h["race_ethnicity"]) == (
        "Hispanic or Latino",
        "Puerto Rican",
        "Hispanic",
    )
    assert (h["language"], h["lep"], h["age_band"]) == ("Spanish", "Limited English proficiency", "0-17")
    d = got["detail-only"]
    assert (d["ethnicity"], d["ethnicity_detailed"], d["race_ethnicity"]) == (
        "Hispanic or Latino",
        "Dominican",
        "Hispanic",
    )
    assert d["age_band"] == "65+"  # partial birth date 1961 -> 1961-01-01 -> 65 at 2026-12-31
    a = got["asian"]
    assert (a["race_ethnicity"], a["language"], a["age_band"]) == (
        "Asian non-Hispanic",
        "Cape Verdean Creole",
        "18-39",
    )
    u = got["unk-eth"]
    assert (u["ethnicity"], u["race_ethnicity"], u["language"], u["lep"]) == ("Unknown",) * 4
    assert u["age_band"] == "65+"
    o = got["other"]
    assert (o["race"], o["race_ethnicity"], o["language"]) == (
        "American Indian or Alaska Native",
        "Other non-Hispanic",
        "xx",
    )


def test_social_facts_latest_on_or_before_period_end(tmp_path: Path) -> None:
    pid = "s"
    resources: list[dict[str, Any]] = [
        _patient(pid, birthDate="1980-01-01"),
        _patient("t", birthDate="1980-01-01"),
        # income: latest in period wins, later (2027) ignored, entered-in-error ignored
        _obs("i1", pid, "99500-1", "2025-03-01", {"valueQuantity": {"value": 90}}),
        _obs("i2", pid, "99500-1", "2026-03-01", {"valueQuantity": {"value": 150.5}}),
        _obs("i3", pid, "99500-1", "2027-01-02", {"valueQuantity": {"value": 300}}),
        _obs("i4", pid, "99500-1", "2026-06-01", {"valueQuantity": {"value": 50}}, status="entered-in-error"),
        _obs("i5", "t", "99500-1", "2026-03-01", {"valueQuantity": {"value": 100}}),
        # housing: homeless earlier in the period -> Yes although the latest answer is housed
        _obs("h1", pid, "71802-3", "2026-02-01", _concept("32911000")),
        _obs("h2", pid, "71802-3", "2026-09-01", _concept("160734000")),
        _obs("h3", "t", "71802-3", "2026-09-01", _concept("160734000")),
        _obs("v1", pid, "93034-7", "2026-02-01", _concept("LA33-6", LOINC)),
        _obs("v2", "t", "93034-7", "2026-02-01", _concept("373067005")),
        _obs("o1", pid, "11341-5", "2026-02-01", _concept("10660007")),
        _obs("so1", pid, "76690-7", "2026-02-01", _concept("38628009")),
        _obs(
            "so2",
            "t",
            "76690-7",
            "2026-02-01",
            {"dataAbsentReason": {"coding": [{"code": "asked-declined"}]}},
        ),
        # PRAPARE: 3 positive components (two share a LOINC code) -> high; t: one Yes, one No -> moderate
        _obs(
            "pr1",
            pid,
            "93025-5",
            "2026-02-01",
            {
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": c}]}, **_concept("373066001")}
                    for c in ("93033-9", "93038-8", "93038-8")
                ]
            },
        ),
        _obs(
            "pr2",
            "t",
            "93025-5",
            "2026-02-01",
            {
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "93033-9"}]}, **_concept("373066001")},
                    {"code": {"coding": [{"system": LOINC, "code": "88124-3"}]}, **_concept("373067005")},
                ]
            },
        ),
        # insurance: expired Medicaid ignored; Medicare + Medicaid unordered -> Medicare (dual eligible)
        _coverage("c1", pid, "2", "2020-01-01", "2025-06-30"),
        _coverage("c2", pid, "1", "2025-01-01"),
        _coverage("c3", pid, "21", "2026-02-01"),
        # ordered coverage wins over priority; self-pay is Uninsured
        _coverage("c4", "t", "81", "2026-01-01", order=1),
        _coverage("c5", "t", "1", "2026-01-01", order=2),
    ]
    got = _load(tmp_path, resources)
    s, t = got[pid], got["t"]
    assert (s["income"], t["income"]) == ("151-200%", "<=100%")
    assert (s["homeless"], t["homeless"]) == ("Yes", "No")
    assert (s["veteran"], t["veteran"]) == ("Yes", "No")
    assert (s["agricultural_worker"], t["agricultural_worker"]) == ("Yes", "No")  # t was screened
    assert (s["sexual_orientation"], t["sexual_orientation"]) == ("Lesbian or gay", "Chose not to disclose")
    assert (s["sdoh_risk"], t["sdoh_risk"]) == ("high", "moderate")
    assert (s["insurance"], t["insurance"]) == ("Medicare", "Uninsured")


def test_site_is_most_visited_location(tmp_path: Path) -> None:
    def enc(eid: str, loc: str, day: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p"},
            "period": {"start": day, "end": day},
            "location": [{"location": {"reference": f"Location/{loc}"}}],
        }

    resources = [
        _patient("p"),
        {"resourceType": "Location", "id": "L1", "name": "North site"},
        {"resourceType": "Location", "id": "L2", "name": "South site"},
        enc("e1", "L1", "2026-01-05"),
        enc("e2", "L2", "2026-02-05"),
        enc("e3", "L2", "2026-03-05"),
        enc("e4", "L1", "2027-03-05"),  # after the period: ignored
        enc("e5", "L1", "2027-04-05"),
    ]
    assert _load(tmp_path, resources)["p"]["site"] == "South site"


def test_matches_generator_person_facts(tmp_path: Path) -> None:
    """Every attribute the generator decides is read back exactly from the FHIR it wrote."""
    cfg = load_config(disparities=True)
    seed, centers, patients = 11, 2, 400
    generate(tmp_path, centers=centers, patients=patients, seed=seed, period_end=PE, cfg=cfg)
    con = connect_memory()
    plan = plan_centers(centers, patients, seed)
    for c in plan:
        load(con, [tmp_path / c.id], c.id)
    build_views(con)
    build_patient_attributes(con, period_start=PS, period_end=PE)
    rows = con.execute("SELECT * FROM patient_attributes").fetchall()
    cols = [d[0] for d in con.description]
    got = {(r[0], r[1]): dict(zip(cols, r, strict=True)) for r in rows}
    assert len(got) == patients
    income = {"101-200%": "101-150%", "unknown": "Unknown"}
    orientation = {
        "heterosexual": "Straight or heterosexual",
        "lesbian_or_gay": "Lesbian or gay",
        "bisexual": "Bisexual",
        "something_else": "Something else",
        "dont_know": "Don't know",
        "not_disclosed": "Chose not to disclose",
    }
    yes_no = {True: "Yes", False: "No"}
    for c in plan:
        for i in range(c.patients):
            site = c.sites[i % len(c.sites)]
            p = sample_person(random.Random(f"{seed}:{c.id}:{i}"), cfg, f"{c.id}-p{i:07d}", PS, PE, site)
            row = got[(c.id, p.pid)]
            strata = p.strata(c.id)
            assert row["race_ethnicity"] == strata["race_ethnicity"]
            assert row["language"] == strata["language"]
            assert row["income"] == income.get(p.income, p.income)
            assert row["insurance"] == p.insurance.capitalize()
            assert row["sdoh_risk"] == p.sdoh_risk
            assert row["ethnicity_detailed"] == (p.hispanic or "Not Hispanic or Latino")
            assert row["race"] == (p.race if p.race != "Unreported" else "Unknown")
            assert row["sex"] == ("Female" if p.female else "Male")
            assert row["postal_code"] == p.zip
            assert row["site"] == site["name"]
            bands = ((18, "0-17"), (40, "18-39"), (65, "40-64"), (999, "65+"))
            assert row["age_band"] == next(label for upper, label in bands if p.age_end < upper)
            if p.age_end >= 18:
                assert row["homeless"] == yes_no[p.special["homeless"]]
                assert row["veteran"] == yes_no[p.special["veteran"]]
                assert row["agricultural_worker"] == yes_no[p.special["agricultural_worker"]]
                assert row["sexual_orientation"] == orientation[p.orientation]
            else:
                assert row["homeless"] == row["veteran"] == row["sexual_orientation"] == "Unknown"


@pytest.mark.parametrize("bad", [(PE, PS)])
def test_rejects_inverted_period(bad: tuple[date, date]) -> None:
    con = connect_memory()
    with pytest.raises(ValueError):
        build_patient_attributes(con, period_start=bad[0], period_end=bad[1])


def test_ensure_reuses_the_table_until_the_next_load(tmp_path: Path) -> None:
    """One build per (period, load): later steps reuse it, and a new load makes it stale."""
    con = connect_memory()
    count_marked = "SELECT count(*), count(*) FILTER (WHERE sex = 'marker') FROM patient_attributes"
    for n, pid in enumerate(("a1", "a2")):
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "Patient.ndjson").write_text(json.dumps(_patient(pid)) + "\n")
        load(con, [folder], "cA")
        build_views(con)
        ensure_patient_attributes(con, period_start=PS, period_end=PE)
        assert con.execute(count_marked).fetchone() == (n + 1, 0)  # rebuilt after the load
        con.execute("UPDATE patient_attributes SET sex = 'marker'")
        ensure_patient_attributes(con, period_start=PS, period_end=PE)
        assert con.execute(count_marked).fetchone() == (n + 1, n + 1)  # reused: no new load
    ensure_patient_attributes(con, period_start=PS, period_end=date(2027, 12, 31))  # another period
    assert con.execute(count_marked).fetchone() == (2, 0)
