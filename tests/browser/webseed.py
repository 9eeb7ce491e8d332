"""A small synthetic two-center warehouse and user set for the web tests (plain SQL, no ingest needed).

Shared by tests/test_web*.py (``from browser.webseed import ...``) and the Playwright tests. Every value
is invented; the sentinels let tests assert that raw reject text and other centers' data never appear.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import uvicorn

from chc_equity.measures.engine import RESULTS_DDL
from chc_equity.measures.registry import find
from chc_equity.network import precompute
from chc_equity.views.build import expected_columns
from chc_equity.warehouse import connect
from chc_equity.web import WebConfig, create_app
from chc_equity.web.authstore import AuthStore, SessionPolicy, auth_path
from chc_equity.web.roles import Role

NORTH, SOUTH = "ctr-north", "ctr-south"
PASSWORD = "correct-horse-battery"
RAW_SENTINEL = "RAWTEXT-MUST-NOT-LEAK"
DETAIL_SENTINEL = "DETAIL-MUST-NOT-LEAK"
USERS: dict[str, tuple[Role, str | None]] = {
    "admin": (Role.NETWORK_ADMIN, None),
    "analyst": (Role.NETWORK_ANALYST, None),
    "staff-north": (Role.CENTER_STAFF, NORTH),
    "staff-south": (Role.CENTER_STAFF, SOUTH),
    "viewer": (Role.VIEWER, None),
    "viewer-north": (Role.VIEWER, NORTH),
    "pm-north": (Role.PROGRAM_MANAGER, NORTH),
    "chw-north": (Role.CHW, NORTH),
    "program-staff": (Role.PROGRAM_STAFF, None),  # the farmworker voucher program only
}
# Per center: patients, and how many have an unknown value of each field (some below 11 on purpose).
# Unknown values go to the first patients, except language: patients LANGUAGE_FROM.. (so NORTH's first
# patients, who have the CMS122 gaps, speak Spanish: the worklist's browser test filters for them).
PATIENTS = {
    NORTH: (40, {"birth_sex": 12, "race": 5, "ethnicity": 0, "language": 20, "postal_code": 3}),
    SOUTH: (30, {"birth_sex": 2, "race": 15, "ethnicity": 11, "language": 0, "postal_code": 14}),
}


LANGUAGE_FROM = 4


def patient_id(center: str, i: int) -> str:
    return f"{center}-pt-{i:03d}"


def mrn(center: str, i: int) -> str:
    return f"MRN-{center[-5:].upper()}-{i:03d}"


# Measure results (plain SQL rows, precomputed into agg_* by the real network.precompute):
# per measure and center, (denominator, exclusions, numerator) for the latest period; patient i is in the
# denominator when i < denominator, excluded when i >= denominator - exclusions, in the numerator when
# i < numerator. SOUTH is planted clearly worse on both (CMS122 is inverse: more in the numerator = worse).
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
PRIOR = (date(2025, 1, 1), date(2025, 12, 31))
RESULTS: dict[str, dict[str, tuple[int, int, int]]] = {
    "CMS130": {NORTH: (40, 2, 30), SOUTH: (30, 0, 5)},
    "CMS122": {NORTH: (20, 0, 4), SOUTH: (20, 0, 15)},
}
VISIT_DAY = date(2026, 3, 2)  # NORTH patients 0-5 have a visit that day (pre-visit planning)


def measure_name(cms: str) -> str:
    return find([cms])[0].measure.name


def expected_gaps(cms: str, center: str) -> list[int]:
    """Patient indices with an open gap (what the care-gap list must show)."""
    denom, excl, numer = RESULTS[cms][center]
    inverse = find([cms])[0].measure.inverse
    eligible = [i for i in range(denom) if i < denom - excl]
    return [i for i in eligible if (i < numer) == inverse]


def _measure_results(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RESULTS_DDL)
    rows = []
    for cms, by_center in RESULTS.items():
        name = measure_name(cms)
        for center, (denom, excl, numer) in by_center.items():
            for period, shift in ((PERIOD, 0), (PRIOR, 3)):
                n = PATIENTS[center][0]
                for i in range(n):
                    d = i < denom
                    x = d and i >= denom - excl
                    num = d and not x and i < max(0, numer - shift)
                    rows.append(
                        (
                            center,
                            name,
                            "Group_1",
                            *period,
                            "Patient",
                            patient_id(center, i),
                            patient_id(center, i),
                            True,
                            d,
                            x,
                            False,
                            num,
                            False,
                            [],
                        )
                    )
    con.executemany(f"INSERT INTO measure_results VALUES ({', '.join('?' * 15)})", rows)


# Flat tables the CHW worklist reads besides patient and encounter: created empty with their real
# columns (no resources of these types in the seed), so the worklist page works on this warehouse.
WORKLIST_TABLES = (
    "encounter",
    "encounter_location",
    "observation",
    "observation_code",
    "observation_component",
    "service_request",
    "service_request_category",
    "task",
)


def _encounters(con: duckdb.DuckDBPyConnection) -> None:
    for name in WORKLIST_TABLES:
        cols = ", ".join(f'"{c}" {t}' for c, t in expected_columns(name))
        con.execute(f"CREATE TABLE flat.{name} ({cols})")
    rows = []
    for center, (n, _unknown) in PATIENTS.items():
        for i in range(n):
            last = PERIOD[1] - timedelta(days=i)
            rows.append(
                (center, f"{center}-enc-a{i}", patient_id(center, i), "finished", f"{last}T09:00:00Z")
            )
            if center == NORTH and i < 6:
                start = f"{VISIT_DAY}T{8 + i:02d}:30:00Z"
                rows.append((center, f"{center}-enc-b{i}", patient_id(center, i), "planned", start))
    con.executemany(
        "INSERT INTO flat.encounter (center, id, patient_id, status, period_start) VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def _patients(con: duckdb.DuckDBPyConnection, with_flat: bool) -> None:
    rows = []
    for center, (n, unknown) in PATIENTS.items():
        for i in range(n):
            pid = patient_id(center, i)
            resource = {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": "urn:example:mrn", "value": mrn(center, i)}],
                "name": [{"family": f"Family{i:03d}", "given": ["Test"]}],
                "birthDate": f"{1950 + i}-01-15",
                "telecom": [{"system": "phone", "value": f"555-01{i:02d}", "use": "mobile"}],
            }
            con.execute(
                "INSERT INTO resources VALUES (?, 'Patient', ?, now(), ?, ?, 1, ?)",
                [center, pid, f"/data/{center}/Patient.ndjson", str(i + 1), json.dumps(resource)],
            )
            rows.append(
                (
                    center,
                    pid,
                    "UNK" if i < unknown["birth_sex"] else "F",
                    None if i < unknown["race"] else "2106-3",
                    "ASKU" if i < unknown["ethnicity"] else "2186-5",
                    None,
                    "und" if LANGUAGE_FROM <= i < LANGUAGE_FROM + unknown["language"] else "es",
                    "" if i < unknown["postal_code"] else "02139",
                    f"{1950 + i}-01-15",
                )
            )
    if with_flat:
        con.execute(
            "CREATE TABLE flat.patient (center VARCHAR, id VARCHAR, birth_sex VARCHAR, "
            "race_omb_code VARCHAR, ethnicity_omb_code VARCHAR, preferred_language_code VARCHAR, "
            "first_language_code VARCHAR, "
            "postal_code VARCHAR, birth_date VARCHAR)"
        )
        con.executemany("INSERT INTO flat.patient VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def build_warehouse(path: Path, *, with_flat: bool = True, with_measures: bool = True) -> Path:
    """Write loads, resources, rejects (and flat.patient unless ``with_flat`` is False); close the file.

    With ``with_measures`` (and ``with_flat``) also measure_results, flat.encounter and the agg_* tables
    precomputed for two periods.
    """
    con = connect(path)
    try:
        con.execute(
            "INSERT INTO loads VALUES "
            f"(1, '{NORTH}', TIMESTAMPTZ '2024-05-01 10:00:00+00', TIMESTAMPTZ '2024-05-01 10:00:05+00', "
            "5.0, "
            f"['/data/{NORTH}/Patient.ndjson'], 43, 40, 0, 0, 3, 'ok'), "
            f"(2, '{SOUTH}', TIMESTAMPTZ '2024-05-02 10:00:00+00', TIMESTAMPTZ '2024-05-02 10:00:04+00', "
            "4.0, "
            f"['/data/{SOUTH}/Patient.ndjson', '/data/{SOUTH}/Observation.ndjson'], 32, 30, 0, 0, 2, 'ok'), "
            f"(3, '{NORTH}', TIMESTAMPTZ '2024-06-01 10:00:00+00', TIMESTAMPTZ '2024-06-01 10:00:01+00', "
            "1.0, "
            f"['/data/{NORTH}/Encounter.ndjson'], 12, 12, 0, 0, 0, 'ok')"
        )
        _patients(con, with_flat)
        for i in range(12):
            enc = {"resourceType": "Encounter", "id": f"{NORTH}-enc-{i}"}
            con.execute(
                "INSERT INTO resources VALUES (?, 'Encounter', ?, now(), ?, ?, 3, ?)",
                [NORTH, enc["id"], f"/data/{NORTH}/Encounter.ndjson", str(i + 1), json.dumps(enc)],
            )
        rejects = [
            (1, NORTH, f"/data/{NORTH}/Patient.ndjson", "Patient", None, None, "malformed-json"),
            (1, NORTH, f"/data/{NORTH}/Patient.ndjson", "Patient", None, None, "malformed-json"),
            (
                1,
                NORTH,
                f"/data/{NORTH}/Patient.ndjson",
                "Patient",
                f"{NORTH}-pt-bad",
                "birthDate",
                "invalid-value",
            ),
            (
                2,
                SOUTH,
                f"/data/{SOUTH}/Observation.ndjson",
                "Observation",
                f"{SOUTH}-obs-1",
                "subject",
                "bad-ref",
            ),
            (
                2,
                SOUTH,
                f"/data/{SOUTH}/Observation.ndjson",
                "Observation",
                f"{SOUTH}-obs-2",
                "subject",
                "bad-ref",
            ),
        ]
        for load_id, center, file, rtype, rid, field, reason in rejects:
            con.execute(
                "INSERT INTO rejects VALUES (?, ?, ?, '1', ?, ?, ?, ?, ?, ?)",
                [load_id, center, file, rtype, rid, field, reason, DETAIL_SENTINEL, RAW_SENTINEL],
            )
        if with_flat and with_measures:
            _measure_results(con)
            _encounters(con)
            for start, end in (PRIOR, PERIOD):
                precompute(con, period_start=start, period_end=end)
            _sdoh_tables(con)
            _sdoh_patient_tables(con)
            _vbp_tables(con)
            _child_tables(con)
    finally:
        con.close()
    return path


def _vbp_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A payer per center (chc_equity.vbp imports): a roster linked by MRN, a gap file, claims, fills and
    the worked contract of docs/vbp.md, so the value-based-payment pages render real rows."""
    from decimal import Decimal

    from chc_equity.vbp import store
    from chc_equity.vbp.contract import load_contract
    from chc_equity.vbp.cost import Claim
    from chc_equity.vbp.payer_gaps import PayerGap
    from chc_equity.vbp.pdc import Fill
    from chc_equity.vbp.roster import Member

    contract = load_contract(Path(__file__).resolve().parents[2] / "docs/examples/vbp/worked_contract.yaml")
    for center, (n, _) in PATIENTS.items():
        payer = f"Plan {center}"
        ids = [f"M-{center}-{i:03d}" for i in range(n)]
        members = [Member(payer, ids[i], "", "", None, "", PERIOD[0], None, mrn(center, i)) for i in range(n)]
        store.import_roster(con, center, members, [], "roster.csv")
        gaps = [PayerGap(payer, ids[i], "", "", None, "HBD", "open") for i in range(8)]
        store.import_gaps(con, center, gaps, [], "gaps.csv")
        claims = [Claim(f"c{i}", payer, ids[i], date(2026, 3, 1 + i % 28), "ed" if i % 3 else "outpatient",
                        Decimal(100 + i)) for i in range(n)]  # fmt: skip
        store.import_claims(con, center, claims, [], "claims.csv")
        fills = [(Fill("", date(2026, 1, 5), 30, "atorvastatin 20 MG"), ids[0]),
                 (Fill("", date(2026, 3, 5), 30, "atorvastatin 20 MG"), ids[0])]  # fmt: skip
        store.import_fills(con, center, fills, [], "pharmacy.csv")
        store.save_contract(con, center, contract.model_copy(update={"payer": payer}))


