"""Sign in and sign out.

The login form carries its own CSRF token (a random value in a short-lived SameSite cookie, echoed in a
hidden field) so another site cannot sign a browser into an attacker's account. Failed attempts are
counted per (username, client IP): after ``max_failures`` in the window the answer is 429 until the
window passes, whether or not the next password would be right.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from chc_equity.web.authstore import AuthStore
from chc_equity.web.roles import ALL_ROLES, Principal, Role
from chc_equity.web.security import (
    SESSION_COOKIE,
    auth_store,
    csrf_protect,
    optional_user,
    public,
    require_role,
)

router = APIRouter(include_in_schema=False)


def home(role: Role | str | None) -> str:
    """Where a user lands after signing in: the voucher program's staff on their program, others on the
    network overview."""
    return "/vouchers" if role == Role.PROGRAM_STAFF else "/"


LOGIN_CSRF_COOKIE = "chc_login_csrf"


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"user": None, "error": error, "login_csrf": token}, status_code=status
    )
    secure = request.app.state.config.secure_cookies
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=secure, path="/login"
    )
    return response


@router.get("/login", dependencies=[Depends(public)])
def login_form(request: Request, user: Annotated[Principal | None, Depends(optional_user)]) -> Response:
    if user is not None:
        return RedirectResponse(home(user.role), status_code=303)
    return _login_page(request)


@router.post("/login", dependencies=[Depends(public)])
def login(
    request: Request,
    store: Annotated[AuthStore, Depends(auth_store)],
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    login_csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, login_csrf):
        return _login_page(request, "The form expired; please try again.", status=403)
    ip = _client_ip(request)
    if store.throttled(username, ip):
        return _login_page(request, "Too many failed attempts. Wait 15 minutes and try again.", status=429)
    token = store.authenticate(username, password, ip)
    if token is None:
        return _login_page(request, "Wrong username or password.", status=401)
    row = store.user(username)
    response = RedirectResponse(home(row.role if row else None), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.config.secure_cookies,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout(
    request: Request,
    user: Annotated[Principal, Depends(require_role(*ALL_ROLES))],
    store: Annotated[AuthStore, Depends(auth_store)],
) -> Response:
    store.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
