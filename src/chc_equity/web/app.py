"""The FastAPI application factory: configuration, middleware, error handling, routers.

Pages are server-rendered (Jinja2) with a little vendored JS; the JSON API lives under ``/api`` with its
OpenAPI document at ``/api/openapi.json`` (signed-in users only, like every /api route but health).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from chc_equity import serving
from chc_equity.appdb import AppDB, database_url, open_for_warehouse
from chc_equity.web.authstore import AuthStore, SessionPolicy
from chc_equity.web.data import DATA_VERSION_HEADER, WarehouseUnavailable, snapshot_of
from chc_equity.web.security import NotAuthenticated

HERE = Path(__file__).parent
ACCESS_LOG = logging.getLogger("chc_equity.web.access")

# Pages hold patient-derived aggregates: never cache them, never frame them, load scripts only from us.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Where the data lives and how cookies behave.

    ``database`` is the app database (users, sessions, CHWs, outreach): a SQLAlchemy URL or a SQLite
    path; by default ``$CHC_EQUITY_DATABASE_URL`` or ``<warehouse>.app.sqlite`` (see ``chc_equity.appdb``).
    ``secure_cookies`` should be on whenever the app is served over HTTPS (behind a reverse proxy);
    it is off by default because the default is a loopback address over plain HTTP.
    """

    warehouse: Path
    database: str | Path | None = None
    secure_cookies: bool = False
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    # The network's own measure targets (YAML ``targets: {CMS165: 0.70}``); by default
    # ``<warehouse>.targets.yaml`` beside the warehouse when it exists (chc_equity.network.benchmarks).
    targets: Path | None = None

    @property
    def targets_file(self) -> Path:
        return self.targets if self.targets is not None else self.warehouse.with_suffix(".targets.yaml")

    @property
    def database_url(self) -> str:
        return str(self.database) if self.database is not None else database_url(self.warehouse)

    def open_database(self) -> AppDB:
        """The app database, migrated to the latest schema (and a legacy auth file imported)."""
        return AppDB(self.database) if self.database is not None else open_for_warehouse(self.warehouse)


def _is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def create_app(config: WebConfig) -> FastAPI:
    """Build the app for one warehouse; the app database is created or migrated if needed."""
    from chc_equity.outreach.page import WorklistStore
    from chc_equity.vbp.worklist import payer_items
    from chc_equity.web import (
        routes_api,
        routes_auth,
        routes_child,
        routes_equity,
        routes_hospital,
        routes_improvement,
        routes_measures,
        routes_outreach,
        routes_pages,
        routes_vbp,
        routes_vouchers,
    )

    app = FastAPI(
        title="chc-equity",
        summary="Quality and health-equity analytics for community health centers",
        version="0.1.0",
        openapi_url=None,  # served by routes_api behind login
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    if config.warehouse.exists():  # publish a first snapshot (or a fresher one) before serving
        serving.ensure_current(config.warehouse)
    app.state.db = config.open_database()
    app.state.auth = AuthStore(app.state.db, config.policy)
    # prepared CHW worklists, kept until the warehouse changes; payer gap files add their open gaps
    app.state.worklists = WorklistStore(sources=(payer_items,))
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.routers = (
        routes_auth.router,
        routes_pages.router,
        routes_measures.router,
        routes_outreach.pages,
        routes_improvement.router,
        routes_api.router,
        routes_outreach.api,
        routes_vouchers.pages,
        routes_vbp.router,
        routes_hospital.router,
        routes_equity.router,
        routes_child.router,
    )
    for router in app.state.routers:
        app.include_router(router)
    _install_handlers(app)
    _install_middleware(app)
    return app


def loggable_path(path: str) -> str:
    """The decoded request path with control characters escaped (``%00`` arrives as a NUL byte).

    Why: a log line must stay one printable line -- a raw NUL, CR or LF from a crafted URL would corrupt
    the log file or forge extra lines. Printable text, including non-ASCII letters, is kept as is.
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in path)


def _install_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def access_log_and_headers(request: Request, call_next) -> Response:
        # Our own access log: path only, never the query string (it could carry identifiers).
        started = time.perf_counter()
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        snap = snapshot_of(request.state)
        if snap is not None:  # which published state the data in this response comes from
            response.headers[DATA_VERSION_HEADER] = str(snap.seq)
        user = getattr(request.state, "user", None)
        ACCESS_LOG.info(
            "%s %s %d %.1fms user=%s",
            request.method,
            loggable_path(request.url.path),
            response.status_code,
            (time.perf_counter() - started) * 1000,
            user.username if user else "-",
        )
        return response


def _install_handlers(app: FastAPI) -> None:
    templates: Jinja2Templates = app.state.templates

    def page_error(request: Request, status: int, message: str) -> Response:
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message, "user": None}, status_code=status
        )

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "Not signed in."}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(WarehouseUnavailable)
    async def warehouse_unavailable(request: Request, exc: WarehouseUnavailable) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "10"})
        return page_error(request, 503, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return page_error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Only the location and message of each error: the offending input is not echoed (or logged).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        return page_error(
            request, 422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        )
