"""/v1 change feed, chunk upload and manifest commits: what the sync client uses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor

from memhub.api.routes.common import (
    MAX_INT64,
    PrincipalDep,
    StoreDep,
    StrictBody,
    access,
    fence_from,
    page_response,
    precondition_from_headers,
)
from memhub.api.routes.v1_files import revision_json, write_response
from memhub.api.transfer import receive_limited
from memhub.core.models import ChangesPage, MissingChunks, StoredChunk, WriteInfo
from memhub.core.protocol import MAX_MANIFEST_CHUNKS
from memhub.store import ChunkRef, Store

if TYPE_CHECKING:
    from memhub.api.notify import ChangeNotifier

router = APIRouter(prefix="/v1", tags=["v1"])


class ChunkAddress(StringConvertor):
    """A chunk's address in a route: one path segment, but never a sibling route's own
    name (``/chunks/batch``, ``/chunks/missing``). Without this the template
    ``/chunks/{sha256}`` also matches those paths for other methods: ``PUT /chunks/batch``
    reached the per-chunk upload, and a 405 there listed PUT in ``Allow``. Anything
    else still reaches the route, whose hash check answers 400 for a malformed address."""

    regex = r"(?!(?:batch|missing)$)[^/]+"


register_url_convertor("chunk_address", ChunkAddress())

MAX_WAIT = 60.0
RECHECK = 1.0  # how often a long-poll re-reads the database (writes via other nodes)


class MissingRequest(StrictBody):
    chunks: list[str] = Field(max_length=MAX_MANIFEST_CHUNKS)


class ChunkModel(StrictBody):
    sha256: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=0, le=MAX_INT64)


class LeaseFence(StrictBody):
    name: str
    token: int


class CommitRequest(StrictBody):
    path: str
    sha256: str = Field(min_length=64, max_length=64)
    chunks: list[ChunkModel] = Field(max_length=MAX_MANIFEST_CHUNKS)
    content_type: str | None = Field(default=None, max_length=255)
    message: str | None = Field(default=None, max_length=4096)
    session_id: str | None = Field(default=None, max_length=255)
    if_match: str | None = None
    if_none_match: str | None = None
    lease: LeaseFence | None = None


@router.get("/workspaces/{workspace}/changes", response_model=ChangesPage)
async def changes(
    workspace: str,
    store: StoreDep,
    principal: PrincipalDep,
    request: Request,
    since: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0,
) -> Response:
    """Revisions after ``since`` in rev order. ``wait=S`` long-polls up to S seconds
    for the first change; continue from ``next_since``."""
    workspace = access(principal, workspace, "read")
    notifier = request.app.state.notifier
    return page_response(
        await changes_page(
            store, notifier, workspace, since, limit, wait, disconnected=request.is_disconnected
        )
    )


async def changes_page(
    store: Store,
    notifier: ChangeNotifier,
    workspace: str,
    since: int,
    limit: int,
    wait: float = 0,
    *,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """The change feed's page after ``since``, waiting up to ``wait`` seconds for the first
    change (until ``disconnected()`` says the caller has gone)."""
    deadline = time.monotonic() + wait
    while True:
        page = await run_in_threadpool(store.changes, workspace, since, limit=limit)
        remaining = deadline - time.monotonic()
        if page.changes or remaining <= 0 or (disconnected is not None and await disconnected()):
            break
        await notifier.wait(min(RECHECK, remaining))
    return {
        "changes": [revision_json(r) for r in page.changes],
        "next_since": page.next_since,
        "head_rev": page.head_rev,
        "has_more": page.has_more,
    }


@router.post("/workspaces/{workspace}/chunks/missing", response_model=MissingChunks)
def missing_chunks(
    workspace: str, body: MissingRequest, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Which of these chunk hashes the workspace lacks (upload only those)."""
    workspace = access(principal, workspace, "write")
    return {"missing": store.missing_chunks(workspace, body.chunks)}


@router.put("/workspaces/{workspace}/chunks/{sha256:chunk_address}", response_model=StoredChunk)
async def put_chunk(
    workspace: str, sha256: str, store: StoreDep, principal: PrincipalDep, request: Request
) -> JSONResponse:
    """Upload one chunk; its bytes must hash to ``sha256``. 201 new, 200 already held."""
    workspace = access(principal, workspace, "write")
    data = await receive_limited(request, store.max_chunk_bytes)
    created = await run_in_threadpool(store.put_chunk, workspace, sha256, data)
    request.app.state.metrics.bytes_in.inc(len(data))
    return JSONResponse(
        {"sha256": sha256.lower(), "size": len(data), "created": created},
        status_code=201 if created else 200,
    )


@router.post("/workspaces/{workspace}/commits", response_model=WriteInfo)
def commit(
    workspace: str, body: CommitRequest, store: StoreDep, principal: PrincipalDep, request: Request
) -> JSONResponse:
    """Commit a revision from a manifest of uploaded chunks (checked against ``sha256``)."""
    workspace = access(principal, workspace, "write")
    result = store.commit_manifest(
        workspace,
        body.path,
        [ChunkRef(c.sha256.lower(), c.size) for c in body.chunks],
        body.sha256,
        precondition=precondition_from_headers(body.if_match, body.if_none_match),
        content_type=body.content_type,
        author=principal.name,
        session_id=body.session_id,
        message=body.message,
        fence=fence_from(body.lease.name, body.lease.token) if body.lease else None,
        max_bytes=request.app.state.settings.max_body_bytes,
    )
    request.app.state.metrics.revisions.labels("commit").inc()
    return write_response(result)
