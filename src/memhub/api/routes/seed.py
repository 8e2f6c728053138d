"""The memory proxy's routes (seed 001), byte for byte.

``GET /health``, ``GET|PUT|DELETE /blob/{path}``, ``GET /sync`` on the
caller's workspace. ``Content-MD5: new`` means "must not exist" (a tombstone
counts as absent), ``Content-MD5: <md5>`` means "must currently be this",
no header writes unconditionally. Errors are ``{"detail", "error_code", "context"}``;
a 412 carries ``current_md5`` and ``provided_md5`` as the proxy's did.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from memhub.api.context import RequestContext, authorize, get_context, get_store
from memhub.api.direct import DirectRoute
from memhub.api.routes.common import parse_etag
from memhub.api.syncindex import index_response
from memhub.api.transfer import close_body, content_response, fetch, receive_body, seed_headers
from memhub.errors import BadRequest, MemhubError, PreconditionFailed
from memhub.store import Precondition, Store

router = APIRouter(route_class=DirectRoute)  # no FastAPI solver on the hot routes
Ctx = Annotated[RequestContext, Depends(get_context)]
StoreDep = Annotated[Store, Depends(get_store)]


def _seed_precondition(exc: PreconditionFailed, provided: str) -> PreconditionFailed:
    context = exc.context or {}
    current = context.get("current_md5") or "none"
    return PreconditionFailed(
        exc.detail, context={"current_md5": current, "provided_md5": provided}
    )


def match_precondition(if_match: str) -> Precondition:
    """The seed's ``If-Match``: ``*``, a quoted sha256 ETag, or an md5 (any other value is
    taken as an md5, so it fails with 412 as the proxy's did). Empty is refused."""
    tag = parse_etag(if_match)
    if not tag:
        raise BadRequest(
            "If-Match is empty: send the md5 (or quoted sha256) of the version you read, or *"
        )
    if tag == "*":
        return Precondition(exists=True)
    if len(tag) == 64 and all(c in "0123456789abcdef" for c in tag):
        return Precondition(sha256=tag)
    return Precondition(md5=tag)


def write_precondition(
    content_md5: str | None, if_match: str | None, if_none_match: str | None
) -> Precondition:
    """``Content-MD5`` keeps the seed's meaning; ``If-Match`` / ``If-None-Match: *`` are
    honoured too. Given together they must agree (else 400); an md5 and a sha256 of the
    same version combine (both must hold)."""
    if if_match is not None and if_none_match is not None:
        raise BadRequest("send If-Match or If-None-Match, not both")
    standard: Precondition | None = None
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise BadRequest("on writes, If-None-Match takes only '*' (create only)")
        standard = Precondition(exists=False)
    elif if_match is not None:
        standard = match_precondition(if_match)
    if content_md5 is None:
        return standard or Precondition()
    value = content_md5.strip().strip('"').lower()
    if not value:
        raise BadRequest("Content-MD5 is empty: send 'new' or the md5 of the version you read")
    seed = Precondition(exists=False) if value == "new" else Precondition(md5=value)
    if standard is None or standard == seed:
        return seed
    if seed.exists is False or standard.exists is False or standard.md5 is not None:
        raise BadRequest(
            "Content-MD5 and If-Match/If-None-Match disagree",
            context={
                "content_md5": content_md5,
                "if_match": if_match,
                "if_none_match": if_none_match,
            },
        )
    return Precondition(exists=True, md5=seed.md5, sha256=standard.sha256)


@router.get("/health", tags=["health"])
async def health(store: StoreDep) -> JSONResponse:
    """Service health: 200 when the database and the blob store answer, else 503."""
    try:
        await run_in_threadpool(store.ping)
    except Exception as exc:
        detail = exc.detail if isinstance(exc, MemhubError) else str(exc)
        return JSONResponse(
            {
                "status": "error",
                "storage": "disconnected",
                "detail": detail,
                "error_code": "STORAGE_UNAVAILABLE",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "storage": "connected"})


@router.get("/blob/{path:path}", tags=["blob"])
async def read_blob(path: str, ctx: Ctx, store: StoreDep, request: Request) -> Response:
    """Read a file: 200 with ETag (md5), Last-Modified, Content-Type; 404 absent or deleted."""
    authorize(ctx.principal, ctx.workspace, "read")
    revision, refs, data = await run_in_threadpool(fetch, store, ctx.workspace, path)
    request.app.state.metrics.bytes_out.inc(revision.size)
    return await content_response(store, revision, refs, seed_headers(revision), data=data)


@router.put("/blob/{path:path}", tags=["blob"])
async def write_blob(
    path: str,
    ctx: Ctx,
    store: StoreDep,
    request: Request,
    content_md5: Annotated[str | None, Header(alias="Content-MD5")] = None,
    content_type: Annotated[str | None, Header(alias="Content-Type")] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Write a file. ``Content-MD5: new`` creates only; ``Content-MD5: <md5>`` updates only
    that version; none writes unconditionally. ``If-Match`` / ``If-None-Match: *`` are
    honoured as on /v1 (with Content-MD5 they must agree). 201 created, 200 updated,
    412 mismatch."""
    authorize(ctx.principal, ctx.workspace, "write")
    precondition = write_precondition(content_md5, if_match, if_none_match)
    body = await receive_body(request)
    try:
        result = await run_in_threadpool(
            lambda: store.put(
                ctx.workspace,
                path,
                body,
                precondition=precondition,
                content_type=content_type,
                author=ctx.principal.name,
                max_bytes=request.app.state.settings.max_body_bytes,
            )
        )
    except PreconditionFailed as exc:
        raise _seed_precondition(exc, content_md5 or if_match or if_none_match or "") from exc
    finally:
        close_body(body)
    metrics = request.app.state.metrics
    metrics.revisions.labels("put").inc()
    metrics.bytes_in.inc(result.revision.size)
    return Response(
        status_code=201 if result.created else 200,
        headers={"etag": f'"{result.revision.md5}"', "x-memhub-rev": str(result.revision.rev)},
    )


@router.delete("/blob/{path:path}", tags=["blob"], status_code=204)
def delete_blob(
    path: str,
    ctx: Ctx,
    store: StoreDep,
    request: Request,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Response:
    """Delete a file (a tombstone). ``If-Match: <md5>`` makes it conditional.
    204 deleted, 404 absent, 412 mismatch."""
    authorize(ctx.principal, ctx.workspace, "write")
    precondition = match_precondition(if_match) if if_match is not None else Precondition()
    try:
        revision = store.delete(
            ctx.workspace,
            path,
            precondition=precondition,
            author=ctx.principal.name,
        )
    except PreconditionFailed as exc:
        raise _seed_precondition(exc, parse_etag(if_match or "")) from exc
    request.app.state.metrics.revisions.labels("delete").inc()
    return Response(status_code=204, headers={"x-memhub-rev": str(revision.rev)})


@router.get("/sync", tags=["sync"], responses={304: {"description": "If-None-Match holds"}})
async def sync_index(ctx: Ctx, store: StoreDep, request: Request) -> Response:
    """Every file with its md5, last_modified, size and is_deleted (tombstones included).
    ``ETag``; ``If-None-Match`` → 304; gzip with ``Accept-Encoding: gzip``."""
    authorize(ctx.principal, ctx.workspace, "read")
    return await index_response(request, store, ctx.workspace)
