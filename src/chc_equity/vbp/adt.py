"""Admission / discharge / transfer events from partner hospitals: HL7 v2 ADT and FHIR Encounter.

Why: after a hospital stay a center must reach its patient within 2 business days and see them within
7 or 14 days, and the only way it learns of the stay is the hospital's feed. Feeds are messy, so this
module is strict about what it accepts and never lets one bad message stop the rest: every message is
either normalised to an :class:`AdtEvent` or set aside as a :class:`Quarantined` record whose reason
names the file, the message number, its first line and the segment/field at fault.

HL7 v2 is parsed with python-hl7 (``hl7`` on PyPI: segments, repetitions, components, escapes) after
this module has framed the file into messages:

* MLLP framing (``<VT> ... <FS><CR>``) is stripped; a frame is one message;
* CR, LF and CR LF segment terminators are all accepted; a blank line ends a message;
* batch envelopes (FHS/BHS/BTS/FTS) are skipped;
* otherwise a message runs from one ``MSH`` line to the next.

Accepted events: A01 (admit), A03 (discharge), A04 (registration, e.g. an ED visit), A08 (update of
patient information). Any other trigger event is quarantined with its name. FHIR partners send Bundles
or NDJSON holding Encounters and the Patients they reference (:func:`read_fhir`): a finished Encounter
with ``period.end`` is a discharge (as A03), an in-progress one an admission (as A01).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import hl7
import orjson

SUPPORTED_EVENTS: dict[str, str] = {
    "A01": "admit",
    "A03": "discharge",
    "A04": "registration",
    "A08": "update",
}
# HL7 table 0003 trigger events we know but do not use: a clearer reason than "unknown".
KNOWN_UNUSED = {
    "A02": "transfer",
    "A05": "pre-admit",
    "A06": "outpatient to inpatient",
    "A07": "inpatient to outpatient",
    "A11": "cancel admit",
    "A13": "cancel discharge",
    "A28": "add person",
    "A31": "update person",
    "A40": "merge patient",
}
SEXES = {"F", "M", "U", "O", "A", "N"}
# HL7 table 0004 patient class; FHIR v3 ActCode encounter classes mapped onto it.
PATIENT_CLASSES = {"I", "O", "E", "P", "R", "B", "C", "N", "U"}
FHIR_CLASS = {"IMP": "I", "ACUTE": "I", "NONAC": "I", "OBSENC": "O", "EMER": "E", "SS": "O", "AMB": "O"}
SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
BATCH = {"FHS", "BHS", "BTS", "FTS"}
# Where segments may appear, by the ADT_A01 message structure (Z-segments and others: anywhere after PID).
ORDER = {"MSH": 0, "SFT": 1, "EVN": 2, "PID": 3, "PD1": 4, "NK1": 5, "PV1": 6, "PV2": 7}
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")
MAX_MESSAGE = 1_000_000  # characters; a larger "message" is a broken file, not an ADT


@dataclass(frozen=True, slots=True)
class Identifier:
    """One patient identifier: PID-3 (CX: value, assigning authority, type) or Patient.identifier."""

    authority: str  # HL7 CX.4 namespace id (or its universal id) / FHIR identifier.system
    value: str
    type: str = ""


@dataclass(frozen=True, slots=True)
class AdtEvent:
    """One ADT event, normalised from either format (times are the sender's local wall-clock time)."""

    source: str  # file name
    message_no: int  # 1-based position of the message (or resource) in the file
    line: int  # line of its first segment (NDJSON: its line; Bundle: entry number)
    origin: str  # "hl7v2" | "fhir"
    control_id: str  # MSH-10 / Encounter id: with the hospital, what makes a re-sent message a duplicate
    event_type: str  # A01 A03 A04 A08
    hospital: str  # MSH-4 sending facility / Encounter.serviceProvider
    event_time: datetime | None
    patient_class: str  # HL7 table 0004 (I inpatient, E emergency, O outpatient ...)
    visit_number: str
    admit_at: datetime | None
    discharge_at: datetime | None
    disposition: str
    identifiers: tuple[Identifier, ...]
    family: str
    given: str
    birth_date: date | None
    sex: str  # F M U O A N
    postal_code: str

    @property
    def kind(self) -> str:
        return SUPPORTED_EVENTS[self.event_type]

    @property
    def key(self) -> str:
        """Unique per hospital and message: a re-sent message is recognised and not counted twice."""
        return f"{self.hospital}|{self.control_id}|{self.event_type}"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A message that was set aside, with where and why (no patient data: the reason names fields)."""

    source: str
    message_no: int
    line: int
    where: str  # segment-field, e.g. "PID-7" ("" when the whole message is at fault)
    reason: str

    def describe(self) -> str:
        at = f", {self.where}" if self.where else ""
        return f"{self.source}: message {self.message_no} (line {self.line}){at}: {self.reason}"


@dataclass(slots=True)
class ReadResult:
    events: list[AdtEvent] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    def extend(self, other: ReadResult) -> None:
        self.events += other.events
        self.quarantined += other.quarantined


class _Bad(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


# -- framing ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RawMessage:
    number: int
    line: int
    segments: tuple[str, ...]


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\r").replace("\n", "\r").split("\r")


def frame(text: str) -> Iterator[RawMessage]:
    """Cut a file into messages (see the module docstring); line numbers count CR, LF or CR LF."""
    if "\x0b" in text:  # MLLP: <VT> message <FS><CR>
        starts = [m.start() for m in re.finditer("\x0b", text)]
        line, seen = 1, 0
        for n, at in enumerate(starts, start=1):
            line += len(_lines(text[seen:at])) - 1  # counted piece by piece: linear in the file
            seen = at
            body = text[at + 1 : starts[n] if n < len(starts) else len(text)].split("\x1c", 1)[0]
            segs = tuple(s for s in _lines(body) if s.strip() and s[:3] not in BATCH)
            yield RawMessage(n, line, segs)
        return
    number, current, first = 0, [], 0
    for i, raw in enumerate(_lines(text), start=1):
        seg = raw.strip("\x00")
        if not seg.strip():
            if current:
                number += 1
                yield RawMessage(number, first, tuple(current))
                current = []
            continue
        if seg[:3] in BATCH:
            continue
        if seg.startswith("MSH") and any(s.startswith("MSH") for s in current):
            number += 1
            yield RawMessage(number, first, tuple(current))
            current = []
        if not current:
            first = i
        current.append(seg)
    if current:
        yield RawMessage(number + 1, first, tuple(current))


# -- HL7 v2 fields -------------------------------------------------------------------------------------------
def _reps(msg: hl7.Message, segment: Any, number: int) -> list[str]:
    """The raw repetitions of a field (python-hl7 nests containers only where separators occur, so the
    field's text is split here with the message's own encoding characters)."""
    if segment is None:
        return []
    try:
        raw = str(segment[number])
    except IndexError:
        return []
    rep = msg.separators[-3]
    return raw.split(rep) if raw else []


def _part(msg: hl7.Message, raw: str, comp: int = 0, sub: int = 0) -> str:
    """Component ``comp`` (0-based), subcomponent ``sub`` of one repetition, unescaped."""
    comps = raw.split(msg.separators[-2])
    if comp >= len(comps):
        return ""
    subs = comps[comp].split(msg.separators[-1])
    return msg.unescape(subs[sub]).strip() if sub < len(subs) else ""


def _text(msg: hl7.Message, segment: Any, number: int, rep: int = 0, comp: int = 0, sub: int = 0) -> str:
    """The unescaped text at field ``number`` (HL7 numbering), repetition/component/subcomponent."""
    reps = _reps(msg, segment, number)
    return _part(msg, reps[rep], comp, sub) if rep < len(reps) else ""


def parse_dtm(value: str, where: str, *, required: bool = False) -> datetime | None:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as a naive local datetime; raises on nonsense."""
    if not value:
        if required:
            raise _Bad(where, "date/time is missing")
        return None
    m = _DTM.match(value)
    if not m or m.group(2) is None or m.group(3) is None:
        raise _Bad(where, f"{value!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]])")
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups()[:6])
    try:
        return datetime(y, mo, d, h, mi, s)
    except ValueError as exc:
        raise _Bad(where, f"{value!r} is not a valid date/time ({exc})") from None


