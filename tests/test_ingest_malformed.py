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
from chc_equity.ingest.sources import DEFAULT_MAX_RECORD_BYTES
from chc_equity.views.build import build_views
from chc_equity.views.shape import builtin_screen
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
    "json-file-array": ("a.json", b"[" + GOOD + b", 7]", 1, [("not-an-object", None, "item 1")]),
    "json-file-empty-array": ("a.json", b"[]", 0, [("not-an-object", None, None)]),
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
        [("delete-not-applied", "request", "entry 0"), ("entry-without-resource", "resource", "entry 1")],
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


def _deep(levels: int, rid: str = "d") -> bytes:
    """A Patient whose ``x`` nests ``levels`` objects (as text: orjson cannot write it, that is the point)."""
    return (
        b'{"resourceType":"Patient","id":"%s","x":' % rid.encode()
        + b'{"a":' * levels
        + b"{}"
        + b"}" * levels
        + b"}"
    )


def _qr_items(levels: int) -> list:
    items: list = [{"linkId": "q"}]
    for _ in range(levels - 1):
        items = [{"linkId": "q", "item": items}]
    return items


_BIRTHSEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_GOOD2 = GOOD.replace(b'"ok"', b'"ok2"')
_NDJSON_LINES = _nd(GOOD, _GOOD2, _pat(id="p3"))

