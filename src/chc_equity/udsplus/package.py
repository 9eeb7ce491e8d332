"""Package an extract: one NDJSON file per resource type and the ``$import`` manifest (Parameters).

The manifest follows the IG's import-manifest profile: inputFormat, a new submissionId, submissionTime,
the health center's information from configuration, ``importProtocol`` https and one ``udsData`` entry
per file (type, url, expirationTime; ``incrementalData`` when the submission corrects records).
``partialSubmission``/``partialSubmissionName`` and ``replaceSubmissionId`` are written when asked for.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from chc_equity.uds.config import UdsConfig
from chc_equity.udsplus import ig, relink
from chc_equity.udsplus.extract import Extract, HealthCenter, extract
from chc_equity.udsplus.store import MANIFEST, REPORT
from chc_equity.udsplus.validate import Violation, validate, validate_all


@dataclass
class Submission:
    """What to say about the submission in the manifest."""

    base_url: str = "https://example.invalid/udsplus"  # where the receiver will download the files
    expires_days: int = 30
    partial_name: str | None = None  # set: a partial submission (one of several EHRs / sites)
    replaces: str | None = None  # submissionId this one replaces
    incremental: bool = False  # only corrected records (needs ``replaces``)
    submission_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))


def load_health_center(path: Path, center: str) -> HealthCenter:
    """Health-center information from a YAML file (``centers: {<center>: {uei: ..., ...}}``)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    block = (raw.get("centers") or {}).get(center)
    if block is None:
        raise ValueError(f"{path}: no block for center {center!r} under 'centers:'")
    need = ("uei", "grant_number", "name", "address", "contact_family", "contact_given", "phone")
    missing = [k for k in need if not block.get(k)]
    if missing:
        raise ValueError(f"{path}: centers.{center} is missing {', '.join(missing)}")
    streams = tuple(block.get("funding_streams") or ("CHC",))
    bad = [s for s in streams if s not in ig.FUNDING_STREAMS]
    if bad:
        raise ValueError(
            f"{path}: centers.{center}.funding_streams: unknown {bad} (allowed {ig.FUNDING_STREAMS})"
        )
    given = block["contact_given"]
    return HealthCenter(
        uei=str(block["uei"]),
        grant_number=str(block["grant_number"]),
        name=str(block["name"]),
        address=dict(block["address"]),
        contact_family=str(block["contact_family"]),
        contact_given=[given] if isinstance(given, str) else list(given),
        phone=str(block["phone"]),
        prenatal_by_referral_only=bool(block.get("prenatal_by_referral_only", False)),
        funding_streams=streams,
    )


def manifest(hc: HealthCenter, files: dict[str, str], sub: Submission) -> dict[str, Any]:
    """The ``$import`` manifest for ``files`` (resource type -> file name)."""
    if sub.incremental and not sub.replaces:
        raise ValueError("an incremental submission must name the submission it corrects (replaces)")
    expires = (sub.time + timedelta(days=sub.expires_days)).isoformat()
    params: list[dict[str, Any]] = [
        {"name": "inputFormat", "valueCode": "fhir+ndjson"},
        {"name": "submissionId", "valueString": sub.submission_id},
        {"name": "submissionTime", "valueDateTime": sub.time.isoformat()},
    ]
    if sub.replaces:
        params.append({"name": "replaceSubmissionId", "valueString": sub.replaces})
    if sub.partial_name:
        params.append({"name": "partialSubmission", "valueBoolean": True})
        params.append({"name": "partialSubmissionName", "valueString": sub.partial_name})
    params.append(
        {
            "name": "hcInformation",
            "part": [
                {"name": "uei", "valueString": hc.uei},
                {"name": "grantNumber", "valueString": hc.grant_number},
                {"name": "hcName", "valueString": hc.name},
                {"name": "hcAddress", "valueAddress": hc.address},
                {
                    "name": "hcContactPerson",
                    "valueHumanName": {"family": hc.contact_family, "given": hc.contact_given},
                },
                {"name": "hcContactPhone", "valueContactPoint": {"system": "phone", "value": hc.phone}},
                {"name": "hcPrenatalCareByReferralOnly", "valueBoolean": hc.prenatal_by_referral_only},
            ],
        }
    )
    params.append({"name": "importProtocol", "valueCode": "https"})
    for rtype, name in files.items():
        part: list[dict[str, Any]] = [
            {"name": "type", "valueCode": rtype},
            {"name": "url", "valueUrl": f"{sub.base_url.rstrip('/')}/{sub.submission_id}/{name}"},
            {"name": "expirationTime", "valueDateTime": expires},
        ]
        if sub.incremental:
            part.append({"name": "incrementalData", "valueBoolean": True})
        params.append({"name": "udsData", "part": part})
    return {
        "resourceType": "Parameters",
        "id": sub.submission_id,
        "meta": {"profile": [ig.MANIFEST_PROFILE]},
        "parameter": params,
    }


def write_package(
    ex: Extract, hc: HealthCenter, out: Path, sub: Submission
) -> tuple[dict[str, Path], list[Violation]]:
    """Write ``<Type>.ndjson`` per resource type and the manifest; validate everything (strict)."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    paths: dict[str, Path] = {}
    for rtype in sorted(ex.resources):
        name = f"{rtype}.ndjson"
        with (out / name).open("w") as fh:
            for r in ex.resources[rtype]:
                fh.write(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n")
        files[rtype], paths[rtype] = name, out / name
    man = manifest(hc, files, sub)
    (out / MANIFEST).write_text(json.dumps(man, indent=2) + "\n")
    paths["manifest"] = out / MANIFEST
    violations = validate_all((r for rs in ex.resources.values() for r in rs), strict=True)
    violations += validate(man)
    with (out / REPORT).open("w") as fh:
        fh.write("resource,path,rule,message\n")
        for v in violations:
            fh.write(",".join(json.dumps(x) for x in (v.resource, v.path, v.rule, v.message)) + "\n")
    paths["validation"] = out / REPORT
    return paths, violations


def export(
    con: duckdb.DuckDBPyConnection,
    year: int,
    center: str,
    key: bytes,
    hc: HealthCenter,
    out: Path,
    *,
    config: UdsConfig | None = None,
    sub: Submission | None = None,
) -> tuple[Extract, dict[str, Path], list[Violation]]:
    """Extract, de-identify, store the re-link entries in the warehouse, write and validate the package."""
    ex = extract(con, year, center, key, config=config, hc=hc)
    relink.store(con, key, year, center, ex.id_map)
    paths, violations = write_package(ex, hc, out, sub or Submission())
    return ex, paths, violations