# (center, site) -> (metric, domain, numerator, denominator, value for days); the Social needs page's data
SDOH_ROWS = {
    NORTH: [
        ("eligible", "any", 40, None, None),
        ("screened", "any", 25, 38, None),
        ("declined", "any", 2, 40, None),
        ("prapare_complete", "any", 20, 25, None),
        ("connected_60d", "any", 7, 12, None),
        ("positive", "any", 12, 25, None),
        ("positive", "food", 5, 25, None),
        ("documented", "any", 6, 12, None),
        ("referred", "any", 8, 12, None),
        ("closure", "any", 4, 9, None),
        ("rejected_at_capacity", "any", 1, 9, None),
        ("days_to_closure_median", "any", None, 4, 21.0),
    ],
    SOUTH: [
        ("eligible", "any", 30, None, None),
        ("screened", "any", 22, 30, None),
        ("declined", "any", 0, 30, None),
        ("positive", "any", 15, 22, None),
        ("referred", "any", 13, 15, None),
        ("closure", "any", 12, 14, None),
    ],
}


# The staff lists' patient-level rows: (center, patient index, domain, positive, referred) and referrals
# (center, patient index, referral id, domain, task status, closed, organization).
SDOH_PATIENT_DOMAINS = [
    (NORTH, 0, "food", True, False),
    (NORTH, 1, "food", True, False),
    (NORTH, 1, "housing_instability", True, False),
    (NORTH, 2, "housing_instability", True, True),
    (NORTH, 3, "food", True, True),
    (NORTH, 4, "transportation", False, False),
    (SOUTH, 0, "food", True, False),
    (SOUTH, 1, "utilities", True, True),
]
SDOH_REFERRALS = [
    (NORTH, 2, "sr-n2", "housing_instability", "accepted", False, "org-housing"),
    (NORTH, 3, "sr-n3", "food", "completed", True, "org-foodbank"),
    (NORTH, 3, "sr-n3b", "food", "rejected", False, "org-pantry"),
    (SOUTH, 1, "sr-s1", "utilities", "requested", False, "org-utility"),
]
SDOH_ORG_NAMES = {
    "org-housing": "Housing Partners",
    "org-foodbank": "Harbor Food Bank",
    "org-pantry": "Eastside Pantry",
    "org-utility": "Utility Assistance Fund",
}