def _birth_date(value: str) -> date | None:
    if not value:
        return None
    parsed = parse_dtm(value, "PID-7")
    if parsed.year < 1880 or parsed.date() > date.today():
        raise _Bad("PID-7", f"birth date {value!r} is out of range")
    return parsed.date()


def _segments(msg: hl7.Message) -> list[str]:
    return [str(s[0]) for s in msg]


def _check_order(names: list[str]) -> None:
    if names[0] != "MSH":
        raise _Bad(names[0], f"first segment is {names[0]}, not MSH (a message must start with MSH)")
    for name in ("MSH", "EVN", "PID", "PV1"):
        if names.count(name) > 1:
            raise _Bad(name, f"{names.count(name)} {name} segments (one expected)")
    last = -1
    for name in names:
        rank = ORDER.get(name)
        if rank is None:
            continue
        if rank < last:
            before = [n for n in names if ORDER.get(n, -1) > rank][0]
            raise _Bad(name, f"segment order: {name} after {before} (expected MSH, EVN, PID, PD1, NK1, PV1)")
        last = rank


def _identifiers(msg: hl7.Message, pid: Any) -> tuple[Identifier, ...]:
    """PID-3 repetitions (CX): value, assigning authority (HD namespace, else universal id), type."""
    out = []
    for rep in _reps(msg, pid, 3):
        value = _part(msg, rep, 0)
        if not value:
            continue
        authority = _part(msg, rep, 3, 0) or _part(msg, rep, 3, 1)
        out.append(Identifier(authority, value, _part(msg, rep, 4)))
    return tuple(out)


