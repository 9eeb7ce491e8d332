"""A synthetic growing season for the demo and the tests: workers and households, providers in MA and
CT, a fee schedule, verifications, vouchers and weekly claims files with planted errors.

Every claim line carries its truth: ``None`` for a valid line (which must be paid in full, at the
billed amount) or the reason code a planted error must be denied with -- duplicates, services after the
voucher expired, units over a limit already used up, fees above the schedule, services before the
person was verified, the wrong provider, a voided voucher. Valid lines are built to respect every rule
in the order they are received, and each planted line is received after the valid lines it collides
with, so the truth does not depend on adjudication order within a file. :func:`replay` drives a season
through the real store (issue, void, import, adjudicate) in date order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chc_equity.vouchers.claims_file import ParsedFile, read_claims, write_claims_csv
from chc_equity.vouchers.rules import ClaimLine, Reason

YEAR = 2026
BUDGET_LINE = f"BL-{YEAR}-PURCHASED"
PROVIDERS = [  # id, name, kind, npi, state
    ("VCHC", "Valley Community Health Center", "health_center", "1093817465", "MA"),
    ("RHC", "River Health Center", "health_center", "1184629374", "CT"),
    ("GRP", "Greenfield Family Practice", "private_practice", "1275638291", "MA"),
    ("ENF", "Enfield Medical Associates", "private_practice", "1366547182", "CT"),
    ("DENT", "Connecticut River Dental", "dental", "1457456073", "CT"),
    ("EYE", "Pioneer Valley Vision", "vision", "1548365964", "MA"),
    ("RX", "Main Street Pharmacy", "pharmacy", "1639274855", "MA"),
]
MEDICAL = ("health_center", "private_practice")
FEES = [  # code, system, service type, dollars, voucher unit limit, year unit limit, provider kinds
    ("99202", "CPT", "medical", "110.00", 1, 1, MEDICAL),
    ("99213", "CPT", "medical", "92.00", 2, 4, MEDICAL),
    ("99214", "CPT", "medical", "131.00", None, None, MEDICAL),
    ("85025", "CPT", "lab", "11.00", None, None, MEDICAL),
    ("87880", "CPT", "lab", "17.00", None, None, MEDICAL),
    ("90471", "CPT", "medical", "25.00", None, None, MEDICAL),
    ("D0120", "CDT", "dental", "52.00", 1, 2, ("dental",)),
    ("D1110", "CDT", "dental", "84.00", 1, 1, ("dental",)),
    ("D2391", "CDT", "dental", "140.00", None, None, ("dental",)),
    ("92004", "CPT", "vision", "118.00", 1, 1, ("vision",)),
    ("V2020", "HCPCS", "vision", "60.00", 1, 1, ("vision",)),
    ("NDC-AB", "NDC class", "pharmacy", "0.80", 60, None, ("pharmacy",)),
    ("NDC-AH", "NDC class", "pharmacy", "0.45", 90, None, ("pharmacy",)),
]
VOUCHER_KINDS = {  # kind -> (services, provider kinds, max dollars)
    "medical": (("99202", "99213", "99214", "85025", "87880", "90471"), MEDICAL, 450),
    "dental": (("D0120", "D1110", "D2391"), ("dental",), 350),
    "vision": (("92004", "V2020"), ("vision",), 200),
    "pharmacy": (("NDC-AB", "NDC-AH"), ("pharmacy",), 120),
}
PLANTED = ("duplicate", "expired", "over_limit", "wrong_fee", "not_eligible", "wrong_provider", "voided")
PLANTED_REASON = {
    "duplicate": Reason.DUPLICATE,
    "expired": Reason.VOUCHER_EXPIRED,
    "over_limit": Reason.VOUCHER_UNIT_LIMIT,
    "wrong_fee": Reason.FEE_ABOVE_SCHEDULE,
    "not_eligible": Reason.NOT_ELIGIBLE,
    "wrong_provider": Reason.WRONG_PROVIDER,
    "voided": Reason.VOUCHER_VOIDED,
}
ZIPS = {"MA": ("01002", "01027", "01060", "01301", "01373"), "CT": ("06010", "06016", "06078", "06082")}


@dataclass
class Season:
    program: dict[str, Any]
    vouchers: list[dict[str, Any]]  # program.json voucher entries (issue events)
    voids: dict[str, date]  # voucher id -> day it is voided
    lines: list[ClaimLine]
    truth: dict[tuple[str, str, int], Reason | None] = field(default_factory=dict)  # claim key -> reason

    def files(self) -> Iterator[tuple[date, str, list[ClaimLine]]]:
        """(import day, file name, lines): one file per provider and week, imported on its last day."""
        groups: dict[tuple[date, str], list[ClaimLine]] = defaultdict(list)
        for x in self.lines:
            week_end = x.received_on + timedelta(days=6 - x.received_on.weekday())
            groups[(week_end, x.provider_id)].append(x)
        for (day, provider), xs in sorted(groups.items()):
            yield (
                day,
                f"claims-{provider}-{day.isoformat()}.csv",
                sorted(xs, key=lambda x: (x.received_on, x.claim_no)),
            )


def _fee_table() -> dict[str, tuple]:
    return {f[0]: f for f in FEES}


def generate(seed: int = 20, households: int = 30, planted_share: float = 0.25) -> Season:
    """A season of ``households`` households (a worker, sometimes a partner and children)."""
    rng = random.Random(seed)
    people_rng = random.Random(f"{seed}-people")  # birth dates and sex: a stream of their own, so that
    # the rest of the season (and its planted truth) is the same as before they were added
    fees = _fee_table()
    program: dict[str, Any] = {
        "budget_lines": [{"id": BUDGET_LINE, "grant_year": YEAR, "name": f"Purchased services {YEAR}",
                          "amount": "0.00", "starts_on": f"{YEAR}-01-01", "ends_on": f"{YEAR}-12-31"}],
        "providers": [{"id": p, "name": n, "kind": k, "npi": npi, "state": st,
                       "agreement_start": f"{YEAR}-01-01", "agreement_end": None}
                      for p, n, k, npi, st in PROVIDERS],
        "fees": [{"code": c, "system": s, "service_type": t, "amount": a, "effective_from": f"{YEAR}-01-01",
                  "effective_to": None, "voucher_unit_limit": vl, "year_unit_limit": yl}
                 for c, s, t, a, vl, yl, _ in FEES],
        "people": [], "verifications": [],
    }  # fmt: skip
    kinds = {k: [p[0] for p in PROVIDERS if p[2] == k] for k in {p[2] for p in PROVIDERS}}
    vouchers: list[dict[str, Any]] = []
    lines: list[ClaimLine] = []
    truth: dict[tuple[str, str, int], Reason | None] = {}
    year_units: dict[tuple[str, str], int] = defaultdict(int)
    services_seen: set[tuple[str, str, date, str]] = set()
    counter = iter(range(1, 1_000_000))

    def claim(provider: str, voucher: str, person: str, day: date, code: str, units: int, billed: int,
              received: date, reason: Reason | None) -> ClaimLine:  # fmt: skip
        number = f"{provider}-{next(counter):06d}"
        x = ClaimLine(provider, number, 1, voucher, person, day, code, units, billed, received)
        lines.append(x)
        truth[(x.provider_id, x.claim_no, x.claim_line)] = reason
        return x

    for h in range(households):
        state = rng.choice(("MA", "CT"))
        household = f"HH{h:03d}"
        members = [("worker", f"{household}-W")]
        if rng.random() < 0.4:
            members.append(("worker", f"{household}-P"))
        members += [("dependent", f"{household}-C{i}") for i in range(rng.choice((0, 0, 1, 2, 3)))]
        category = rng.choice(("migratory", "seasonal"))
        for relationship, person in members:
            program["people"].append({"id": person, "household": household, "relationship": relationship,
                                      "zip": rng.choice(ZIPS[state]), "state": state,
                                      **_birth_and_sex(people_rng, relationship)})  # fmt: skip
            verified = date(YEAR, 4, 1) + timedelta(days=rng.randrange(0, 90))
            program["verifications"].append(
                {"patient_id": person, "category": category, "verified_on": verified.isoformat()}
            )
            wanted = ["medical"] + [k for k, p in (("dental", 0.4), ("vision", 0.25), ("pharmacy", 0.3))
                                    if rng.random() < p]  # fmt: skip
            for kind in wanted:
                services, provider_kinds, max_dollars = VOUCHER_KINDS[kind]
                issued = verified + timedelta(days=rng.randrange(0, 30))
                expires = min(issued + timedelta(days=rng.choice((60, 90, 120))), date(YEAR, 12, 31))
                fixed = (
                    rng.choice([p for k in provider_kinds for p in kinds[k]]) if kind != "medical" else None
                )
                vid = f"V{YEAR}-{len(vouchers) + 1:05d}"
                voucher = {"id": vid, "patient_id": person, "services": list(services), "provider_id": fixed,
                           "issued_on": issued.isoformat(), "expires_on": expires.isoformat(),
                           "max_amount": f"{max_dollars}.00", "max_units": None}  # fmt: skip
                vouchers.append(voucher)
                _valid_lines(rng, voucher, kinds, fees, year_units, services_seen, claim)
    # planted errors, each built from a valid line of its voucher and received after all of them
    valid = [x for x in lines if truth[(x.provider_id, x.claim_no, x.claim_line)] is None]
    by_voucher: dict[str, list[ClaimLine]] = defaultdict(list)
    for x in valid:
        by_voucher[x.voucher_id].append(x)
    vmap = {v["id"]: v for v in vouchers}
    verified_on = {v["patient_id"]: date.fromisoformat(v["verified_on"]) for v in program["verifications"]}
    voids: dict[str, date] = {}
    n_planted = round(len(valid) * planted_share)
    kinds_cycle = [PLANTED[i % len(PLANTED)] for i in range(n_planted)]
    rng.shuffle(kinds_cycle)
    used_vouchers: set[str] = set()
    for kind in kinds_cycle:
        _plant(rng, kind, valid, by_voucher, vmap, verified_on, voids, used_vouchers, fees, kinds, claim)
    total = sum(int(v["max_amount"].split(".")[0]) for v in vouchers)
    program["budget_lines"][0]["amount"] = f"{round(total * 1.2)}.00"
    return Season(program, vouchers, voids, lines, truth)


def _valid_lines(rng, voucher, kinds, fees, year_units, services_seen, claim) -> None:
    """1-3 lines the rules must pay in full: inside every limit, at or below the fee, in the dates."""
    issued, expires = date.fromisoformat(voucher["issued_on"]), date.fromisoformat(voucher["expires_on"])
    person, left = voucher["patient_id"], int(voucher["max_amount"].split(".")[0]) * 100
    voucher_units: dict[str, int] = defaultdict(int)
    for _ in range(rng.choice((1, 2, 2, 3))):
        code = rng.choice(voucher["services"])
        _, _, _, dollars, vlimit, ylimit, provider_kinds = fees[code]
        fee = round(float(dollars) * 100)
        units = 30 if code.startswith("NDC") else 1
        if vlimit is not None and voucher_units[code] + units > vlimit:
            continue
        if ylimit is not None and year_units[(person, code)] + units > ylimit:
            continue
        billed = fee * units if rng.random() > 0.1 else fee * units - 500 * (fee * units > 500)
        if billed > left:
            continue
        provider = voucher["provider_id"] or rng.choice([p for k in provider_kinds for p in kinds[k]])
        day = issued + timedelta(days=rng.randrange(0, (expires - issued).days + 1))
        if (person, provider, day, code) in services_seen:
            continue
        services_seen.add((person, provider, day, code))
        voucher_units[code] += units
        year_units[(person, code)] += units
        left -= billed
        claim(
            provider,
            voucher["id"],
            person,
            day,
            code,
            units,
            billed,
            day + timedelta(rng.randrange(3, 45)),
            None,
        )


def _birth_and_sex(rng: random.Random, relationship: str) -> dict[str, str]:
    """A worker aged 18-64 or a dependent aged 0-17 at the start of the season, and a sex at birth."""
    low, high = (18, 64) if relationship == "worker" else (0, 17)
    born = date(YEAR - rng.randint(low, high), 1, 1) + timedelta(days=rng.randrange(0, 365))
    return {"birth_date": born.isoformat(), "sex": rng.choice("FM")}


def _week_end(day: date) -> date:
    """The Sunday a weekly claims file received ``day`` is imported."""
    return day + timedelta(days=6 - day.weekday())


def _plant(rng, kind, valid, by_voucher, vmap, verified_on, voids, used_vouchers, fees, kinds, claim) -> None:
    """One planted error of ``kind`` next to a valid line (skipped when no line fits the kind).

    A plant that needs earlier valid lines paid first (duplicate, over limit) or that must not disturb
    them (void) arrives in a later weekly file than every valid line of its voucher. A voided voucher
    carries no other plant, and no other plant goes on it, so each plant has exactly one reason.
    """
    candidates = list(valid)
    rng.shuffle(candidates)
    for x in candidates:
        if x.voucher_id in voids:
            continue
        v = vmap[x.voucher_id]
        same = by_voucher[x.voucher_id]
        later = _week_end(max(y.received_on for y in same)) + timedelta(days=1)  # the next week
        latest = max(same, key=lambda y: y.service_date)
        issued, expires = date.fromisoformat(v["issued_on"]), date.fromisoformat(v["expires_on"])
        fee = round(float(fees[x.code][3]) * 100)
        reason = PLANTED_REASON[kind]
        args = (x.provider_id, x.voucher_id, x.patient_id)
        if kind == "duplicate":
            received = _week_end(x.received_on) + timedelta(days=1 + rng.randrange(0, 5))
            claim(*args, x.service_date, x.code, x.units, x.billed_cents, received, reason)
        elif kind == "expired" and expires < date(YEAR, 12, 20):
            day = expires + timedelta(days=rng.randrange(1, 10))
            claim(*args, day, x.code, x.units, x.billed_cents, max(later, day) + timedelta(days=2), reason)
        elif kind == "over_limit" and fees[x.code][4] is not None:
            if sum(y.units for y in same if y.code == x.code) < fees[x.code][4]:
                continue  # only a limit already used up denies the whole line
            day = _free_day(latest.service_date, x.code, issued, expires, same)
            if day is None:
                continue
            claim(*args, day, x.code, x.units, fee * x.units, max(later, day + timedelta(days=1)), reason)
        elif kind == "wrong_fee":
            day = _free_day(latest.service_date, x.code, issued, expires, same)
            if day is None:
                continue
            claim(*args, day, x.code, x.units, fee * x.units + 1500, day + timedelta(days=5), reason)
        elif kind == "not_eligible":
            day = verified_on[x.patient_id] - timedelta(days=rng.randrange(1, 20))
            claim(
                *args, day, x.code, x.units, x.billed_cents, verified_on[x.patient_id] + timedelta(10), reason
            )
        elif kind == "wrong_provider" and v["provider_id"] is not None:
            others = [p for p in kinds[fees[x.code][6][0]] if p != v["provider_id"]] or ["VCHC"]
            claim(rng.choice(others), x.voucher_id, x.patient_id, x.service_date, x.code, x.units,
                  x.billed_cents, x.received_on + timedelta(days=4), reason)  # fmt: skip
        elif kind == "voided" and x.voucher_id not in used_vouchers:
            if later + timedelta(days=1) > expires:
                continue
            voids[x.voucher_id] = later  # the day after the last valid line's file was imported
            service = later + timedelta(days=1)
            claim(*args, service, x.code, x.units, x.billed_cents, service + timedelta(days=3), reason)
        else:
            continue
        used_vouchers.add(x.voucher_id)
        return


def _free_day(
    near: date, code: str, issued: date, expires: date, same_voucher: list[ClaimLine]
) -> date | None:
    """A service day close to ``near`` inside the voucher's dates with no line of ``code`` yet."""
    taken = {(y.service_date, y.code) for y in same_voucher}
    for delta in range(1, 30):
        for day in (near - timedelta(days=delta), near + timedelta(days=delta)):
            if issued <= day <= expires and (day, code) not in taken:
                return day
    return None