# Child health (issue 22): the tables `chc-equity child` writes, by hand. NORTH patients 0 and 1 and
# SOUTH patient 0 have pediatric care gaps; NORTH 0's and SOUTH 0's guardians have a name and phone.
CHILD_GAPS = [  # (center, patient index, CMS id, band, child language, family language, guardian, phone)
    (NORTH, 0, "CMS155", "6-11", "English", "Spanish", "Guardian-North, Ana", "(617) 555-0700"),
    (NORTH, 1, "CMS117", "0-2", "Spanish", "Spanish", None, None),
    (SOUTH, 0, "CMS155", "12-17", "English", "English", "Guardian-South, Bo", "(508) 555-0800"),
]
CHILD_MEASURES = [  # (center, CMS id, band, numerator, denominator)
    (NORTH, "CMS155", "0-17", 21, 30), (NORTH, "CMS155", "6-11", 12, 17),
    (NORTH, "CMS155", "12-17", None, 13),
    (SOUTH, "CMS155", "0-17", 15, 25), (NORTH, "CMS117", "0-17", 14, 20),
]  # fmt: skip
CHILD_REFERRALS = [  # (center, type, referrals, closed, median days, open 30/60/90)
    ("*", "any", 60, 41, 21.0, 19, 12, 9),
    (NORTH, "any", 36, 27, 19.0, 9, 5, 3), (NORTH, "behavioral_health", 20, 13, 25.0, 7, 4, 3),
    (NORTH, "specialist", 16, 14, 14.0, 2, 1, 0),
    (SOUTH, "any", 24, 14, 24.0, 10, 7, 6),  # open 30+ >= 60+ >= 90+: the same referrals
]  # fmt: skip