def _name(msg: hl7.Message, pid: Any) -> tuple[str, str]:
    """Family and given name of the legal name (XPN.7 'L'), else of the first repetition."""
    reps = _reps(msg, pid, 5)
    chosen = next((r for r in reps if _part(msg, r, 6) == "L"), reps[0] if reps else None)
    if chosen is None:
        return "", ""
    return _part(msg, chosen, 0, 0), _part(msg, chosen, 1)


def parse_message(raw: RawMessage, source: str) -> AdtEvent | Quarantined:
    """One framed message -> an event, or a quarantine record naming the segment/field at fault."""
    try:
        return _parse(raw, source)
    except _Bad as bad:
        return Quarantined(source, raw.number, raw.line, bad.where, bad.reason)


def _parse(raw: RawMessage, source: str) -> AdtEvent:
    segs = raw.segments
    if not segs:
        raise _Bad("", "empty message")
    if sum(len(s) for s in segs) > MAX_MESSAGE:
        raise _Bad("", f"message longer than {MAX_MESSAGE:,} characters")
    bad_char = next((c for s in segs for c in s if ord(c) < 32 and c != "\t"), None)
    if bad_char is not None:
        raise _Bad("", f"control character {ord(bad_char):#04x} inside a segment (binary data?)")
    for n, s in enumerate(segs):
        if not SEGMENT_NAME.match(s[:3]) or (len(s) > 3 and not s[3].isprintable()):
            raise _Bad(f"segment {n + 1}", f"{s[:3]!r} is not a segment name (3 capital letters/digits)")
    if not segs[0].startswith("MSH"):
        raise _Bad(segs[0][:3], f"first segment is {segs[0][:3]}, not MSH (a message must start with MSH)")
    msh = segs[0]
    if len(msh) < 8 or msh[3] in "^~\\&" or len(set(msh[3:8])) != 5:
        raise _Bad("MSH-2", "MSH-1/MSH-2 field separator and encoding characters are missing or repeated")
    sep = msh[3]
    for n, s in enumerate(segs[1:], start=2):
        if len(s) > 3 and s[3] != sep:
            raise _Bad(s[:3], f"segment {n} ({s[:3]}) does not use the field separator {sep!r}")
    try:
        msg = hl7.parse("\r".join(segs))
    except Exception as exc:  # python-hl7 raises plain exceptions on broken structure
        raise _Bad("", f"HL7 parser: {exc}") from None
    names = _segments(msg)
    _check_order(names)
    header = msg.segment("MSH")
    version = _text(msg, header, 12)
    if version and not version.startswith("2."):
        raise _Bad("MSH-12", f"version {version!r} is not HL7 v2.x")
    msg_type, trigger = _text(msg, header, 9, 0, 0), _text(msg, header, 9, 0, 1)
    if msg_type != "ADT":
        raise _Bad("MSH-9", f"message type {msg_type or '(empty)'!r} is not ADT")
    control_id = _text(msg, header, 10)
    if not control_id:
        raise _Bad("MSH-10", "message control id is missing")
    sent = parse_dtm(_text(msg, header, 7), "MSH-7", required=True)
    evn = msg.segment("EVN") if "EVN" in names else None
    evn_type = _text(msg, evn, 1) if evn is not None else ""
    trigger = trigger or evn_type
    if not trigger:
        raise _Bad("MSH-9", "no trigger event (MSH-9.2 and EVN-1 are empty)")
    if evn_type and evn_type != trigger:
        raise _Bad("EVN-1", f"event {evn_type} disagrees with MSH-9.2 {trigger}")
    if trigger not in SUPPORTED_EVENTS:
        what = f"{trigger} ({KNOWN_UNUSED[trigger]})" if trigger in KNOWN_UNUSED else f"{trigger!r} unknown"
        raise _Bad("MSH-9", f"event type {what} is not handled (A01, A03, A04, A08)")
    event_time = parse_dtm(_text(msg, evn, 2), "EVN-2") if evn is not None else None
    hospital = _text(msg, header, 4, 0, 0) or _text(msg, header, 4, 0, 1)
    if not hospital:
        raise _Bad("MSH-4", "sending facility is missing (needed to name the hospital)")
    if "PID" not in names:
        raise _Bad("PID", "no PID segment")
    pid = msg.segment("PID")
    identifiers = _identifiers(msg, pid)
    if not identifiers:
        raise _Bad("PID-3", "patient identifier list is empty")
    family, given = _name(msg, pid)
    if not family:
        raise _Bad("PID-5", "patient family name is missing")
    birth = _birth_date(_text(msg, pid, 7))
    sex = _text(msg, pid, 8).upper()
    if sex and sex not in SEXES:
        raise _Bad("PID-8", f"sex {sex!r} is not in HL7 table 0001 (F M U O A N)")
    postal = _text(msg, pid, 11, 0, 4)[:5]
    pv1 = msg.segment("PV1") if "PV1" in names else None
    if pv1 is None and trigger in ("A01", "A03"):
        raise _Bad("PV1", f"{trigger} without a PV1 segment")
    pclass = _text(msg, pv1, 2).upper() if pv1 is not None else ""
    if pclass and pclass not in PATIENT_CLASSES:
        raise _Bad("PV1-2", f"patient class {pclass!r} is not in HL7 table 0004")
    admit = parse_dtm(_text(msg, pv1, 44), "PV1-44") if pv1 is not None else None
    discharge = parse_dtm(_text(msg, pv1, 45), "PV1-45") if pv1 is not None else None
    if trigger == "A03" and discharge is None:
        raise _Bad("PV1-45", "A03 discharge without a discharge date/time")
    if admit and discharge and discharge < admit:
        raise _Bad("PV1-45", "discharge date/time is before the admit date/time (PV1-44)")
    return AdtEvent(
        source=source,
        message_no=raw.number,
        line=raw.line,
        origin="hl7v2",
        control_id=control_id,
        event_type=trigger,
        hospital=hospital,
        event_time=event_time or sent,
        patient_class=pclass,
        visit_number=_text(msg, pv1, 19, 0, 0) if pv1 is not None else "",
        admit_at=admit,
        discharge_at=discharge,
        disposition=_text(msg, pv1, 36) if pv1 is not None else "",
        identifiers=identifiers,
        family=family,
        given=given,
        birth_date=birth,
        sex=sex,
        postal_code=postal,
    )


