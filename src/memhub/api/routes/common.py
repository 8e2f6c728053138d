"""Pieces the /v1 routes share: workspace access, preconditions from headers, fences."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Path

from memhub.api.context import Principal, authorize, get_principal, get_store
from memhub.core.paths import validate_name
from memhub.errors import BadRequest
from memhub.store import Fence, Precondition, Store

StoreDep = Annotated[Store, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
WorkspaceName = Annotated[str, Path(description="workspace name")]

MAX_INT64 = 2**63 - 1  # revs, sizes and tokens are BIGINT columns
MAX_HEADER_TEXT = 255  # Content-Type, session id: String(255) columns

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


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
    if value is None:
        return None
    text = unquote(value)
    if len(text) > max_chars:
        raise BadRequest(f"header text is limited to {max_chars} characters")
    return text