def _child_tables(con: duckdb.DuckDBPyConnection) -> None:
    from chc_equity.child import bh, guardians, lists, pediatric, referrals

    ps, pe = PERIOD
    con.execute(
        f"""CREATE OR REPLACE TABLE {pediatric.TABLE} (center VARCHAR, cms_id VARCHAR, group_id VARCHAR,
            title VARCHAR, inverse BOOLEAN, age_band VARCHAR, dimension VARCHAR, stratum VARCHAR,
            numerator BIGINT, denominator BIGINT, rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE,
            q_value DOUBLE, is_reference BOOLEAN, worse_than_reference BOOLEAN, suppressed BOOLEAN)"""
    )
    for center, cms, band, num, den in CHILD_MEASURES:
        rate = num / den if num is not None else None
        con.execute(
            f"INSERT INTO {pediatric.TABLE} VALUES (?, ?, 'Group_1', ?, false, ?, 'overall', 'All children', "
            "?, ?, ?, NULL, NULL, NULL, NULL, true, false, ?)",
            [center, cms, f"{cms} title", band, num, den, rate, num is None],
        )
    con.execute(
        f"""INSERT INTO {pediatric.TABLE} VALUES ('{NORTH}', 'CMS155', 'Group_1', 'CMS155 title', false,
            '0-17',
            'language', 'Portuguese', 11, 40, 0.275, NULL, NULL, 0.001, 0.002, false, true, false)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {referrals.METRICS} (center VARCHAR, referral_type VARCHAR,
            organization_id VARCHAR, organization_name VARCHAR, age_band VARCHAR, referrals BIGINT,
            closed BIGINT,
            closure_rate DOUBLE, days_to_closure_median DOUBLE, days_to_closure_p90 DOUBLE, open_30 BIGINT,
            open_60 BIGINT, open_90 BIGINT, period_start DATE, period_end DATE)"""
    )
    for center, rtype, n, k, med, o30, o60, o90 in CHILD_REFERRALS:
        con.execute(
            f"INSERT INTO {referrals.METRICS} VALUES "
            "(?, ?, 'All', 'All', '0-17', ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
            [center, rtype, n, k, k / n, med, o30, o60, o90, ps, pe],
        )
    con.execute(
        f"""CREATE OR REPLACE TABLE {referrals.EQUITY} (center VARCHAR, referral_type VARCHAR,
            dimension VARCHAR,
            stratum VARCHAR, numerator BIGINT, denominator BIGINT, rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
            p_value DOUBLE, q_value DOUBLE, is_reference BOOLEAN, worse_than_reference BOOLEAN,
            suppressed BOOLEAN)"""
    )
    con.execute(
        f"INSERT INTO {referrals.EQUITY} VALUES ('{NORTH}', 'any', 'language', 'Spanish', 11, 30, 0.3667, "
        "NULL, NULL, 0.001, 0.004, false, true, false)"
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {bh.FOLLOWUP} (center VARCHAR, patient_id VARCHAR, encounter_id VARCHAR,
            ed_day DATE, age INTEGER, age_band VARCHAR, excluded BOOLEAN, followup_7d BOOLEAN,
            followup_30d BOOLEAN, days_to_followup BIGINT, period_start DATE, period_end DATE)"""
    )
    for center, n, d7, d30 in ((NORTH, 12, 7, 10), (SOUTH, 3, 1, 2)):
        for i in range(n):
            con.execute(
                f"INSERT INTO {bh.FOLLOWUP} VALUES (?, ?, ?, ?, 15, '12-17', false, ?, ?, NULL, ?, ?)",
                [center, patient_id(center, i), f"{center}-ed-{i}", ps, i < d7, i < d30, ps, pe],
            )
    con.execute(
        f"CREATE OR REPLACE TABLE {bh.DEPRESSION_OPEN} "
        "(center VARCHAR, patient_id VARCHAR, age INTEGER, screened_at TIMESTAMP)"
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {referrals.REFERRAL} (center VARCHAR, patient_id VARCHAR,
            age_band VARCHAR,
            referral_id VARCHAR, referral_type VARCHAR, authored_day DATE, request_status VARCHAR,
            task_status VARCHAR, cancelled BOOLEAN, in_window BOOLEAN, organization_id VARCHAR,
            organization_name VARCHAR, report_id VARCHAR, report_day DATE, closed BOOLEAN,
            days_to_closure BIGINT,
            open_days BIGINT, period_start DATE, period_end DATE)"""
    )
    for center, i, days in ((NORTH, 2, 95), (SOUTH, 1, 40)):
        con.execute(
            f"INSERT INTO {referrals.REFERRAL} VALUES (?, ?, '6-11', ?, 'behavioral_health', ?, 'active', "
            "'accepted', false, true, 'org-bh', 'Harbor Youth Counseling', NULL, NULL, false, NULL, ?, ?, ?)",
            [center, patient_id(center, i), f"{center}-ref-{i}", pe - timedelta(days=days), days, ps, pe],
        )
    con.execute(
        f"""CREATE OR REPLACE TABLE {guardians.TABLE} (center VARCHAR, patient_id VARCHAR, source VARCHAR,
            source_id VARCHAR, relationship VARCHAR, name VARCHAR, phone VARCHAR, language VARCHAR,
            rank BIGINT, family_language VARCHAR)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {lists.GAPS} (center VARCHAR, patient_id VARCHAR, cms_id VARCHAR,
            group_id VARCHAR, title VARCHAR, reason VARCHAR, age_band VARCHAR, child_language VARCHAR,
            family_language VARCHAR, guardian_name VARCHAR, guardian_relationship VARCHAR,
            guardian_phone VARCHAR)"""
    )
    for center, i, cms, band, lang, fam, guardian, phone in CHILD_GAPS:
        if guardian:
            con.execute(
                f"INSERT INTO {guardians.TABLE} VALUES (?, ?, 'RelatedPerson', 'rp', 'MTH', ?, ?, ?, 1, ?)",
                [center, patient_id(center, i), guardian, phone, fam, fam],
            )
        con.execute(
            f"INSERT INTO {lists.GAPS} VALUES (?, ?, ?, 'Group_1', ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                center,
                patient_id(center, i),
                cms,
                f"{cms} title",
                f"Not yet met: {cms}",
                band,
                lang,
                fam,
                guardian,
                "MTH" if guardian else None,
                phone,
            ],
        )


