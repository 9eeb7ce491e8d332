"""The two things a reader yields -- a resource ready to stage, or a reject -- and the check between them.

Reject reasons are a closed vocabulary (``REASONS``) so `chc-equity rejects` can group them and the
malformed-input tests can pin them exactly; ``detail`` adds a human explanation that never quotes
the offending value (rejects are listed without patient data by default).

Stored JSON is orjson's compact re-serialization of the parsed resource: key order and strings are
kept exactly, numbers pass through int64/double, so a FHIR decimal's trailing zeros (``1.50``) and
digits beyond double precision are not preserved (known limitation; analytics do not depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import orjson

from chc_equity.ingest.fhir import ID_RE, INDEXED_DATE_FIELDS, RESOURCE_TYPES, date_error, instant_micros

REASONS: dict[str, str] = {
    "unreadable-file": "the file could not be opened or read",
    "bad-gzip": "the gzip stream is corrupt, truncated, or a .gz file is not gzip at all",
    "empty-file": "the file holds no JSON at all",
    "malformed-json": "the text (file, or NDJSON line) is not valid JSON / UTF-8",
    "not-an-object": "the JSON value is not an object",
    "missing-resourceType": "the object has no resourceType",
    "unknown-resourceType": "resourceType is not a FHIR R4 4.0.1 resource type",
    "missing-id": "the resource has no id (and no urn:uuid fullUrl to take one from)",
    "invalid-id": "the id does not match the FHIR id pattern [A-Za-z0-9-.]{1,64}",
    "invalid-date": "an indexed date field is not a valid FHIR date/dateTime/instant",
    "invalid-bundle": "Bundle.entry is not an array",
    "entry-not-object": "a Bundle entry is not an object",
    "entry-without-resource": "a Bundle entry has no resource (and is not a DELETE)",
    "delete-not-applied": "a Bundle DELETE entry: deletions are not applied, so it is recorded here instead",
    "too-deep": "the JSON nests deeper than can be stored (orjson re-serializes 254 levels at most)",
    "too-large": "the record is over the per-record size limit; its raw text is referenced by file "
    "and byte offset, not copied",
    "wrong-shape": "an element a built-in view reads has the wrong JSON shape (e.g. an array where "
    "one value is expected, a string where a boolean is)",
}


@dataclass(slots=True)
class Resource:
    """A validated resource: its key, lastUpdated (epoch microseconds) and compact JSON."""

    type: str
    id: str
    last_updated: int | None
    pos: str
    json: bytes
    # The parsed object, for checks the loader adds (the views screen); dropped once staged.
    data: dict | None = None
    # urn:uuid references no entry of its Bundle resolved (counted by the load, then a warning).
    dangling: int = 0


@dataclass(slots=True)
class Reject:
    """Something that could not be loaded, with where it was and why."""

    pos: str | None
    reason: str
    detail: str | None = None
    field: str | None = None
    raw: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None


def raw_text(data: bytes | object) -> str | None:
    """Raw text to quarantine: bytes decoded losslessly enough to recover, objects re-serialized
    (None when the object nests too deeply to re-serialize; the reader then keeps its source text)."""
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8", errors="backslashreplace")
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        return None


_NOT_AN_OBJECT = object()  # marks a path whose parent (e.g. ``period``) is present but not an object
_MISSING = object()

# Per type: (dotted path, first key, remaining keys, kind), split once here because the check runs for
# every resource ingested.
_CHECKS: dict[str, tuple[tuple[str, str, tuple[str, ...], str], ...]] = {
    rtype: tuple(
        (path, path.split(".")[0], tuple(path.split(".")[1:]), kind)
        for path, kind in (*INDEXED_DATE_FIELDS["*"], *INDEXED_DATE_FIELDS.get(rtype, ()))
    )
    for rtype in RESOURCE_TYPES
}


@lru_cache(maxsize=1 << 16)
def _string_date_error(value: str, kind: str) -> str | None:
    """``date_error`` for strings, cached: the same timestamps recur across an export's resources."""
    return date_error(value, kind)


def check_resource(obj: object, pos: str) -> Resource | Reject:
    """Validate one candidate resource and serialize it compactly, or say why it is rejected."""
    if not isinstance(obj, dict):
        return Reject(
            pos, "not-an-object", f"JSON {type(obj).__name__} where an object was expected", raw=raw_text(obj)
        )
    rtype = obj.get("resourceType")
    if rtype is None:
        return Reject(pos, "missing-resourceType", field="resourceType", raw=raw_text(obj))
    rid = obj.get("id")
    rid_s = rid if isinstance(rid, str) else None
    if not isinstance(rtype, str) or rtype not in RESOURCE_TYPES:
        return Reject(pos, "unknown-resourceType", field="resourceType", raw=raw_text(obj), resource_id=rid_s)
    if rid is None:
        return Reject(pos, "missing-id", field="id", raw=raw_text(obj), resource_type=rtype)
    if rid_s is None or ID_RE.fullmatch(rid_s) is None:
        return Reject(pos, "invalid-id", field="id", raw=raw_text(obj), resource_type=rtype)
    last_updated: int | None = None
    for path, head, rest, kind in _CHECKS[rtype]:
        value = obj.get(head, _MISSING)
        for part in rest:
            if value is _MISSING:
                break
            value = value.get(part, _MISSING) if isinstance(value, dict) else _NOT_AN_OBJECT
        if value is _MISSING:
            continue
        if value is _NOT_AN_OBJECT:
            problem: str | None = "parent element is not an object"
        elif isinstance(value, str):
            problem = _string_date_error(value, kind)
        else:
            problem = date_error(value, kind)
        if problem is not None:
            return Reject(
                pos,
                "invalid-date",
                problem,
                field=path,
                raw=raw_text(obj),
                resource_type=rtype,
                resource_id=rid_s,
            )
        if head == "meta":
            last_updated = instant_micros(value)  # type: ignore[arg-type]
    try:
        data = orjson.dumps(obj)
    except orjson.JSONEncodeError:  # orjson re-serializes at most 254 levels of nesting
        return Reject(
            pos, "too-deep", "JSON nested deeper than 254 levels", resource_type=rtype, resource_id=rid_s
        )
    return Resource(rtype, rid_s, last_updated, pos, data, obj)
