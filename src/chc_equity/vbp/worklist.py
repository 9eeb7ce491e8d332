"""Payer gap files on the CHW worklist: what a payer still counts as open for a linked patient.

The worklist (:mod:`chc_equity.outreach.worklist`) lists our own care gaps. A payer's gap file
(:mod:`.payer_gaps`) adds two things a CHW acts on, with the merge's rule (:func:`.payer_gaps.agreement`):

- ``both-open``: our care gap is on the list already; the payer counts it too (it is worth money under the
  contract): a ``payer-gap`` item beside it, which also weighs in the priority score as a gap, so a gap
  that counts for a contract is called first;
- ``payer-only``: the payer counts a gap for a patient who is not in our measure's denominator, or for a
  measure we do not compute: a ``payer-gap`` item (reach the patient; check eligibility and records).

A gap the payer lists open but our records close (``submit``) is not outreach: it is the supplemental-data
submission list of the payer-gap page. The web app and the CLI pass :func:`payer_items` to the worklist
as an item source, so the outreach stage does not import this one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date

import duckdb

from chc_equity.outreach.worklist import OpenItem
from chc_equity.vbp import store
from chc_equity.vbp.payer_gaps import OPEN, agreement
from chc_equity.vbp.report import center_gap_status


def payer_items(
    con: duckdb.DuckDBPyConnection, center: str, period: tuple[date, date], ours: set[tuple[str, str]]
) -> Iterator[tuple[str, OpenItem]]:
    """(patient, item) for each linked patient's open gaps on the payers' files that our records do not
    close; ``ours``: our open care gaps (patient, CMS id) already on the worklist."""
    payers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for gap, pid in store.payer_gaps(con, center):
        if pid and gap.status == OPEN:
            payers[(pid, gap.cms_id or gap.measure)].add(gap.payer)
    if not payers:
        return
    status = center_gap_status(con, center, period)
    for (pid, code), names in sorted(payers.items()):
        ours_status = "open" if (pid, code) in ours else status.get((pid, code))
        who = ", ".join(sorted(names))
        match agreement(OPEN, ours_status):
            case "both-open":
                text = f"Also open on {who}'s gap file (counts for the contract)"
            case "payer-only":
                text = f"Open on {who}'s gap file, not a gap in our records: check eligibility"
            case _:  # submit: our records close it (the supplemental-data list, not outreach)
                continue
        yield pid, OpenItem("payer-gap", code, text)
