"""Authentication and authorization as FastAPI dependencies: the one central mechanism.

Every route declares its rule by depending on exactly one *guard*:

* :func:`public` -- no session needed (login, health);
* :func:`require_role` ``(*roles)`` -- a signed-in user with one of the roles;
* :func:`require_center_access` / :func:`optional_center_access` -- as ``require_role``, and the
  ``center`` path/query parameter must be a center the user may see (center staff: only their own).
  They return the center the handler must filter by, so a handler cannot forget the scope.

State-changing routes also depend on :func:`csrf_protect`. Guards carry an :class:`Access` marker;
:func:`route_registry` walks each route's dependency tree to list the rule actually enforced, which is what
the authorization-matrix test enumerates (a route without a guard fails that test).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from chc_equity.web.authstore import AuthStore
from chc_equity.web.roles import ALL_ROLES, ANALYTICS_ROLES, PATIENT_LEVEL_ROLES, Principal, Role

SESSION_COOKIE = "chc_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotAuthenticated(Exception):
    """No valid session: the app answers 401 for /api and redirects pages to /login."""


@dataclass(frozen=True, slots=True)
class Access:
    """The access rule of a route, as enforced by its guard."""

    roles: frozenset[Role] | None  # None: public
    center_scoped: bool = False
    patient_level: bool = False
    csrf: bool = False

    def allows(self, role: Role | None) -> bool:
        if self.roles is None:
            return True
        return role is not None and role in self.roles


def _mark(fn: Callable[..., Any], access: Access) -> Callable[..., Any]:
    fn.__chc_access__ = access  # type: ignore[attr-defined]
    return fn


def auth_store(request: Request) -> AuthStore:
    return request.app.state.auth


def current_user(request: Request) -> Principal:
    """The signed-in user, from the HttpOnly session cookie; raises :class:`NotAuthenticated`."""
    token = request.cookies.get(SESSION_COOKIE, "")
    principal = auth_store(request).session(token) if token else None
    if principal is None:
        raise NotAuthenticated()
    request.state.user = principal  # for the access log (username only)
    return principal


def optional_user(request: Request) -> Principal | None:
    """The signed-in user if any (the login page uses it to skip itself)."""
    try:
        return current_user(request)
    except NotAuthenticated:
        return None


def public() -> None:
    """Guard for routes that need no session."""


_mark(public, Access(roles=None))


def require_role(*roles: Role, patient_level: bool = False) -> Callable[..., Principal]:
    """Guard: a signed-in user whose role is one of ``roles`` (when none are given: every role of the
    analytics, i.e. all but the voucher program's staff, who see only their program's pages)."""
    allowed = frozenset(roles) or ANALYTICS_ROLES
    if patient_level:
        allowed &= PATIENT_LEVEL_ROLES

    def guard(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if user.role not in allowed:
            raise HTTPException(status_code=403, detail="Your role may not use this page.")
        return user

    return _mark(guard, Access(roles=allowed, patient_level=patient_level))


@dataclass(frozen=True, slots=True)
class CenterScope:
    """The user and the center the handler must restrict to (``None``: all centers)."""

    user: Principal
    center: str | None


def _check_center(user: Principal, center: str) -> None:
    # The same 403 whether or not the center exists, so center staff cannot probe other centers' ids.
    if not user.may_see_center(center):
        raise HTTPException(status_code=403, detail="You may only see your own center.")


def require_center_access(*roles: Role, patient_level: bool = False) -> Callable[..., CenterScope]:
    """Guard for routes with a required ``center`` (path or query) parameter.

    (The closures use ``= Depends(...)`` defaults: string annotations naming a local variable cannot
    be resolved by FastAPI under ``from __future__ import annotations``.)
    """
    role_guard = require_role(*roles, patient_level=patient_level)

    def guard(center: str, user: Principal = Depends(role_guard)) -> CenterScope:
        _check_center(user, center)
        return CenterScope(user, center)

    access = role_guard.__chc_access__  # type: ignore[attr-defined]
    return _mark(guard, Access(access.roles, center_scoped=True, patient_level=patient_level))


def optional_center_access(*roles: Role) -> Callable[..., CenterScope]:
    """Guard for routes with an optional ``?center=`` filter; a user bound to a center gets theirs."""
    role_guard = require_role(*roles)

    def guard(center: str | None = None, user: Principal = Depends(role_guard)) -> CenterScope:
        if center is None:
            return CenterScope(user, user.center)
        _check_center(user, center)
        return CenterScope(user, center)

    access = role_guard.__chc_access__  # type: ignore[attr-defined]
    return _mark(guard, Access(access.roles, center_scoped=True))


async def csrf_protect(request: Request, user: Annotated[Principal, Depends(current_user)]) -> None:
    """Unsafe methods must echo the session's CSRF token: header for the API, hidden field for forms."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, user.csrf_token):
        raise HTTPException(status_code=403, detail="Missing or invalid CSRF token; reload the page.")


_mark(csrf_protect, Access(roles=ALL_ROLES, csrf=True))


# -- registry -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteRule:
    method: str
    path: str
    access: Access | None  # None: no guard found (a bug the matrix test reports)

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api")


def _guards(dependant: Dependant) -> Iterable[Access]:
    for dep in dependant.dependencies:
        marker = getattr(dep.call, "__chc_access__", None)
        if marker is not None:
            yield marker
        yield from _guards(dep)


def route_access(route: APIRoute) -> Access | None:
    """The rule a route enforces: its guard's rule, with ``csrf`` set when it also has csrf_protect."""
    markers = list(_guards(route.dependant))
    csrf = any(m.csrf for m in markers)
    guards = [m for m in markers if not m.csrf]
    if not guards:
        return Access(roles=ALL_ROLES, csrf=True) if csrf else None
    # The outermost guard is listed first; nested role guards repeat the same roles.
    main = max(guards, key=lambda m: (m.center_scoped, m.patient_level))
    return Access(main.roles, main.center_scoped, main.patient_level, csrf)


def route_registry(app: FastAPI) -> list[RouteRule]:
    """Every HTTP route of the app (method x path) with the access rule it enforces.

    Reads the routers the app factory included (``app.state.routers``; they are included without a
    prefix, so their routes' paths are the served paths) rather than FastAPI's internal wrappers.
    """
    rules = []
    for router in app.state.routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                access = route_access(route)
                rules.extend(RouteRule(m, route.path, access) for m in sorted(route.methods))
    return rules
