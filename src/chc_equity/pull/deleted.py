"""``deleted`` manifest files -> the (type, id) keys to remove.

Bulk Data STU2: each line of a deleted file is a Bundle (type transaction) whose entries carry
``request: {method: DELETE, url: "<Type>/<id>"}``. Pure parsing; applying them is ``runner``'s job
(inside the load's transaction). A line that is not such a Bundle is an error naming file and line:
silently skipping a deletion would leave a resource the EHR removed.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson

from chc_equity.pull.bulk import PullError

_REF = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def deletion_keys(line: bytes, where: str) -> list[tuple[str, str]]:
    """The (type, id) keys of one NDJSON line of a deleted file."""
    try:
        bundle = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise PullError(f"{where}: not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise PullError(f"{where}: field resourceType: expected a Bundle of DELETE requests")
    keys = []
    for n, entry in enumerate(bundle.get("entry") or [], 1):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or str(request.get("method", "")).upper() != "DELETE":
            raise PullError(f"{where} entry {n}: field request.method: expected DELETE")
        match = _REF.match(str(request.get("url") or ""))
        if not match:
            raise PullError(f"{where} entry {n}: field request.url: expected <Type>/<id>")
        keys.append((match.group(1), match.group(2)))
    return keys


def read_deletions(paths: list[Path]) -> list[tuple[str, str]]:
    """Every key in the deleted files, in order, without duplicates."""
    seen: dict[tuple[str, str], None] = {}
    for path in paths:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    for key in deletion_keys(line, f"{path.name} line {lineno}"):
                        seen[key] = None
    return list(seen)
