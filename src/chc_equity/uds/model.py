"""The shape of a UDS table: numbered lines x lettered columns, plus the sums that tie them together.

A :class:`UdsTable` is plain data so that one writer serves CSV, JSON and Excel, the network roll-up is
a cell-wise sum, and small-cell suppression can be handed the table's own equations (a total line is
the sum of its lines), which is what complementary suppression needs to be sound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Value = int | float | str | None
Cell = tuple[str, str]  # (line, column key)
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class Column:
    key: str  # UDS column letter where UDS has one ("a", "b", "a1" ...), else a short name
    label: str
    kind: Literal["count", "rate", "text"] = "count"


@dataclass
class Line:
    line: str  # UDS line id ("1", "8a", "Subtotal Hispanic" ...)
    label: str
    values: dict[str, Value] = field(default_factory=dict)
    note: str = ""


@dataclass
class UdsTable:
    """One UDS table for one scope (a center or the network)."""

    table: str  # "3A", "3B", "4", "6B", "7"
    title: str
    center: str
    columns: list[Column]
    lines: list[Line]
    # total cell = sum of member cells (used by edits, roll-up checks and suppression)
    equations: list[tuple[Cell, tuple[Cell, ...]]] = field(default_factory=list)
    # rate cell = numerator cell / denominator cell
    rates: list[tuple[Cell, Cell, Cell]] = field(default_factory=list)
    # column -> column it always equals (UDS "records reviewed" = denominator for EHR-based reporting)
    mirrors: dict[str, str] = field(default_factory=dict)

    def line(self, line: str) -> Line:
        for row in self.lines:
            if row.line == line:
                return row
        raise KeyError(f"Table {self.table} has no line {line!r}")

    def get(self, line: str, column: str) -> Value:
        return self.line(line).values.get(column)

    def count(self, line: str, column: str) -> int:
        v = self.get(line, column)
        return v if isinstance(v, int) else 0


def rate(numerator: Value, denominator: Value) -> float | None:
    """Rate rounded to 4 decimals (what the files carry); None when there is no denominator."""
    if not isinstance(numerator, int) or not isinstance(denominator, int) or denominator <= 0:
        return None
    return round(numerator / denominator, 4)
