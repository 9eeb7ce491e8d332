"""The signal every chart rule returns, and the words that describe it.

A signal names its rule, the points it covers (0-based positions in the series), its direction
relative to the centre line, and one sentence for people ("9 points below the median from May 2025
to Jan 2026 ..."). Whether "below" is good news depends on the measure: callers pass
``higher_is_better`` so the sentence can say "an improvement" or "a deterioration" (inverse eCQMs
such as CMS122, HbA1c poor control, improve downwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "none"]


@dataclass(frozen=True)
class Signal:
    """One rule that fired.

    ``rule`` is a stable identifier (``anhoej_long_run``, ``anhoej_few_crossings``, ``ihi_shift``,
    ``ihi_trend``, ``ihi_too_few_runs``, ``ihi_too_many_runs``, ``ihi_astronomical``,
    ``beyond_limits``, ``run_of_8``, ``two_of_three_beyond_2sigma``, ``four_of_five_beyond_1sigma``);
    ``points`` the positions of the points that make up the signal; ``phase`` the 0-based phase it
    was found in; ``description`` the sentence shown to people.
    """

    rule: str
    points: tuple[int, ...]
    direction: Direction
    phase: int
    description: str


def point_labels(n: int, labels: Sequence[str] | None) -> list[str]:
    """The label of each point: the caller's (e.g. "May 2026"), else "point 1", "point 2", ..."""
    if labels is None:
        return [f"point {i + 1}" for i in range(n)]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} points")
    return [str(x) for x in labels]


def span(labels: Sequence[str], points: Sequence[int]) -> str:
    """The points as "from A to B", or "at A" for a single point."""
    if len(points) == 1:
        return f"at {labels[points[0]]}"
    return f"from {labels[points[0]]} to {labels[points[-1]]}"


def meaning(direction: Direction, higher_is_better: bool | None) -> str:
    """What a move in ``direction`` means for the measure, or "" when the direction is unknown."""
    if higher_is_better is None or direction == "none":
        return ""
    good = (direction == "up") == higher_is_better
    return " (an improvement)" if good else " (a deterioration)"
