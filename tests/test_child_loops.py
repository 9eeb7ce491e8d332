"""Child health on a hand-built fixture: referral-loop closure, days to closure, open referrals by age,
7/30-day follow-up after an ED visit for mental illness, guardians -- every value computed by hand
(issue 22, "must show"). The resources are written below and go through the real ingest and views.

Period 2026 (CMS50 window: referrals authored up to 2026-10-31), center ``c1``. Referrals (R*), all of
children unless said otherwise:

====  ====  ======  ==============================================================  =========================
kid   ref   type    what happens                                                     result
====  ====  ======  ==============================================================  =========================
k01   R1    BH      report Task ends the same day, 6 hours after the referral       closed, 0 days
k01   R2    spec    the only report ends 9 days *before* the referral                open, 305 days
k02   R3    spec    one report Task based on R3 and R4 (2026-04-20)                  closed, 19 days
k02   R4    spec    (the same report)                                                closed, 15 days
k03   R5    BH      lifecycle Task cancelled                                         cancelled: in no rate
k03   R6    BH      report 2026-08-15                                                closed, 75 days
k04   R7    spec    authored 2026-11-15: after the CMS50 window                      not in rates; open 46 d
k04   R8    BH      lifecycle Task in progress, no report                            open, 121 days
k04   R9    BH      report the same day, one hour *before* the referral             open, 82 days
k05   R10   BH      a report based on R10 only                                       closed, 30 days
k05   R11   BH      (R10's report does not name it); an in-progress report Task      open, 345 days
a01   R12   BH      an adult                                                         not a child: absent
====  ====  ======  ==============================================================  =========================

In the window, not cancelled: R1-R4, R6, R8-R11 = 9 referrals, 5 closed; BH 3/6, specialist 2/3; days to
closure 0, 15, 19, 30, 75 (median 19). Open at the period end: R2 305, R7 46, R8 121, R9 82, R11 345 ->
30+ days 5, 60+ days 4, 90+ days 3.

ED visits for mental illness / self-harm (HEDIS-FUM-like): k02 E1 F32.9 2026-03-10, follow-up 03-15
(7 and 30 days); k05 E2 X78.0XXA 05-01, follow-up 05-20 (30 days only), E3 05-15 is within 30 days of E2
(no new event); k01 E4 F41.1 07-01, follow-up the same day (7 days); E5 08-10 no follow-up; k06 E6 F31.9
09-01 then admitted 09-02 (excluded); k03 (age 4) and k02's asthma ED visit and k02's 12-15 visit (after
December 1) are no events. Counted: E1, E2, E4, E5 -> 7-day 2/4, 30-day 3/4.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from chc_equity.child import bh, guardians, referrals
from chc_equity.child.build import build
from chc_equity.ingest import load
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect

START, END = date(2026, 1, 1), date(2026, 12, 31)
SCT, LOINC, ICD = "http://snomed.info/sct", "http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BIRTH = {"k01": "2018-03-01", "k02": "2012-02-01", "k03": "2022-05-05", "k04": "2025-01-10",
         "k05": "2010-06-01", "k06": "2014-01-01", "a01": "1986-01-01"}  # fmt: skip


def _patient(pid: str) -> dict[str, Any]:
    lang = "es" if pid == "k05" else "en"
    p: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "birthDate": BIRTH[pid], "gender": "female",
        "name": [{"family": f"Kid{pid}", "given": ["Test"]}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]},
                           "preferred": True}],
    }  # fmt: skip
    if pid == "k02":
        p["contact"] = [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                                       "code": "N"}]}],
                         "name": {"family": "Smith", "given": ["John"]},
                         "telecom": [{"system": "phone", "value": "(617) 555-0101"}]}]  # fmt: skip
    return p


def _referral(rid: str, pid: str, code: str, authored: str, org: str | None = None, status: str = "active"):
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": rid, "status": status, "intent": "order",
        "category": [{"coding": [{"system": SCT, "code": "3457005"}]}],
        "code": {"coding": [{"system": SCT, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored,
    }  # fmt: skip
    if org:
        sr["performer"] = [{"reference": f"Organization/{org}"}]
    return sr


def _report(tid: str, pid: str, based_on: list[str], end: str, status: str = "completed"):
    return {
        "resourceType": "Task", "id": tid, "status": status, "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": "11488-4"}]},
        "basedOn": [{"reference": f"ServiceRequest/{r}"} for r in based_on],
        "for": {"reference": f"Patient/{pid}"},
        "executionPeriod": {"start": end[:10], "end": end}, "lastModified": end,
    }  # fmt: skip


def _lifecycle(tid: str, rid: str, pid: str, status: str, modified: str, owner: str | None = None):
    t = {"resourceType": "Task", "id": tid, "status": status, "intent": "order",
         "focus": {"reference": f"ServiceRequest/{rid}"}, "for": {"reference": f"Patient/{pid}"},
         "lastModified": modified}  # fmt: skip
    if owner:
        t["owner"] = {"reference": f"Organization/{owner}"}
    return t


def _enc(eid: str, pid: str, day: str, cls: str, reason: str | None = None):
    e: dict[str, Any] = {
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": ACT, "code": cls}, "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": f"{day}T10:00:00-05:00", "end": f"{day}T11:00:00-05:00"},
    }  # fmt: skip
    if reason:
        e["reasonCode"] = [{"coding": [{"system": ICD, "code": reason}]}]
    return e


BH, SPEC = "390866009", "103696004"
RESOURCES: list[dict[str, Any]] = [
    *(_patient(p) for p in BIRTH),
    {"resourceType": "Organization", "id": "bh1", "name": "Harbor Youth Counseling"},
    {"resourceType": "Organization", "id": "card1", "name": "Children's Cardiology"},
    {
        "resourceType": "RelatedPerson",
        "id": "rp1",
        "patient": {"reference": "Patient/k01"},
        "active": True,
        "relationship": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
        ],
        "name": [{"family": "Rivera", "given": ["Ana"]}],
        "telecom": [{"system": "phone", "value": "(617) 555-0199"}],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}, "preferred": True}
        ],
    },
    _referral("R1", "k01", BH, "2026-02-10T09:00:00-05:00", "bh1"),
    _report("T1", "k01", ["R1"], "2026-02-10T15:00:00-05:00"),
    _referral("R2", "k01", SPEC, "2026-03-01T10:00:00-05:00", "card1"),
    _report("T2", "k01", ["R2"], "2026-02-20T10:00:00-05:00"),
    _referral("R3", "k02", SPEC, "2026-04-01T09:00:00-05:00", "card1"),
    _referral("R4", "k02", SPEC, "2026-04-05T09:00:00-05:00", "card1"),
    _report("T3", "k02", ["R3", "R4"], "2026-04-20T12:00:00-05:00"),
    _referral("R5", "k03", BH, "2026-05-01T09:00:00-05:00", "bh1"),
    _lifecycle("L5", "R5", "k03", "cancelled", "2026-05-03T09:00:00-05:00"),
    _referral("R6", "k03", BH, "2026-06-01T09:00:00-05:00", "bh1"),
    _report("T6", "k03", ["R6"], "2026-08-15T12:00:00-05:00"),
    _referral("R7", "k04", SPEC, "2026-11-15T09:00:00-05:00", "card1"),
    _referral("R8", "k04", BH, "2026-09-01T09:00:00-05:00"),
    _lifecycle("L8", "R8", "k04", "in-progress", "2026-09-05T09:00:00-05:00", owner="bh1"),
    _referral("R9", "k04", BH, "2026-10-10T09:00:00-05:00", "bh1"),
    _report("T9", "k04", ["R9"], "2026-10-10T08:00:00-05:00"),
    _referral("R10", "k05", BH, "2026-01-15T09:00:00-05:00", "bh1"),
    _referral("R11", "k05", BH, "2026-01-20T09:00:00-05:00", "bh1"),
    _report("T10", "k05", ["R10"], "2026-02-14T09:00:00-05:00"),
    _report("T11", "k05", ["R11"], "2026-03-14T09:00:00-05:00", status="in-progress"),
    _referral("R12", "a01", BH, "2026-03-01T09:00:00-05:00", "bh1"),
    _report("T12", "a01", ["R12"], "2026-03-05T09:00:00-05:00"),
    # ED visits and follow-ups
    _enc("E1", "k02", "2026-03-10", "EMER", "F32.9"),
    _enc("F1", "k02", "2026-03-15", "AMB", "F32.9"),
    _enc("E2", "k05", "2026-05-01", "EMER", "X78.0XXA"),
    _enc("E3", "k05", "2026-05-15", "EMER", "F32.9"),
    _enc("F2", "k05", "2026-05-20", "AMB", "F43.10"),
    _enc("E4", "k01", "2026-07-01", "EMER", "F41.1"),
    _enc("F4", "k01", "2026-07-01", "VR", "F41.1"),
    _enc("E5", "k01", "2026-08-10", "EMER", "F41.1"),
    _enc("E6", "k06", "2026-09-01", "EMER", "F31.9"),
    _enc("I6", "k06", "2026-09-02", "IMP", "F31.9"),
    _enc("F6", "k06", "2026-09-08", "AMB", "F31.9"),
    _enc("E7", "k03", "2026-04-01", "EMER", "F91.9"),
    _enc("E8", "k02", "2026-06-01", "EMER", "J45.909"),
    _enc("E9", "k02", "2026-12-15", "EMER", "F32.9"),
    _enc("V1", "a01", "2026-02-01", "AMB"),
]


def _write_fixture(folder: Path) -> Path:
    by_type: dict[str, list[bytes]] = {}
    for r in RESOURCES:
        by_type.setdefault(r["resourceType"], []).append(orjson.dumps(r))
    data = folder / "data"
    data.mkdir()
    for t, rows in by_type.items():
        (data / f"{t}.ndjson").write_bytes(b"\n".join(rows) + b"\n")
    return data


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    folder = tmp_path_factory.mktemp("child")
    data = _write_fixture(folder)
    c = connect(folder / "w.duckdb")
    load(c, [data], "c1", after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    build(c, period_start=START, period_end=END, measures=False)
    yield c
    c.close()


def _ref(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    df = con.execute(f"SELECT * FROM {referrals.REFERRAL}").df()
    return {r["referral_id"]: r for r in df.to_dict("records")}


def test_each_referral_equals_the_hand_computed_loop(con: duckdb.DuckDBPyConnection) -> None:
    r = _ref(con)
    assert "R12" not in r  # an adult's referral
    expected = {  # id: (type, cancelled, in_window, closed, days_to_closure, open_days)
        "R1": ("behavioral_health", False, True, True, 0, None),
        "R2": ("specialist", False, True, False, None, 305),
        "R3": ("specialist", False, True, True, 19, None),
        "R4": ("specialist", False, True, True, 15, None),
        "R5": ("behavioral_health", True, True, False, None, None),
        "R6": ("behavioral_health", False, True, True, 75, None),
        "R7": ("specialist", False, False, False, None, 46),
        "R8": ("behavioral_health", False, True, False, None, 121),
        "R9": ("behavioral_health", False, True, False, None, 82),
        "R10": ("behavioral_health", False, True, True, 30, None),
        "R11": ("behavioral_health", False, True, False, None, 345),
    }
    for rid, (rtype, cancelled, window, closed, days, open_days) in expected.items():
        row = r[rid]
        got = (row["referral_type"], bool(row["cancelled"]), bool(row["in_window"]), bool(row["closed"]))
        assert got == (rtype, cancelled, window, closed), rid
        assert (None if row["days_to_closure"] != row["days_to_closure"] else row["days_to_closure"]) in (
            days,
        ), rid
        od = row["open_days"]
        assert (None if od is None or od != od else int(od)) == open_days, rid
    assert r["R3"]["report_id"] == r["R4"]["report_id"] == "T3"  # two referrals, one report
    assert r["R8"]["organization_name"] == "Harbor Youth Counseling"  # from the lifecycle Task's owner
    assert r["R3"]["organization_name"] == "Children's Cardiology"
    assert r["R8"]["task_status"] == "in-progress"


def test_closure_rates_days_and_open_ages(con: duckdb.DuckDBPyConnection) -> None:
    m = con.execute(
        f"""SELECT referral_type, referrals, closed, closure_rate, days_to_closure_median,
                   open_30, open_60, open_90
              FROM {referrals.METRICS}
             WHERE center = 'c1' AND organization_id = 'All' AND age_band = '0-17'"""
    ).fetchall()
    got = {row[0]: row[1:] for row in m}
    assert got["any"] == (9, 5, pytest.approx(5 / 9), 19.0, 5, 4, 3)
    assert got["behavioral_health"][:3] == (6, 3, pytest.approx(0.5))
    assert got["behavioral_health"][3] == 30.0  # 0, 30, 75
    assert got["specialist"][:4] == (3, 2, pytest.approx(2 / 3), 17.0)  # 15, 19
    # per organization and per age band add up to the center
    by_org = con.execute(
        f"""SELECT organization_name, referrals, closed FROM {referrals.METRICS}
             WHERE center = 'c1' AND referral_type = 'any' AND organization_id <> 'All' AND age_band = '0-17'
             ORDER BY 1"""
    ).fetchall()
    assert by_org == [("Children's Cardiology", 3, 2), ("Harbor Youth Counseling", 6, 3)]
    bands = dict(
        con.execute(
            f"""SELECT age_band, referrals FROM {referrals.METRICS} WHERE center = 'c1'
                 AND referral_type = 'any' AND organization_id = 'All' AND age_band <> '0-17'"""
        ).fetchall()
    )
    # k01 8 y (R1 R2), k02 14 y (R3 R4), k03 4 y (R6), k04 1 y (R8 R9), k05 16 y (R10 R11)
    assert bands == {"6-11": 2, "12-17": 4, "3-5": 1, "0-2": 2}


def test_bh_followup_7_and_30_days(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"SELECT encounter_id, excluded, followup_7d, followup_30d, age_band FROM {bh.FOLLOWUP} ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("E1", False, True, True, "12-17"),
        ("E2", False, False, True, "12-17"),
        ("E4", False, True, True, "6-11"),
        ("E5", False, False, False, "6-11"),
        ("E6", True, True, True, "12-17"),  # followed up, but excluded (admitted)
    ]
    n, d7, d30 = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE followup_7d), count(*) FILTER (WHERE followup_30d) "
        f"FROM {bh.FOLLOWUP} WHERE NOT excluded"
    ).fetchone()
    assert (n, d7, d30) == (4, 2, 3)


def test_guardians_and_family_language(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        f"SELECT patient_id, source, relationship, name, phone, family_language FROM {guardians.TABLE} "
        "ORDER BY patient_id, rank"
    ).fetchall()
    assert rows == [
        ("k01", "RelatedPerson", "MTH", "Rivera, Ana", "(617) 555-0199", "Spanish"),
        ("k02", "Patient.contact", "N", "Smith, John", "(617) 555-0101", "Unknown"),
    ]


def test_equity_rows_are_suppressed_below_11(con: duckdb.DuckDBPyConnection) -> None:
    df = con.execute(f"SELECT * FROM {referrals.EQUITY}").df()
    assert len(df) and bool(df["suppressed"].all())  # 9 referrals: no stratum reaches 11
    shown = df["numerator"].dropna().tolist() + df["denominator"].dropna().tolist()
    assert all(v == 0 or v >= 11 for v in shown)  # zeros are published (CMS policy), 1-10 never


def test_pediatric_measures_come_from_the_age_criteria() -> None:
    from chc_equity.child.pediatric import age_range, child_measures

    assert age_range("  WHERE {age_at_start('p.birth_date', mp)} >= 12\n") == (12, None)
    assert age_range("  WHERE {age} BETWEEN 3 AND 17\n") == (3, 17)
    assert age_range(
        'WHERE {age_at_start("p.birth_date", mp)} >= 6 AND {age_at_start("p.birth_date", mp)} <= 16'
    ) == (6, 16)
    assert age_range("no age criterion at all") == (0, None)
    assert {cms for _, cms, _, _ in child_measures()} == {
        "CMS2", "CMS74", "CMS75", "CMS117", "CMS138", "CMS155", "CMS159", "CMS177", "CMS314", "CMS349",
    }  # fmt: skip


def test_pediatric_table_by_age_band(con: duckdb.DuckDBPyConnection) -> None:
    """Hand-written CMS155 results for the fixture's children: k01 (8 y) met, k02 (14 y) not met, k03
    (4 y) met, k04 (1 y) excluded, k05 (16 y) met, a01 (adult) met -- the adult and the excluded child
    are not counted. With threshold 1 (a test-only setting) every count is shown."""
    from chc_equity.child import pediatric
    from chc_equity.measures.engine import RESULTS_DDL
    from chc_equity.measures.registry import find

    name = find(["CMS155"])[0].measure.name
    con.execute(RESULTS_DDL)
    con.execute("DELETE FROM measure_results")
    for pid, excluded, met in (("k01", False, True), ("k02", False, False), ("k03", False, True),
                               ("k04", True, False), ("k05", False, True), ("a01", False, True)):  # fmt: skip
        con.execute(
            "INSERT INTO measure_results VALUES ('c1', ?, 'Group_1', ?, ?, 'Patient', ?, ?, true, true, ?, "
            "false, ?, false, [])",
            [name, START, END, pid, pid, excluded, met],
        )
    df = pediatric.table(con, START, END, threshold=1)
    overall = df[(df["dimension"] == "overall")].set_index("age_band")
    assert (overall.loc["0-17", "numerator"], overall.loc["0-17", "denominator"]) == (3, 4)
    assert overall.loc["6-11", "numerator"] == 1 and overall.loc["12-17", "denominator"] == 2
    assert overall.loc["3-5", "rate"] == 1.0 and "0-2" not in overall.index
    lang = df[df["dimension"] == "language"].set_index("stratum")
    assert (lang.loc["Spanish", "numerator"], lang.loc["Spanish", "denominator"]) == (1, 1)  # k05
    default = pediatric.table(con, START, END)  # the project's 11: nothing from 1 to 10 is shown
    shown = default["numerator"].dropna().tolist() + default["denominator"].dropna().tolist()
    assert all(v == 0 or v >= 11 for v in shown)


def test_cli_builds_the_tables_and_writes_the_workbook(tmp_path: Path) -> None:
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app

    path = tmp_path / "w.duckdb"
    c = connect(path)
    load(c, [_write_fixture(tmp_path)], "c1", after_load=lambda cn, ctr: build_views(cn, centers=[ctr]))
    c.close()
    _register()
    args = ["child", "--warehouse", str(path), "--period-start", "2026-01-01", "--period-end", "2026-12-31"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "55.6%" in result.output  # 5 of 9 closed (any)
    book = load_workbook(tmp_path / "out" / "pediatric.xlsx")
    rows = list(book["Referral loops"].iter_rows(min_row=2, values_only=True))
    assert rows and all(v is None or v == 0 or v >= 11 for r in rows for v in r[4:6] + r[9:12])
