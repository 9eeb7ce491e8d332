"""The overview matrix: centers as rows, measure groups as columns, each cell against three references.

Why rows are centers: a network grows in centers (36 and more), not in measures, and a page grows down
far better than across; a 1,366 px window holds every measure group of the registry as narrow columns.
Each cell is compared with

* the network (the funnel-plot test of :mod:`chc_equity.network.stats`: ``better`` / ``worse`` only
  when significant),
* the network's own target for the measure (configuration:
  :func:`chc_equity.network.benchmarks.load_targets`),
* the national health-center average (HRSA UDS, packaged with year and source), where public.

Sorting and filtering are done here, on the server, so the page needs no script and the exports
(:func:`csv_bytes`, :func:`xlsx_bytes`) hold exactly the rows and columns the page shows. The cells come
from :func:`chc_equity.web.service.overview`, so viewers get the suppressed counts there, never more.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from chc_equity.exports import csv_writer, set_cell
from chc_equity.network.benchmarks import (
    FAMILIES,
    National,
    cms_number,
    compare,
    families,
    national,
    natural_key,
    target_for,
)
from chc_equity.web.analytics import Cell
from chc_equity.web.plainwords import unit_of

Order = Literal["asc", "desc"]
SORT_CENTER, SORT_WORSE = "center", "worse"


@cache
def group_number(group_id: str) -> int:
    digits = "".join(ch for ch in group_id if ch.isdigit())
    return int(digits) if digits else 0


@dataclass(frozen=True, slots=True)
class Column:
    """One measure group: what the header, the reference rows and the legend need."""

    key: str  # "CMS165", "CMS347 Group 3"
    cms_id: str
    group_id: str
    group_title: str | None
    title: str
    inverse: bool
    uds: str | None
    families: tuple[str, ...]
    unit: str
    network: Cell | None
    national: National | None
    target: float | None

    @property
    def label(self) -> str:
        """The column's name for a reader: the measure title, plus the group title when it has groups."""
        return f"{self.title} — {self.group_title}" if self.group_title else self.title


@dataclass(frozen=True, slots=True)
class MatrixCell:
    cell: Cell
    vs_network: str | None  # "better" / "worse" (significant), "as expected", None: no test
    vs_target: str | None  # "better" / "worse" / "same", None: no target or no rate
    vs_national: str | None

    @property
    def rate(self) -> float | None:
        return self.cell.rate

    @property
    def performance(self) -> float | None:
        """The rate in the "higher is better" direction (1 - rate for inverse measures)."""
        r = self.cell.rate
        return None if r is None else (1 - r if self.cell.inverse else r)

    @property
    def benchmark(self) -> str | None:
        """The mark against a benchmark: the network's target where set, else the national average."""
        return self.vs_target if self.vs_target is not None else self.vs_national


@dataclass(slots=True)
class Row:
    center: str
    cells: dict[str, MatrixCell] = field(default_factory=dict)

    @property
    def worse(self) -> int:
        """Measure groups where this center is significantly worse than the network."""
        return sum(c.vs_network == "worse" for c in self.cells.values())

    @property
    def better(self) -> int:
        return sum(c.vs_network == "better" for c in self.cells.values())

    @property
    def below_benchmark(self) -> int:
        return sum(c.benchmark == "worse" for c in self.cells.values())


@dataclass(slots=True)
class Matrix:
    columns: list[Column]
    rows: list[Row]
    family: str | None
    sort: str
    order: Order
    families: dict[str, str] = field(default_factory=lambda: dict(FAMILIES))

    @property
    def has_targets(self) -> bool:
        return any(c.target is not None for c in self.columns)

    @property
    def has_national(self) -> bool:
        return any(c.national is not None for c in self.columns)

    def sort_link(self, key: str) -> str:
        """Query string that sorts by ``key`` (worst first), or flips the order when already sorted by it."""
        order = "desc" if key == self.sort and self.order == "asc" else "asc"
        family = f"&family={self.family}" if self.family else ""
        return f"?sort={key}&order={order}{family}"


def _columns(cells: Sequence[Cell], targets: dict[str, float]) -> list[Column]:
    network = {c.key: c for c in cells if c.is_network}
    first: dict[str, Cell] = {}
    for c in cells:
        first.setdefault(c.key, c)
    cols = [
        Column(
            key=key,
            cms_id=c.cms_id,
            group_id=c.group_id,
            group_title=c.group_title,
            title=c.title,
            inverse=c.inverse,
            uds=c.uds,
            families=families(c.cms_id, c.uds),
            unit=unit_of(c.cms_id),
            network=network.get(key),
            national=national(c.cms_id, c.group_id),
            target=target_for(targets, c.cms_id, key),
        )
        for key, c in first.items()
    ]
    return sorted(cols, key=lambda col: (cms_number(col.cms_id), col.cms_id, group_number(col.group_id)))


