"""Incremental equals full (issue 12): after a random sequence of 20 small loads -- inserts, updates,
deletes and resources moved between patients, across centers -- every table of the warehouse equals a
from-scratch rebuild of the same data.

The loads go through the real path: ``ingest.load`` with the CLI's screen and views hook (which records
the touched patients), the Bulk Data pull's deletion step for deletes, and ``refresh.finish_pending``
after batches of one to several loads (so pending patients accumulate across loads and centers, and the
aggregates are recomputed once per batch). The rebuild is a copy of the final warehouse with every
derived table dropped and rebuilt whole (``build_views``, ``run_measures``, ``precompute``), so the raw
layer and the load log are the same by construction and every table is compared (``tabledump``): flat
views, measure results, patient attributes, aggregates, pending tables.
"""

from __future__ import annotations

import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from chc_equity.cli.ingest import views_after_load, views_screen
from chc_equity.equity.attributes import ensure_patient_attributes
from chc_equity.ingest import load, mark_stale
from chc_equity.measures.engine import run_measures
from chc_equity.measures.registry import all_measures
from chc_equity.network.precompute import precompute
from chc_equity.pull.runner import _apply_deletions
from chc_equity.refresh import finish_pending
from chc_equity.synth import generate, load_config
from chc_equity.touched import this_load
from chc_equity.views.build import build_views
from chc_equity.warehouse import connect
from tabledump import differences, dump

START, END = date(2026, 1, 1), date(2026, 12, 31)
CENTERS = ("c01", "c02", "c03")
LOADS = 20
REFRESH_AFTER = {1, 3, 4, 8, 12, 16, 20}  # batch sizes 1, 2, 1, 4, 4, 4, 4
DATE_FIELDS = (
    "effectiveDateTime",
    "onsetDateTime",
    "performedDateTime",
    "occurrenceDateTime",
    "authoredOn",
    "recordedDate",
    "issued",
    "birthDate",
)
MOVABLE = ("Observation", "Condition", "Procedure", "Encounter", "Immunization", "Coverage")


def _shift(value: str, days: int) -> str:
    """An ISO date or dateTime moved by ``days`` (the time part kept)."""
    return (date.fromisoformat(value[:10]) + timedelta(days=days)).isoformat() + value[10:]


def _mutate(resource: dict, rng: random.Random) -> None:
    """Change something measures or attributes read: a date, a period, a status or a value."""
    days = rng.choice([-400, -90, -30, 30, 200])
    dated = [f for f in DATE_FIELDS if isinstance(resource.get(f), str) and len(resource[f]) >= 10]
    if dated and rng.random() < 0.6:
        for f in dated:
            resource[f] = _shift(resource[f], days)
    elif isinstance(resource.get("period"), dict) and rng.random() < 0.7:
        resource["period"] = {k: _shift(v, days) for k, v in resource["period"].items()}
    elif "valueQuantity" in resource:
        resource["valueQuantity"]["value"] = rng.choice([5.2, 7.1, 9.5, 120, 150])
    elif resource.get("resourceType") == "Patient":
        resource["gender"] = rng.choice(["female", "male", "unknown"])
    elif "status" in resource:
        resource["status"] = "entered-in-error"
    else:
        resource["id_note"] = days  # still a change to the stored JSON


def _subject_key(resource: dict) -> str | None:
    return next((k for k in ("subject", "patient", "beneficiary") if isinstance(resource.get(k), dict)), None)


class Changes:
    """One load's input for one center, drawn from the warehouse's current resources."""

    def __init__(self, con: duckdb.DuckDBPyConnection, center: str, rng: random.Random, serial: int) -> None:
        self.rows = con.execute(
            "SELECT type, id, CAST(resource AS VARCHAR) FROM resources WHERE center = ? ORDER BY type, id",
            [center],
        ).fetchall()
        self.patients = [rid for rtype, rid, _ in self.rows if rtype == "Patient"]
        self.rng, self.serial = rng, serial
        self.out: list[dict] = []
        self.deleted: list[tuple[str, str]] = []
        self.kinds: set[str] = set()

    def pick(self, types: tuple[str, ...] | None = None) -> dict:
        rows = [r for r in self.rows if types is None or r[0] in types]
        return orjson.loads(self.rng.choice(rows)[2])

    def draw(self) -> None:
        kind = self.rng.choices(["update", "move", "insert", "delete", "global"], [5, 2, 3, 2, 0.6])[0]
        self.kinds.add(kind)
        if kind == "update":
            resource = self.pick()
            _mutate(resource, self.rng)
            self.out.append(resource)
        elif kind == "move":  # the old and the new patient are both stale
            resource = self.pick(MOVABLE)
            key = _subject_key(resource)
            if key:
                resource[key] = {"reference": f"Patient/{self.rng.choice(self.patients)}"}
            self.out.append(resource)
        elif kind == "insert":
            resource = self.pick(MOVABLE)
            resource["id"] = f"{resource['id']}-new{self.serial}-{len(self.out)}"
            _mutate(resource, self.rng)
            self.out.append(resource)
        elif kind == "delete":  # now and then a whole patient
            resource = self.pick(("Patient",) if self.rng.random() < 0.25 else MOVABLE)
            self.deleted.append((resource["resourceType"], resource["id"]))
        else:  # a resource without a patient: the whole center is refreshed
            resource = self.pick(("Location", "Organization"))
            resource["name"] = f"{resource.get('name', 'renamed')} {self.serial}"
            self.out.append(resource)


