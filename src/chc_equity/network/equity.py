"""Stratified (equity) rows for ``agg_equity``, from :mod:`chc_equity.equity.stratify` when it exists.

The stratification itself (patient attributes, strata, disparity statistics, suppression) belongs to the
equity package; this module only calls it once per measure x dimension for the whole network and maps
its rows onto the ``agg_equity`` columns. When the equity package is not there yet, or a call fails
because an input it needs (e.g. ``flat.patient`` columns) is missing, the reason is returned and shown on
the measure page as "not computed" -- never a half-filled table.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import date
from typing import Any

import duckdb

NETWORK = "*"
# Dimensions shown on the measure page, in this order (the equity package's DIMENSIONS gives labels).
DEFAULT_DIMENSIONS: tuple[str, ...] = (
    "race_ethnicity",
    "language",
    "lep",
    "income",
    "insurance",
    "sex",
    "age_band",
    "sdoh_risk",
)

# agg_equity column -> names the equity package may use for it, first match wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "group_id": ("group_id", "group"),
    "stratum": ("stratum", "label", "value"),
    "numerator": ("numerator",),
    "denominator": ("denominator", "performance_denominator"),
    "rate": ("rate",),
    "ci_low": ("ci_low", "rate_ci_low"),
    "ci_high": ("ci_high", "rate_ci_high"),
    "is_reference": ("is_reference", "reference"),
    "rate_difference": ("rate_difference", "difference"),
    "diff_ci_low": ("diff_ci_low", "rd_ci_low"),
    "diff_ci_high": ("diff_ci_high", "rd_ci_high"),
    "rate_ratio": ("rate_ratio", "ratio"),
    "p_value": ("p_value",),
    "q_value": ("q_value",),
    "gap_to_equity": ("gap_to_equity",),
    "worse": ("worse_than_reference", "worse"),
    "better": ("better_than_reference", "better"),
    "unreliable": ("unreliable",),
    "suppressed": ("suppressed",),
}


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    if hasattr(row, "_asdict"):
        return row._asdict()
    return {k: getattr(row, k) for k in dir(row) if not k.startswith("_")}


def _rows_of(result: Any) -> list[dict[str, Any]]:
    """Rows of whatever ``equity_table`` returns: a list of rows, a DuckDB relation or an Arrow table."""
    if hasattr(result, "to_pylist"):  # pyarrow.Table
        return result.to_pylist()
    if hasattr(result, "arrow"):  # DuckDB relation
        return result.arrow().to_pylist()
    return [_as_dict(r) for r in result]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def map_row(raw: dict[str, Any], *, measure: str, dimension: str, label: str) -> dict[str, Any]:
    """One equity-package row as an agg_equity row (missing fields become NULL)."""
    out: dict[str, Any] = {
        "measure": raw.get("measure_name") or measure,
        "dimension": dimension,
        "dimension_label": label,
    }
    for column, names in FIELDS.items():
        out[column] = next((_clean(raw[n]) for n in names if n in raw), None)
    out["center"] = raw.get("center") or NETWORK
    out["group_id"] = out["group_id"] or "Group_1"
    out["stratum"] = str(out["stratum"]) if out["stratum"] is not None else "Unknown"
    if isinstance(out["gap_to_equity"], float):
        out["gap_to_equity"] = round(out["gap_to_equity"])
    return out


def equity_rows(
    con: duckdb.DuckDBPyConnection,
    measures: Sequence[str],
    *,
    period_start: date,
    period_end: date,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
) -> tuple[list[dict[str, Any]], str]:
    """agg_equity rows for every measure x dimension (network-wide) and a status line for agg_runs."""
    try:
        stratify = importlib.import_module("chc_equity.equity.stratify")
        attributes = importlib.import_module("chc_equity.equity.attributes")
    except ModuleNotFoundError as exc:
        return [], f"not computed: {exc.name} is not available yet"
    except Exception as exc:  # noqa: BLE001 -- a half-written equity package must not break precompute
        return [], f"not computed: the equity package failed to import ({type(exc).__name__})"
    labels: dict[str, str] = dict(getattr(attributes, "DIMENSIONS", {}))
    dims = [d for d in dimensions if not labels or d in labels]
    try:
        attributes.build_patient_attributes(con, period_start=period_start, period_end=period_end)
        out: list[dict[str, Any]] = []
        many = getattr(stratify, "equity_tables", None)  # all measures in one pass per dimension
        for dim in dims:
            if many is not None:
                result, _summaries = many(
                    con, list(measures), [dim], period_start=period_start, period_end=period_end
                )
                batches = [("", result)]
            else:
                batches = [
                    (
                        m,
                        stratify.equity_table(
                            con, m, [dim], period_start=period_start, period_end=period_end
                        ),
                    )
                    for m in measures
                ]
            for measure, result in batches:
                out.extend(
                    map_row(r, measure=measure, dimension=dim, label=labels.get(dim, dim))
                    for r in _rows_of(result)
                )
    except Exception as exc:  # noqa: BLE001 -- any failure leaves the equity section "not computed"
        return [], f"not computed: {type(exc).__name__}: {str(exc)[:200]}"
    return out, f"computed: {len(dims)} dimensions"
