"""The memory proxy's later protocol: namespaces and ``If-Match-Version``.

``GET|PUT|DELETE /{namespace}/blob/{path}`` and ``GET /sync/{namespace}``
(../shared/specs/memory-proxy-v2.md), beside the seed's ``/blob/{path}`` and
``/sync``, which keep their behaviour.

A namespace is a path prefix in the caller's own workspace: ``{namespace}/{path}``
is an ordinary memhub file (one storage path, visible to ``/v1`` and ``memhub
sync`` too), and a namespace name never reaches another workspace. Versions are
memhub revs: ``X-Version`` is the rev of the head, ``If-Match-Version: N`` (N > 0)
means "the head, a tombstone included, is rev N", ``0`` means "nothing live
there" (a tombstone counts as absent, so a deleted file can be recreated with 0).

Routing: the proxy's client percent-encodes namespace and path, so the raw path
holds one literal ``/blob/``; the split is made there (:func:`split_target`).
A namespace's first segment may not be one of memhub's own route prefixes
(``blob``, ``sync``, ``v1``, ...): those requests would reach the other routes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import IO, Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from memhub.api.context import RequestContext, authorize, get_context, get_store
from memhub.api.routes.common import MAX_HEADER_TEXT
from memhub.api.syncindex import index_response
from memhub.api.transfer import close_body, content_response, fetch, receive_body, seed_headers
from memhub.core.paths import normalize_path
from memhub.errors import BadRequest, FileNotFound, InvalidChecksum, InvalidPath, PreconditionFailed
from memhub.store import Precondition, Store

router = APIRouter(tags=["memory-proxy-v2"])
Ctx = Annotated[RequestContext, Depends(get_context)]
StoreDep = Annotated[Store, Depends(get_store)]
# A version is a header, so text: digits, documented as a pattern rather than an integer
# (an integer schema for a header is what a schema tool cannot check on the wire). 15 digits
# are far above any rev and below JSON's exact integers. On DELETE the header is optional:
# absent means unconditional; an empty or non-digit value is a 422, never "no condition".
VERSION_PATTERN = r"^[0-9]{1,15}$"
Version = Annotated[
    str,
    Header(alias="If-Match-Version", pattern=VERSION_PATTERN, description="0: must not exist"),
]
OptionalVersion = Annotated[
    str | None,
    Header(
        alias="If-Match-Version",
        pattern=VERSION_PATTERN,
        description="the head's version; absent: delete whatever is there",
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid namespace, path or Content-MD5"},
    401: {"description": "no or a bad key"},
    403: {"description": "the key lacks the scope"},
    404: {"description": "absent or deleted (a read/delete), or another workspace"},
    422: {"description": "If-Match-Version missing (PUT) or not an integer"},
}
_WRITE_ERRORS = {**_ERRORS, 412: {"description": "If-Match-Version does not hold"}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_INDEX = {"application/json": {"schema": {"type": "object"}}}
_SEPARATOR = "/blob/"


# -- namespaces ------------------------------------------------------------------------


_ALWAYS_RESERVED = frozenset({"blob", "sync", "metrics", "docs", "redoc", "openapi.json"})


def _reserved(app: FastAPI) -> frozenset[str]:
    """First path segments of memhub's other routes: a namespace may not start with one."""
    cached: frozenset[str] | None = getattr(app.state, "proxy_v2_reserved", None)
    if cached is None:
        heads = {path.lstrip("/").split("/", 1)[0] for path in app.openapi().get("paths", {})}
        cached = frozenset({h for h in heads if h and not h.startswith("{")} | _ALWAYS_RESERVED)
        app.state.proxy_v2_reserved = cached
    return cached


def namespace_prefix(app: FastAPI, namespace: str) -> str:
    """``namespace`` checked like a path, as the prefix ``namespace/`` of its files."""
    name = normalize_path(namespace.strip("/") if namespace else namespace)
    first = name.split("/", 1)[0]
    if first in _reserved(app):
        raise InvalidPath(
            f"a namespace cannot start with {first!r}: memhub routes that prefix itself",
            context={"namespace": namespace},
        )
    return name + "/"


