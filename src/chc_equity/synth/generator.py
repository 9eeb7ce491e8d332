"""Orchestration: centers and sites, the per-patient loop, NDJSON writers and truth.json.

Memory stays bounded: each patient's resources are written as soon as they are generated, and the
truth accumulator keeps only sums per (measure, dimension, stratum).
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from chc_equity.synth import child
from chc_equity.synth.changes import ChangePlan
from chc_equity.synth.chw import add_contact, chw_ids, chw_resources, program_resources
from chc_equity.synth.clinical import Clinic
from chc_equity.synth.config import DIMENSIONS, CareModel
from chc_equity.synth.fhir import Chart
from chc_equity.synth.people import coverage_resource, patient_resource, sample_person, social_observations
from chc_equity.synth.sdoh import SdohTruth
from chc_equity.synth.sdoh import enrich as sdoh_enrich
from chc_equity.synth.sdoh import organizations as sdoh_organizations

MA_TOWNS = [
    ("Boston", ["02118", "02119", "02121", "02124", "02125", "02128"]),
    ("Lawrence", ["01840", "01841"]),
    ("Lowell", ["01850", "01851", "01852"]),
    ("Brockton", ["02301", "02302"]),
    ("Worcester", ["01603", "01604", "01610"]),
    ("Springfield", ["01104", "01105", "01107", "01109"]),
    ("New Bedford", ["02740", "02744"]),
    ("Fall River", ["02720", "02721", "02723"]),
    ("Chelsea", ["02150"]),
    ("Lynn", ["01902", "01905"]),
    ("Holyoke", ["01040"]),
    ("Fitchburg", ["01420"]),
    ("Hyannis", ["02601"]),
    ("Pittsfield", ["01201"]),
]


@dataclass
class Center:
    id: str
    name: str
    patients: int
    sites: list[dict[str, Any]] = field(default_factory=list)


def plan_centers(n: int, total: int, seed: int) -> list[Center]:
    """Center sizes from a seeded lognormal (a few large, several small), allocated to sum to `total`."""
    rng = random.Random(f"centers:{seed}")
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(n)]
    raw = [total * w / sum(weights) for w in weights]
    sizes = [int(x) for x in raw]
    for i in sorted(range(n), key=lambda i: raw[i] - sizes[i], reverse=True)[: total - sum(sizes)]:
        sizes[i] += 1
    centers = []
    for i, size in enumerate(sizes, start=1):
        town, _ = MA_TOWNS[(i - 1) % len(MA_TOWNS)]
        c = Center(f"c{i:02d}", f"{town} Neighborhood Health Center (synthetic)", size)
        for s in range(1 + size // 15000):
            stown, zips = MA_TOWNS[(i - 1 + s) % len(MA_TOWNS)]
            c.sites.append(
                {"id": f"{c.id}-site{s + 1}", "name": f"{c.name} - {stown} site", "city": stown, "zips": zips}
            )
        centers.append(c)
    return centers


def site_resources(c: Center) -> Iterator[dict[str, Any]]:
    """Organization for the center (and each site), and a Location per site."""
    org = {
        "resourceType": "Organization",
        "id": c.id,
        "active": True,
        "name": c.name,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                        "display": "Healthcare Provider",
                    }
                ]
            }
        ],
        "address": [{"state": "MA", "country": "US"}],
    }
    yield org
    for s in c.sites:
        yield {
            "resourceType": "Organization",
            "id": f"{s['id']}-org",
            "active": True,
            "name": s["name"],
            "partOf": {"reference": f"Organization/{c.id}"},
        }
        yield {
            "resourceType": "Location",
            "id": s["id"],
            "status": "active",
            "name": s["name"],
            "address": {"city": s["city"], "state": "MA", "postalCode": s["zips"][0], "country": "US"},
            "managingOrganization": {"reference": f"Organization/{s['id']}-org"},
        }


class Writers:
    """One NDJSON (or gzip NDJSON, mtime 0 so bytes are reproducible) file per resource type."""

    def __init__(self, folder: Path, gz: bool) -> None:
        self.folder, self.gz = folder, gz
        self.files: dict[str, IO[bytes]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, resource: dict[str, Any]) -> None:
        rtype = resource["resourceType"]
        fh = self.files.get(rtype)
        if fh is None:
            if self.gz:
                raw = open(self.folder / f"{rtype}.ndjson.gz", "wb")  # noqa: SIM115 - closed in close()
                fh = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=3, mtime=0)
                fh.raw_file = raw  # type: ignore[attr-defined]
            else:
                fh = open(self.folder / f"{rtype}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
            self.files[rtype] = fh
        fh.write(orjson.dumps(resource) + b"\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
            raw = getattr(fh, "raw_file", None)
            if raw is not None:
                raw.close()


class Truth:
    """Sums of numerator probabilities per (measure, dimension, stratum): exact expected rates."""

    def __init__(self, model: CareModel) -> None:
        self.model = model
        self.acc: dict[tuple[str, str, str], list[float]] = {}

    def add(self, measure: str, p: float, strata: dict[str, str]) -> None:
        for dim in ("overall", *DIMENSIONS):
            key = (measure, dim, "all" if dim == "overall" else strata[dim])
            a = self.acc.get(key)
            if a is None:
                a = self.acc[key] = [0.0, 0.0, 0.0]
            a[0] += 1
            a[1] += p
            a[2] += p * (1 - p)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (measure, dim, stratum), (n, sp, var) in sorted(self.acc.items()):
            out.setdefault(measure, {}).setdefault(dim, {})[stratum] = {
                "denominator": int(n),
                "expected_numerator": round(sp, 6),
                "expected_rate": round(sp / n, 8),
                "variance_numerator": round(var, 6),
                "multiplier": 1.0
                if dim == "overall"
                else round(self.model.multiplier(measure, dim, stratum), 6),
            }
        return out


def _count_screened(counts: dict[str, Any], age_end: int) -> None:
    """A planted social-needs screen (synth/changes.py) screened an adult the PRAPARE had not."""
    if age_end >= 18:
        counts["screened"] += 1


def generate(
    out: Path,
    *,
    centers: int,
    patients: int,
    seed: int,
    period_end: date,
    cfg: dict[str, Any],
    gz: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the whole network under `out`; returns the summary written to centers.json."""
    mp_start, mp_end = date(period_end.year, 1, 1), period_end
    model = CareModel.from_config(cfg)
    truth = Truth(model)
    sdoh_truth = SdohTruth()
    child_truth = child.ChildTruth()
    changes = ChangePlan.from_config(cfg, model, mp_start, mp_end)  # None unless `changes:` is configured
    planted = frozenset(changes.measures) if changes else frozenset()
    plan = plan_centers(centers, patients, seed)
    counts: dict[str, dict[str, int]] = {}
    for c in plan:
        writers = Writers(out / c.id, gz)
        n_by_type: dict[str, int] = {}

        def emit(
            r: dict[str, Any], n_by_type: dict[str, int] = n_by_type, writers: Writers = writers
        ) -> None:
            writers.write(r)
            n_by_type[r["resourceType"]] = n_by_type.get(r["resourceType"], 0) + 1

        for r in site_resources(c):
            emit(r)
        for r in chw_resources(c.id, c.patients, c.sites):
            emit(r)
        for r in sdoh_organizations(cfg):
            emit(r)
        for r in child.organizations():
            emit(r)
        chws = chw_ids(c.id, c.patients)
        org_ref = f"Organization/{c.id}"
        for i in range(c.patients):
            rng = random.Random(f"{seed}:{c.id}:{i}")
            site = c.sites[i % len(c.sites)]
            person = sample_person(rng, cfg, f"{c.id}-p{i:07d}", mp_start, mp_end, site)
            strata = person.strata(c.id)
            # the CHW program draws from its own stream: the clinical draws (and truth) stay as they were
            program_rng = random.Random(f"{seed}:{c.id}:{i}:chw")
            patient = patient_resource(person, org_ref, rng)
            add_contact(patient, program_rng, person.language)
            # child health draws from its own stream too (synth/child.py): the guardian first, the rest last
            child_rng = random.Random(f"{seed}:{c.id}:{i}:child")
            guardian = child.add_guardian_contact(patient, person, child_rng, cfg)
            emit(patient)
            chart = Chart(person.pid, org_ref)
            coverage_resource(person, chart, mp_start)
            clinic = Clinic(
                person,
                chart,
                rng,
                lambda m, s=strata: model.numerator_probability(m, s),
                cfg,
                mp_start,
                mp_end,
                planted,
                group_rng=random.Random(f"{seed}:{c.id}:{i}:groups"),
            )
            clinic.run()
            social_observations(person, chart, date.fromisoformat(clinic.visits[0]["period"]["start"][:10]))
            # the referral loop draws from its own stream too (synth/sdoh.py)
            sdoh_enrich(chart, person, random.Random(f"{seed}:{c.id}:{i}:sdoh"), cfg, sdoh_truth, c.id)
            program_resources(
                chart,
                program_rng,
                chws=chws,
                sdoh_risk=person.sdoh_risk,
                site_ref=person.site_ref,
                period_end=mp_end,
            )
            if changes is not None:  # last, on its own stream: every earlier resource keeps its id
                period_p = changes.plant(
                    chart,
                    person,
                    clinic.dx,
                    clinic.hospice_day,
                    random.Random(f"{seed}:{c.id}:{i}:change"),
                    c.id,
                    strata,
                    screened=partial(_count_screened, sdoh_truth.center(c.id), person.age_end),
                )
                clinic.units = [(m, period_p.get(m, p) if m in planted else p) for m, p in clinic.units]
            child.enrich(
                chart, patient, person, child_rng, cfg, child_truth, c.id, guardian, mp_start, mp_end
            )
            for r in chart.resources:
                emit(r)
            for measure, p in clinic.units:
                truth.add(measure, p, strata)
            if progress is not None:
                progress(1)
        writers.close()
        counts[c.id] = dict(sorted(n_by_type.items()))
    summary = {
        "seed": seed,
        "period": {"start": mp_start.isoformat(), "end": mp_end.isoformat()},
        "centers": [
            {
                "id": c.id,
                "name": c.name,
                "patients": c.patients,
                "sites": [{"id": s["id"], "name": s["name"], "city": s["city"]} for s in c.sites],
                "resources": counts[c.id],
            }
            for c in plan
        ],
    }
    (out / "centers.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    truth_doc = {
        "seed": seed,
        "period": summary["period"],
        "inverse_measures": sorted(model.inverse),
        "definition": "expected_rate = sum of per-unit numerator probabilities / denominator units "
        "(denominator-eligible, non-excluded patients; encounters for CMS22 and CMS177)",
        "measures": truth.as_json(),
        "sdoh": sdoh_truth.as_json(cfg),
        "child": child_truth.as_json(cfg),
    }
    if changes is not None:
        truth_doc["changes"] = changes.as_json()
    (out / "truth.json").write_bytes(orjson.dumps(truth_doc, option=orjson.OPT_INDENT_2))
    return summary
