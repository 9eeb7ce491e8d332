"""The CHW worklist on a warehouse made the real way (synthetic FHIR -> ingest -> measures -> precompute).

Must show (issue 13): one row per patient with all open items, and its patients are exactly the union of
the per-measure care-gap lists plus the patients with open social items -- the social items recomputed
here independently from the raw FHIR resources.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from browser.webseed import PERIOD, build_synthetic_warehouse
from chc_equity.ingest import load
from chc_equity.measures.registry import find
from chc_equity.outreach.worklist import (
    COLUMNS,
    LAST_VALUES,
    Filters,
    OpenItem,
    WorklistRow,
    band,
    build_worklist,
    fhir_assignments,
    fhir_last_outreach,
    filter_rows,
    load_priority,
    score,
    sort_rows,
    worklist_csv,
    write_worklist,
)
from chc_equity.sdoh import metrics as sdoh_metrics
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from chc_equity.web.analytics import pick_run
from chc_equity.web.gaps import care_gaps

AS_OF = PERIOD[1]
HOSTILE = '=HYPERLINK("http://x")'


def _hostile(patient: dict) -> dict:
    if patient["id"].endswith("p0000001"):
        patient["name"] = [{"family": HOSTILE, "given": ["Eve"]}]
    return patient


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, str]]:
    folder = tmp_path_factory.mktemp("worklist")
    path, centers = build_synthetic_warehouse(folder, centers=2, patients=400, patient_hook=_hostile)
    # Planted extras, loaded like any other data: a recent ED visit, then a missed visit not rebooked.
    center = centers[0]
    extra = folder / "extra"
    extra.mkdir()
    booked = {
        json.loads(line)["participant"][0]["actor"]["reference"].split("/")[-1]
        for line in (folder / "net" / "c01" / "Appointment.ndjson").read_text().splitlines()
    }
    missed = ed = next(p for i in range(2, 400) if (p := f"{center}-p{i:07d}") not in booked)
    (extra / "Appointment.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "Appointment",
                "id": "missed-1",
                "status": "noshow",
                "start": "2026-12-22T10:00:00-05:00",
                "participant": [{"actor": {"reference": f"Patient/{missed}"}, "status": "accepted"}],
            }
        )
        + "\n"
    )
    (extra / "Encounter.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "Encounter",
                "id": "ed-1",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                "subject": {"reference": f"Patient/{ed}"},
                "period": {"start": "2026-12-05T22:00:00-05:00", "end": "2026-12-06T03:00:00-05:00"},
            }
        )
        + "\n"
    )
    con = connect(path)
    try:
        load(con, [extra], center, after_load=lambda c, ctr: build_views(c, centers=[ctr]))
        sdoh_metrics.build(con, period_start=PERIOD[0], period_end=PERIOD[1])  # the social items' source
    finally:
        con.close()
    return path, centers, {"missed": missed, "ed": ed}


@pytest.fixture(scope="module")
def con(built) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(built[0]), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def rows(built, con) -> list[WorklistRow]:
    center = built[1][0]
    return build_worklist(
        con,
        center,
        period=PERIOD,
        as_of=AS_OF,
        assignments=fhir_assignments(con, center),
        last_outreach=fhir_last_outreach(con, center),
    )


def _raw(con: duckdb.DuckDBPyConnection, center: str, rtype: str) -> list[dict]:
    rows = con.execute("SELECT resource FROM resources WHERE center = ? AND type = ?", [center, rtype])
    return [json.loads(r[0]) for r in rows.fetchall()]


def _social_patients(con: duckdb.DuckDBPyConnection, center: str) -> dict[str, int]:
    """patient -> open social items: one per patient screened positive for a domain not referred, one
    per referral whose loop is not closed -- the social-needs stage's own tables (the worklist must
    agree with the stage and its staff lists: one rule), not the worklist's code."""
    out: dict[str, int] = defaultdict(int)
    for (pid,) in con.execute(
        "SELECT DISTINCT patient_id FROM sdoh_patient_domain WHERE center = ? AND positive AND NOT referred",
        [center],
    ).fetchall():
        out[pid] += 1
    for pid, n in con.execute(
        "SELECT patient_id, count(DISTINCT referral_id) FROM sdoh_referral WHERE center = ? AND NOT closed "
        "GROUP BY ALL",
        [center],
    ).fetchall():
        out[pid] += n
    return dict(out)