def split_target(request: Request, namespace: str, path: str) -> tuple[str, str]:
    """(namespace, path) of ``/{namespace}/blob/{path}``, split at the first literal
    ``/blob/`` of the raw path (the router's pattern splits the decoded path at the last)."""
    decoded = f"{namespace}{_SEPARATOR}{path}"
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        raw_text = raw.decode("latin-1")
        cut = raw_text.find(_SEPARATOR)
        if cut >= 0:
            # how many /blob/ the namespace holds once decoded (encoded as %2F)
            hidden = unquote(raw_text[:cut] + "/").count(_SEPARATOR)
            at = -1
            for _ in range(hidden + 1):
                at = decoded.find(_SEPARATOR, at + 1)
            if at >= 0:
                return decoded[:at], decoded[at + len(_SEPARATOR) :]
    at = decoded.find(_SEPARATOR)
    return decoded[:at], decoded[at + len(_SEPARATOR) :]


def _target(request: Request, namespace: str, path: str) -> tuple[str, str]:
    """The namespace's prefix and the file's full path in the workspace."""
    ns, rel = split_target(request, namespace, path)
    prefix = namespace_prefix(request.app, ns)
    return prefix, normalize_path(prefix + rel) if rel else normalize_path(rel)


# -- versions --------------------------------------------------------------------------


async def _conflict(
    store: Store, workspace: str, key: str, exc: PreconditionFailed, provided: int
) -> PreconditionFailed:
    """The proxy's 412: ``current_version`` and ``provided_version`` as digit strings."""
    try:
        current = await run_in_threadpool(store.stat, workspace, key, include_deleted=True)
        now = str(current.rev)
    except FileNotFound:
        now = "none"
    return PreconditionFailed(
        f"Version mismatch: the current version is {now}, not {provided}",
        context={"current_version": now, "provided_version": str(provided)},
    )


def _check_md5(body: bytes | IO[bytes], content_md5: str) -> None:
    """``Content-MD5`` is an integrity check here: hex or base64 (RFC 1864) md5 of the body."""
    value = content_md5.strip().strip('"')
    if len(value) == 32:
        wanted = value.lower()
    else:
        try:
            wanted = base64.b64decode(value, validate=True).hex()
        except (binascii.Error, ValueError):
            wanted = ""
        if len(wanted) != 32:
            raise BadRequest("Content-MD5 is the md5 of the body, in hex or base64")
    digest = hashlib.md5()
    if isinstance(body, bytes):
        digest.update(body)
    else:
        for piece in iter(lambda: body.read(1024 * 1024), b""):
            digest.update(piece)
        body.seek(0)
    if digest.hexdigest() != wanted:
        raise InvalidChecksum(
            "Content-MD5 does not match the body",
            context={"provided_md5": wanted, "body_md5": digest.hexdigest()},
        )


# -- routes ----------------------------------------------------------------------------


@router.get(
    "/sync/{namespace:path}",
    responses={**_ERRORS, 304: {"description": "If-None-Match holds"}},
)
async def namespace_index(namespace: str, ctx: Ctx, store: StoreDep, request: Request) -> Response:
    """The namespace's sync index: every file (tombstones too) with md5, last_modified,
    size, version, is_deleted; ``index_version``. An unknown namespace has ``files: {}``."""
    authorize(ctx.principal, ctx.workspace, "read")
    prefix = namespace_prefix(request.app, namespace)
    return await index_response(request, store, ctx.workspace, prefix, versions=True)


@router.get(
    "/{namespace:path}/blob/{path:path}",
    responses={**_ERRORS, 200: {"description": "the file's bytes", "content": {"*/*": _BINARY}}},
)
async def read_blob(
    namespace: str, path: str, ctx: Ctx, store: StoreDep, request: Request
) -> Response:
    """A file's bytes with ETag (md5), Last-Modified, Content-Type and X-Version;
    404 when absent or deleted."""
    authorize(ctx.principal, ctx.workspace, "read")
    _, key = _target(request, namespace, path)
    revision, refs, data = await run_in_threadpool(fetch, store, ctx.workspace, key)
    request.app.state.metrics.bytes_out.inc(revision.size)
    headers = {**seed_headers(revision), "x-version": str(revision.rev)}
    return await content_response(store, revision, refs, headers, data=data)


