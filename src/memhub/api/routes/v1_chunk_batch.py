"""``POST /v1/workspaces/{ws}/chunks/batch``: many chunks in one request, zstd on the wire.

The per-chunk route (``PUT …/chunks/{sha256}``) costs a request, a metadata
commit and a durable blob write per chunk. A batch carries up to 64 MiB of
chunks (:mod:`memhub.core.chunkbatch`), compressed; the server stores them
on a few threads, so their metadata rows share group commits. Each chunk is
checked against its hash by :meth:`Store.put_chunk`, exactly as one uploaded
alone. A batch is a set of uploads, not a revision: when one chunk is refused
the request fails, and chunks stored before it stay as uploads that no
manifest names yet (``memhub gc`` collects them after its grace period).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from memhub.api.routes.common import PrincipalDep, StoreDep, access
from memhub.api.transfer import receive_body
from memhub.core.chunkbatch import MAX_BATCH_BYTES, Frame, decode, decompress
from memhub.core.models import ChunkBatch, StoredChunk
from memhub.store import Store

router = APIRouter(prefix="/v1", tags=["v1"])

STORE_THREADS = 4


@router.post("/workspaces/{workspace}/chunks/batch")
async def put_chunk_batch(
    workspace: str, store: StoreDep, principal: PrincipalDep, request: Request
) -> ChunkBatch:
    """Upload many chunks in one body (frames of sha256 · length · bytes; ``Content-Encoding:
    zstd`` or none). Answers each chunk's hash, size and whether it was new."""
    workspace = access(principal, workspace, "write")
    body = await receive_body(request)
    raw = body if isinstance(body, bytes) else await run_in_threadpool(_read_all, body)
    encoding = request.headers.get("content-encoding")
    frames = await run_in_threadpool(_unpack, raw, encoding, store.max_chunk_bytes)
    created = await run_in_threadpool(_store_all, store, workspace, frames)
    size = sum(len(f.data) for f in frames)
    request.app.state.metrics.bytes_in.inc(len(raw))
    return ChunkBatch(
        chunks=[
            StoredChunk(sha256=f.sha256, size=len(f.data), created=new)
            for f, new in zip(frames, created, strict=True)
        ],
        bytes=size,
        wire_bytes=len(raw),
    )


def _read_all(spool: Any) -> bytes:
    try:
        data = spool.read(MAX_BATCH_BYTES + 1)
        return bytes(data)
    finally:
        spool.close()


def _unpack(raw: bytes, encoding: str | None, max_chunk_bytes: int) -> list[Frame]:
    return decode(decompress(raw, encoding), max_chunk_bytes=max_chunk_bytes, verify=False)


def _store_all(store: Store, workspace: str, frames: list[Frame]) -> list[bool]:
    if len(frames) <= 1:
        return [store.put_chunk(workspace, f.sha256, f.data) for f in frames]
    with ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="chunk-batch") as pool:
        return list(pool.map(lambda f: store.put_chunk(workspace, f.sha256, f.data), frames))