def build(
    cells: Sequence[Cell],
    targets: dict[str, float] | None = None,
    *,
    family: str | None = None,
    sort: str = SORT_CENTER,
    order: Order = "asc",
) -> Matrix:
    """The matrix of the overview's cells, filtered to one measure family and sorted.

    ``sort``: "center" (natural order, c2 before c10), "worse" (most measure groups significantly worse
    than the network first), or a column key (lowest performance first, i.e. worst first, whichever the
    measure's direction; no rate last). ``order="desc"`` reverses, still with no rate last.
    """
    targets = targets or {}
    family = family if family in FAMILIES else None
    columns = [c for c in _columns(cells, targets) if family is None or family in c.families]
    wanted = {c.key: c for c in columns}
    rows: dict[str, Row] = {}
    for cell in cells:
        col = wanted.get(cell.key)
        if cell.is_network or col is None:
            continue
        signal = cell.signal if cell.signal in ("better", "worse", "as expected") else None
        rows.setdefault(cell.center, Row(cell.center)).cells[cell.key] = MatrixCell(
            cell,
            signal,
            compare(cell.rate, col.target, inverse=cell.inverse),
            compare(cell.rate, col.national.rate if col.national else None, inverse=cell.inverse),
        )
    ordered = sorted(rows.values(), key=lambda r: natural_key(r.center))
    if sort == SORT_WORSE:
        ordered.sort(key=lambda r: -r.worse if order == "asc" else r.worse)
    elif sort in wanted:
        have = [r for r in ordered if _perf(r, sort) is not None]
        have.sort(key=lambda r: _perf(r, sort), reverse=order == "desc")
        ordered = have + [r for r in ordered if _perf(r, sort) is None]
    else:
        sort = SORT_CENTER
        if order == "desc":
            ordered.reverse()
    return Matrix(columns, ordered, family, sort, order)


def _perf(row: Row, key: str) -> float | None:
    found = row.cells.get(key)
    return found.performance if found else None


# -- exports -------------------------------------------------------------------------------------------
EXPORT_COLUMNS = (
    "center",
    "measure",
    "cms_id",
    "group_id",
    "group_title",
    "title",
    "direction",
    "unit",
    "numerator",
    "performance_denominator",
    "rate",
    "ci_low",
    "ci_high",
    "network_rate",
    "vs_network",
    "target",
    "vs_target",
    "national_rate",
    "national_year",
    "vs_national",
)


def export_rows(m: Matrix) -> list[list]:
    """One row per center x measure group, in the page's order (None where suppressed or absent)."""
    out = []
    for row in m.rows:
        for col in m.columns:
            mc = row.cells.get(col.key)
            c = mc.cell if mc else None
            out.append(
                [
                    row.center,
                    col.key,
                    col.cms_id,
                    col.group_id,
                    col.group_title,
                    col.title,
                    "lower is better" if col.inverse else "higher is better",
                    col.unit,
                    c.numerator if c else None,
                    c.performance_denominator if c else None,
                    c.rate if c else None,
                    c.ci_low if c else None,
                    c.ci_high if c else None,
                    col.network.rate if col.network else None,
                    mc.vs_network if mc else None,
                    col.target,
                    mc.vs_target if mc else None,
                    col.national.rate if col.national else None,
                    col.national.year if col.national else None,
                    mc.vs_national if mc else None,
                ]
            )
    return out


def csv_bytes(m: Matrix) -> bytes:
    buf = io.StringIO()
    w = csv_writer(buf)
    w.writerow(EXPORT_COLUMNS)
    for r in export_rows(m):
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue().encode("utf-8")


def xlsx_bytes(m: Matrix, period: str) -> bytes:
    """Two sheets: "matrix" (centers x measure groups, rates as percentages, as on the page) and
    "cells" (the CSV's long table). Empty cells are suppressed or absent, as on the page."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "matrix"
    set_cell(ws, 1, 1, f"Centers x measures, {period}")
    ws.cell(1, 1).font = Font(bold=True)
    set_cell(ws, 2, 1, "center")
    for j, col in enumerate(m.columns, start=2):
        set_cell(ws, 2, j, col.key)
    refs = [("Network", lambda c: c.network.rate if c.network else None), ("Target", lambda c: c.target)]
    refs.append(("National (UDS)", lambda c: c.national.rate if c.national else None))
    i = 3
    for name, get in refs:
        set_cell(ws, i, 1, name)
        for j, col in enumerate(m.columns, start=2):
            value = get(col)
            if value is not None:
                set_cell(ws, i, j, value).number_format = "0.0%"
        i += 1
    for row in m.rows:
        set_cell(ws, i, 1, row.center)
        for j, col in enumerate(m.columns, start=2):
            mc = row.cells.get(col.key)
            if mc is not None and mc.rate is not None:
                set_cell(ws, i, j, mc.rate).number_format = "0.0%"
        i += 1
    long = wb.create_sheet("cells")
    for j, name in enumerate(EXPORT_COLUMNS, start=1):
        set_cell(long, 1, j, name)
    for i, r in enumerate(export_rows(m), start=2):
        for j, v in enumerate(r, start=1):
            if v is not None:
                set_cell(long, i, j, v)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def uds_note(cms_id: str) -> str | None:
    """How UDS Table 6B reports a multi-group measure on one line (the rule of ``uds/quality.py``), in
    words for the measure page; None for a measure UDS reports as its only group."""
    from chc_equity.uds.quality import LINES_6B

    spec = next((s for s in LINES_6B if s.cms_id == cms_id), None)
    if spec is None:
        return None
    if spec.group:
        return f"UDS Table 6B line {spec.line} reports {spec.group.replace('_', ' ')} only."
    if spec.combine == "all":
        return f"UDS Table 6B line {spec.line} counts a patient as meeting it only when every group is met."
    if spec.combine == "any":
        return f"UDS Table 6B line {spec.line} counts a patient in any group once (the groups together)."
    return None
