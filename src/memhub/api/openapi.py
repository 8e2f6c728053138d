"""The OpenAPI document, made to describe the API as it behaves, and ``/docs`` offline.

:func:`install_openapi` replaces FastAPI's document with one post-processed
from the app's routes, so routes added by anyone are covered the same way:

- security schemes (``Authorization: Bearer`` and ``X-API-Key``), required by
  every operation but the public ones (``/health``, ``/metrics`` when public,
  the docs themselves), so Swagger UI shows an Authorize button;
- memhub's error body (:class:`ErrorBody`, ``{detail, error_code, context}``)
  for every error status an operation can answer (the statuses every
  authenticated route can meet, plus 409/412 on writes, plus what the route
  declares itself), 422 included instead of FastAPI's own schema;
- raw request bodies of the file routes, raw response bodies of file reads,
  and the success statuses those routes really answer (201, 204, 304);
- a human summary per operation (the first line of its docstring) and one tag
  per route family.

A route author who wants the document right for a new route: write a
docstring whose first line is the summary, and declare any status the route
answers beyond the common ones with ``responses=error_responses(409, …)`` (or
``responses={201: {...}}`` for a success status) on the decorator.

``/docs`` serves Swagger UI from the ``swagger-ui-bundle`` package: no CDN (and so no
``/redoc``, whose script only a CDN offers).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

DOCS_ASSETS = {
    "/docs/swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "/docs/swagger-ui.css": "swagger-ui.css",
    "/docs/favicon-32x32.png": "favicon-32x32.png",
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
COMMON_ERRORS = (400, 401, 403, 404, 413, 422, 429, 503)
WRITE_ERRORS = (409, 412)
PUBLIC_ERRORS = (400, 413, 422, 429, 503)
BINARY = {"schema": {"type": "string", "format": "binary"}}

# (path prefix or pattern, tag): the first that matches names the family
FAMILIES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/(health|metrics)$"), "health"),
    (re.compile(r"^/(blob/|sync$)"), "files (memory proxy)"),
    (re.compile(r"^/memory/"), "memory (DiffMem)"),
    (re.compile(r"^/auth/"), "auth"),
    (re.compile(r"^/admin/"), "admin"),
    (re.compile(r"^/v1/workspaces/\{workspace\}/(changes|chunks|commits)"), "v1 sync"),
    (re.compile(r"^/v1/workspaces/\{workspace\}/batch/"), "v1 batch"),
    (re.compile(r"^/v1/workspaces/\{workspace\}/leases"), "v1 leases"),
    (re.compile(r"^/v1/workspaces/\{workspace\}/(search|context|index)"), "v1 memory"),
    (
        re.compile(r"^/v1/workspaces(/\{workspace\}(/(files|history|revisions|restore).*)?)?$"),
        "v1 files",
    ),
]

# success statuses FastAPI cannot see (routes that return a Response themselves);
# None: the status has no body
RAW_READS = {
    ("get", "/blob/{path}"),
    ("get", "/v1/workspaces/{workspace}/files/{path}"),
    ("head", "/v1/workspaces/{workspace}/files/{path}"),
    ("get", "/v1/workspaces/{workspace}/revisions/{rev}/content"),
}
RAW_WRITES = {
    ("put", "/blob/{path}"),
    ("put", "/v1/workspaces/{workspace}/files/{path}"),
    ("put", "/v1/workspaces/{workspace}/chunks/{sha256}"),
}
EXTRA_SUCCESS: dict[tuple[str, str], dict[int, str | None]] = {
    ("put", "/blob/{path}"): {200: None, 201: None},
    ("put", "/v1/workspaces/{workspace}/files/{path}"): {201: "json"},
    ("put", "/v1/workspaces/{workspace}/chunks/{sha256}"): {201: "json"},
    ("post", "/v1/workspaces/{workspace}/commits"): {201: "json"},
    ("post", "/v1/workspaces/{workspace}/restore/{path}"): {201: "json"},
    ("get", "/v1/workspaces/{workspace}/files/{path}"): {304: None},
    ("head", "/v1/workspaces/{workspace}/files/{path}"): {304: None},
}
STORAGE_READS = RAW_READS | {("get", "/sync")}


class ErrorBody(BaseModel):
    """Every error memhub answers (4xx and 5xx)."""

    detail: str = Field(description="what went wrong, for a person")
    error_code: str = Field(description="stable machine-readable code, e.g. PRECONDITION_FAILED")
    context: dict[str, Any] | None = Field(description="facts about the failure")
    hint: str | None = Field(default=None, description="what to do about it")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: these statuses answer memhub's error body."""
    return {status: {"model": ErrorBody, "description": _reason(status)} for status in statuses}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def summary_of(description: str) -> str:
    """The first sentence of a docstring (at most about 100 characters)."""
    first = description.strip().split("\n\n", 1)[0].replace("\n", " ")
    first = re.split(r"(?<=[a-z)`*])\. ", first, maxsplit=1)[0].rstrip(".").replace("``", "")
    if len(first) <= 100:
        return first
    return first[:97].rsplit(" ", 1)[0] + "…"


