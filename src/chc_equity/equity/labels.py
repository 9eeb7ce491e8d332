"""Stratum labels: unknown or missing values are a stratum of their own, never dropped.

Dropping patients with a missing race, language or SOGI answer would silently shrink denominators and
hide exactly the groups data-collection gaps fall on, so every missing-like value maps to one label.
"""

from __future__ import annotations

import math

UNKNOWN = "Unknown"

_MISSING_TOKENS = frozenset({"", "unknown", "unk", "null", "none", "nan", "missing", "not reported"})


def stratum_label(value: object) -> str:
    """Return the display label for a raw stratum value; ``None``/NaN/blank/"unknown"-like -> ``UNKNOWN``.

    Matching is case- and whitespace-insensitive on a small fixed token set; anything else is kept
    verbatim (stripped) so that real categories are never merged by accident.
    """
    if value is None:
        return UNKNOWN
    if isinstance(value, float) and math.isnan(value):
        return UNKNOWN
    text = str(value).strip()
    if text.lower() in _MISSING_TOKENS:
        return UNKNOWN
    return text
