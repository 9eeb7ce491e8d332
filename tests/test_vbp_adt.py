"""HL7 v2 ADT and FHIR Encounter ingest (issue 21, item 5): 30+ malformed or unusual messages, each
either parsed to the right values or quarantined with a clear reason, never stopping the rest."""

from __future__ import annotations

from datetime import date, datetime

import orjson
import pytest

from chc_equity.vbp.adt import AdtEvent, Identifier, frame, read_fhir_text, read_hl7_text

MSH = "MSH|^~\\&|EPIC|GENHOSP|CHC|NORTH|20240105103000||ADT^{ev}^ADT_A01|{cid}|P|2.5.1"
EVN = "EVN|{ev}|20240105103000"
PID = (
    "PID|1||MRN123^^^GENHOSP^MR~N-0007^^^NORTHCHC^MR||OBrien^Mary^J||19600131|F|||1 Main St^^Lowell^MA^01850"
)
PV1 = (
    "PV1|1|I|W3^301^1^GENHOSP"
    + "|" * 16
    + "V998"
    + "|" * 17
    + "01"
    + "|" * 8
    + "20240101080000|20240105100000"
)


STANDARD = ("MSH", "EVN", "PID", "PV1")


def message(ev: str = "A03", cid: str = "C1", *, msh: str | None = None, evn: str | None = None,
            pid: str | None = None, pv1: str | None = None, order: tuple[str, ...] = STANDARD,
            extra: tuple[str, ...] = ()) -> str:  # fmt: skip
    segs = {
        "MSH": msh if msh is not None else MSH.format(ev=ev, cid=cid),
        "EVN": evn if evn is not None else EVN.format(ev=ev),
        "PID": pid if pid is not None else PID,
        "PV1": pv1 if pv1 is not None else PV1,
    }
    return "\r".join([segs[s] for s in order if segs[s] != ""] + list(extra))


def good(cid: str) -> str:
    return message(cid=cid)


def field_replace(segment: str, index: int, value: str) -> str:
    parts = segment.split("|")
    parts += [""] * (index + 1 - len(parts))
    parts[index] = value
    return "|".join(parts)


def pv1(index: int, value: str) -> str:
    return field_replace(PV1, index, value)


def pid(index: int, value: str) -> str:
    return field_replace(PID, index, value)


def msh(index: int, value: str) -> str:
    # MSH-n is split index n-1 (MSH-1 is the separator itself)
    return field_replace(MSH.format(ev="A03", cid="C1"), index - 1, value)