def test_one_row_per_patient_equals_union_of_gap_lists_and_social_items(built, con, rows) -> None:
    center = built[1][0]
    run = pick_run(con, PERIOD[1])
    assert run is not None
    by_patient = {r.patient_id: r for r in rows}
    assert len(by_patient) == len(rows), "a patient appears twice"
    gap_lists: dict[str, set[str]] = defaultdict(set)
    n_gaps = 0
    for cms in ("CMS122", "CMS165"):
        gaps = care_gaps(con, run, center, find([cms])[0].measure.name)
        assert gaps, f"no {cms} gaps to compare"
        n_gaps += len(gaps)
        for g in gaps:
            gap_lists[g.patient_id].add(cms)
    social = _social_patients(con, center)
    assert social, "the synthetic data has open social items"
    follow_up = {built[2]["missed"]}
    assert set(by_patient) == set(gap_lists) | set(social) | follow_up
    assert sum(r.count("care-gap") for r in rows) == n_gaps
    for pid, r in by_patient.items():
        assert set(r.measures) == gap_lists.get(pid, set())
        assert r.count("referral") + r.count("social-screen") == social.get(pid, 0)
    assert [i.kind for i in by_patient[built[2]["missed"]].items if i.kind == "follow-up"] == ["follow-up"]
    # the social-risk tier is the stage's (sdoh_patient), for every patient on the worklist
    sql = "SELECT patient_id, social_risk_tier FROM sdoh_patient WHERE center = ?"
    tiers = dict(con.execute(sql, [center]).fetchall())
    assert all(r.social_risk == tiers.get(pid) for pid, r in by_patient.items())
    assert {"high", "moderate"} <= {r.social_risk for r in rows}
    # other centers' patients never appear
    assert all(pid.startswith(f"{center}-") for pid in by_patient)


def test_columns_a_chw_needs(built, con, rows) -> None:
    center = built[1][0]
    patients = {p["id"]: p for p in _raw(con, center, "Patient")}
    for r in rows:
        p = patients[r.patient_id]
        assert r.mrn == p["identifier"][0]["value"]
        assert r.phone == (p["telecom"][0]["value"] if "telecom" in p else None)
        assert r.language == p["communication"][0]["language"]["coding"][0]["code"]
        birth = date.fromisoformat(p["birthDate"])
        assert r.age == AS_OF.year - birth.year - ((AS_OF.month, AS_OF.day) < (birth.month, birth.day))
        assert r.last_visit is not None and r.last_visit <= AS_OF
        if r.next_visit is not None:
            assert r.next_visit[:10] > AS_OF.isoformat()
    assert any(r.interpreter for r in rows) and any(r.next_visit for r in rows)
    assert any(r.assigned_chw for r in rows) and any(r.last_outcome == "reached" for r in rows)
    assert all(r.site and r.site.startswith(f"{center}-site") for r in rows)


def test_last_hba1c_value_and_date(built, con, rows) -> None:
    center = built[1][0]
    hba1c = set(LAST_VALUES["CMS122"].codes)
    latest: dict[str, tuple[str, float]] = {}
    for o in _raw(con, center, "Observation"):
        if o.get("status") == "final" and {c["code"] for c in o["code"]["coding"]} & hba1c:
            pid, day = o["subject"]["reference"].split("/")[-1], o["effectiveDateTime"]
            if pid not in latest or day > latest[pid][0]:
                latest[pid] = (day, o["valueQuantity"]["value"])
    checked = 0
    for r in rows:
        for item in r.items:
            if item.code == "CMS122":
                want = latest.get(r.patient_id)
                if want is None:
                    assert item.last_value is None
                else:
                    assert item.last_date == date.fromisoformat(want[0][:10])
                    assert item.last_value == f"HbA1c {want[1]} %"
                    checked += 1
    assert checked > 0


