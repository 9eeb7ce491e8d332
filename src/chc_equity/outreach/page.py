"""The worklist as pages: the warehouse part prepared once into columns, then per request the app
database's values joined in, the score, filters, sort and one page, over numpy arrays.

Why: a 20k-patient center has ~18k rows on its worklist. Building them (:func:`worklist.collect`) takes
seconds of SQL over the flat tables and the stored Patient JSON, so it is done once per warehouse state
and kept (:class:`WorklistStore`, keyed by the warehouse file's identity, so a page load that finds it
does not even open the warehouse). What changes between two page loads -- who is assigned, the last
outreach, the filters, the sort, the page -- is applied here to arrays, and only the rows of the page
shown become :class:`~chc_equity.outreach.worklist.WorklistRow` copies.

The rules are those of :mod:`chc_equity.outreach.worklist` (:func:`~worklist.score`,
:class:`~worklist.Filters`, :data:`~worklist.SORTS`); a test checks that :func:`Prepared.select` gives
exactly what ``prioritise`` + ``filter_rows`` + ``sort_rows`` give. Both the web page and
``chc-equity worklist`` go through :func:`Prepared.select` with an :class:`Overlay` (the one join).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np

from chc_equity.outreach.worklist import (
    SORTS,
    Filters,
    ItemSource,
    Priority,
    WorklistRow,
    collect,
    load_priority,
)

PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Overlay:
    """What the app database adds to a worklist row: ``assignments`` patient id -> assigned CHW (as
    shown: the CHW's display name), ``last_outreach`` patient id -> (date, outcome). Empty: nobody
    assigned, never contacted (no app database)."""

    assignments: Mapping[str, str] = field(default_factory=dict)
    last_outreach: Mapping[str, tuple[date, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Query:
    """One request: filters, sort, page. ``only``: the patients the user may see at all (a CHW's panel
    when the center turned "panel only" on; None = the whole center); ``mine``: the "my patients" filter
    (the patients assigned to the signed-in CHW)."""

    filters: Filters = Filters()
    sort: str = "priority"
    reverse: bool = False
    offset: int = 0
    limit: int | None = PAGE_SIZE
    only: frozenset[str] | None = None
    mine: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """``visible``: rows the user may see before filters; ``matched``: after filters; ``rows``: the page,
    each with its assigned CHW, last outreach, score and band."""

    visible: int
    matched: int
    rows: list[WorklistRow]
    offset: int
    limit: int | None


def _rank(values: list) -> np.ndarray:
    """Dense ranks (equal values share a rank) in Python's sort order of ``values``."""
    _, inverse = np.unique(np.array(values, dtype=object), return_inverse=True)
    return inverse.astype(np.int64)


class Prepared:
    """The warehouse part of one center's worklist, as columns for fast per-request work."""

    def __init__(self, rows: list[WorklistRow], *, period: tuple[date, date], as_of: date) -> None:
        self.rows, self.period, self.as_of = rows, period, as_of
        self.index = {r.patient_id: i for i, r in enumerate(rows)}
        tallies = [r.tally() for r in rows]
        self.gaps = np.array([t[0] for t in tallies], dtype=np.float64)
        self.social = np.array([t[1] for t in tallies], dtype=np.float64)
        self.follow = np.array([t[2] for t in tallies], dtype=np.float64)
        self.n_items = np.array([len(r.items) for r in rows], dtype=np.int64)
        self.acute = np.array([r.recent_acute for r in rows], dtype=bool)
        self.risk = [r.social_risk for r in rows]
        self.last_visit = np.array([r.last_visit.toordinal() if r.last_visit else -1 for r in rows])
        self.site = np.array([r.site for r in rows], dtype=object)
        self.language = np.array([(r.language or "").lower() for r in rows], dtype=object)
        self.names = [(r.name or "").lower() for r in rows]
        self.mrns = [(r.mrn or "").lower() for r in rows]
        ties = [r.mrn or r.patient_id for r in rows]
        self.tie = np.argsort(np.argsort(np.array(ties, dtype=object), kind="stable"), kind="stable")
        self.keys = {
            "name": _rank([(r.name or "").lower() for r in rows]),
            "mrn": _rank([r.mrn or "" for r in rows]),
            "age": np.array([r.age if r.age is not None else -1 for r in rows], dtype=np.int64),
            "last_visit": self.last_visit,
            "next_visit": _rank([r.next_visit or "9999" for r in rows]),
            "open_items": self.n_items,
        }
        by_measure: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            for cms in {x.code.split()[0] for x in r.items if x.kind == "care-gap"}:
                by_measure.setdefault(cms, []).append(i)
        self.measure_rows = {cms: np.array(ix, dtype=np.int64) for cms, ix in by_measure.items()}
        self.sites = sorted({r.site for r in rows if r.site})
        self.languages = sorted({r.language for r in rows if r.language})
        self.measures = sorted(self.measure_rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _members(self, ids: frozenset[str] | set[str]) -> np.ndarray:
        mask = np.zeros(len(self.rows), dtype=bool)
        hits = [i for pid in ids if (i := self.index.get(pid)) is not None]
        mask[hits] = True
        return mask

    def select(self, overlay: Overlay, query: Query = Query(), priority: Priority | None = None) -> Selection:
        """The rows ``query`` asks for, with ``overlay`` joined in, scored, filtered, sorted and paged."""
        cfg = priority or load_priority()
        if query.sort not in SORTS:
            raise ValueError(f"unknown sort {query.sort!r}; choose one of {', '.join(SORTS)}")
        n = len(self.rows)
        label = np.full(n, None, dtype=object)
        for pid, chw in overlay.assignments.items():
            if (i := self.index.get(pid)) is not None:
                label[i] = chw
        contact = np.full(n, -1, dtype=np.int64)
        for pid, (day, _outcome) in overlay.last_outreach.items():
            if (i := self.index.get(pid)) is not None:
                contact[i] = day.toordinal()
        scores, bands = self._score(contact, cfg)

        keep = np.ones(n, dtype=bool) if query.only is None else self._members(query.only)
        visible = int(keep.sum())
        f = query.filters
        if f.site is not None:
            keep &= self.site == f.site
        if f.language is not None:
            keep &= self.language == f.language.lower()
        if f.measure is not None:
            hit = np.zeros(n, dtype=bool)
            hit[self.measure_rows.get(f.measure.upper(), np.array([], dtype=np.int64))] = True
            keep &= hit
        if f.priority is not None:
            keep &= bands == f.priority
        if f.assigned is not None:
            keep &= (label != None) == f.assigned  # noqa: E711 (element-wise on an object array)
        if f.chw is not None:
            keep &= label == f.chw
        if query.mine is not None:
            keep &= self._members(query.mine)
        if f.search:
            needle = f.search.lower()
            found = [needle in a or needle in b for a, b in zip(self.names, self.mrns, strict=True)]
            keep &= np.array(found, dtype=bool)

        chosen = np.flatnonzero(keep)
        order = chosen[self._order(chosen, query, scores, contact)]
        stop = None if query.limit is None else query.offset + query.limit
        page = []
        for i in order[query.offset : stop].tolist():
            base = self.rows[i]
            r = object.__new__(WorklistRow)  # a shallow copy: items are shared and never changed
            r.__dict__.update(base.__dict__)
            r.assigned_chw = label[i]
            r.last_outreach, r.last_outcome = overlay.last_outreach.get(base.patient_id, (None, None))
            r.priority, r.band = scores[i], bands[i]
            page.append(r)
        return Selection(visible, len(order), page, query.offset, query.limit)

    def _score(self, contact: np.ndarray, cfg: Priority) -> tuple[list[float], np.ndarray]:
        """:func:`worklist.score` over every row: the same terms in the same order (so the same floats),
        rounded by Python's ``round`` as there."""
        w = cfg.weights
        last = np.where(contact >= 0, contact, self.last_visit)
        days = np.where(last >= 0, self.as_of.toordinal() - last, cfg.days_since_contact_cap)
        days = np.clip(days, 0, cfg.days_since_contact_cap).astype(np.float64)
        risk = np.array([w["social_risk"].get(t, 0.0) if t else 0.0 for t in self.risk], dtype=np.float64)
        raw = (
            w["open_gap"] * self.gaps
            + w["social_item"] * self.social
            + w["overdue_follow_up"] * self.follow
            + risk
            + np.where(self.acute, float(w["recent_acute"]), 0.0)
            + w["per_day_since_contact"] * days
        )
        scores = [round(v, 3) for v in raw.tolist()]
        arr = np.array(scores, dtype=np.float64)
        bands = np.where(
            arr >= cfg.bands["high"], "high", np.where(arr >= cfg.bands["medium"], "medium", "low")
        ).astype(object)
        return scores, bands

    def _order(
        self, chosen: np.ndarray, query: Query, scores: list[float], contact: np.ndarray
    ) -> np.ndarray:
        """Positions into ``chosen`` in :data:`SORTS` order (natural direction, ``reverse`` flips it),
        ties by MRN ascending whatever the direction -- as ``sort_rows`` does."""
        descending = SORTS[query.sort][1] != query.reverse
        sign = -1 if descending else 1
        if query.sort == "priority":
            primary = [np.array(scores)[chosen] * sign, self.n_items[chosen] * sign]
        elif query.sort == "last_outreach":
            primary = [contact[chosen] * sign]
        else:
            primary = [self.keys[query.sort][chosen] * sign]
        # np.lexsort: the last key is the primary one.
        return np.lexsort([self.tie[chosen], *reversed(primary)])


# ----------------------------------------------------------------------------------- the store
def warehouse_identity(path: Path) -> tuple[object, ...]:
    """What changes whenever the warehouse's content may have: the file's and its WAL's device, inode,
    size and modification time (ingest, measures and precompute all write one of them)."""
    out: list[object] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


Opener = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class WorklistStore:
    """Prepared worklists per (warehouse state, center, requested period end, as-of day, acute window).

    A hit costs a ``stat`` of the warehouse, not an open. A miss opens it (``opener``), picks the
    precomputed run, runs :func:`worklist.collect` and prepares the columns; concurrent misses for the
    same key wait for the first instead of computing it again. Holds at most ``size`` entries.
    """

    def __init__(self, size: int = 8, sources: Sequence[ItemSource] = ()) -> None:
        self.size = size
        self.sources = tuple(sources)  # more open items (worklist.ItemSource), e.g. payer gap files
        self._entries: OrderedDict[tuple[object, ...], Prepared | None] = OrderedDict()
        self._building: dict[tuple[object, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(
        self,
        warehouse: Path,
        opener: Opener,
        center: str,
        *,
        period_end: date | None,
        as_of: date,
        recent_acute_days: int = 30,
    ) -> Prepared | None:
        """The prepared worklist, or None when the warehouse has no precomputed measure run to use."""
        key = (str(warehouse), warehouse_identity(warehouse), center, period_end, as_of, recent_acute_days)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            try:
                prepared = build(
                    opener,
                    center,
                    period_end=period_end,
                    as_of=as_of,
                    acute_days=recent_acute_days,
                    sources=self.sources,
                )
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self._entries[key] = prepared
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return prepared


def build(
    opener: Opener,
    center: str,
    *,
    period_end: date | None,
    as_of: date,
    acute_days: int = 30,
    sources: Sequence[ItemSource] = (),
) -> Prepared | None:
    """Open the warehouse, pick the run, collect and prepare (None: no precomputed run)."""
    from chc_equity.web.analytics import pick_run

    with opener() as con:
        run = pick_run(con, period_end)
        if run is None:
            return None
        period = (run.period_start, run.period_end)
        rows = collect(con, center, period=period, as_of=as_of, recent_acute_days=acute_days, sources=sources)
    return Prepared(rows, period=period, as_of=as_of)


__all__ = [
    "PAGE_SIZE",
    "Overlay",
    "Prepared",
    "Query",
    "Selection",
    "WorklistStore",
    "build",
    "warehouse_identity",
]