# (id, message text, expected): expected is ("q", where, words in the reason) or ("ok", {attr: value}).
Q = "q"
OK = "ok"
CASES: list[tuple[str, str, tuple]] = [
    ("empty message", "", (Q, "", "empty message")),
    ("only whitespace", "   \t ", (Q, "", "empty message")),
    ("pid before msh", message(order=("PID", "MSH", "EVN", "PV1")), (Q, "PID", "not MSH")),
    (
        "pv1 before pid",
        message(order=("MSH", "EVN", "PV1", "PID")),
        (Q, "PID", "segment order: PID after PV1"),
    ),
    (
        "evn after pid",
        message(order=("MSH", "PID", "EVN", "PV1")),
        (Q, "EVN", "segment order: EVN after PID"),
    ),
    ("two PID segments", message(extra=(PID,)), (Q, "PID", "2 PID segments")),
    ("missing PID", message(order=("MSH", "EVN", "PV1")), (Q, "PID", "no PID segment")),
    ("missing PID-3", message(pid=pid(3, "")), (Q, "PID-3", "identifier list is empty")),
    ("PID-3 only empty repetitions", message(pid=pid(3, "~^^^X")), (Q, "PID-3", "identifier list is empty")),
    ("missing family name", message(pid=pid(5, "^Mary")), (Q, "PID-5", "family name is missing")),
    ("bad birth date", message(pid=pid(7, "19601331")), (Q, "PID-7", "not a valid date")),
    ("birth date not a date", message(pid=pid(7, "1960-01-31")), (Q, "PID-7", "not an HL7 date/time")),
    ("birth date in 1066", message(pid=pid(7, "10660101")), (Q, "PID-7", "out of range")),
    ("bad sex", message(pid=pid(8, "X")), (Q, "PID-8", "table 0001")),
    ("unknown event type", message(ev="A99"), (Q, "MSH-9", "'A99' unknown")),
    ("transfer not handled", message(ev="A02"), (Q, "MSH-9", "A02 (transfer)")),
    ("not an ADT", message(msh=msh(9, "ORU^R01^ORU_R01")), (Q, "MSH-9", "'ORU' is not ADT")),
    ("EVN disagrees", message(evn="EVN|A01|20240105"), (Q, "EVN-1", "disagrees with MSH-9.2 A03")),
    ("no trigger at all", message(msh=msh(9, "ADT"), evn="EVN||20240105"), (Q, "MSH-9", "no trigger")),
    ("missing control id", message(msh=msh(10, "")), (Q, "MSH-10", "control id is missing")),
    ("bad MSH-7", message(msh=msh(7, "2024-01-05")), (Q, "MSH-7", "not an HL7 date/time")),
    ("missing MSH-7", message(msh=msh(7, "")), (Q, "MSH-7", "missing")),
    ("missing sending facility", message(msh=msh(4, "")), (Q, "MSH-4", "sending facility")),
    ("HL7 v3 version", message(msh=msh(12, "3.0")), (Q, "MSH-12", "not HL7 v2")),
    ("broken encoding chars", "MSH|^^\\&|X\rPID|1||A^^^B||C^D", (Q, "MSH-2", "encoding characters")),
    ("A03 without discharge", message(pv1=pv1(45, "")), (Q, "PV1-45", "without a discharge date")),
    ("A03 without PV1", message(order=("MSH", "EVN", "PID")), (Q, "PV1", "A03 without a PV1")),
    ("discharge before admit", message(pv1=pv1(44, "20240201")), (Q, "PV1-45", "before the admit")),
    ("bad discharge date", message(pv1=pv1(45, "20240230")), (Q, "PV1-45", "not a valid date")),
    ("bad patient class", message(pv1=pv1(2, "Z")), (Q, "PV1-2", "table 0004")),
    ("lowercase segment", message(extra=("zz1|x",)), (Q, "segment 5", "not a segment name")),
    ("binary junk", message(extra=("ZBN|\x01\x02",)), (Q, "", "control character 0x01")),
    ("other field separator", message(extra=("ZX1#a#b",)), (Q, "ZX1", "field separator")),
    # -- unusual but valid: parsed, with the right values ---------------------------------------------
    (
        "escapes F S T R E",
        message(pid=pid(5, "O\\T\\Brien\\F\\X\\S\\Y\\R\\Z\\E\\^Mary")),
        (OK, {"family": "O&Brien|X^Y~Z\\", "given": "Mary"}),
    ),
    (
        "repeating PID-3",
        message(),
        (
            OK,
            {"identifiers": (Identifier("GENHOSP", "MRN123", "MR"), Identifier("NORTHCHC", "N-0007", "MR"))},
        ),
    ),
    (
        "repeating names: legal one",
        message(pid=pid(5, "Mae^M^^^^^A~OBrien^Mary^^^^^L")),
        (OK, {"family": "OBrien", "given": "Mary"}),
    ),
    ("A01 admission", message(ev="A01", pv1=pv1(45, "")), (OK, {"event_type": "A01", "discharge_at": None})),
    (
        "A04 registration, no PV1",
        message(ev="A04", order=("MSH", "EVN", "PID")),
        (OK, {"kind": "registration"}),
    ),
    ("A08 update", message(ev="A08"), (OK, {"kind": "update"})),
    (
        "no EVN segment",
        message(order=("MSH", "PID", "PV1")),
        (OK, {"event_time": datetime(2024, 1, 5, 10, 30)}),
    ),
    ("Z segment and NK1", message(extra=("ZPI|1|x",), order=("MSH", "EVN", "PID", "PV1")), (OK, {})),
    (
        "date with zone and fraction",
        message(pv1=pv1(45, "20240105100000.123-0500")),
        (OK, {"discharge_at": datetime(2024, 1, 5, 10, 0)}),
    ),
    ("date only", message(pv1=pv1(45, "20240105")), (OK, {"discharge_at": datetime(2024, 1, 5)})),
    (
        "authority as universal id",
        message(pid=pid(3, "77^^^&2.16.840.1.113883.3.1&ISO")),
        (OK, {"identifiers": (Identifier("2.16.840.1.113883.3.1", "77", ""),)}),
    ),
    (
        "lowercase sex, zip+4",
        message(pid=pid(8, "f").replace("01850", "01850-1234")),
        (OK, {"sex": "F", "postal_code": "01850", "birth_date": date(1960, 1, 31)}),
    ),
]


def _feed(text: str, sep: str = "\r") -> str:
    """The case between two good messages (blank-line separated), so the test sees it does not stop them."""
    return sep.join([good("BEFORE"), "", text.replace("\r", sep), "", good("AFTER")])


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_message_parses_or_is_quarantined_with_its_reason(name: str, text: str, expected: tuple) -> None:
    result = read_hl7_text(_feed(text), "feed.hl7")
    ids = [e.control_id for e in result.events]
    assert ids[0] == "BEFORE" and ids[-1] == "AFTER", "a bad message must never stop the rest"
    if expected[0] == Q:
        _, where, words = expected
        assert len(ids) == 2
        if name in ("empty message", "only whitespace"):  # nothing between two blank lines: no message
            assert result.quarantined == []
            assert read_hl7_text(text, "x.hl7").quarantined[0].reason in ("empty file (no messages)",)
            return
        (q,) = result.quarantined
        assert q.where == where and words in q.reason, q.describe()
        assert q.message_no == 2 and q.line == 6 and q.describe().startswith("feed.hl7: message 2 (line 6)")
    else:
        assert result.quarantined == [], [q.describe() for q in result.quarantined]
        assert len(ids) == 3
        event: AdtEvent = result.events[1]
        for attr, value in expected[1].items():
            assert getattr(event, attr) == value, attr


