"""The UDS page: a link to the UDS Excel workbook when the ``chc_equity.uds`` package can build one.

The UDS tables are built by the UDS package (``chc-equity uds``); this module only looks for its
workbook writer and streams the result. UDS cells are unsuppressed counts of a center's own patients
(a center's filing), so the download is for the roles that may see patient-level data, and a center-bound
user gets their own center only. Until the writer exists the page says the tables are not built yet.

The writer builds helper tables (visits, UDS patients, attributes), but the web app must never write to
the warehouse. So the build runs in a private in-memory DuckDB that ATTACHes the warehouse READ_ONLY and
exposes each of its tables as a view under the same name (:func:`overlay`): reads go to the warehouse,
the helper tables land in memory and vanish with the connection.

UDS+ submissions (docs/udsplus.md): the export needs the warehouse and the operator's key, so it is the
CLI's job (``chc-equity udsplus export``); the page only lists the packages the CLI wrote beside the
warehouse (:mod:`chc_equity.udsplus.store`) and streams one as a zip, for network admins only (the
package is patient-level, de-identified, and submitting it is the network's act).
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from fastapi import HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from chc_equity.udsplus import store
from chc_equity.web.data import WarehouseUnavailable
from chc_equity.web.roles import ADMIN_ROLES, PATIENT_LEVEL_ROLES, Principal

# Tables the UDS build (re)creates itself: not mirrored, so its CREATE OR REPLACE TABLE succeeds.
BUILT_BY_UDS = frozenset({"uds_visits", "uds_patients", "patient_attributes"})

# (module, function) pairs the UDS package may expose: f(con, *, year, center=None) -> openpyxl Workbook
# or bytes. Checked in order; the first present one is used.
WRITERS: tuple[tuple[str, str], ...] = (
    ("chc_equity.uds.excel", "workbook_bytes"),
    ("chc_equity.uds.export", "workbook_bytes"),
    ("chc_equity.uds", "workbook_bytes"),
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class UdsStatus:
    available: bool
    allowed: bool
    message: str


def _writer() -> Any | None:
    for module_name, attr in WRITERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def status_of_writer() -> bool:
    """Whether the UDS package can build a workbook yet."""
    return _writer() is not None


def status(request: Request, user: Principal) -> UdsStatus:
    allowed = user.role in PATIENT_LEVEL_ROLES
    if _writer() is None:
        return UdsStatus(False, allowed, "UDS tables are not built yet.")
    if not allowed:
        return UdsStatus(True, False, "UDS tables hold unsuppressed counts; your role may not download them.")
    scope = user.center or "the whole network"
    return UdsStatus(True, True, f"UDS tables (3A, 3B, 4, 6B, 7) for {scope}.")


@contextmanager
def overlay(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection whose tables are read-only views of the warehouse at ``path``."""
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"ATTACH '{_sql_str(str(path))}' AS wh (READ_ONLY)")
        except duckdb.IOException as exc:
            raise WarehouseUnavailable("The warehouse is busy (an ingest is writing). Try again.") from exc
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh'"
        ).fetchall()
        for schema, table in tables:
            if table in BUILT_BY_UDS:
                continue
            con.execute(f'CREATE SCHEMA IF NOT EXISTS memory."{schema}"')
            con.execute(f'CREATE VIEW memory."{schema}"."{table}" AS SELECT * FROM wh."{schema}"."{table}"')
        con.execute("USE memory")
        yield con
    finally:
        con.close()


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _latest_year(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = con.execute("SELECT max(year(period_end)) FROM agg_runs").fetchone()
    except duckdb.CatalogException:
        return None
    return int(row[0]) if row and row[0] else None


def download(request: Request, user: Principal) -> Response:
    """Build and stream the UDS workbook of the latest precomputed year (center-bound: own center)."""
    if user.role not in PATIENT_LEVEL_ROLES:
        raise HTTPException(status_code=403, detail="Your role may not download UDS tables.")
    writer = _writer()
    if writer is None:
        raise HTTPException(status_code=404, detail="UDS tables are not built yet.")
    path: Path = request.app.state.config.warehouse
    if not path.exists():
        raise WarehouseUnavailable(f"No warehouse yet at {path.name}: run `chc-equity ingest` first.")
    with overlay(path) as con:
        year = _latest_year(con)
        if year is None:
            raise HTTPException(status_code=404, detail="No measure period precomputed yet.")
        try:
            result = writer(con, year=year, center=user.center)
        except duckdb.Error as exc:
            # Generic message: a DuckDB error can quote a value, and values can be patient data.
            raise HTTPException(
                status_code=409,
                detail="UDS tables cannot be built from this warehouse yet (views or measures missing).",
            ) from exc
    if not isinstance(result, bytes | bytearray):
        buffer = io.BytesIO()
        result.save(buffer)
        result = buffer.getvalue()
    name = f"uds-{year}-{user.center or 'network'}.xlsx"
    return Response(
        bytes(result), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def udsplus_packages(request: Request, user: Principal) -> list[store.PackageInfo] | None:
    """The exported UDS+ packages for a network admin; ``None`` for every other role (no section)."""
    if user.role not in ADMIN_ROLES:
        return None
    return store.list_packages(store.root_for(request.app.state.config.warehouse))


def udsplus_zip(request: Request, user: Principal, submission_id: str) -> StreamingResponse:
    """Stream one package as a zip: its manifest, NDJSON files and validation report, nothing else."""
    if user.role not in ADMIN_ROLES:  # the route's guard says so too; this keeps the function safe alone
        raise HTTPException(status_code=403, detail="Only network admins may download UDS+ submissions.")
    info = store.find_package(store.root_for(request.app.state.config.warehouse), submission_id)
    if info is None:
        raise HTTPException(status_code=404, detail="No such UDS+ submission.")
    name = f"udsplus-{info.center}-{info.year}-{info.submission_id}.zip"
    return StreamingResponse(
        store.zip_stream(info),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
