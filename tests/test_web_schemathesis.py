"""Property-based fuzzing of the /api OpenAPI document with schemathesis: no server errors, responses
conform to the documented schemas. Runs signed in as a network admin (the widest access) and as a
center-staff user (the scoped branch), each with its CSRF header."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from browser.webseed import add_users, build_warehouse, login, make_app
from chc_equity.web.security import CSRF_HEADER, SESSION_COOKIE

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module", params=["admin", "staff-north"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("fuzz") / "wh.duckdb")
    add_users(warehouse)
    app = make_app(warehouse)
    client = TestClient(app)
    assert login(client, request.param).status_code == 303
    headers = {
        "Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}",
        CSRF_HEADER: client.get("/api/me").json()["csrf_token"],
    }
    return schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=headers), headers


def test_openapi_document_covers_the_api(api) -> None:
    schema, _ = api
    paths = set(schema.raw_schema["paths"])
    assert {
        "/api/health",
        "/api/me",
        "/api/centers",
        "/api/centers/{center}/loads",
        "/api/data-quality",
        "/api/periods",
        "/api/overview",
        "/api/measures/{measure}",
        "/api/centers/{center}/measures",
        "/api/centers/{center}/measures/{measure}/gaps",
        "/api/centers/{center}/previsit",
    } <= paths
    assert all(p.startswith("/api/") for p in paths)  # pages are not part of the API document


def test_fuzz_api(api) -> None:
    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    statuses: list[int] = []
    for operation in operations:

        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case) -> None:
            statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

        run()
    assert len(statuses) >= 12 * 10 and 200 in statuses and max(statuses) < 500