def test_unusual_message_count_is_at_least_30() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"], ids=["CR", "LF", "CRLF"])
def test_segment_terminators(sep: str) -> None:
    result = read_hl7_text(_feed(message(cid="MID"), sep), "f")
    assert [e.control_id for e in result.events] == ["BEFORE", "MID", "AFTER"]
    assert result.events[1].line == 6 and result.quarantined == []


def test_mllp_framing_and_batch_envelope() -> None:
    bad = message(pid=pid(7, "19601331"), cid="BAD")
    text = "FHS|^~\\&\rBHS|^~\\&\r" + "".join(f"\x0b{m}\r\x1c\r" for m in (good("A"), bad, good("B"), ""))
    result = read_hl7_text(text + "BTS|3\rFTS|1\r", "mllp.hl7")
    assert [e.control_id for e in result.events] == ["A", "B"]
    reasons = [(q.message_no, q.where, q.reason) for q in result.quarantined]
    assert reasons[0][:2] == (2, "PID-7") and reasons[1] == (4, "", "empty message")


def test_consecutive_messages_without_blank_lines_and_line_numbers() -> None:
    text = "\n".join([good("A"), message(pid=pid(8, "Q"), cid="B"), good("C")])
    framed = list(frame(text))
    assert [m.line for m in framed] == [1, 5, 9]
    result = read_hl7_text(text, "f")
    assert [e.control_id for e in result.events] == ["A", "C"]
    assert (
        result.quarantined[0].describe()
        == "f: message 2 (line 5), PID-8: sex 'Q' is not in HL7 table 0001 (F M U O A N)"
    )


def test_a_good_message_normalised() -> None:
    (e,) = read_hl7_text(good("X"), "f").events
    assert (e.hospital, e.event_type, e.patient_class, e.visit_number, e.disposition) == (
        "GENHOSP",
        "A03",
        "I",
        "V998",
        "01",
    )
    assert (e.admit_at, e.discharge_at) == (datetime(2024, 1, 1, 8), datetime(2024, 1, 5, 10))
    assert (e.family, e.given, e.birth_date, e.sex, e.postal_code) == (
        "OBrien",
        "Mary",
        date(1960, 1, 31),
        "F",
        "01850",
    )
    assert e.key == "GENHOSP|X|A03"


def _bundle(*resources: dict) -> str:
    return orjson.dumps({"resourceType": "Bundle", "type": "collection",
                         "entry": [{"resource": r} for r in resources]}).decode()  # fmt: skip


PATIENT = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:x:mrn", "value": "N-1"}],
           "name": [{"family": "Diaz", "given": ["Ana"]}], "birthDate": "1970-02-03", "gender": "female",
           "address": [{"postalCode": "01852"}]}  # fmt: skip


def _enc(eid: str, **over) -> dict:
    enc = {"resourceType": "Encounter", "id": eid, "status": "finished", "class": {"code": "IMP"},
           "subject": {"reference": "Patient/p1"}, "serviceProvider": {"display": "Mercy"},
           "period": {"start": "2024-03-01T10:00:00-05:00", "end": "2024-03-04T12:00:00-05:00"}}  # fmt: skip
    enc.update(over)
    return enc


def test_fhir_encounters_from_a_bundle_and_ndjson() -> None:
    text = _bundle(PATIENT, _enc("e1"), _enc("e2", status="in-progress", period={"start": "2024-03-05"}),
                   _enc("e3", status="cancelled"), _enc("e4", subject={"reference": "Patient/nope"}),
                   _enc("e5", period={"start": "2024-03-05", "end": "2024-03-01"}))  # fmt: skip
    result = read_fhir_text(text, "b.json")
    assert [(e.control_id, e.event_type) for e in result.events] == [
        ("Encounter/e1", "A03"),
        ("Encounter/e2", "A01"),
    ]
    e1 = result.events[0]
    assert (e1.hospital, e1.patient_class, e1.family, e1.birth_date, e1.discharge_at) == (
        "Mercy",
        "I",
        "Diaz",
        date(1970, 2, 3),
        datetime(2024, 3, 4, 12),
    )
    assert [(q.message_no, q.where) for q in result.quarantined] == [
        (4, "Encounter.status"),
        (5, "Encounter.subject"),
        (6, "Encounter.period"),
    ]
    ndjson = "\n".join([orjson.dumps(PATIENT).decode(), "{not json", orjson.dumps(_enc("e9")).decode()])
    result = read_fhir_text(ndjson, "n.ndjson")
    assert [e.control_id for e in result.events] == ["Encounter/e9"]
    assert result.quarantined[0].line == 2 and "not JSON" in result.quarantined[0].reason
