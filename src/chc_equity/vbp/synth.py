"""A synthetic payer for the demo network, read off a generated warehouse, deterministic by seed.

For one center it writes, in the templates of docs/vbp.md:

- ``roster.csv``: the center's Medicaid patients (Coverage type PHVS SOPT ``2``) as members of the
  synthetic plan, most attributed all year, some joining or leaving mid-year, a few with a short gap;
  plus members the center has never seen (no chart: the outreach list); most rows carry the MRN, the
  rest only name and birth date (linked by the second rule), a few with a typo (left unlinked);
- ``gaps.csv``: the plan's open gaps on the contract's measures: our open gaps (most of them), our
  closed ones that the plan has not heard of (the supplemental-data list), and some only the plan has;
- ``claims.csv`` and ``pharmacy.csv``: a year of claims (outpatient, ED, inpatient) and of statin /
  RAS / diabetes fills with per-member adherence;
- ``contract.yaml``: a contract on CMS165, CMS122, CMS125 and CMS130 over the measure period, whose
  benchmark PMPM is set a few percent above the synthetic cost, so shared savings are in play.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml

from chc_equity.vbp.link import patient_keys
from chc_equity.vbp.roster import ROSTER_COLUMNS, month_starts
from chc_equity.warehouse import FLAT_SCHEMA

PAYER = "Sunrise Community Health Plan"
CONTRACT_MEASURES = {"CBP": "CMS165", "HBD": "CMS122", "BCS": "CMS125", "COL": "CMS130"}
DRUGS = {
    "statins": ["atorvastatin 20 MG Oral Tablet", "simvastatin 40 MG Oral Tablet", "rosuvastatin 10 MG"],
    "ras": ["lisinopril 10 MG Oral Tablet", "losartan potassium 50 MG Oral Tablet"],
    "diabetes": ["metformin hydrochloride 500 MG Oral Tablet", "glipizide 5 MG Oral Tablet"],
}
FIRST = ["Alex", "Maria", "Jose", "Linh", "Amina", "Sam", "Rosa", "Kofi", "Ana", "Luis", "Mei", "Omar"]
LAST = ["Garcia", "Nguyen", "Smith", "Okafor", "Lopez", "Kim", "Haddad", "Brown", "Diaz", "Patel"]


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _period(con: duckdb.DuckDBPyConnection, year: int | None) -> tuple[date, date]:
    if year is None:
        try:
            row = con.execute("SELECT max(period_end) FROM measure_results").fetchone()
            year = row[0].year if row and row[0] else date.today().year
        except duckdb.Error:
            year = date.today().year
    return date(year, 1, 1), date(year, 12, 31)


def _status(
    con: duckdb.DuckDBPyConnection, center: str, period: tuple[date, date]
) -> dict[tuple[str, str], str]:
    from chc_equity.vbp.report import center_gap_status

    return center_gap_status(con, center, period)


def generate(
    con: duckdb.DuckDBPyConnection, center: str, out: Path, *, seed: int = 2026, year: int | None = None
) -> dict[str, int]:
    """Write the five files for ``center`` into ``out``; returns how many rows each has."""
    rng = random.Random(f"{seed}:{center}")
    start, end = _period(con, year)
    medicaid = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT patient_id FROM {FLAT_SCHEMA}.coverage WHERE center = ? AND type_code = '2'",
            [center],
        ).fetchall()
    }
    keys = sorted(
        (k for k in patient_keys(con, center) if k.patient_id in medicaid), key=lambda k: k.patient_id
    )
    roster, members = [], []
    for n, k in enumerate(keys):
        mid = f"SCHP{seed % 1000:03d}{n:06d}"
        first = (k.given.split() or [""])[0]
        family = k.family
        roll = rng.random()
        mrn = sorted(k.identifiers)[0] if k.identifiers and roll < 0.85 else ""
        if roll > 0.97:  # a typo in the family name and no MRN: stays unlinked
            family = family[:-1] + ("x" if not family.endswith("x") else "y")
        s, e = start, None
        r2 = rng.random()
        if r2 < 0.08:
            s = start + timedelta(days=rng.randrange(30, 240))
        elif r2 < 0.14:
            e = start + timedelta(days=rng.randrange(120, 330))
        row = dict(
            payer=PAYER,
            member_id=mid,
            last_name=family,
            first_name=first,
            birth_date=k.birth_date.isoformat() if k.birth_date else "",
            gender="",
            attribution_start=s.isoformat(),
            attribution_end=e.isoformat() if e else "",
            mrn=mrn,
        )
        if r2 > 0.97 and e is None:  # a 30-day gap: two spans
            gap = start + timedelta(days=rng.randrange(60, 200))
            roster.append({**row, "attribution_end": (gap - timedelta(days=1)).isoformat()})
            row["attribution_start"] = (gap + timedelta(days=30)).isoformat()
        roster.append(row)
        members.append((mid, k.patient_id, s, e))
    for n in range(max(3, len(keys) // 12)):  # never seen at the center
        mid = f"SCHP{seed % 1000:03d}9{n:05d}"
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 25000))
        roster.append(
            dict(
                payer=PAYER,
                member_id=mid,
                last_name=rng.choice(LAST) + "-" + str(n),
                first_name=rng.choice(FIRST),
                birth_date=birth.isoformat(),
                gender="",
                attribution_start=start.isoformat(),
                attribution_end="",
                mrn="",
            )
        )
        members.append((mid, None, start, None))
    out.mkdir(parents=True, exist_ok=True)
    (out / "roster.csv").write_text(_csv(roster, list(ROSTER_COLUMNS)))

    # gaps: by our status on the contract measures
    status = _status(con, center, (start, end))
    by_member = {r["member_id"]: r for r in roster}
    by_patient = {pid: (mid, by_member[mid]) for mid, pid, *_ in members if pid}
    gaps = []
    for (pid, cms), st in sorted(status.items()):
        if pid not in by_patient:
            continue
        code = next((c for c, v in CONTRACT_MEASURES.items() if v == cms), None)
        if code is None:
            continue
        mid, r = by_patient[pid]
        listed = (st == "open" and rng.random() < 0.9) or (st == "closed" and rng.random() < 0.2)
        if listed:
            gaps.append(
                dict(
                    payer=PAYER,
                    member_id=mid,
                    last_name=r["last_name"],
                    first_name=r["first_name"],
                    birth_date=r["birth_date"],
                    measure=code,
                    status="open",
                    detail="",
                )
            )
    for mid, _pid, *_ in members[: max(2, len(members) // 40)]:
        r = by_member[mid]
        gaps.append(
            dict(
                payer=PAYER,
                member_id=mid,
                last_name=r["last_name"],
                first_name=r["first_name"],
                birth_date=r["birth_date"],
                measure="COL",
                status="open",
                detail="payer-only",
            )
        )
    gap_cols = ["payer", "member_id", "last_name", "first_name", "birth_date", "measure", "status", "detail"]
    (out / "gaps.csv").write_text(_csv(gaps, gap_cols))

    # claims
    claims, n_claim = [], 0
    months = month_starts(start, end)
    for mid, _pid, s, e in members:
        risk = rng.lognormvariate(0, 0.6)
        for m in months:
            if not (s <= m <= (e or end)):
                continue
            for setting, rate, mean in (
                ("outpatient", 0.7, 140),
                ("pharmacy", 0.9, 60),
                ("ed", 0.045, 1100),
                ("inpatient", 0.008, 11000),
            ):
                if rng.random() < min(rate * risk, 0.95):
                    n_claim += 1
                    day = m + timedelta(days=rng.randrange(0, 28))
                    paid = round(mean * risk * rng.uniform(0.5, 1.5), 2)
                    claims.append(
                        dict(
                            claim_id=f"CL{n_claim:07d}",
                            payer=PAYER,
                            member_id=mid,
                            service_date=day.isoformat(),
                            setting=setting,
                            paid_amount=f"{paid:.2f}",
                        )
                    )
    (out / "claims.csv").write_text(
        _csv(claims, ["claim_id", "payer", "member_id", "service_date", "setting", "paid_amount"])
    )

    # pharmacy fills
    fills = []
    for mid, _pid, s, _e in members:
        for cls, p in (("statins", 0.3), ("ras", 0.25), ("diabetes", 0.15)):
            if rng.random() >= p:
                continue
            drug = rng.choice(DRUGS[cls])
            adherence = rng.choice([0.98, 0.95, 0.9, 0.75, 0.6])
            day = max(s, start) + timedelta(days=rng.randrange(0, 60))
            while day <= end:
                supply = rng.choice([30, 30, 90])
                fills.append(
                    dict(payer=PAYER, member_id=mid, fill_date=day.isoformat(), days_supply=supply, drug=drug)
                )
                day += timedelta(days=int(supply / adherence) + rng.randrange(-3, 4))
    (out / "pharmacy.csv").write_text(_csv(fills, ["payer", "member_id", "fill_date", "days_supply", "drug"]))

    # contract: benchmark a little above the synthetic cost
    mm = sum(1 for _, _, s, e in members for m in months if s <= m <= (e or end))
    paid = sum(float(c["paid_amount"]) for c in claims)
    pmpm = paid / mm if mm else 400.0
    contract = {
        "id": f"{center}-sunrise-{start.year}",
        "payer": PAYER,
        "title": "Medicaid primary-care quality incentive and shared savings (synthetic)",
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "measures": [
            {
                "id": "CBP",
                "title": "Controlling high blood pressure",
                "source": "CMS165",
                "weight": 2,
                "continuous_enrollment": {"allowed_gap_days": 45, "max_gaps": 1},
                "tiers": [
                    {"rate": 0.55, "points": 50, "percentile": 50},
                    {"rate": 0.65, "points": 100, "percentile": 75},
                ],
            },
            {
                "id": "HBD",
                "title": "HbA1c control (< 9 %)",
                "source": "CMS122",
                "weight": 1,
                "continuous_enrollment": {"allowed_gap_days": 45, "max_gaps": 1},
                "linear": {"floor": 0.5, "goal": 0.8},
            },
            {
                "id": "BCS",
                "title": "Breast cancer screening",
                "source": "CMS125",
                "weight": 1,
                "tiers": [{"rate": 0.5, "points": 100}],
            },
            {
                "id": "COL",
                "title": "Colorectal cancer screening",
                "source": "CMS130",
                "weight": 1,
                "linear": {"floor": 0.3, "goal": 0.6},
            },
        ],
        "gate": {"min_quality_score": 30, "min_measures_scored": 2},
        "quality_pool": {"pmpm": 2.0},
        "shared_savings": {
            "benchmark_pmpm": round(pmpm * 1.06, 2),
            "minimum_savings_rate": 0.02,
            "sharing_rate": 0.5,
            "quality_adjusted": True,
            "cap_rate": 0.1,
        },
        "bonuses": [{"measure": "CBP", "amount": 25}],
    }
    (out / "contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False))
    return {"roster": len(roster), "gaps": len(gaps), "claims": len(claims), "fills": len(fills)}


def generate_and_load(
    con: duckdb.DuckDBPyConnection, center: str, out: Path, *, seed: int = 2026, year: int | None = None
) -> dict[str, int]:
    """:func:`generate`, then import the five files into the warehouse as ``chc-equity vbp import`` does."""
    from chc_equity.vbp import cost, payer_gaps, pdc, roster, store
    from chc_equity.vbp.contract import load_contract

    counts = generate(con, center, out, seed=seed, year=year)
    store.import_roster(
        con, center, *roster.read_roster_csv((out / "roster.csv").read_text(), "roster.csv"), "roster.csv"
    )
    store.import_gaps(
        con, center, *payer_gaps.read_gaps_csv((out / "gaps.csv").read_text(), "gaps.csv"), "gaps.csv"
    )
    store.import_claims(
        con, center, *cost.read_claims_csv((out / "claims.csv").read_text(), "claims.csv"), "claims.csv"
    )
    store.import_fills(
        con, center, *pdc.read_fills_csv((out / "pharmacy.csv").read_text(), "pharmacy.csv"), "pharmacy.csv"
    )
    store.save_contract(con, center, load_contract(out / "contract.yaml"))
    return counts