def _generated(operation: dict[str, Any]) -> bool:
    """Whether the summary is FastAPI's, made from the function's name."""
    summary = str(operation.get("summary", ""))
    words = str(operation.get("operationId", "")).replace("_", " ").title()
    return not summary or words.startswith(summary)


def family_of(path: str, tags: list[str]) -> str:
    for pattern, tag in FAMILIES:
        if pattern.search(path):
            return tag
    if tags:
        return tags[0]
    return path.strip("/").split("/", 1)[0] or "root"


def describe(schema: dict[str, Any], public_paths: frozenset[str]) -> dict[str, Any]:
    """Post-process FastAPI's document (see the module docstring)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key (mh_…) or a token from POST /auth/token; the server "
            "also takes the key as `X-API-Key: mh_…` or `Authorization: Token mh_…` (one "
            "credential per request)",
        },
    }
    schema["security"] = [{"bearer": []}]
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "head", "patch", "options"):
                continue
            _describe_operation(path, method, operation, path in public_paths)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


def _describe_operation(path: str, method: str, operation: dict[str, Any], public: bool) -> None:
    operation["tags"] = [family_of(path, operation.get("tags", []))]
    if operation.get("description") and _generated(operation):
        operation["summary"] = summary_of(operation["description"])
    operation["parameters"] = [
        _absent_not_null(p)
        for p in operation.get("parameters", [])
        if not (p.get("in") == "header" and p["name"].lower() in ("content-type", "authorization"))
    ]
    if not operation["parameters"]:
        del operation["parameters"]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    key = (method, path)
    if key in RAW_WRITES:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": BINARY, "*/*": BINARY},
        }
    for status, kind in EXTRA_SUCCESS.get(key, {}).items():
        base = responses.get("200", {}).get("content")
        entry: dict[str, Any] = {"description": _reason(status)}
        if kind == "json" and base:
            entry["content"] = base
        responses[str(status)] = entry
    if key in RAW_READS and "200" in responses:
        responses["200"] = {"description": "the file's bytes", "content": {"*/*": BINARY}}
    if method == "head":
        for entry in responses.values():
            entry.pop("content", None)
    if public:
        operation["security"] = []
    statuses = list(PUBLIC_ERRORS if public else COMMON_ERRORS)
    if method in ("put", "post", "delete") and not public:
        statuses += WRITE_ERRORS
    if key in STORAGE_READS:
        statuses.append(500)  # STORAGE_CORRUPT, BLOB_MISSING: the store is damaged
    for status in statuses:
        entry = responses.setdefault(str(status), {"description": _reason(status)})
        if method != "head":
            declared = entry.get("content", {}).get("application/json", {}).get("schema")
            schema: dict[str, Any] = ERROR_REF
            if declared and declared.get("$ref") not in (ERROR_REF["$ref"], _FASTAPI_422):
                # a peer protocol's own error shape (MemOS's envelope): that, or memhub's
                # (the admission middleware answers before the route does)
                schema = {"anyOf": [declared, ERROR_REF]}
            entry["content"] = {"application/json": {"schema": schema}}
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}


def _absent_not_null(parameter: dict[str, Any]) -> dict[str, Any]:
    """An optional header has no null value: it is sent or it is absent. FastAPI documents
    ``str | None`` as ``anyOf [string, null]``, which says the text ``null`` is valid;
    keep only the value's own schema."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if parameter.get("in") != "header" or parameter.get("required") or not branches:
        return parameter
    values = [b for b in branches if b.get("type") != "null"]
    if len(values) != 1 or len(values) == len(branches):
        return parameter
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**parameter, "schema": {**values[0], **rest}}


def install_openapi(app: FastAPI, *, public_paths: frozenset[str]) -> None:
    """The post-processed document at ``/openapi.json`` and Swagger UI at ``/docs``
    (the app is built with ``docs_url=None, redoc_url=None``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe(document, public_paths | {"/health"})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    assets = _assets_dir()

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    for url, name in DOCS_ASSETS.items():
        _add_asset(app, url, assets / name)


def _add_asset(app: FastAPI, url: str, file: Path) -> None:
    async def asset() -> FileResponse:
        return FileResponse(file, headers={"cache-control": "public, max-age=86400"})

    app.add_api_route(url, asset, include_in_schema=False, methods=["GET"])


def _assets_dir() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # imported only for the docs

    return Path(swagger_ui_bundle.swagger_ui_path)
