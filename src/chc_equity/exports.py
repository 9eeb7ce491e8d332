"""The one rule for cells of every CSV and Excel file the project writes: no text cell is a formula.

Names, MRNs, center ids and labels come from the data; a spreadsheet opening an export evaluates a cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula (CSV injection,
OWASP). :func:`neutralize` prefixes such a text cell with a single quote, which spreadsheets show as text.
The CSV writers here also enclose every text cell in double quotes (inner quotes doubled,
``csv.QUOTE_NONNUMERIC``), so a tab, CR or line break inside a cell can never split a row whatever the
line terminator. Only text is touched: a number written as a number (``-3``, ``-0.25``) stays a bare
number, and so does text that is nothing but a plain decimal number (``"-3"``), which no spreadsheet can
run.

One place, used by every writer (care-gap CSV, ``equity`` tables, the demo's ``equity.csv``, UDS
CSV/Excel, ``measures evaluate`` output), rather than a CSV-only library, because the same rule has to
hold for openpyxl cells and pandas frames too.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize(value: Any) -> Any:
    """``value`` with a ``'`` in front when it is text a spreadsheet would run; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralize_row(row: Iterable[Any]) -> list[Any]:
    return [neutralize(v) for v in row]


def neutralize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells are neutralized (numeric columns are left as they are)."""
    import pandas as pd

    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(neutralize)
    out.columns = [neutralize(c) for c in out.columns]
    return out


class SafeWriter:
    """:func:`csv.writer` whose every cell goes through :func:`neutralize`; text cells quoted."""

    def __init__(self, fh: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(neutralize_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """:class:`csv.DictWriter` whose every cell (header included) goes through :func:`neutralize`."""

    def __init__(self, fh: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = csv.DictWriter(fh, self.fieldnames, quoting=csv.QUOTE_NONNUMERIC, **kwargs)

    def writeheader(self) -> Any:
        return self._writer.writer.writerow(neutralize_row(self.fieldnames))

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({k: neutralize(v) for k, v in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(fh: IO[str], **kwargs: Any) -> SafeWriter:
    return SafeWriter(fh, **kwargs)


def dict_writer(fh: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> SafeDictWriter:
    return SafeDictWriter(fh, fieldnames, **kwargs)


def write_frame_csv(df: pd.DataFrame, path: Any, **kwargs: Any) -> None:
    """``df.to_csv(path, index=False)`` with text cells neutralized and quoted."""
    neutralize_frame(df).to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC, **kwargs)


def set_cell(ws: Any, row: int, column: int, value: Any) -> Any:
    """``ws.cell(row, column, value)`` for an openpyxl sheet, text neutralized (openpyxl would otherwise
    store a string starting with ``=`` as a formula)."""
    return ws.cell(row, column, neutralize(value))


__all__ = [
    "FORMULA_TRIGGERS",
    "csv_writer",
    "dict_writer",
    "neutralize",
    "neutralize_frame",
    "neutralize_row",
    "set_cell",
    "write_frame_csv",
]
