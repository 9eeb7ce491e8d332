"""The providers' claims template (CSV or Excel .xlsx): reading it into claim lines and rejects
(FHIR Claim resources, .json / .ndjson, are read by :mod:`.fhir_claims` into the same lines).

One row per claim line, columns (any order, header names exact, extra columns ignored)::

    provider_id, claim_no, claim_line, voucher_id, patient_id, service_date, service_code,
    units, billed_amount, received_date

Dates ``YYYY-MM-DD``; ``billed_amount`` in dollars with at most 2 decimals; ``units`` a positive whole
number. A file without one of these columns is refused as a whole (the error names the file and the
column); a row with a bad value is a reject naming its line and field, and the other rows load.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from chc_equity.vouchers.rules import ClaimLine

COLUMNS = (
    "provider_id",
    "claim_no",
    "claim_line",
    "voucher_id",
    "patient_id",
    "service_date",
    "service_code",
    "units",
    "billed_amount",
    "received_date",
)
MAX_TEXT = 64


class ClaimsFileError(ValueError):
    """The file as a whole cannot be read (no such file, not CSV/xlsx, a column missing)."""


@dataclass(frozen=True, slots=True)
class Reject:
    line: int  # 1 = header; data from line 2
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    name: str
    sha256: str
    lines: list[tuple[int, ClaimLine]]
    rejects: list[Reject]


def _rows(path: Path, data: bytes) -> Iterator[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [
                "" if v is None else v.date().isoformat() if isinstance(v, datetime) else str(v) for v in row
            ]
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClaimsFileError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    yield from csv.reader(io.StringIO(text, newline=""))


def _text(value: str, name: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("missing")
    if len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    return value


def _date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not a date YYYY-MM-DD") from None


def _units(value: str, name: str) -> int:
    try:
        n = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{value.strip()!r} is not a number") from None
    if n != n.to_integral_value() or n < 1 or n > 10_000:
        raise ValueError(f"{value.strip()!r} is not a whole number of units from 1 to 10000")
    return int(n)


def _cents(value: str, name: str) -> int:
    raw = value.strip().lstrip("$").replace(",", "")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{value.strip()!r} is not an amount") from None
    if amount < 0 or amount > 1_000_000 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{value.strip()!r} is not an amount in dollars and cents from 0 to 1000000")
    return int(amount * 100)


_PARSERS = {
    "provider_id": _text,
    "claim_no": _text,
    "claim_line": _units,
    "voucher_id": _text,
    "patient_id": _text,
    "service_date": _date,
    "service_code": _text,
    "units": _units,
    "billed_amount": _cents,
    "received_date": _date,
}


def read_claims(path: str | Path, data: bytes | None = None) -> ParsedFile:
    """Read a claims file (``data``: its bytes when already in memory, e.g. an upload)."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ClaimsFileError(f"{path}: {exc.strerror}") from exc
    if path.suffix.lower() in (".json", ".ndjson"):
        from chc_equity.vouchers.fhir_claims import read_fhir_claims

        return read_fhir_claims(path, data)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ClaimsFileError(
            f"{path.name}: claims files are .csv or .xlsx (template), .json or .ndjson (FHIR Claim)"
        )
    rows = _rows(path, data)
    header = [h.strip() for h in next(rows, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ClaimsFileError(f"{path.name}: line 1: column(s) missing: {', '.join(missing)}")
    index = {c: header.index(c) for c in COLUMNS}
    lines, rejects = [], []
    for n, row in enumerate(rows, start=2):
        if not any(str(v).strip() for v in row):
            continue
        values, bad = {}, None
        for col in COLUMNS:
            raw = row[index[col]] if index[col] < len(row) else ""
            try:
                values[col] = _PARSERS[col](str(raw), col)
            except ValueError as exc:
                bad = Reject(n, col, str(exc))
                break
        if bad is not None:
            rejects.append(bad)
            continue
        lines.append(
            (
                n,
                ClaimLine(
                    provider_id=values["provider_id"],
                    claim_no=values["claim_no"],
                    claim_line=values["claim_line"],
                    voucher_id=values["voucher_id"],
                    patient_id=values["patient_id"],
                    service_date=values["service_date"],
                    code=values["service_code"],
                    units=values["units"],
                    billed_cents=values["billed_amount"],
                    received_on=values["received_date"],
                ),
            )
        )
    return ParsedFile(path.name, hashlib.sha256(data).hexdigest(), lines, rejects)


def write_claims_csv(path: str | Path, lines: list[ClaimLine]) -> Path:
    """Write lines in the template (the synthetic season and the tests use it; so can a provider)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for x in lines:
            w.writerow(
                [x.provider_id, x.claim_no, x.claim_line, x.voucher_id, x.patient_id,
                 x.service_date.isoformat(), x.code, x.units, f"{x.billed_cents / 100:.2f}",
                 x.received_on.isoformat()]
            )  # fmt: skip
    return path
