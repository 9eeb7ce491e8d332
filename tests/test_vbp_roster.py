"""Attribution rosters: CSV / Da Vinci ATR import, reconciliation, member months and continuous
enrollment on a hand-built fixture, every figure computed by hand (docs/vbp.md)."""

from __future__ import annotations

from datetime import date

import pytest

from chc_equity.vbp.link import Linker, PatientKey
from chc_equity.vbp.roster import (
    Member,
    RosterError,
    continuously_enrolled,
    member_months,
    read_atr,
    read_roster_csv,
    reconcile,
    seen_in_window,
    uncovered,
)

D = date.fromisoformat
AS_OF = D("2026-06-30")


def m(mid: str, start: str, end: str | None = None, payer: str = "A") -> Member:
    return Member(payer, mid, "Doe", "J", D("1970-01-01"), "", D(start), D(end) if end else None)


MEMBERS = [
    (m("M1", "2026-01-01"), "p1"),
    (m("M2", "2026-01-01", "2026-12-31"), "p2"),
    (m("M3", "2026-01-02"), "p3"),  # starts on the 2nd: no January member month
    (m("M4", "2025-11-15", "2026-02-01"), "p4"),  # ends on Feb 1: February counts
    (m("M5", "2026-03-01", "2026-03-31"), None),  # unlinked
    (m("M6", "2025-01-01", "2026-05-31"), "p6"),  # ended before as_of
    (m("M7", "2026-07-01"), "p7"),  # starts after as_of
    (m("M8", "2026-01-01", payer="B"), "p5"),  # another payer
]
VISITS = {
    "p1": [D("2026-03-01")],
    "p2": [D("2024-06-30")],  # exactly 24 months before as_of: outside the window (start is exclusive)
    "p3": [D("2024-07-01")],  # first day inside the window
    "p4": [D("2026-07-01")],  # after as_of
    "p5": [D("2025-01-01")],
    "p6": [D("2025-05-05")],
}


def test_seen_window_edges():
    assert seen_in_window(VISITS, AS_OF) == {"p1", "p3", "p5", "p6"}
    assert seen_in_window(VISITS, AS_OF, lookback_months=12) == {"p1"}


def test_reconciliation_equals_hand_count():
    seen = seen_in_window(VISITS, AS_OF)
    rec = reconcile(MEMBERS, seen, payer="A", as_of=AS_OF)
    # M4's span ended Feb 1 and M5's in March: attributed on as_of only if the span covers it
    rec_march = reconcile(MEMBERS, seen, payer="A", as_of=D("2026-03-15"))
    assert rec.attributed_seen == ["M1", "M3"]
    assert rec.attributed_not_seen == ["M2"]
    assert rec.seen_not_attributed == ["p5", "p6"]
    assert rec.unmatched == []
    assert rec_march.attributed_seen == ["M1", "M3", "M6"]
    assert rec_march.attributed_not_seen == ["M2", "M5"]  # M5: linked to no patient, so never seen
    assert rec_march.unmatched == ["M5"]
    assert rec_march.seen_not_attributed == ["p5"]
    assert rec.counts() == {
        "attributed": 3,
        "attributed_seen": 2,
        "attributed_not_seen": 1,
        "seen_not_attributed": 2,
        "unmatched": 0,
    }
    only_insured = reconcile(MEMBERS, seen, payer="A", as_of=AS_OF, insured_by={"p6"})
    assert only_insured.seen_not_attributed == ["p6"]


def test_member_months_first_of_month_rule():
    mm = member_months([mem for mem, _ in MEMBERS], D("2026-01-01"), D("2026-06-30"))
    a = {k[1].month: v for k, v in mm.items() if k[0] == "A"}
    assert a == {1: 4, 2: 5, 3: 5, 4: 4, 5: 4, 6: 3}  # M1 M2 M4 M6 | +M3 | -M4 +M5 | -M5 | | -M6
    assert sum(a.values()) == 25
    assert {k[1].month: v for k, v in mm.items() if k[0] == "B"} == dict.fromkeys(range(1, 7), 1)