def _sdoh_patient_tables(con: duckdb.DuckDBPyConnection) -> None:
    """``sdoh_patient_domain`` / ``sdoh_referral`` (the columns the staff lists read), by hand."""
    con.execute(
        """CREATE OR REPLACE TABLE sdoh_patient_domain (center VARCHAR, patient_id VARCHAR, site VARCHAR,
           domain VARCHAR, hrsn VARCHAR, answered BOOLEAN, declined BOOLEAN, positive BOOLEAN,
           first_positive DATE, recorded BOOLEAN, need BOOLEAN, referred BOOLEAN)"""
    )
    for center, i, domain, positive, referred in SDOH_PATIENT_DOMAINS:
        con.execute(
            "INSERT INTO sdoh_patient_domain VALUES (?, ?, ?, ?, NULL, true, false, ?, ?, false, ?, ?)",
            [center, patient_id(center, i), f"{center} main site", domain, positive,
             date(2026, 2, 1 + i) if positive else None, positive, referred],
        )  # fmt: skip
    con.execute(
        """CREATE OR REPLACE TABLE sdoh_referral (center VARCHAR, patient_id VARCHAR, site VARCHAR,
           referral_id VARCHAR, domain VARCHAR, authored DATE, task_status VARCHAR,
           rejected_at_capacity BOOLEAN, closed BOOLEAN, days_to_closure INTEGER, contact_day DATE,
           organization_id VARCHAR, organization_name VARCHAR, period_start DATE, period_end DATE)"""
    )
    for center, i, rid, domain, status, closed, org in SDOH_REFERRALS:
        con.execute(
            "INSERT INTO sdoh_referral VALUES "
            "(?, ?, ?, ?, ?, DATE '2026-03-01', ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            [center, patient_id(center, i), f"{center} main site", rid, domain, status,
             status == "rejected", closed, 14 if closed else None, org, SDOH_ORG_NAMES[org], PERIOD[0],
             PERIOD[1]],
        )  # fmt: skip
    from chc_equity.sdoh.metrics import build_organizations

    build_organizations(con)  # the real SQL over the hand-written referrals


