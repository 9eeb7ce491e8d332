"""Value-based payment's pure rules at the size of a large small center: PDC over a year of fills, roster
reconciliation and member months, and the estimator with its per-patient ranking.

    python benchmarks/vbp.py [--members 10000]

Prints CPU seconds per step (time.process_time); deterministic by seed.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, timedelta
from fractions import Fraction

from chc_equity.vbp.contract import Count, Inputs, gap_values, load_contract, patient_values
from chc_equity.vbp.pdc import Fill, pdc_all
from chc_equity.vbp.roster import Member, member_months, reconcile

YEAR = (date(2026, 1, 1), date(2026, 12, 31))
DRUGS = ["atorvastatin 20 MG", "lisinopril 10 MG", "losartan 50 MG", "metformin 500 MG", "glipizide 5 MG"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10_000)
    n = ap.parse_args().members
    rng = random.Random(7)
    members = [
        (Member("P", f"m{i}", "", "", None, "", date(2026, 1 + rng.randrange(6), 1), None), f"p{i}")
        for i in range(n)
    ]
    fills = []
    for i in range(n // 2):
        day = YEAR[0] + timedelta(days=rng.randrange(60))
        drug = rng.choice(DRUGS)
        while day <= YEAR[1]:
            supply = rng.choice([30, 90])
            fills.append(Fill(f"p{i}", day, supply, drug))
            day += timedelta(days=int(supply * rng.uniform(0.9, 1.5)))
    seen = {f"p{i}" for i in range(n) if rng.random() < 0.8}

    t = time.process_time()
    results = pdc_all(fills, *YEAR)
    t_pdc = time.process_time() - t
    t = time.process_time()
    rec = reconcile(members, seen, payer="P", as_of=YEAR[1])
    mm = member_months([m for m, _ in members], *YEAR)
    t_rec = time.process_time() - t
    contract = load_contract("docs/examples/vbp/worked_contract.yaml")
    inputs = Inputs(
        {"CBP": Count(n // 10, n // 6), "HBD": Count(n // 15, n // 10), "BCS": Count(n // 12, n // 8)},
        sum(mm.values()),
        Fraction(400 * sum(mm.values()) * 95, 100),
    )
    open_by = {f"p{i}": rng.sample(["CBP", "HBD", "BCS"], rng.randrange(1, 4)) for i in range(n // 3)}
    t = time.process_time()
    values = gap_values(contract, inputs)
    ranked = patient_values(contract, inputs, open_by)
    t_est = time.process_time() - t
    print(f"members {n}, fills {len(fills)}")
    print(f"PDC: {len(results)} patient-classes in {t_pdc:.2f} s CPU")
    print(
        f"reconcile + member months: {rec.counts()['attributed']} attributed, "
        f"{sum(mm.values())} member months in {t_rec:.2f} s CPU"
    )
    print(f"estimator: {len(values)} measures, {len(ranked)} patients ranked in {t_est:.2f} s CPU")


if __name__ == "__main__":
    main()
