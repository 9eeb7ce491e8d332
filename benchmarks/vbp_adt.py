"""Hospital ADT feed: parse + match throughput and matching precision/recall at a small center's size.

Prints, for a synthetic panel (``--patients``, planted twins) and feed (``--stays`` stays = 2 messages
each, seeded): messages/s of parsing (python-hl7) and of matching, CPU seconds, and precision / recall /
review share of the matching rule (docs/vbp.md, "Hospital partner data").

    PYTHONPATH=src python benchmarks/vbp_adt.py --patients 10000 --stays 5000
"""

from __future__ import annotations

import argparse
import os
import time

from chc_equity.vbp import adt, adt_synth
from chc_equity.vbp.matching import Matcher


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--stays", type=int, default=5_000)
    ap.add_argument("--twins", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    print(f"load average {os.getloadavg()}")
    patients = adt_synth.synthetic_patients(a.patients, a.seed, twins=a.twins)
    feed = adt_synth.feed(patients, a.seed, stays=a.stays, days=365)
    c0, w0 = time.process_time(), time.perf_counter()
    result = adt.read_hl7_text(feed.text, "bench.hl7")
    c1, w1 = time.process_time(), time.perf_counter()
    matcher = Matcher(patients, {"CENTERMRN": adt_synth.MRN_SYSTEM})
    tp = fp = fn = review = has_truth = 0
    for e in result.events:
        m = matcher.match([(i.authority, i.value) for i in e.identifiers], e.family, e.given, e.birth_date,
                          e.sex, e.postal_code)  # fmt: skip
        truth = feed.truth[e.control_id]
        if m.status == "matched":
            tp += m.patient_id == truth
            fp += m.patient_id != truth
        else:
            fn += truth is not None
            if m.status == "review":
                review += 1
                has_truth += truth in {c.patient_id for c in m.candidates}
    c2, w2 = time.process_time(), time.perf_counter()
    n = len(result.events)
    print(f"patients {a.patients:,} (twin pairs {a.twins}), messages {n + len(result.quarantined):,}, "
          f"quarantined {len(result.quarantined)}")  # fmt: skip
    print(f"parse: {c1 - c0:.2f} s CPU, {w1 - w0:.2f} s wall, {n / (c1 - c0):,.0f} messages/s CPU")
    print(f"match: {c2 - c1:.2f} s CPU, {w2 - w1:.2f} s wall, {n / (c2 - c1):,.0f} events/s CPU")
    print(f"precision {tp / (tp + fp):.4f}  recall {tp / (tp + fn):.4f}  review {review / n:.2%}  "
          f"review holds the truth {has_truth / max(review, 1):.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