def test_continuous_enrollment_gap_rule():
    y0, y1 = D("2026-01-01"), D("2026-12-31")
    ok = [(D("2026-01-01"), D("2026-02-14")), (D("2026-04-01"), None)]  # Feb 15 - Mar 31: 45 days
    assert uncovered(ok, y0, y1) == [(D("2026-02-15"), D("2026-03-31"))]
    assert continuously_enrolled(ok, y0, y1)
    long = [(D("2026-01-01"), D("2026-02-13")), (D("2026-04-01"), None)]  # 46 days
    assert not continuously_enrolled(long, y0, y1)
    two = [(D("2026-01-01"), D("2026-01-31")), (D("2026-02-10"), D("2026-05-31")), (D("2026-06-10"), None)]
    assert not continuously_enrolled(two, y0, y1)
    assert continuously_enrolled(two, y0, y1, max_gaps=2)
    ended = [(D("2026-01-01"), D("2026-12-20"))]  # 11-day gap, but not enrolled on the anchor (Dec 31)
    assert not continuously_enrolled(ended, y0, y1)
    assert continuously_enrolled(ended, y0, y1, anchor=D("2026-12-01"))


def test_csv_template_rejects_bad_rows_and_loads_good_ones():
    text = (
        "payer,member_id,last_name,first_name,birth_date,gender,attribution_start,attribution_end,mrn\n"
        "A,M1,Doe,Jane,1970-01-31,F,2026-01-01,,MRN1\n"
        "A,M2,Roe,Ann,1970-02-30,F,2026-01-01,,\n"
        "A,,Poe,Al,1971-01-01,M,2026-01-01,,\n"
        "A,M4,Moe,Bo,1972-01-01,M,2026-03-01,2026-02-01,\n"
    )
    members, rejects = read_roster_csv(text, "r.csv")
    assert [x.member_id for x in members] == ["M1"]
    assert members[0].mrn == "MRN1" and members[0].end is None
    assert [(r.line, r.field) for r in rejects] == [
        (3, "birth_date"),
        (4, "member_id"),
        (5, "attribution_end"),
    ]
    with pytest.raises(RosterError, match="line 1: missing column"):
        read_roster_csv("payer,member_id\nA,1\n", "bad.csv")


def test_atr_group_bundle():
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Group",
                    "id": "g",
                    "managingEntity": {"display": "Plan A"},
                    "member": [
                        {
                            "entity": {"reference": "Patient/x"},
                            "period": {"start": "2026-01-01"},
                            "extension": [
                                {
                                    "url": "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-coverageReference",
                                    "valueReference": {"reference": "Coverage/c"},
                                }
                            ],
                        },
                        {"entity": {"reference": "Patient/missing"}, "period": {"start": "2026-01-01"}},
                        {
                            "entity": {"reference": "Patient/y"},
                            "period": {"start": "2026-02-01", "end": "2026-03-31"},
                        },
                    ],
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "x",
                    "name": [{"family": "Núñez", "given": ["Ana", "M"]}],
                    "birthDate": "1980-05-05",
                }
            },
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "y",
                    "birthDate": "1990-01-01",
                    "identifier": [{"type": {"coding": [{"code": "MB"}]}, "value": "MB-9"}],
                }
            },
            {"resource": {"resourceType": "Coverage", "id": "c", "subscriberId": "SUB-1"}},
        ],
    }
    members, rejects = read_atr(bundle)
    assert [(x.payer, x.member_id, x.start, x.end) for x in members] == [
        ("Plan A", "SUB-1", D("2026-01-01"), None),
        ("Plan A", "MB-9", D("2026-02-01"), D("2026-03-31")),
    ]
    assert [(r.line, r.field) for r in rejects] == [(2, "member.entity")]
    # linking: identifier first, then name + birth date (accents and case ignored), never a guess
    linker = Linker(
        [
            PatientKey("p1", frozenset({"SUB-1"}), "Other", "Person", D("1950-01-01")),
            PatientKey("p2", frozenset(), "NUNEZ", "ana", D("1980-05-05")),
            PatientKey("p3", frozenset(), "Twin", "Al", D("2000-01-01")),
            PatientKey("p4", frozenset(), "Twin", "Al", D("2000-01-01")),
        ]
    )
    assert linker.link(["SUB-1"], "Núñez", "Ana", D("1980-05-05")) == ("p1", "identifier")
    assert linker.link(["nope"], "Núñez", "Ana M", D("1980-05-05")) == ("p2", "name+birth date")
    assert linker.link([], "Twin", "Al", D("2000-01-01")) == (None, "ambiguous")
    assert linker.link([], "Núñez", "Ana", D("1980-05-06")) == (None, "none")