def _load(con: duckdb.DuckDBPyConnection, folder: Path, center: str, changes: Changes) -> None:
    """One load as `chc-equity pull` makes it: the files, then the deletions, then the views hook."""
    folder.mkdir()
    path = folder / "changes.ndjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in changes.out))
    hook = views_after_load()

    def after(load_con: duckdb.DuckDBPyConnection, load_center: str) -> None:
        if changes.deleted and _apply_deletions(load_con, load_center, changes.deleted):
            mark_stale(load_con, load_center, this_load(load_con, load_center))
        hook(load_con, load_center)

    load(con, [path], center, after_load=after, screen=views_screen())


def _rebuild(source: Path, target: Path) -> None:
    """A copy of ``source`` whose derived tables are dropped and rebuilt from its raw resources."""
    shutil.copy(source, target)
    con = connect(target)
    try:
        derived = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary "
            "AND (schema_name = 'flat' OR table_name IN ('measure_results', 'patient_attributes') "
            "OR starts_with(table_name, 'agg_'))"
        ).fetchall()
        for schema, name in derived:
            con.execute(f'DROP TABLE "{schema}"."{name}"')
        build_views(con)
        run_measures(con, all_measures(), period_start=START, period_end=END)
        precompute(con, period_start=START, period_end=END)
    finally:
        con.close()


@pytest.mark.slow
def test_random_loads_then_incremental_equals_full(tmp_path: Path) -> None:
    net = tmp_path / "net"
    generate(net, centers=len(CENTERS), patients=60, seed=12, period_end=END, cfg=load_config())
    db = tmp_path / "incremental.duckdb"
    con = connect(db)
    for center in CENTERS:
        load(
            con,
            sorted((net / center).glob("*.ndjson")),
            center,
            after_load=views_after_load(),
            screen=views_screen(),
        )
    finish_pending(con)  # nothing derived yet: clears the initial loads' marks
    run_measures(con, all_measures(), period_start=START, period_end=END)
    # the attributes the refreshes keep current; no aggregates yet: every refresh recomputes them whole
    ensure_patient_attributes(con, period_start=START, period_end=END)

    rng = random.Random(20261201)
    kinds: set[str] = set()
    refreshed = []
    steps: list[str] = []
    for n in range(1, LOADS + 1):
        center = rng.choice(CENTERS)
        changes = Changes(con, center, rng, n)
        for _ in range(rng.randint(2, 5)):
            changes.draw()
        kinds |= changes.kinds
        _load(con, tmp_path / f"load{n:02d}", center, changes)
        if n in REFRESH_AFTER:
            refreshed.append(finish_pending(con, on_step=steps.append))
    con.close()

    # the sequence exercised what it claims to
    assert kinds == {"update", "move", "insert", "delete", "global"}
    assert any(r.patients for r in refreshed)  # patient-scoped refreshes ...
    assert any(r.patients is None for r in refreshed)  # ... and whole-center ones
    assert any(len(r.centers) > 1 for r in refreshed)  # a batch across centers: aggregates once for all
    assert sum("precomputing" in s for s in steps) == len(REFRESH_AFTER)  # one period, once per batch
    assert sum("patient attributes" in s for s in steps) == len(REFRESH_AFTER)  # attributes kept current

    full = tmp_path / "full.duckdb"
    _rebuild(db, full)
    got, want = dump(db), dump(full)
    assert got["main.pending_refresh"] == got["main.pending_patients"] == []
    assert differences(got, want) == []


# --- which patients a load makes stale (fast: no measures) ----------------------------------------------


def _patient(pid: str, gender: str = "female") -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": "1970-01-01"}


