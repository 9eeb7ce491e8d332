"""Ingest of the shared reference data, checked against an independent count with the json module."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from chc_equity.ingest import load
from chc_equity.warehouse import connect_memory
from conftest import shared_dir

pytestmark = pytest.mark.shared


def _read_json(path: Path) -> dict:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _bundle_counts(files: list[Path]) -> tuple[int, set[tuple[str, str]]]:
    """(entries, distinct (type, id) keys) over bundles, counted without any chc_equity code."""
    entries, keys = 0, set()
    for path in files:
        for entry in _read_json(path)["entry"]:
            entries += 1
            keys.add((entry["resource"]["resourceType"], entry["resource"]["id"]))
    return entries, keys


def _table(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("parts", "pattern"),
    [(("synthea", "ma-bundles"), "*.json.gz"), (("ecqm", "tests"), "**/*.json")],
    ids=["synthea-bundles", "ecqm-tests"],
)
def test_bundles_match_independent_count(parts: tuple[str, ...], pattern: str) -> None:
    root = shared_dir(*parts)
    files = sorted(root.glob(pattern))
    entries, keys = _bundle_counts(files)
    con = connect_memory()
    result = load(con, [root], "chc-1")
    assert result.quarantined == 0
    assert _table(con, "SELECT count(*) FROM rejects") == [(0,)]
    assert result.resources_read == result.loaded == entries
    assert result.inserted == len(keys)
    assert set(_table(con, "SELECT type, id FROM resources")) == keys
    leftover = "SELECT count(*) FROM resources WHERE CAST(resource AS VARCHAR) LIKE '%urn:uuid:%'"
    assert _table(con, leftover) == [(0,)]


def test_synthea_references_point_at_stored_rows() -> None:
    """After rewriting, every Encounter.subject is a Type/id of a stored Patient."""
    con = connect_memory()
    load(con, [shared_dir("synthea", "ma-bundles")], "chc-1")
    dangling = _table(
        con,
        """
        SELECT count(*) FROM resources e
        WHERE e.type = 'Encounter' AND NOT EXISTS (
            SELECT 1 FROM resources p WHERE p.type = 'Patient'
              AND 'Patient/' || p.id = json_extract_string(e.resource, '$.subject.reference'))""",
    )
    assert _table(con, "SELECT count(*) FROM resources WHERE type = 'Encounter'")[0][0] > 0
    assert dangling == [(0,)]


def test_bulk_ndjson_matches_line_count() -> None:
    root = shared_dir("synthea", "bulk-ndjson")
    resources, logs, keys = 0, 0, set()
    for path in sorted(root.rglob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            if "resourceType" in obj:
                resources += 1
                keys.add((obj["resourceType"], obj["id"]))
            else:
                logs += 1
    con = connect_memory()
    result = load(con, [root], "chc-1")
    assert result.loaded == resources
    assert result.inserted == len(keys) == _table(con, "SELECT count(*) FROM resources")[0][0]
    # log.ndjson holds export events, not resources: quarantined, never silently dropped.
    assert result.quarantined == logs > 0
    assert set(_table(con, "SELECT DISTINCT reason FROM rejects")) == {("missing-resourceType",)}


def test_reingest_of_shared_bundles_changes_nothing() -> None:
    root = shared_dir("synthea", "ma-bundles")
    con = connect_memory()
    load(con, [root], "chc-1")
    full = "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM resources ORDER BY type, id"
    before = _table(con, full)
    again = load(con, [root], "chc-1")
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == len(before)
    assert _table(con, full) == before
