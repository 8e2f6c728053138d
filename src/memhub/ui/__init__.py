"""The web UI, served at ``/ui`` by the same process (Jinja2 pages, vendored htmx).

:func:`build_ui` returns a sub-application to mount at ``/ui`` and the session
resolver the admission middleware uses for it. The UI's routes are hidden from
the API's OpenAPI document; every page calls the same services (store, memory,
keys) with the same authorisation (:func:`memhub.api.routes.common.access`) as
the API does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memhub import __version__
from memhub.auth.authenticator import Authenticator
from memhub.errors import MemhubError
from memhub.ui.deps import SignInRequired, page
from memhub.ui.render import build_environment
from memhub.ui.sessions import MemorySessionStore, RedisSessionStore, SessionStore, UiSessions
from memhub.ui.tree import Tree

log = logging.getLogger("memhub.ui")
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC_CACHE = b"public, max-age=86400"  # asset URLs carry the version
UI_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


@dataclass(frozen=True, slots=True)
class UiMount:
    app: FastAPI
    sessions: UiSessions


class UiHeadersMiddleware:
    """A strict CSP on every UI answer; pages (not assets) are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(("/ui/static/", "/static/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"cache-control", STATIC_CACHE if static else b"no-store")]
                message["headers"] = [*message.get("headers", []), *UI_HEADERS, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_ui(
    main: FastAPI,
    authenticator: Authenticator,
    session_seconds: float,
    redis_url: str | None = None,
) -> UiMount:
    """The UI sub-application over ``main``'s services (mount it at ``/ui``); sessions in
    Redis when ``redis_url`` is given, else in this process."""
    from memhub.ui import (
        pages_auth,
        pages_files,
        pages_history,
        pages_items,
        pages_ops,
        pages_search,
        pages_sessions,
    )

    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, title="memhub UI")
    names = ("settings", "store", "metrics", "keys", "memory", "items", "default_workspace")
    for name in names:
        setattr(ui.state, name, getattr(main.state, name))
    ui.state.memory_sessions = main.state.sessions  # transcripts → staged edits (not UiSessions)
    ui.state.templates = build_environment()
    ui.state.templates.globals.update(version=__version__, quote=quote)
    ui.state.tree = Tree(main.state.store)
    ui.state.authenticator = authenticator
    store: SessionStore = (
        RedisSessionStore(redis_url, session_seconds)
        if redis_url
        else MemorySessionStore(session_seconds)
    )
    sessions = UiSessions(store, main.state.keys)
    ui.state.sessions = sessions
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")
    pages = (pages_auth, pages_files, pages_history, pages_search, pages_sessions, pages_items)
    for module in (*pages, pages_ops):
        ui.include_router(module.router)
    _install_error_pages(ui)
    ui.add_middleware(GZipMiddleware, minimum_size=1024)
    ui.add_middleware(UiHeadersMiddleware)
    return UiMount(ui, sessions)


def _install_error_pages(ui: FastAPI) -> None:
    @ui.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
        return _error(request, 401, "UNAUTHORIZED", "your session has ended; sign in again")

    @ui.exception_handler(MemhubError)
    async def _memhub(request: Request, exc: MemhubError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        return _error(request, exc.status, exc.code, exc.detail, exc.context, exc.headers)

    @ui.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        detail = f"invalid request: {where}: {first.get('msg', '')}".strip(": ")
        return _error(request, 422, "VALIDATION_ERROR", detail)

    @ui.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, "HTTP_ERROR", str(exc.detail))

    @ui.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in the web UI", exc_info=exc)
        return _error(request, 500, "INTERNAL_ERROR", "Internal server error")


def _error(
    request: Request,
    status: int,
    code: str,
    detail: str,
    context: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    session = request.scope.get("state", {}).get("ui_session")
    response = page(
        request,
        "error.html",
        status=status,
        session=session,
        error={"status": status, "error_code": code, "detail": detail, "context": context},
    )
    for name, value in (headers or {}).items():
        if name.lower() != "www-authenticate":
            response.headers[name] = value
    return response