def _sdoh_tables(con: duckdb.DuckDBPyConnection) -> None:
    """``sdoh_metrics`` / ``sdoh_equity`` as `chc-equity sdoh` writes them (one site per center), by hand:
    this warehouse has no screening data to compute them from."""
    con.execute(
        """CREATE OR REPLACE TABLE sdoh_metrics (center VARCHAR, site VARCHAR, period_start DATE,
           period_end DATE, domain VARCHAR, metric VARCHAR, numerator BIGINT, denominator BIGINT,
           value DOUBLE)"""
    )
    network: dict[tuple[str, str], list[int | None]] = {}
    for center, rows in SDOH_ROWS.items():
        for site in ("All", f"{center} main site"):
            for metric, domain, num, den, days in rows:
                value = days if days is not None else (num / den if den else None)
                con.execute(
                    "INSERT INTO sdoh_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [center, site, PERIOD[0], PERIOD[1], domain, metric, num, den, value],
                )
        for metric, domain, num, den, days in rows:
            if days is None:  # the network row (center "*"): the sum of the centers, as the stage writes it
                tot = network.setdefault((metric, domain), [0, None if den is None else 0])
                tot[0] += num
                if den is not None:
                    tot[1] = (tot[1] or 0) + den
    for (metric, domain), (num, den) in network.items():
        con.execute(
            "INSERT INTO sdoh_metrics VALUES ('*', 'All', ?, ?, ?, ?, ?, ?, ?)",
            [PERIOD[0], PERIOD[1], domain, metric, num, den, num / den if den else None],
        )
    con.execute(
        """CREATE OR REPLACE TABLE sdoh_equity (center VARCHAR, metric VARCHAR, domain VARCHAR,
           dimension VARCHAR, stratum VARCHAR, numerator BIGINT, denominator BIGINT, rate DOUBLE,
           ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE, q_value DOUBLE, is_reference BOOLEAN,
           worse_than_reference BOOLEAN, suppressed BOOLEAN)"""
    )
    con.execute(
        f"""INSERT INTO sdoh_equity VALUES
        ('{NORTH}', 'closure', 'any', 'language', 'Spanish', 11, 40, 0.275, 0.16, 0.43, 0.004, 0.012,
         false, true, false),
        ('{NORTH}', 'closure', 'any', 'language', 'English', 60, 90, 0.667, 0.56, 0.75, NULL, NULL,
         true, false, false),
        ('{SOUTH}', 'closure', 'any', 'language', 'Portuguese', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         false, NULL, true)"""
    )


def build_synthetic_warehouse(
    folder: Path,
    *,
    centers: int = 2,
    patients: int = 250,
    center_ids: Mapping[str, str] | None = None,
    patient_hook: Callable[[dict], dict] | None = None,
    measures: Sequence[str] | None = ("CMS122", "CMS165"),
) -> tuple[Path, list[str]]:
    """A warehouse made the way a user makes one: synthetic FHIR, ``ingest``, measures, ``precompute``.

    Unlike :func:`build_warehouse` it has every flat table, so ``chc-equity uds`` works on it; the full
    precompute (equity included) also leaves ``patient_attributes`` in the warehouse, as in real use.
    ``center_ids`` loads a generated center (``c01`` ...) under another id; ``patient_hook`` rewrites
    each Patient resource before ingest (hostile names, for the export tests); ``measures`` are the
    measures run (None: every measure). Returns the warehouse path and the center ids as loaded.
    """
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views

    def _views(con: duckdb.DuckDBPyConnection, center: str) -> None:
        build_views(con, centers=[center])

    summary = generate(
        folder / "net", centers=centers, patients=patients, seed=3, period_end=PERIOD[1], cfg=load_config()
    )
    path = folder / "wh.duckdb"
    generated = [c["id"] for c in summary["centers"]]
    ids = [(center_ids or {}).get(c, c) for c in generated]
    if patient_hook is not None:
        for center in generated:
            file = folder / "net" / center / "Patient.ndjson"
            lines = [json.dumps(patient_hook(json.loads(x))) for x in file.read_text().splitlines() if x]
            file.write_text("\n".join(lines) + "\n")
    con = connect(path)
    try:
        for center, loaded_as in zip(generated, ids, strict=True):
            load(con, [folder / "net" / center], loaded_as, after_load=_views)
        run_measures(
            con, find(list(measures) if measures else None), period_start=PERIOD[0], period_end=PERIOD[1]
        )
        precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
    finally:
        con.close()
    return path, ids


def build_network_warehouse(
    folder: Path, *, centers: int, patients: int, seed: int = 3
) -> tuple[Path, list[str]]:
    """A generated network with every measure run and the web aggregates precomputed, built the quick
    way: all centers loaded, then the views built once and ``precompute`` without the equity tables
    (36 centers x 20 patients: about 10 s of CPU). Returns the warehouse path and the center ids."""
    from chc_equity.ingest import load
    from chc_equity.measures.engine import run_measures
    from chc_equity.synth import generate, load_config
    from chc_equity.views.build import build_views

    summary = generate(
        folder / "net", centers=centers, patients=patients, seed=seed, period_end=PERIOD[1], cfg=load_config()
    )
    ids = [c["id"] for c in summary["centers"]]
    path = folder / "wh.duckdb"
    con = connect(path)
    try:
        for center in ids:
            load(con, [folder / "net" / center], center)
        build_views(con)
        run_measures(con, find(None), period_start=PERIOD[0], period_end=PERIOD[1])
        precompute(con, period_start=PERIOD[0], period_end=PERIOD[1], equity=False)
    finally:
        con.close()
    return path, ids


UDSPLUS_KEY = b"test-only udsplus key: 0123456789abcdef0123456789abcdef"
UDSPLUS_HC = Path(__file__).parents[1] / "fixtures" / "udsplus" / "health_centers.yaml"


