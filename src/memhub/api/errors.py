"""Rendering errors: every failure becomes ``{"detail", "error_code", "context"}``."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memhub.errors import MemhubError

log = logging.getLogger("memhub.api")


def error_response(exc: MemhubError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MemhubError)
    async def _memhub_error(_request: Request, exc: MemhubError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        return JSONResponse(
            {
                "detail": f"invalid request: {where}: {first['msg']}" if where else first["msg"],
                "error_code": "VALIDATION_ERROR",
                "context": {"errors": errors},
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = (
            HTTPStatus(exc.status_code).name
            if exc.status_code in HTTPStatus._value2member_map_
            else "HTTP_ERROR"
        )
        return JSONResponse(
            {"detail": str(exc.detail), "error_code": code, "context": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            {"detail": "Internal server error", "error_code": "INTERNAL_ERROR", "context": None},
            status_code=500,
        )