# Cases added for issue 11 (items 1, 2, 3, 12): the views never fail a load, deep or oversized
# records are quarantined, and encodings / layouts are read instead of rejected wholesale.
CASES.update(
    {
        # item 1: well-formed JSON of the wrong FHIR shape for a view (screened at ingest)
        "shape-gender-array": (
            "a.ndjson",
            _nd(GOOD, _pat(gender=["male", "female"])),
            1,
            [("wrong-shape", "Patient.gender", "line 2")],
        ),
        "shape-valueBoolean-string": (
            "a.ndjson",
            _nd(_res("Observation", status="final", valueBoolean="yes"), GOOD),
            1,
            [("wrong-shape", "Observation.value.ofType(boolean)", "line 1")],
        ),
        "shape-deceasedBoolean-string": (
            "a.ndjson",
            _nd(_pat(deceasedBoolean="no"), GOOD),
            1,
            [("wrong-shape", "Patient.deceased.ofType(boolean)", "line 1")],
        ),
        "shape-encounter-status-array": (
            "a.ndjson",
            _nd(_res("Encounter", status=["finished", "planned"]), GOOD),
            1,
            [("wrong-shape", "Encounter.status", "line 1")],
        ),
        "shape-encounter-status-one-element-array": (
            "a.ndjson",
            _nd(_res("Encounter", status=["finished"]), GOOD),
            2,
            [],
        ),
        "shape-condition-subject-array": (
            "a.ndjson",
            _nd(_res("Condition", subject=[{"reference": "Patient/a"}, {"reference": "Patient/b"}]), GOOD),
            1,
            [("wrong-shape", "Condition.subject.getReferenceKey(Patient)", "line 1")],
        ),
        "shape-active-string": (
            "a.ndjson",
            _nd(_pat(active="true")),
            0,
            [("wrong-shape", "Patient.active", "line 1")],
        ),
        "shape-preferred-string": (
            "a.ndjson",
            _nd(_pat(communication=[{"preferred": "yes", "language": {"text": "en"}}])),
            0,
            [
                (
                    "wrong-shape",
                    "Patient.communication.where(preferred = true).first().language.coding.first().system",
                    "line 1",
                )
            ],
        ),
        "shape-two-birthsex-extensions": (
            "a.ndjson",
            _nd(_pat(extension=[{"url": _BIRTHSEX, "valueCode": "F"}, {"url": _BIRTHSEX, "valueCode": "M"}])),
            0,
            [("wrong-shape", f"Patient.extension('{_BIRTHSEX}').value.ofType(code)", "line 1")],
        ),
        "shape-plain-value-object": (
            "b.json",
            orjson.dumps(
                _bundle({"resource": _res("Observation", value={"value": 1})}, {"resource": _pat()})
            ),
            1,
            [("wrong-shape", "Observation.value.ofType(Quantity).value", "entry 0")],
        ),
        "shape-questionnaire-17-levels": (
            "a.ndjson",
            _nd(
                _res("QuestionnaireResponse", item=_qr_items(17)),
                _res("QuestionnaireResponse", item=_qr_items(16)),
            ),
            1,
            [("wrong-shape", "QuestionnaireResponse.repeat(item, answer.item)", "line 1")],
        ),
        "shape-period-start-array": (
            "a.ndjson",
            _nd(_res("Encounter", period={"start": ["2023-01-01", "2023-01-02"]})),
            0,
            [("invalid-date", "period.start", "line 1")],
        ),
        # item 2: deep JSON
        "deep-300-levels": (
            "a.ndjson",
            _nd(GOOD, _deep(300)),
            1,
            [("too-deep", None, "line 2")],
        ),
        "deep-1000-levels-json": ("a.json", _deep(1000), 0, [("too-deep", None, None)]),
        "deep-in-bundle-entry": (
            "b.json",
            b'{"resourceType":"Bundle","type":"batch","entry":[{"resource":'
            + _deep(260)
            + b'},{"resource":'
            + orjson.dumps(_pat(id="q"))
            + b"}]}",
            1,
            [("too-deep", None, "entry 0")],
        ),
        "deep-beyond-parser": (
            "a.ndjson",
            _nd(GOOD, b'{"resourceType":"Patient","id":"d","x":' + b"[" * 3000 + b"]" * 3000 + b"}"),
            1,
            [("malformed-json", None, "line 2")],
        ),
        # item 3: oversized records (a low limit exercises the same path cheaply; see LIMITS)
        "too-large-line": (
            "a.ndjson",
            _nd(GOOD, _pat(id="big", text={"div": "x" * 5000}), _GOOD2),
            2,
            [("too-large", None, "line 2")],
        ),
        "too-large-gzip-line": (
            "a.ndjson.gz",
            gzip.compress(_nd(_pat(id="big", identifier=[{"value": "1"}] * 1000), GOOD)),
            1,
            [("too-large", None, "line 1")],
        ),
        "too-large-document": (
            "a.json",
            orjson.dumps(_bundle({"resource": _pat(text={"div": "x" * 5000})})),
            0,
            [("too-large", None, None)],
        ),
        "large-array-under-limit": (
            "a.ndjson",
            _nd(_pat(identifier=[{"value": str(i)} for i in range(100_000)]), GOOD),
            2,
            [],
        ),
        # item 12: encodings and layouts
        "utf8-bom-ndjson": ("a.ndjson", b"\xef\xbb\xbf" + _nd(GOOD, _GOOD2), 2, []),
        "utf8-bom-json": ("a.json", b"\xef\xbb\xbf" + GOOD, 1, []),
        "cr-only-line-ends": (
            "a.ndjson",
            GOOD + b"\r" + _GOOD2 + b"\r{oops\r",
            2,
            [("malformed-json", None, "line 3")],
        ),
        "crlf-line-ends": ("a.ndjson", GOOD + b"\r\n" + _GOOD2 + b"\r\n", 2, []),
        "utf16-le-ndjson": ("a.ndjson", _NDJSON_LINES.decode().encode("utf-16"), 3, []),
        "utf16-be-json": ("a.json", b"\xfe\xff" + GOOD.decode().encode("utf-16-be"), 1, []),
        "ndjson-named-json": ("a.json", _NDJSON_LINES, 3, []),
        "ndjson-named-json-bad-line": (
            "a.json",
            _nd(GOOD, b"{nope", _GOOD2),
            2,
            [("malformed-json", None, "line 2")],
        ),
        "json-array-with-bundle": (
            "a.json",
            orjson.dumps([_bundle({"resource": _pat()}), {"resourceType": "Nope", "id": "x"}]),
            1,
            [("unknown-resourceType", "resourceType", "item 1")],
        ),
        "transaction-in-collection": (
            "b.json",
            orjson.dumps(
                _bundle(
                    {"resource": _bundle({"resource": _pat()}, {"resource": _pat(id="q")})},
                    {"resource": _pat(id="r")},
                    btype="collection",
                )
            ),
            3,
            [],
        ),
        "bundle-delete-entry": (
            "b.json",
            orjson.dumps(
                _bundle({"request": {"method": "DELETE", "url": "Patient/x"}}, {"resource": _pat()})
            ),
            1,
            [("delete-not-applied", "request", "entry 0")],
        ),
        "dangling-urn-reference": (
            "b.json",
            orjson.dumps(_bundle({"resource": _res("Condition", subject={"reference": "urn:uuid:nowhere"})})),
            1,
            [],
        ),
        "nul-byte-line": (
            "a.ndjson",
            _nd(GOOD, b'{"resourceType":"Patient","id":"n"}\x00'),
            1,
            [("malformed-json", None, "line 2")],
        ),
        "number-out-of-range": (
            "a.ndjson",
            _nd(b'{"resourceType":"Patient","id":"n","x":1e999}', GOOD),
            1,
            [("malformed-json", None, "line 1")],
        ),
        "duplicate-keys": ("a.ndjson", _nd(b'{"resourceType":"Patient","id":"x","id":"y"}'), 1, []),
        "unicode-id": ("a.ndjson", _nd(_pat(id="p\u00e9")), 0, [("invalid-id", "id", "line 1")]),
    }
)