@router.put(
    "/{namespace:path}/blob/{path:path}",
    responses={
        **_WRITE_ERRORS,
        200: {"description": "updated; the namespace's sync index", "content": _INDEX},
        201: {"description": "created; the namespace's sync index", "content": _INDEX},
        413: {"description": "body"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": _BINARY, "*/*": _BINARY},
        }
    },
)
async def write_blob(
    namespace: str,
    path: str,
    ctx: Ctx,
    store: StoreDep,
    request: Request,
    version: Version,
    content_md5: Annotated[str | None, Header(alias="Content-MD5")] = None,
    content_type: Annotated[str | None, Header(alias="Content-Type")] = None,
) -> Response:
    """Write a file if ``If-Match-Version`` holds (0: must not exist; N: the head is rev N).
    201 created, 200 updated; the body is the namespace's whole sync index."""
    authorize(ctx.principal, ctx.workspace, "write")
    prefix, key = _target(request, namespace, path)
    if content_type is not None and len(content_type) > MAX_HEADER_TEXT:
        raise BadRequest(f"Content-Type is limited to {MAX_HEADER_TEXT} characters")
    wanted = int(version)
    precondition = Precondition(exists=False) if wanted == 0 else Precondition(version=wanted)
    body = await receive_body(request)
    try:
        if content_md5 is not None:
            await run_in_threadpool(_check_md5, body, content_md5)
        result = await run_in_threadpool(
            lambda: store.put(
                ctx.workspace,
                key,
                body,
                precondition=precondition,
                content_type=content_type or "application/octet-stream",
                author=ctx.principal.name,
                max_bytes=request.app.state.settings.max_body_bytes,
            )
        )
    except PreconditionFailed as exc:
        raise await _conflict(store, ctx.workspace, key, exc, wanted) from exc
    finally:
        close_body(body)
    metrics = request.app.state.metrics
    metrics.revisions.labels("put").inc()
    metrics.bytes_in.inc(result.revision.size)
    headers = {
        "etag": f'"{result.revision.md5}"',
        "x-version": str(result.revision.rev),
        "x-memhub-rev": str(result.revision.rev),
    }
    return await index_response(
        request,
        store,
        ctx.workspace,
        prefix,
        versions=True,
        status_code=201 if result.created else 200,
        write_headers=headers,
    )


@router.delete(
    "/{namespace:path}/blob/{path:path}",
    responses={
        **_WRITE_ERRORS,
        200: {"description": "deleted; the namespace's sync index", "content": _INDEX},
    },
)
async def delete_blob(
    namespace: str,
    path: str,
    ctx: Ctx,
    store: StoreDep,
    request: Request,
    version: OptionalVersion = None,
) -> Response:
    """Delete a file (a tombstone), if ``If-Match-Version`` holds when given.
    200 with X-Version and the namespace's whole sync index; 404 absent or deleted."""
    authorize(ctx.principal, ctx.workspace, "write")
    prefix, key = _target(request, namespace, path)
    wanted = None if version is None else int(version)
    if wanted is None:
        precondition = Precondition()
    elif wanted == 0:
        precondition = Precondition(exists=False)
    else:
        precondition = Precondition(version=wanted)
    try:
        revision = await run_in_threadpool(
            lambda: store.delete(
                ctx.workspace, key, precondition=precondition, author=ctx.principal.name
            )
        )
    except PreconditionFailed as exc:
        raise await _conflict(store, ctx.workspace, key, exc, wanted or 0) from exc
    request.app.state.metrics.revisions.labels("delete").inc()
    headers = {"x-version": str(revision.rev), "x-memhub-rev": str(revision.rev)}
    return await index_response(
        request, store, ctx.workspace, prefix, versions=True, write_headers=headers
    )