def build_uds_fixture_warehouse(path: Path) -> Path:
    """The hand-built UDS fixture (tests/test_uds_fixture.py: centers hc1, hc2, year 2025) as a DuckDB
    file with its hand-set measure results: small enough that a real UDS+ export takes a second."""
    from chc_equity.ingest import load
    from chc_equity.views.build import build_views
    from test_uds_fixture import build, load_measure_results

    con = connect(path)
    try:
        for center, folder in build(path.parent / f"{path.stem}-fhir").items():
            load(con, [folder], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
        load_measure_results(con)
    finally:
        con.close()
    return path


def add_udsplus_package(warehouse: Path, center: str = "hc1") -> str:
    """A real UDS+ package (``udsplus.package.export`` of the hand-built UDS fixture's ``center``) in
    ``warehouse``'s package folder, where the web UDS page lists it; returns its submission id.

    The web seed warehouse has no flat tables to export from, so the fixture is built in memory beside
    it (its re-link rows stay there): the package files are what the page lists and zips.
    """
    from dataclasses import replace

    from chc_equity.uds import load_config
    from chc_equity.udsplus.package import Submission, export, load_health_center
    from chc_equity.udsplus.store import default_folder
    from test_uds_fixture import FIXTURE, YEAR

    fixture = build_uds_fixture_warehouse(warehouse.parent / f"udsfx-{center}.duckdb")
    sub = Submission()
    out = default_folder(warehouse, center, YEAR, sub.submission_id)
    config = replace(load_config(FIXTURE / "config.yaml"), age_as_of="12-31")
    con = connect(fixture)
    try:
        hc = load_health_center(UDSPLUS_HC, center)
        _, _, violations = export(con, YEAR, center, UDSPLUS_KEY, hc, out, config=config, sub=sub)
    finally:
        con.close()
    assert violations == [], violations[:3]
    return sub.submission_id


def add_users(warehouse: Path) -> AuthStore:
    store = AuthStore(auth_path(warehouse))
    for name, (role, center) in USERS.items():
        store.add_user(name, PASSWORD, role, center)
    return store


def make_app(warehouse: Path, *, policy: SessionPolicy | None = None):
    return create_app(WebConfig(warehouse=warehouse, policy=policy or SessionPolicy()))


LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the login form (with its CSRF token) and return the POST's response."""
    page = client.get("/login")
    match = LOGIN_CSRF.search(page.text)
    assert match, "login form lacks its CSRF field"
    return client.post(
        "/login",
        data={"username": username, "password": password, "login_csrf": match.group(1)},
        follow_redirects=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free localhost port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# A monthly series of CMS122 (HbA1c > 9 %, inverse) at NORTH with a planted improvement: about 100
# patients a month, 30 % poorly controlled in 2025, 15 % from January 2026 (the improvement projects'
# charts find it). Aggregates only, as `chc-equity series --kind month` writes them.
SERIES_MONTHS = [(2025, m) for m in range(1, 13)] + [(2026, m) for m in range(1, 13)]
SERIES_SHIFT = 12  # first point of the planted change (Jan 2026)


def series_counts(i: int) -> tuple[int, int]:
    """(numerator, performance denominator) of point ``i``: fixed, so tests can compute by hand."""
    den = 96 + (i * 7) % 9
    rate = 0.30 if i < SERIES_SHIFT else 0.15
    wobble = ((i * 5) % 7 - 3) / 100
    return round(den * (rate + wobble)), den


def sdoh_series_counts(i: int) -> tuple[int, int]:
    """(screened, eligible not declined) of point ``i`` of the seeded social-needs screening series: 35 %
    for the 12 months of 2025, 55 % from Jan 2026 (a planted rise), with a fixed wobble."""
    den = 120 + (i * 5) % 11
    rate = 0.35 if i < SERIES_SHIFT else 0.55
    wobble = ((i * 3 + 2) % 5 - 2) / 100
    return round(den * (rate + wobble)), den


def add_measure_series(path: Path) -> None:
    """Write ``measure_series`` rows (CMS122, NORTH, all patients, 24 calendar months) into the warehouse,
    and ``sdoh_series`` rows of the social-needs screening rate (NORTH, all patients, the same months)."""
    from chc_equity.measures.series import SERIES_DDL
    from chc_equity.sdoh.series import DDL as SDOH_SERIES_DDL

    name = measure_name("CMS122")
    con = connect(path)
    try:
        con.execute(SERIES_DDL)
        con.execute(SDOH_SERIES_DDL)
        for i, (y, m) in enumerate(SERIES_MONTHS):
            start = date(y, m, 1)
            end = (date(y + m // 12, m % 12 + 1, 1)) - timedelta(days=1)
            num, den = series_counts(i)
            con.execute(
                "INSERT INTO measure_series VALUES "
                "(?, 'Group_1', ?, ?, ?, NULL, NULL, ?, ?, 0, 0, ?, 0, ?, ?)",
                [name, NORTH, start, end, den, den, num, den, num / den],
            )
            x, n = sdoh_series_counts(i)
            con.execute(
                "INSERT INTO sdoh_series VALUES ('screened', 'any', ?, ?, ?, NULL, NULL, ?, ?, ?)",
                [NORTH, start, end, x, n, x / n],
            )
    finally:
        con.close()


# -- hospital partner data (issue 21): one MERCY discharge per patient 0-14 of each center (matched by MRN)
# and one of patient 20 with a birth date one digit off (a review item), on HOSPITAL_DAY.
HOSPITAL_DAY = PERIOD[1] - timedelta(days=5)


def hospital_feed(center: str) -> str:
    day = HOSPITAL_DAY
    pv1 = "|".join(["PV1", "1", "I", "W"] + [""] * 40 + [f"{day:%Y%m%d}0800", f"{day:%Y%m%d}1000"])
    msgs = []
    for i in [*range(15), 20]:
        pid3 = f"{mrn(center, i)}^^^CMRN^MR" if i < 15 else "X1^^^MERCY^MR"
        birth = f"{1950 + i}0115" if i < 15 else f"{1950 + i}0116"
        msh = f"MSH|^~\\&|ADT|MERCY|C|C|{day:%Y%m%d}1000||ADT^A03|{center}-{i}|P|2.5.1"
        msgs.append("\r".join([msh, f"PID|1||{pid3}||Family{i:03d}^Test||{birth}", pv1]))
    return "\r\r".join(msgs)


def add_hospital_events(app) -> None:
    """Import both centers' feeds into the app's database (review item ids: NORTH's first)."""
    from chc_equity.vbp import hospital
    from chc_equity.vbp.adt import read_hl7_text
    from chc_equity.vbp.matching import Matcher

    with duckdb.connect(str(app.state.config.warehouse), read_only=True) as con:
        matchers = {
            c: Matcher(hospital.load_patients(con, c), {"CMRN": "urn:example:mrn"}) for c in (NORTH, SOUTH)
        }
    with app.state.db.write() as s:
        for c in (NORTH, SOUTH):
            hospital.import_events(s, c, read_hl7_text(hospital_feed(c), f"{c}.hl7"), matchers[c], "seed")


# Hand-set equity strata for the equity pages (issue 17): (center, measure, dimension) -> stratum ->
# (numerator, denominator). The webseed warehouse has no demographic views, so precompute leaves
# agg_equity empty; these counts go through the equity package's own analysis and suppression
# (chc_equity.equity.stratify.analyse) and are stored as precompute stores them (network.equity.map_row).
# CMS122 is inverse: Black non-Hispanic patients at 30 % / 33 % are worse than Hispanic (the largest);
# CMS130: Black non-Hispanic 40 % vs 60 %. Network-wide Asian non-Hispanic (4 in the numerator) is suppressed.
EQUITY_STRATA: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {
    ("*", "CMS122", "race_ethnicity"): {
        "Hispanic": (100, 500), "Black non-Hispanic": (90, 300), "White non-Hispanic": (60, 400),
        "Asian non-Hispanic": (4, 30), "Unknown": (12, 50),
    },
    ("*", "CMS122", "language"): {"English": (150, 800), "Spanish": (80, 300), "Unknown": (16, 80)},
    (NORTH, "CMS122", "race_ethnicity"): {
        "Hispanic": (60, 300), "Black non-Hispanic": (50, 150), "White non-Hispanic": (20, 200),
        "Asian non-Hispanic": (12, 40),
    },
    ("*", "CMS130", "race_ethnicity"): {
        "Hispanic": (300, 500), "Black non-Hispanic": (120, 300), "White non-Hispanic": (250, 400),
    },
    (NORTH, "CMS130", "race_ethnicity"): {
        "Hispanic": (180, 300), "Black non-Hispanic": (60, 150), "White non-Hispanic": (120, 200),
    },
    (SOUTH, "CMS130", "race_ethnicity"): {"Hispanic": (100, 150), "White non-Hispanic": (90, 160)},
}  # fmt: skip
# Who is Black non-Hispanic at NORTH (patient_attributes): the CMS122 gap patients 0, 2 (of 0-3).
BLACK_AT_NORTH = (0, 2)


def add_equity_strata(path: Path) -> None:
    """agg_equity rows from :data:`EQUITY_STRATA`, and a ``patient_attributes`` table for NORTH."""
    import numpy as np

    from chc_equity.equity.attributes import DIMENSIONS
    from chc_equity.equity.stratify import Counts, analyse
    from chc_equity.network.equity import map_row

    con = connect(path)
    try:
        columns = [r[0] for r in con.execute("DESCRIBE agg_equity").fetchall()]
        con.execute(f"DELETE FROM agg_equity WHERE period_end = '{PERIOD[1]}'")
        for (center, cms, dim), strata in EQUITY_STRATA.items():
            m = find([cms])[0].measure
            counts = Counts(
                measure=m.name,
                group_id="Group_1",
                strata=tuple((s,) for s in strata),
                numerators=np.array([x for x, _ in strata.values()], dtype=np.int64),
                denominators=np.array([n for _, n in strata.values()], dtype=np.int64),
            )
            rows, _ = analyse(counts, [dim], cms_id=cms, inverse=m.inverse)
            for r in rows:
                row = {**map_row(r, label=DIMENSIONS[dim], center=center), **dict(zip(
                    ("period_start", "period_end"), PERIOD, strict=True))}  # fmt: skip
                con.execute(
                    f"INSERT INTO agg_equity ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [row.get(c) for c in columns],
                )
        dims = ", ".join(f"{d} VARCHAR" for d in DIMENSIONS if d not in ("center", "patient_id"))
        sql = f"CREATE OR REPLACE TABLE patient_attributes (center VARCHAR, patient_id VARCHAR, {dims})"
        con.execute(sql)
        for i in range(PATIENTS[NORTH][0]):
            race = "Black non-Hispanic" if i in BLACK_AT_NORTH else "Hispanic"
            con.execute(
                "INSERT INTO patient_attributes (center, patient_id, race_ethnicity) VALUES (?, ?, ?)",
                [NORTH, patient_id(NORTH, i), race],
            )
        con.execute("UPDATE agg_runs SET equity_status = 'computed: hand-set strata (webseed)'")
    finally:
        con.close()