def write_season(season: Season, folder: str | Path) -> Path:
    """``program.json`` (setup and vouchers), ``voids.csv``, ``claims/*.csv`` and ``truth.csv``."""
    import csv
    import json

    folder = Path(folder)
    (folder / "claims").mkdir(parents=True, exist_ok=True)
    (folder / "program.json").write_text(
        json.dumps({**season.program, "vouchers": season.vouchers}, indent=1)
    )
    with (folder / "voids.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [("voucher_id", "day"), *((v, d.isoformat()) for v, d in season.voids.items())]
        )
    for _, name, xs in season.files():
        write_claims_csv(folder / "claims" / name, xs)
    with (folder / "truth.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("provider_id", "claim_no", "claim_line", "expected_reason"))
        for (p, c, n), r in season.truth.items():
            w.writerow((p, c, n, r.value if r else ""))
    return folder


@dataclass(frozen=True, slots=True)
class Step:
    day: date
    what: str


def replay(
    db, season: Season, folder: Path, by: str = "season", check: Callable[[Step], None] | None = None
) -> list[Step]:
    """Run the season through the store in date order -- setup, then per day: vouchers issued, vouchers
    voided, the week's claims files imported and adjudicated -- calling ``check(step)`` after each."""
    from chc_equity.vouchers import store
    from chc_equity.vouchers.setup import cents

    write_season(season, folder)
    with db.write() as s:
        store.load_program(s, season.program, by)
    events: list[tuple[date, int, str, Any]] = []
    for v in season.vouchers:
        events.append((date.fromisoformat(v["issued_on"]), 0, "issue", v))
    for vid, day in season.voids.items():
        events.append((day, 1, "void", vid))
    for day, name, _ in season.files():
        events.append((day, 2, "import", folder / "claims" / name))
    steps = []
    for day, _, what, item in sorted(events, key=lambda e: (e[0], e[1], str(e[3]))):
        with db.write() as s:
            if what == "issue":
                store.issue(s, voucher_id=item["id"], patient_id=item["patient_id"],
                            budget_line_id=BUDGET_LINE, services=item["services"], issued_on=day,
                            expires_on=date.fromisoformat(item["expires_on"]),
                            max_cents=cents(item["max_amount"]), max_units=item["max_units"],
                            provider_id=item["provider_id"], by=by)  # fmt: skip
                label = f"issue {item['id']}"
            elif what == "void":
                store.void(s, item, by, day)
                label = f"void {item}"
            else:
                parsed: ParsedFile = read_claims(item)
                result = store.import_claims(s, parsed, by)
                store.adjudicate_open(s, by, day, result.file_id)
                label = f"import {item.name}"
        step = Step(day, label)
        steps.append(step)
        if check is not None:
            check(step)
    return steps


def seed_demo(db, folder: Path, households: int = 18, seed: int = 20) -> bool:
    """Replay a season into an app database that has no voucher program yet (``make demo``); False
    (nothing done) when it has one, so serving the demo again never replays twice."""
    from sqlalchemy import func, select

    from chc_equity.appdb.models import VoucherBudgetLine

    with db.read() as s:
        if s.scalar(select(func.count()).select_from(VoucherBudgetLine)):
            return False
    replay(db, generate(seed=seed, households=households), folder)
    return True
