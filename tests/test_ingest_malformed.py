"""A corpus of malformed inputs, each with the EXACT rejects it must produce (reason, field, position).

Each case is one input file written to a temp dir; good records beside the bad ones must still load.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from chc_equity.ingest import REASONS, load
from chc_equity.ingest.fhir import date_error, instant_micros
from chc_equity.warehouse import connect_memory

GOOD = b'{"resourceType":"Patient","id":"ok"}'


def _nd(*lines: bytes | dict) -> bytes:
    return b"\n".join(x if isinstance(x, bytes) else orjson.dumps(x) for x in lines) + b"\n"


def _pat(**fields: object) -> dict:
    return {"resourceType": "Patient", "id": "p", **fields}


def _res(rtype: str, **fields: object) -> dict:
    return {"resourceType": rtype, "id": "r1", **fields}


def _bundle(*entries: object, btype: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries)}


_GOOD_GZ = gzip.compress(_nd(GOOD, GOOD.replace(b'"ok"', b'"ok2"')) * 50)

# name -> (file name, content, loaded, [(reason, field, source_pos)])
CASES: dict[str, tuple[str, bytes, int, list[tuple[str, str | None, str | None]]]] = {
    "malformed-json-line": (
        "a.ndjson",
        _nd(GOOD, b'{"resourceType": "Patient", "id": '),
        1,
        [("malformed-json", None, "line 2")],
    ),
    "invalid-utf8-line": (
        "a.ndjson",
        _nd(b'{"resourceType":"Patient","id":"\xff\xfe"}', GOOD),
        1,
        [("malformed-json", None, "line 1")],
    ),
    "array-line": ("a.ndjson", _nd(b"[1,2]", GOOD), 1, [("not-an-object", None, "line 1")]),
    "string-line": ("a.ndjson", _nd(GOOD, b'"Patient"'), 1, [("not-an-object", None, "line 2")]),
    "null-line": ("a.ndjson", _nd(b"null"), 0, [("not-an-object", None, "line 1")]),
    "missing-resourceType": (
        "a.ndjson",
        _nd({"id": "x"}, GOOD),
        1,
        [("missing-resourceType", "resourceType", "line 1")],
    ),
    "export-log-line": (
        "log.ndjson",
        _nd({"exportId": "e", "eventId": "kickoff"}),
        0,
        [("missing-resourceType", "resourceType", "line 1")],
    ),
    "resourceType-not-string": (
        "a.ndjson",
        _nd({"resourceType": 7, "id": "x"}),
        0,
        [("unknown-resourceType", "resourceType", "line 1")],
    ),
    "unknown-resourceType": (
        "a.ndjson",
        _nd(GOOD, {"resourceType": "Patiente", "id": "x"}),
        1,
        [("unknown-resourceType", "resourceType", "line 2")],
    ),
    "r5-only-type": (
        "a.ndjson",
        _nd({"resourceType": "Citation", "id": "x"}),
        0,
        [("unknown-resourceType", "resourceType", "line 1")],
    ),
    "missing-id": ("a.ndjson", _nd({"resourceType": "Patient"}), 0, [("missing-id", "id", "line 1")]),
    "null-id": (
        "a.ndjson",
        _nd({"resourceType": "Patient", "id": None}),
        0,
        [("missing-id", "id", "line 1")],
    ),
    "numeric-id": (
        "a.ndjson",
        _nd({"resourceType": "Patient", "id": 12}),
        0,
        [("invalid-id", "id", "line 1")],
    ),
    "id-too-long": (
        "a.ndjson",
        _nd({"resourceType": "Patient", "id": "a" * 65}, {"resourceType": "Patient", "id": "a" * 64}),
        1,
        [("invalid-id", "id", "line 1")],
    ),
    "id-bad-char": (
        "a.ndjson",
        _nd({"resourceType": "Patient", "id": "a_b"}),
        0,
        [("invalid-id", "id", "line 1")],
    ),
    "birthDate-feb-30": (
        "a.ndjson",
        _nd(_pat(birthDate="2023-02-30")),
        0,
        [("invalid-date", "birthDate", "line 1")],
    ),
    "birthDate-month-13": (
        "a.ndjson",
        _nd(_pat(birthDate="2023-13-01")),
        0,
        [("invalid-date", "birthDate", "line 1")],
    ),
    "birthDate-feb-29-non-leap": (
        "a.ndjson",
        _nd(_pat(birthDate="2021-02-29"), _pat(id="q", birthDate="2020-02-29")),
        1,
        [("invalid-date", "birthDate", "line 1")],
    ),
    "birthDate-with-time": (
        "a.ndjson",
        _nd(_pat(birthDate="2020-01-01T00:00:00Z")),
        0,
        [("invalid-date", "birthDate", "line 1")],
    ),
    "deceased-bad-offset": (
        "a.ndjson",
        _nd(_pat(deceasedDateTime="2020-01-01T00:00:00+15:00")),
        0,
        [("invalid-date", "deceasedDateTime", "line 1")],
    ),
    "lastUpdated-no-tz": (
        "a.ndjson",
        _nd(_pat(meta={"lastUpdated": "2024-01-01T00:00:00"})),
        0,
        [("invalid-date", "meta.lastUpdated", "line 1")],
    ),
    "lastUpdated-date-only": (
        "a.ndjson",
        _nd(_pat(meta={"lastUpdated": "2024-01-01"})),
        0,
        [("invalid-date", "meta.lastUpdated", "line 1")],
    ),
    "encounter-start-no-tz": (
        "a.ndjson",
        _nd(_res("Encounter", period={"start": "2023-01-01T10:00:00"})),
        0,
        [("invalid-date", "period.start", "line 1")],
    ),
    "encounter-period-not-object": (
        "a.ndjson",
        _nd(_res("Encounter", period="2023")),
        0,
        [("invalid-date", "period.start", "line 1")],
    ),
    "observation-effective-number": (
        "a.ndjson",
        _nd(_res("Observation", effectiveDateTime=20230101)),
        0,
        [("invalid-date", "effectiveDateTime", "line 1")],
    ),
    "observation-issued-hour-24": (
        "a.ndjson",
        _nd(_res("Observation", issued="2023-01-01T24:00:00Z")),
        0,
        [("invalid-date", "issued", "line 1")],
    ),
    "condition-april-31": (
        "a.ndjson",
        _nd(_res("Condition", onsetDateTime="2023-04-31")),
        0,
        [("invalid-date", "onsetDateTime", "line 1")],
    ),
    "procedure-unpadded-end": (
        "a.ndjson",
        _nd(_res("Procedure", performedPeriod={"end": "2023-1-5"})),
        0,
        [("invalid-date", "performedPeriod.end", "line 1")],
    ),
    "medrequest-authored-word": (
        "a.ndjson",
        _nd(_res("MedicationRequest", authoredOn="yesterday")),
        0,
        [("invalid-date", "authoredOn", "line 1")],
    ),
    "immunization-feb-29-2023": (
        "a.ndjson",
        _nd(_res("Immunization", occurrenceDateTime="2023-02-29T00:00:00Z")),
        0,
        [("invalid-date", "occurrenceDateTime", "line 1")],
    ),
    "year-zero": (
        "a.ndjson",
        _nd(_pat(birthDate="0000-01-01")),
        0,
        [("invalid-date", "birthDate", "line 1")],
    ),
    "empty-ndjson": ("a.ndjson", b"", 0, [("empty-file", None, None)]),
    "blank-lines-only": ("a.ndjson", b"\n  \n\n", 0, [("empty-file", None, None)]),
    "empty-json": ("a.json", b"   \n", 0, [("empty-file", None, None)]),
    "empty-gzip": ("a.ndjson.gz", gzip.compress(b""), 0, [("empty-file", None, None)]),
    "gz-name-not-gzip": ("a.json.gz", GOOD, 0, [("bad-gzip", None, None)]),
    "truncated-gzip": ("a.ndjson.gz", _GOOD_GZ[:-8], 100, [("bad-gzip", None, "line 101")]),
    "gzip-garbage-body": (
        "a.json.gz",
        gzip.compress(GOOD)[:10] + b"\x00garbage-not-deflate",
        0,
        [("bad-gzip", None, None)],
    ),
    "malformed-json-file": ("a.json", b'{"resourceType": "Patient",', 0, [("malformed-json", None, None)]),
    "json-file-array": ("a.json", b"[" + GOOD + b"]", 0, [("not-an-object", None, None)]),
    "bundle-entry-not-array": (
        "b.json",
        orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": {}}),
        0,
        [("invalid-bundle", "entry", None)],
    ),
    "bundle-entry-not-object": (
        "b.json",
        orjson.dumps(_bundle({"resource": _pat()}, "oops")),
        1,
        [("entry-not-object", None, "entry 1")],
    ),
    "bundle-entry-without-resource": (
        "b.json",
        orjson.dumps(
            _bundle(
                {"request": {"method": "DELETE", "url": "Patient/x"}},
                {"request": {"method": "POST", "url": "Patient"}},
                {"resource": _pat()},
            )
        ),
        1,
        [("entry-without-resource", "resource", "entry 1")],
    ),
    "bundle-entry-bad-resource": (
        "b.json.gz",
        gzip.compress(
            orjson.dumps(
                _bundle(
                    {"resource": {"resourceType": "Nope", "id": "1"}},
                    {"resource": _pat()},
                    btype="collection",
                )
            )
        ),
        1,
        [("unknown-resourceType", "resourceType", "entry 0")],
    ),
    "bundle-entry-no-id-no-urn": (
        "b.json",
        orjson.dumps(_bundle({"fullUrl": "http://x/Patient/1", "resource": {"resourceType": "Patient"}})),
        0,
        [("missing-id", "id", "entry 0")],
    ),
    "bundle-line-with-bad-entry": (
        "a.ndjson",
        _nd(
            GOOD,
            _bundle(
                {"resource": _pat()}, {"resource": _pat(id="q", birthDate="1999-02-31")}, btype="searchset"
            ),
        ),
        2,
        [("invalid-date", "birthDate", "line 2 entry 1")],
    ),
}


def _rejects(con) -> list[tuple]:
    return con.execute("SELECT reason, field, source_pos FROM rejects ORDER BY rowid").fetchall()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_quarantined_exactly(tmp_path: Path, case: str) -> None:
    name, content, loaded, expected = CASES[case]
    (tmp_path / name).write_bytes(content)
    con = connect_memory()
    result = load(con, [tmp_path / name], "c")
    assert _rejects(con) == expected
    assert result.loaded == loaded
    assert result.quarantined == len(expected)
    assert result.resources_read == loaded + len(expected)
    reasons = {row[0] for row in expected}
    assert reasons <= REASONS.keys()


def test_corpus_covers_at_least_30_kinds() -> None:
    assert len(CASES) >= 30
    assert {e[0] for case in CASES.values() for e in case[3]} == REASONS.keys() - {"unreadable-file"}


def test_all_malformed_files_in_one_load_never_stop_good_input(tmp_path: Path) -> None:
    for index, case in enumerate(sorted(CASES)):
        name, content, _, _ = CASES[case]
        folder = tmp_path / f"{index:02d}"
        folder.mkdir()
        (folder / name).write_bytes(content)
    con = connect_memory()
    result = load(con, [tmp_path], "c")
    assert result.quarantined == sum(len(c[3]) for c in CASES.values())
    assert result.loaded == sum(c[2] for c in CASES.values())
    raw = con.execute("SELECT count(*) FROM rejects WHERE raw IS NOT NULL").fetchone()[0]
    assert raw > 30  # the raw text is kept for everything that had text


def test_reject_keeps_raw_text_and_detail_without_the_value(tmp_path: Path) -> None:
    line = orjson.dumps(_pat(birthDate="2023-02-30"))
    (tmp_path / "a.ndjson").write_bytes(line + b"\n")
    con = connect_memory()
    load(con, [tmp_path], "c")
    row = con.execute("SELECT resource_type, resource_id, detail, raw FROM rejects").fetchone()
    assert row == ("Patient", "p", "not a calendar date (date)", line.decode())


def test_bad_line_raw_is_recoverable(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b'{"a": "\xff"\n')
    con = connect_memory()
    load(con, [tmp_path], "c")
    assert con.execute("SELECT raw FROM rejects").fetchone() == ('{"a": "\\xff"',)


@pytest.mark.parametrize(
    ("value", "kind", "ok"),
    [
        ("2024", "date", True),
        ("2024-02", "date", True),
        ("2024-02-29", "date", True),
        ("2024-02-29T10:00:00Z", "dateTime", True),
        ("2024-02-29T10:00:00.123456789-05:00", "dateTime", True),
        ("2024-02", "dateTime", True),
        ("2024-02-29T10:00", "dateTime", False),
        ("2024-02-29T10:00:00", "dateTime", False),
        ("2024-02-29T10:00:00+14:00", "instant", True),
        ("2024-02-29T10:00:00+14:30", "instant", False),
        ("2024-02-29", "instant", False),
        ("1900-02-29", "date", False),
        ("2000-02-29", "date", True),
        ("2016-12-31T23:59:60Z", "instant", True),
        (" 2024-01-01", "date", False),
    ],
)
def test_date_rules(value: str, kind: str, ok: bool) -> None:
    assert (date_error(value, kind) is None) is ok


def test_instant_micros_is_exact() -> None:
    assert instant_micros("1970-01-01T00:00:00Z") == 0
    assert instant_micros("1970-01-01T01:00:00.0000019+01:00") == 1
    assert instant_micros("2016-12-31T23:59:60Z") == instant_micros("2017-01-01T00:00:00Z")
