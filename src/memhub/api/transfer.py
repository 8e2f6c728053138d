"""Moving file bytes over HTTP in bounded memory, and the headers that describe them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from email.utils import formatdate
from typing import IO
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from memhub.errors import PayloadTooLarge
from memhub.store import ChunkRef, Revision, Store
from memhub.store.mediatype import served_content_type

SMALL_BODY = 1024 * 1024  # read into memory up to this size; spool or stream beyond it


async def receive_body(request: Request) -> bytes | IO[bytes]:
    """The request body: bytes when small, else a spooled temp file (memory stays bounded)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= SMALL_BODY:
        return await request.body()
    spool = tempfile.SpooledTemporaryFile(max_size=SMALL_BODY)  # noqa: SIM115 - returned open
    try:
        async for piece in request.stream():
            if piece:
                await run_in_threadpool(spool.write, piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def receive_limited(request: Request, max_bytes: int) -> bytes:
    """A body that must fit in memory (a chunk): refused by its Content-Length before
    any byte is read, and while streaming as soon as it passes ``max_bytes``."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    buf = bytearray()
    async for piece in request.stream():
        buf += piece
        if len(buf) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(buf)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a chunk may be at most {max_bytes} bytes",
        context={"max_bytes": max_bytes},
        hint="cut the content into smaller chunks",
    )


def close_body(body: bytes | IO[bytes]) -> None:
    if not isinstance(body, bytes):
        body.close()


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def seed_headers(revision: Revision) -> dict[str, str]:
    """The memory proxy's read headers, plus memhub's own."""
    return {
        "etag": f'"{revision.md5}"',
        "last-modified": http_date(revision.created_at),
        "content-type": served_content_type(revision.content_type),
        "x-memhub-rev": str(revision.rev),
        "x-memhub-sha256": revision.sha256,
    }


def v1_headers(revision: Revision) -> dict[str, str]:
    return {
        "etag": f'"{revision.sha256}"',
        "last-modified": http_date(revision.created_at),
        "content-type": served_content_type(revision.content_type),
        "x-memhub-rev": str(revision.rev),
        "x-memhub-md5": revision.md5,
        "x-memhub-path": quote(revision.path, safe="/"),
    }


def fetch(
    store: Store, workspace: str, path: str, rev: int | None = None, *, body: bool = True
) -> tuple[Revision, list[ChunkRef], bytes | None]:
    """One trip to the thread pool: the revision, its chunks, and its bytes when small."""
    revision, refs = store.read_plan(workspace, path, rev)
    small = body and revision.size <= SMALL_BODY
    return revision, refs, store.read_content(refs) if small else None


async def content_response(
    store: Store,
    revision: Revision,
    refs: list[ChunkRef],
    headers: dict[str, str],
    *,
    head: bool = False,
    data: bytes | None = None,
) -> Response:
    if head:
        return Response(status_code=200, headers={**headers, "content-length": str(revision.size)})
    if data is not None:
        return Response(content=data, status_code=200, headers=headers)
    if revision.size <= SMALL_BODY:
        data = await run_in_threadpool(store.read_content, refs)
        return Response(content=data, status_code=200, headers=headers)

    def stream() -> Iterator[bytes]:
        yield from store.iter_content(refs)

    return StreamingResponse(
        stream(), status_code=200, headers={**headers, "content-length": str(revision.size)}
    )