def read_hl7_text(text: str, source: str) -> ReadResult:
    """Every message of one file's text: events in file order, the rest quarantined."""
    result = ReadResult()
    if not text.strip():
        result.quarantined.append(Quarantined(source, 0, 1, "", "empty file (no messages)"))
        return result
    for raw in frame(text):
        item = parse_message(raw, source)
        (result.events if isinstance(item, AdtEvent) else result.quarantined).append(item)
    return result


# -- FHIR Encounter ----------------------------------------------------------------------------------------
def _fhir_time(value: str | None, where: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(where, f"{value!r} is not a FHIR dateTime") from None
    return parsed.replace(tzinfo=None)


def _code(concept: dict[str, Any] | None) -> str:
    return ((concept or {}).get("coding") or [{}])[0].get("code", "")


def _fhir_patient(p: dict[str, Any]) -> dict[str, Any]:
    name = next((n for n in p.get("name", []) if n.get("use") == "official"), (p.get("name") or [{}])[0])
    birth = None
    if p.get("birthDate"):
        try:
            birth = date.fromisoformat(p["birthDate"])
        except ValueError:
            raise _Bad("Patient.birthDate", f"{p['birthDate']!r} is not a date") from None
    address = (p.get("address") or [{}])[0]
    return dict(
        identifiers=tuple(
            Identifier(
                i.get("system", ""),
                i["value"],
                ((i.get("type") or {}).get("coding") or [{}])[0].get("code", ""),
            )
            for i in p.get("identifier", [])
            if i.get("value")
        ),
        family=name.get("family", ""),
        given=(name.get("given") or [""])[0],
        birth_date=birth,
        sex={"female": "F", "male": "M", "other": "O", "unknown": "U"}.get(p.get("gender", ""), ""),
        postal_code=(address.get("postalCode") or "")[:5],
    )


def _encounter_event(enc: dict[str, Any], patients: dict[str, dict], source: str, n: int, line: int,
                     default_hospital: str) -> AdtEvent:  # fmt: skip
    eid = enc.get("id") or ""
    if not eid:
        raise _Bad("Encounter.id", "Encounter without an id")
    status = enc.get("status", "")
    period = enc.get("period") or {}
    start = _fhir_time(period.get("start"), "Encounter.period.start")
    end = _fhir_time(period.get("end"), "Encounter.period.end")
    if status == "finished" and end is not None:
        trigger = "A03"
    elif status in ("in-progress", "arrived", "onleave"):
        trigger = "A01"
    else:
        raise _Bad(
            "Encounter.status", f"status {status!r} (with period.end: {end is not None}) is no ADT event"
        )
    if start and end and end < start:
        raise _Bad("Encounter.period", "period.end is before period.start")
    ref = (enc.get("subject") or {}).get("reference", "")
    patient = patients.get(ref) or patients.get(ref.removeprefix("Patient/"))
    if patient is None:
        raise _Bad("Encounter.subject", f"subject {ref or '(none)'} is not a Patient in this file")
    person = _fhir_patient(patient)
    if not person["identifiers"]:
        raise _Bad("Patient.identifier", "the encounter's Patient has no identifier")
    cls = enc.get("class") or {}
    if isinstance(cls, list):  # R5 puts CodeableConcepts here
        cls = ((cls[0] if cls else {}).get("coding") or [{}])[0]
    provider = enc.get("serviceProvider") or {}
    hospital = provider.get("display") or provider.get("reference", "").removeprefix("Organization/")
    hospital = hospital or default_hospital
    if not hospital:
        raise _Bad("Encounter.serviceProvider", "no hospital (serviceProvider) and no default given")
    hosp = enc.get("hospitalization") or {}
    disposition = _code(hosp.get("dischargeDisposition"))
    return AdtEvent(source=source, message_no=n, line=line, origin="fhir", control_id=f"Encounter/{eid}",
                    event_type=trigger, hospital=hospital, event_time=end or start,
                    patient_class=FHIR_CLASS.get(cls.get("code", ""), ""),
                    visit_number=eid, admit_at=start, discharge_at=end, disposition=disposition,
                    **person)  # fmt: skip


def _fhir_resources(text: str, source: str, result: ReadResult) -> list[tuple[int, int, dict]]:
    """(number, line, resource) of every resource in a Bundle or NDJSON text; bad lines quarantined."""
    stripped = text.lstrip()
    out: list[tuple[int, int, dict]] = []
    if stripped.startswith("{") and '"Bundle"' in stripped[:2000] and "\n{" not in stripped.strip():
        try:
            bundle = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            result.quarantined.append(Quarantined(source, 0, 1, "", f"not JSON: {exc}"))
            return out
        for n, entry in enumerate(bundle.get("entry", []), start=1):
            resource = entry.get("resource") or {}
            if entry.get("fullUrl"):
                resource = {**resource, "_fullUrl": entry["fullUrl"]}
            out.append((n, n, resource))
        return out
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            result.quarantined.append(Quarantined(source, n, n, "", f"not JSON: {exc}"))
            continue
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            out += [(n, n, e.get("resource") or {}) for e in resource.get("entry", [])]
        elif isinstance(resource, dict):
            out.append((n, n, resource))
        else:
            result.quarantined.append(Quarantined(source, n, n, "", "line is JSON but not a resource object"))
    return out


def read_fhir_text(text: str, source: str, default_hospital: str = "") -> ReadResult:
    """Encounters (with their Patients) from a Bundle or NDJSON -> events; other resources are ignored."""
    result = ReadResult()
    resources = _fhir_resources(text, source, result)
    patients: dict[str, dict] = {}
    for _, _, r in resources:
        if r.get("resourceType") == "Patient" and r.get("id"):
            patients[f"Patient/{r['id']}"] = r
            if r.get("_fullUrl"):
                patients[r["_fullUrl"]] = r
    for n, line, r in resources:
        if r.get("resourceType") != "Encounter":
            continue
        try:
            result.events.append(_encounter_event(r, patients, source, n, line, default_hospital))
        except _Bad as bad:
            result.quarantined.append(Quarantined(source, n, line, bad.where, bad.reason))
    return result


# -- files ------------------------------------------------------------------------------------------
def looks_like_fhir(text: str) -> bool:
    return text.lstrip().startswith("{")


def read_text(text: str, source: str, default_hospital: str = "") -> ReadResult:
    """HL7 v2 or FHIR, told apart by the first character (``{`` is JSON)."""
    if looks_like_fhir(text):
        return read_fhir_text(text, source, default_hospital)
    return read_hl7_text(text, source)


def read_files(paths: Iterable[str | Path], default_hospital: str = "") -> ReadResult:
    """Every file; an unreadable file is one quarantine record, and the others still load."""
    result = ReadResult()
    for path in paths:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            result.quarantined.append(Quarantined(p.name, 0, 0, "", f"cannot read file: {exc.strerror}"))
            continue
        text = raw.decode("utf-8", errors="replace") if raw[:3] != b"\xef\xbb\xbf" else raw[3:].decode()
        if "\ufffd" in text and not looks_like_fhir(text):
            text = raw.decode("latin-1")  # HL7 v2 feeds are often ISO 8859-1 (MSH-18)
        result.extend(read_text(text, p.name, default_hospital))
    return result