# Per-record size limit (bytes) for the cases that exercise it; every other case runs at the default.
LIMITS = {"too-large-line": 1000, "too-large-gzip-line": 1000, "too-large-document": 1000}


def _rejects(con) -> list[tuple]:
    return con.execute("SELECT reason, field, source_pos FROM rejects ORDER BY rowid").fetchall()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_quarantined_exactly(tmp_path: Path, case: str) -> None:
    name, content, loaded, expected = CASES[case]
    (tmp_path / name).write_bytes(content)
    con = connect_memory()
    limit = LIMITS.get(case, DEFAULT_MAX_RECORD_BYTES)
    result = load(con, [tmp_path / name], "c", screen=builtin_screen(), max_record_bytes=limit)
    assert _rejects(con) == expected
    assert result.loaded == loaded
    assert result.quarantined == len(expected)
    assert result.resources_read == loaded + len(expected)
    reasons = {row[0] for row in expected}
    assert reasons <= REASONS.keys()


def test_corpus_covers_at_least_60_kinds() -> None:
    assert len(CASES) >= 60
    assert {e[0] for case in CASES.values() for e in case[3]} == REASONS.keys() - {"unreadable-file"}


def test_all_malformed_files_in_one_load_never_stop_good_input(tmp_path: Path) -> None:
    """Every case in ONE load, with the views built inside it as the CLI does: the load commits,
    reads = loaded + quarantined, and the flat tables hold every loaded resource."""
    cases = [c for c in sorted(CASES) if c not in LIMITS]
    for index, case in enumerate(cases):
        name, content, _, _ = CASES[case]
        folder = tmp_path / f"{index:02d}"
        folder.mkdir()
        (folder / name).write_bytes(content)
    con = connect_memory()
    result = load(
        con, [tmp_path], "c", screen=builtin_screen(), after_load=lambda c, ctr: build_views(c, centers=[ctr])
    )
    assert result.quarantined == sum(len(CASES[c][3]) for c in cases)
    assert result.loaded == sum(CASES[c][2] for c in cases)
    assert result.resources_read == result.loaded + result.quarantined
    assert result.dangling_references == 1
    stored = con.execute("SELECT count(*) FROM resources").fetchone()[0]
    flat_patients = con.execute("SELECT count(*) FROM flat.patient").fetchone()[0]
    patients = con.execute("SELECT count(*) FROM resources WHERE type = 'Patient'").fetchone()[0]
    assert stored > 0 and flat_patients == patients
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
