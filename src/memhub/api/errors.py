"""Rendering errors: every failure becomes ``{"detail", "error_code", "context"}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from memhub.errors import InvalidRequest, MemhubError

log = logging.getLogger("memhub.api")


def invalid_request(errors: Sequence[Any]) -> InvalidRequest:
    """A request that failed validation, named by its first error: FastAPI's errors (their
    ``loc`` starts with where the value was: ``body``, ``query``, ``path``), or a body
    model's own, located under ``body`` by the caller (the MCP tools' in-process hub)."""
    listed = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    first = listed[0] if listed else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
    detail = f"invalid request: {where}: {first['msg']}" if where else str(first["msg"])
    return InvalidRequest(detail, context={"errors": listed})


def error_response(exc: MemhubError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods of the path template the request matched (``Allow`` on 405): the
    router's own answer knows only the first route of a template, and a template such
    as ``…/chunks/{sha256}`` also matches ``…/chunks/missing``, which is not its path."""
    template = _template(app, scope, Match.PARTIAL)
    return [
        method
        for method in METHODS
        if template is not None and _template(app, {**scope, "method": method}) == template
    ]


def _template(app: FastAPI, scope: Scope, wanted: Match = Match.FULL) -> str | None:
    """The path template of the first route that matches ``scope`` (fully, or as
    ``wanted``), looking through included routers."""
    for context in iter_route_contexts(app.router.routes):
        match, _child = context.route.matches(scope)
        if match == Match.FULL or match == wanted:
            return str(context.path)
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MemhubError)
    async def _memhub_error(_request: Request, exc: MemhubError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = (
            HTTPStatus(exc.status_code).name
            if exc.status_code in HTTPStatus._value2member_map_
            else "HTTP_ERROR"
        )
        headers = dict(getattr(exc, "headers", None) or {})
        context = None
        if exc.status_code == 405:
            # the first route of the path only knows its own methods: ask every route
            allowed = allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            context = {"allowed": allowed}
        return JSONResponse(
            {"detail": str(exc.detail), "error_code": code, "context": context},
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            {"detail": "Internal server error", "error_code": "INTERNAL_ERROR", "context": None},
            status_code=500,
        )
