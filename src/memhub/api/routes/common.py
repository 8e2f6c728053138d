"""Pieces the /v1 routes share: workspace access, preconditions from headers, fences."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote

import pydantic_core
from fastapi import Depends, Path, Request, Response
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, model_validator

from memhub.api.context import Principal, authorize, get_principal, get_store
from memhub.core.paths import validate_name
from memhub.errors import BadRequest
from memhub.store import Fence, Precondition, Store

StoreDep = Annotated[Store, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
WorkspaceName = Annotated[str, Path(description="workspace name")]

# revs, sizes and tokens are BIGINT columns; the API bounds them at 2**53 - 1, the
# largest integer a JSON number (a double) holds exactly, so clients and the
# document agree on the limit to the last digit
MAX_INT64 = 2**53 - 1
MAX_HEADER_TEXT = 255  # Content-Type, session id: String(255) columns

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class StrictBody(BaseModel):
    """A JSON request body taken as its schema says: ``0`` is not a boolean and ``"5"``
    not an integer (what the OpenAPI document promises is what is accepted)."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        """``153.0`` is the integer 153 in JSON (and JSON Schema): accept it for ints."""
        if not isinstance(data, dict):
            return data
        fixed = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            value = fixed.get(key)
            if (
                isinstance(value, float)
                and value.is_integer()
                and field.annotation in (int, int | None)
            ):
                fixed[key] = int(value)
        return fixed


_KNOWN_PARAMS: dict[str, frozenset[str]] = {}


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare is a 400
    (a typo such as ``?prefx=`` would otherwise be ignored silently)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _KNOWN_PARAMS.get(route.unique_id)
    if known is None:  # every parameter name the route declares (query, path, header)
        known = frozenset(p.alias for p in get_flat_params(route.dependant))
        _KNOWN_PARAMS[route.unique_id] = known
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadRequest(
            f"unknown query parameter {unknown[0]!r}",
            context={"unknown": unknown[:10], "known": sorted(known)},
        )


def page_response(body: dict[str, Any]) -> Response:
    """A page of up to 10,000 revisions (the change feed, a listing, a history), written
    straight to JSON. Its route's ``response_model`` documents it, the client reads it
    into that model, and ``tests/integration/test_wire_models.py`` (and Schemathesis)
    check that it validates; validating every revision again here would add about 4 µs
    per revision to the sync hot path."""
    return Response(pydantic_core.to_json(body), media_type="application/json")


def access(principal: Principal, workspace: str, scope: str) -> str:
    workspace = validate_name(workspace, "workspace")
    authorize(principal, workspace, scope)
    return workspace


def parse_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


def precondition_from_headers(if_match: str | None, if_none_match: str | None) -> Precondition:
    """``If-Match: "<sha256>"`` (or an md5, or ``*``) / ``If-None-Match: *``."""
    if if_match is not None and if_none_match is not None:
        raise BadRequest("send If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise BadRequest("on writes, If-None-Match takes only '*' (create only)")
        return Precondition(exists=False)
    if if_match is None:
        return Precondition()
    if if_match.strip() == "*":
        return Precondition(exists=True)
    tag = parse_etag(if_match)
    if _HEX32.match(tag):
        return Precondition(md5=tag)
    if _HEX64.match(tag):
        return Precondition(sha256=tag)
    raise BadRequest(
        "If-Match takes '*', a quoted sha256 ETag or an md5", context={"if_match": if_match}
    )


def fence_from(lease: str | None, token: str | int | None) -> Fence | None:
    if lease is None and token is None:
        return None
    if lease is None or token is None:
        raise BadRequest("a fence needs both the lease name and its token")
    try:
        value = int(token)
    except ValueError as exc:
        raise BadRequest("the lease token must be an integer") from exc
    return Fence(validate_name(lease, "lease name"), value)


def header_text(value: str | None, max_chars: int = 4096) -> str | None:
    """Free text in a header, percent-encoded UTF-8 allowed."""
    return None if value is None else limited_text(unquote(value), max_chars)


def limited_text(text: str, max_chars: int = 4096) -> str:
    """A revision's message or session id, as a header or an MCP tool gives it."""
    if len(text) > max_chars:
        raise BadRequest(f"header text is limited to {max_chars} characters")
    return text