def test_priority_score_is_the_documented_weighted_sum(tmp_path: Path) -> None:
    cfg = load_priority()
    row = WorklistRow(
        "p",
        items=[
            OpenItem("care-gap", "CMS122", "x"),
            OpenItem("care-gap", "CMS165", "y"),
            OpenItem("referral", "referral", "z"),
        ],
        social_risk="high",
        recent_acute=True,
        last_outreach=date(2026, 12, 1),
    )
    # 2 gaps x 1.0 + 1 social x 1.5 + high risk 3.0 + acute 4.0 + 30 days x 0.02
    assert score(row, cfg, AS_OF) == pytest.approx(2 + 1.5 + 3 + 4 + 0.6)
    never = WorklistRow("q", items=[OpenItem("care-gap", "CMS122", "x")])
    assert score(never, cfg, AS_OF) == pytest.approx(1 + 180 * 0.02)  # capped days when never contacted
    assert band(10.5, cfg) == "high" and band(4.0, cfg) == "medium" and band(3.9, cfg) == "low"
    override = tmp_path / "program.yaml"
    override.write_text("weights:\n  recent_acute: 0\n  open_gap: 5\n")
    heavy = load_priority(override)
    assert heavy.weights["social_item"] == 1.5  # untouched keys keep the defaults
    assert score(row, heavy, AS_OF) == pytest.approx(10 + 1.5 + 3 + 0 + 0.6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("wieghts: {}\n")
    with pytest.raises(ValueError, match="bad.yaml: unknown priority keys"):
        load_priority(bad)


def test_rows_are_sorted_by_priority_and_recent_ed_visit_counts(built, rows) -> None:
    assert [r.priority for r in rows] == sorted((r.priority for r in rows), reverse=True)
    (ed,) = [r for r in rows if r.patient_id == built[2]["ed"]]
    assert ed.recent_acute and ed.last_visit == date(2026, 12, 5)
    assert sum(r.recent_acute for r in rows) == 1
    assert ed.priority == score(ed, load_priority(), AS_OF) and ed.priority >= 4.0


def test_filters_search_and_sort(rows) -> None:
    spanish_diabetes = filter_rows(rows, Filters(language="es", measure="cms122"))
    assert spanish_diabetes
    assert all(r.language == "es" and "CMS122" in r.measures for r in spanish_diabetes)
    assert len(spanish_diabetes) == sum(1 for r in rows if r.language == "es" and "CMS122" in r.measures)
    unassigned = filter_rows(rows, Filters(assigned=False))
    assigned = filter_rows(rows, Filters(assigned=True))
    assert unassigned and assigned and len(unassigned) + len(assigned) == len(rows)
    target = rows[len(rows) // 2]
    assert [r.mrn for r in filter_rows(rows, Filters(search=target.mrn.upper()))] == [target.mrn]
    high = filter_rows(rows, Filters(priority="high"))
    assert all(r.band == "high" for r in high)
    by_name = sort_rows(rows, "name")
    assert [(r.name or "").lower() for r in by_name] == sorted((r.name or "").lower() for r in rows)
    with pytest.raises(ValueError, match="unknown sort"):
        sort_rows(rows, "shoe_size")


def test_csv_and_excel_exports_are_safe_and_complete(rows, tmp_path: Path) -> None:
    text = worklist_csv(rows)
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == COLUMNS and len(table) - 1 == len(rows)
    assert "patient_id" not in table[0]
    hostile = [line for line in table[1:] if HOSTILE in line[2]]
    assert hostile and all(line[2].startswith("'=") for line in hostile)
    xlsx = write_worklist(rows, tmp_path / "wl.xlsx")
    ws = load_workbook(xlsx).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == COLUMNS and len(values) - 1 == len(rows)
    assert all(not str(v[2]).startswith("=") for v in values[1:])
    assert write_worklist(rows, tmp_path / "wl.csv").read_text(encoding="utf-8") == text
    with pytest.raises(ValueError, match="wl.txt"):
        write_worklist(rows, tmp_path / "wl.txt")


def test_cli_worklist_and_billing(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from typer.testing import CliRunner

    from chc_equity.appdb import AppDB, app_db_path
    from chc_equity.appdb import chw as chws
    from chc_equity.appdb import outreach as records
    from chc_equity.cli import _register, app

    _register()
    monkeypatch.delenv("CHC_EQUITY_DATABASE_URL", raising=False)
    path, centers, _ = built
    path = Path(shutil.copy(path, tmp_path / "wh.duckdb"))
    runner = CliRunner()
    out = tmp_path / "es.csv"
    args = ["--center", centers[0], "--warehouse", str(path), "--as-of", AS_OF.isoformat()]
    result = runner.invoke(
        app, ["worklist", *args, "--language", "es", "--measure", "CMS122", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    assert table and all(r["language"] == "es" and "CMS122" in r["measures"] for r in table)
    bp = [i for r in table for i in r["items"].split("; ") if "last BP" in i]
    assert all(re.search(r"last BP \d+/\d+ mmHg on \d{4}-\d\d-\d\d", i) for i in bp)
    # No app database: nobody assigned, nobody contacted, and none is created (read only).
    assert not any(r["assigned_chw"] or r["last_outreach"] for r in table)
    assert not app_db_path(path).exists()
    # With one: the assigned CHW and the last outreach of the app database, as on the web page.
    first = table[0]["mrn"]
    with duckdb.connect(str(path), read_only=True) as c:
        pid = c.execute(
            "SELECT id FROM resources WHERE center = ? AND type = 'Patient' AND resource LIKE ?",
            [centers[0], f'%"{first}"%'],
        ).fetchone()[0]
    db = AppDB(app_db_path(path))
    with db.write() as s:
        rosa = chws.add_chw(s, centers[0], "Rosa", "pm")
        chws.assign(s, centers[0], rosa.id, [pid], "pm")
        fields = records.OutreachFields(AS_OF, "phone", "reached", 12, chw_id=rosa.id)
        records.create(s, centers[0], pid, fields, "pm")
    db.dispose()
    out2 = tmp_path / "assigned.csv"
    result = runner.invoke(app, ["worklist", *args, "--assigned", "--out", str(out2)])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(out2.open(encoding="utf-8")))
    assert [(r["mrn"], r["assigned_chw"], r["last_outreach"], r["last_outcome"]) for r in table] == [
        (first, "Rosa", AS_OF.isoformat(), "reached")
    ]
    bad = runner.invoke(app, ["worklist", *args, "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and "x.txt" in bad.output
    claims = tmp_path / "claims.csv"
    result = runner.invoke(
        app, ["chw", "billing", "--center", centers[0], "--warehouse", str(path), "--out", str(claims)]
    )
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(claims.open(encoding="utf-8")))
    unbilled = list(csv.DictReader((tmp_path / "claims.unbilled.csv").open(encoding="utf-8")))
    assert lines or unbilled
    assert all(r["code"] == "G0019" and r["units"] == "1" and r["mrn"] for r in lines)
    assert all(r["reason"] in ("before the initiating visit", "no initiating visit") for r in unbilled)


def test_store_keeps_the_prepared_worklist_until_the_warehouse_changes(built, tmp_path: Path) -> None:
    import shutil
    from contextlib import contextmanager

    from chc_equity.outreach.page import Overlay, Query, WorklistStore
    from chc_equity.outreach.worklist import collect

    path, centers, _ = built
    copy = tmp_path / "wh.duckdb"
    shutil.copy(path, copy)
    opened = []

    @contextmanager
    def opener():
        opened.append(1)
        c = duckdb.connect(str(copy), read_only=True)
        try:
            yield c
        finally:
            c.close()

    store = WorklistStore()
    first = store.get(copy, opener, centers[0], period_end=None, as_of=AS_OF)
    assert first is not None and first.period == PERIOD
    assert store.get(copy, opener, centers[0], period_end=None, as_of=AS_OF) is first
    assert len(opened) == 1  # a hit does not open the warehouse
    with opener() as c:
        assert [r.patient_id for r in first.rows] == [
            r.patient_id for r in collect(c, centers[0], period=PERIOD, as_of=AS_OF)
        ]
    pid = first.rows[0].patient_id
    joined = first.select(Overlay({pid: "Rosa"}, {pid: (AS_OF, "reached")}), Query(limit=None))
    mine = next(r for r in joined.rows if r.patient_id == pid)
    assert (mine.assigned_chw, mine.last_outreach, mine.last_outcome) == ("Rosa", AS_OF, "reached")
    assert first.rows[0].assigned_chw is None and first.rows[0].priority == 0.0  # prepared rows untouched
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "Appointment.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "Appointment",
                "id": "late-1",
                "status": "booked",
                "start": "2027-01-05T09:00:00-05:00",
                "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}],
            }
        )
        + "\n"
    )
    con = connect(copy)
    try:
        load(con, [extra], centers[0], after_load=lambda c, ctr: build_views(c, centers=[ctr]))
    finally:
        con.close()
    fresh = store.get(copy, opener, centers[0], period_end=None, as_of=AS_OF)
    assert fresh is not first and len(opened) == 3
    assert next(r for r in fresh.rows if r.patient_id == pid).next_visit == "2027-01-05 09:00"
    assert store.get(copy, opener, centers[0], period_end=date(1999, 12, 31), as_of=AS_OF) is None


SELECTIONS = [
    (Filters(), "priority", False),
    (Filters(language="es", measure="CMS122"), "priority", False),
    (Filters(measure="cms165"), "name", False),
    (Filters(priority="high"), "age", True),
    (Filters(assigned=True), "last_outreach", False),
    (Filters(assigned=False), "last_visit", False),
    (Filters(search="00"), "mrn", True),
    (Filters(site="*"), "name", True),  # "*": the first site of the list
    (Filters(search="a", language="EN"), "next_visit", False),
    (Filters(priority="medium"), "open_items", False),
    (Filters(chw="no-such-chw"), "priority", True),
]


@pytest.mark.parametrize(("filters", "sort", "reverse"), SELECTIONS)
def test_prepared_select_gives_what_the_row_functions_give(built, con, filters, sort, reverse) -> None:
    """The page's vectorised path (one rule: worklist.score / Filters / SORTS) against the plain one."""
    from chc_equity.outreach.page import Overlay, Prepared, Query
    from chc_equity.outreach.worklist import collect, prioritise

    center = built[1][0]
    base = collect(con, center, period=PERIOD, as_of=AS_OF)
    if filters.site == "*":
        filters = Filters(site=min(r.site for r in base if r.site))
    assigned = fhir_assignments(con, center)
    contacts = fhir_last_outreach(con, center)
    expected = sort_rows(
        filter_rows(prioritise(base, as_of=AS_OF, assignments=assigned, last_outreach=contacts), filters),
        sort,
        reverse=reverse,
    )
    prepared = Prepared(base, period=PERIOD, as_of=AS_OF)
    got = prepared.select(Overlay(assigned, contacts), Query(filters, sort, reverse, 0, None))
    assert got.visible == len(base) and got.matched == len(expected)
    assert got.matched > 0 or filters.chw  # each case selects something (the last one: nothing)
    assert [r.patient_id for r in got.rows] == [r.patient_id for r in expected]
    assert [(r.priority, r.band, r.assigned_chw, r.last_outreach) for r in got.rows] == [
        (r.priority, r.band, r.assigned_chw, r.last_outreach) for r in expected
    ]
    page = prepared.select(Overlay(assigned, contacts), Query(filters, sort, reverse, 5, 7))
    assert [r.patient_id for r in page.rows] == [r.patient_id for r in expected[5:12]]
    panel = frozenset(r.patient_id for r in base[::3])
    limited = prepared.select(Overlay(assigned, contacts), Query(filters, sort, reverse, 0, None, only=panel))
    assert [r.patient_id for r in limited.rows] == [r.patient_id for r in expected if r.patient_id in panel]


def test_prepared_select_on_an_empty_worklist() -> None:
    """A center without open items (or unknown): every filter and sort answers an empty page."""
    from chc_equity.outreach.page import Overlay, Prepared, Query
    from chc_equity.outreach.worklist import SORTS

    empty = Prepared([], period=PERIOD, as_of=AS_OF)
    everything = Filters("s", "es", "CMS122", "high", True, "x", "needle")
    for sort in SORTS:
        for filters in (Filters(), everything):
            got = empty.select(Overlay({"p": "Rosa"}, {"p": (AS_OF, "reached")}), Query(filters, sort, True))
            assert (got.visible, got.matched, got.rows) == (0, 0, [])


def test_cli_worklist_in_a_fresh_interpreter(built, tmp_path: Path) -> None:
    """The real command in its own process (in-process tests had imported the web app already, which
    hid an import cycle between the app database's join and the web app)."""
    import subprocess
    import sys

    path, centers, _ = built
    out = tmp_path / "w.csv"
    code = "import sys\nfrom chc_equity.cli import main\nsys.argv[0] = 'chc-equity'\nmain()\n"
    args = ["worklist", "--center", centers[0], "--warehouse", str(path), "--out", str(out)]
    src = Path(__file__).resolve().parents[1] / "src"
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "CHC_EQUITY_DATABASE_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--as-of", AS_OF.isoformat()],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "patients ->" in proc.stdout and len(out.read_text().splitlines()) > 1
