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
from collections.abc import Callable, Iterator, Mapping
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
    finally:
        con.close()
    return path


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
) -> tuple[Path, list[str]]:
    """A warehouse made the way a user makes one: synthetic FHIR, ``ingest``, measures, ``precompute``.

    Unlike :func:`build_warehouse` it has every flat table, so ``chc-equity uds`` works on it; the full
    precompute (equity included) also leaves ``patient_attributes`` in the warehouse, as in real use.
    ``center_ids`` loads a generated center (``c01`` ...) under another id; ``patient_hook`` rewrites
    each Patient resource before ingest (hostile names, for the export tests). Returns the warehouse path
    and the center ids as loaded.
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
        run_measures(con, find(["CMS122", "CMS165"]), period_start=PERIOD[0], period_end=PERIOD[1])
        precompute(con, period_start=PERIOD[0], period_end=PERIOD[1])
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
