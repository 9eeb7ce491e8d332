"""Expanding FHIR Bundles into resources, with ``urn:uuid:`` fullUrls rewritten to ``Type/id``.

Transaction/batch bundles (Synthea, MADiE test cases) link entries by temporary ``urn:uuid:``
fullUrls; once the entries are stored as separate rows those links must become ordinary
``Type/id`` references or later stages could not join them. Rules:

- Expanded bundle types: transaction, batch, collection, searchset. Other bundles (document,
  message, history, *-response, or no type) are resources in their own right and are stored as one
  Bundle row (so they need an id like any resource).
- Every string value exactly equal to a mapped fullUrl is rewritten, anywhere in any entry.
- An entry with a ``urn:uuid:X`` fullUrl and a resource without ``id`` takes X as its id.
- An entry without a resource is rejected; a DELETE entry (deletions are not applied) is recorded as
  a ``delete-not-applied`` reject, so it is counted and visible instead of silently ignored.
- An expandable Bundle inside an entry is expanded too (``entry N entry M``), with the outer
  bundle's fullUrls also in scope.
- A ``urn:uuid:`` reference left unresolved (no entry has that fullUrl) is counted on the resource
  (``Resource.dangling``) so the load can warn; the resource still loads.
- A bad entry is rejected on its own (position ``entry N``, 0-based); the others still load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from chc_equity.ingest.records import Reject, Resource, check_resource, raw_text

EXPANDED_TYPES = frozenset({"transaction", "batch", "collection", "searchset"})
URN_UUID = "urn:uuid:"

# A complete JSON string value in orjson's compact output: the content has no quote or backslash, and
# it is not an object key (not followed by ':'). The opening quote must also follow ':' ',' or '['
# (a quote inside a string is always escaped, so it cannot); that is checked in ``swap`` because a
# look-behind here would cost the regex engine its fast literal-prefix search (5x slower).
_URN_VALUE = re.compile(rb'"(urn:uuid:[^"\\]+)"(?!:)')
_VALUE_START = frozenset(b":,[")


def is_expandable(obj: object) -> bool:
    """True for a Bundle whose entries are to be stored as separate resources."""
    return isinstance(obj, dict) and obj.get("resourceType") == "Bundle" and obj.get("type") in EXPANDED_TYPES


def _reference_map(entries: list) -> dict[bytes, bytes]:
    """fullUrl -> Type/id for every urn:uuid entry; assigns the uuid as id where the resource has none."""
    mapping: dict[bytes, bytes] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        full_url, resource = entry.get("fullUrl"), entry.get("resource")
        if not (isinstance(full_url, str) and full_url.startswith(URN_UUID) and isinstance(resource, dict)):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        if "id" not in resource:
            resource["id"] = full_url[len(URN_UUID) :]
        rid = resource["id"]
        if isinstance(rid, str):
            mapping[full_url.encode()] = f"{rtype}/{rid}".encode()
    return mapping


def rewrite_references(data: bytes, mapping: dict[bytes, bytes]) -> bytes:
    """Replace every JSON string value equal to a mapped fullUrl in compact JSON ``data``."""
    if not mapping or b"urn:uuid:" not in data:
        return data

    def swap(match: re.Match[bytes]) -> bytes:
        target = mapping.get(match.group(1))
        start = match.start()
        if target is None or start == 0 or data[start - 1] not in _VALUE_START:
            return match.group(0)
        return b'"' + target + b'"'

    return _URN_VALUE.sub(swap, data)


def count_dangling(data: bytes) -> int:
    """``urn:uuid:`` reference values left in compact JSON ``data`` (after rewriting)."""
    if b"urn:uuid:" not in data:
        return 0
    return sum(1 for m in _URN_VALUE.finditer(data) if m.start() > 0 and data[m.start() - 1] in _VALUE_START)


def expand_bundle(
    bundle: dict, prefix: str = "", outer: dict[bytes, bytes] | None = None
) -> Iterator[Resource | Reject]:
    """Yield each entry of an expandable bundle as a Resource or a Reject (``prefix`` + ``entry N``)."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        yield Reject(
            prefix.strip() or None,
            "invalid-bundle",
            "Bundle.entry is not an array",
            field="entry",
            raw=raw_text(bundle),
            resource_type="Bundle",
            resource_id=bundle.get("id") if isinstance(bundle.get("id"), str) else None,
        )
        return
    mapping = {**(outer or {}), **_reference_map(entries)}
    for index, entry in enumerate(entries):
        pos = f"{prefix}entry {index}"
        if not isinstance(entry, dict):
            yield Reject(pos, "entry-not-object", raw=raw_text(entry))
            continue
        request = entry.get("request")
        if isinstance(request, dict) and request.get("method") == "DELETE":
            url = request.get("url")
            yield Reject(
                pos,
                "delete-not-applied",
                "DELETE of " + (url.split("/")[0] if isinstance(url, str) else "an unnamed resource"),
                field="request",
                raw=raw_text(entry),
            )
            continue
        if "resource" not in entry:
            yield Reject(pos, "entry-without-resource", field="resource", raw=raw_text(entry))
            continue
        if is_expandable(entry["resource"]):
            yield from expand_bundle(entry["resource"], pos + " ", mapping)
            continue
        item = check_resource(entry["resource"], pos)
        if isinstance(item, Resource):
            item.json = rewrite_references(item.json, mapping)
            item.dangling = count_dangling(item.json)
        yield item
