"""Sign-in (an API key for a session cookie), sign-out, and the UI's front door.

The key is verified by the same :class:`Authenticator` as an API request's
header, then forgotten: the browser gets an opaque session id in a cookie
(HttpOnly, SameSite=Strict, Path=/ui, Secure unless the UI is served on
loopback). The sign-in form is protected from login CSRF by a double-submit
token. Sign-in attempts count against the client IP's rate limit (admission).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from memhub.auth.authenticator import Authenticator
from memhub.errors import MemhubError
from memhub.ui.deps import FormUi, page
from memhub.ui.sessions import COOKIE, LOGIN_COOKIE, PREFIX, UiSessions, cookie_value

router = APIRouter(include_in_schema=False)
MAX_KEY_CHARS = 4096


def _loopback(request: Request) -> bool:
    host = request.url.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _safe_next(target: str | None) -> str:
    """Only a path of this UI: never another site (``//evil``), never a scheme."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//"):
        return PREFIX + "/"
    if "\\" in target or any(ord(c) < 0x20 for c in target):
        return PREFIX + "/"
    return target


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=not _loopback(request),
    )


@router.get("/")
async def front(request: Request) -> Response:
    session = request.scope.get("state", {}).get("ui_session")
    if session is None:
        return RedirectResponse(f"{PREFIX}/login", status_code=303)
    home = session.principal.workspace or request.app.state.default_workspace
    return RedirectResponse(f"{PREFIX}/w/{home}/files/", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", login_token=token, next=_safe_next(next))
    _set_cookie(request, response, LOGIN_COOKIE, token, 900)
    return response


@router.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=MAX_KEY_CHARS)],
    login_token: Annotated[str, Form(max_length=128)],
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    expected = cookie_value(Headers(scope=request.scope), LOGIN_COOKIE) or ""
    if not expected or not hmac.compare_digest(expected.encode(), login_token.encode()):
        return _login_error(request, 403, "the sign-in form expired; try again", next)
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = await run_in_threadpool(authenticator.authenticate, key.strip())
    except MemhubError:
        principal = None
    if principal is None:
        return _login_error(request, 401, "that key is not valid (revoked or expired?)", next)
    if principal.kind == "jwt":  # a token has its own expiry, which a session would outlive
        return _login_error(request, 401, "sign in with an API key, not a token", next)
    sessions: UiSessions = request.app.state.sessions
    session_id, _session = await sessions.store.create(principal)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(request, response, COOKIE, session_id, int(sessions.store.ttl))
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


def _login_error(request: Request, status: int, message: str, next: str | None) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status=status,
        login_token=token,
        next=_safe_next(next),
        message=message,
    )
    _set_cookie(request, response, LOGIN_COOKIE, token, 900)
    return response


@router.post("/logout")
async def logout(request: Request, ui: FormUi) -> Response:
    sessions: UiSessions = request.app.state.sessions
    await sessions.store.delete(ui.session_id)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