def _obs(oid: str, pid: str, encounter: str | None = None, value: float = 1.0) -> dict:
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value},
    }
    if encounter:
        obs["encounter"] = {"reference": f"Encounter/{encounter}"}
    return obs


def _encounter(eid: str, pid: str, status: str = "finished") -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_a_load_records_the_patients_it_touched(tmp_path: Path) -> None:
    """Old and new owner of a moved resource, the patients whose resources point at a changed one, the
    whole center for a resource without a patient, nothing for a type no view reads."""
    con = connect(tmp_path / "w.duckdb")
    hook = views_after_load()
    steps = {
        "first": [_patient("p1"), _patient("p2"), _patient("p3"), _encounter("e2", "p2"),
                  _obs("o1", "p1", encounter="e2"), _obs("o2", "p1")],
        "encounter of p2, pointed at by p1's o1": [_encounter("e2", "p2", status="cancelled")],
        "o2 moved from p1 to p3": [_obs("o2", "p3")],
        "o2 changed": [_obs("o2", "p3", value=2.0)],
        "a location": [{"resourceType": "Location", "id": "l1", "name": "Main"}],
        "unread type": [{"resourceType": "Provenance", "id": "v1", "recorded": "2026-01-01T00:00:00Z"}],
        "nothing new": [_obs("o2", "p3", value=2.0)],
    }  # fmt: skip
    recorded = {}
    for n, (name, items) in enumerate(steps.items(), 1):
        path = tmp_path / f"{n}.ndjson"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
        load(con, [path], "c1", after_load=hook, screen=views_screen())
        recorded[name] = [
            r[0]
            for r in con.execute(
                "SELECT coalesce(patient_id, '*whole*') FROM pending_patients WHERE load_id = ? ORDER BY 1",
                [n],
            ).fetchall()
        ]
    assert recorded == {
        "first": ["p1", "p2", "p3"],
        "encounter of p2, pointed at by p1's o1": ["p1", "p2"],
        "o2 moved from p1 to p3": ["p1", "p3"],
        "o2 changed": ["p3"],
        "a location": ["*whole*"],
        "unread type": [],
        "nothing new": [],
    }
    assert con.execute("SELECT center, load_id FROM pending_refresh").fetchall() == [("c1", 6)]

    # a load whose caller runs no views hook cannot say which patients changed: the whole center
    path = tmp_path / "raw.ndjson"
    path.write_bytes(orjson.dumps(_obs("o9", "p1")) + b"\n")
    load(con, [path], "c1")
    assert con.execute("SELECT patient_id FROM pending_patients WHERE load_id = 8").fetchall() == [(None,)]
    con.close()


def test_a_warehouse_from_before_pending_patients_refreshes_its_pending_centers_whole(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = connect(db)
    con.execute("DROP TABLE pending_patients")
    con.execute("INSERT INTO pending_refresh VALUES ('c1', 3)")
    con.close()
    con = connect(db)
    assert con.execute("SELECT * FROM pending_patients").fetchall() == [("c1", 3, None)]
    con.close()


def test_the_scoped_copy_holds_what_the_subjects_measures_read(tmp_path: Path) -> None:
    """Their resources with every child row, the resources they point at (another patient's Encounter),
    the center's resources without a patient -- and nothing else."""
    from chc_equity.measures.scoped import scoped_copy

    con = connect(tmp_path / "w.duckdb")
    path = tmp_path / "all.ndjson"
    items = [
        _patient("p1"),
        _patient("p2"),
        _encounter("e1", "p1"),
        _encounter("e2", "p2"),
        _obs("o1", "p1", encounter="e2"),
        _obs("o2", "p2", encounter="e2"),
        {"resourceType": "Location", "id": "l1", "name": "Main"},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
    load(con, [path], "c1", after_load=views_after_load(), screen=views_screen())
    load(con, [path], "c2", after_load=views_after_load(), screen=views_screen())
    con.execute("CREATE TEMP TABLE subjects AS SELECT 'c1' AS center, 'p1' AS patient_id")
    with scoped_copy(con, "subjects"):
        held = {
            name: con.execute(f"SELECT center, id FROM flat.{name} ORDER BY ALL").fetchall()
            for name in ("patient", "encounter", "observation", "observation_code", "location")
        }
    assert held == {
        "patient": [("c1", "p1")],
        "encounter": [("c1", "e1"), ("c1", "e2")],  # e2 is p2's, but p1's o1 points at it
        "observation": [("c1", "o1")],
        "observation_code": [("c1", "o1")],
        "location": [("c1", "l1")],
    }
    assert con.execute("SELECT count(*) FROM flat.observation").fetchone()[0] == 4  # the warehouse again
    con.close()
