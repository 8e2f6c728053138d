"""Upload chunks in batches: ``POST …/chunks/batch``, zstd-compressed.

One request carries up to :data:`BATCH_BYTES` of chunks instead of one
request per chunk; the frames are compressed with zstd (a SQLite page
compresses well: free space, repeated keys). Batches go out on a few
threads. The wire format is :mod:`memhub.core.chunkbatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Protocol, TypeVar
from urllib.parse import quote

from memhub.client import MemhubClient
from memhub.core.chunkbatch import MEDIA_TYPE, encode
from memhub.errors import InvalidChecksum

BATCH_BYTES = 8 * 1024**2
THREADS = 3


class ChunkLike(Protocol):
    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


C = TypeVar("C", bound=ChunkLike)


def batches(chunks: Sequence[C], limit: int = BATCH_BYTES) -> Iterator[list[C]]:
    """Consecutive groups of chunks, each at most ``limit`` bytes (or one larger chunk)."""
    group: list[C] = []
    size = 0
    for chunk in chunks:
        if group and size + chunk.size > limit:
            yield group
            group, size = [], 0
        group.append(chunk)
        size += chunk.size
    if group:
        yield group


def upload(
    client: MemhubClient,
    chunks: Sequence[C],
    read: Callable[[C], bytes],
    advance: Callable[[int], None] = lambda _n: None,
) -> int:
    """Send ``chunks`` (their bytes from ``read``); returns the bytes that went on the wire."""
    url = f"/v1/workspaces/{quote(client.workspace, safe='')}/chunks/batch"
    headers = {"Content-Type": MEDIA_TYPE, "Content-Encoding": "zstd"}

    def send(group: list[C]) -> tuple[int, int]:
        body, shas = encode(read(c) for c in group)
        for chunk, sha in zip(group, shas, strict=True):
            if sha != chunk.sha256:
                raise InvalidChecksum(f"chunk {chunk.sha256} changed under us")
        client.request("POST", url, content=body, headers=headers)
        return len(body), sum(c.size for c in group)

    wire = 0
    with ThreadPoolExecutor(THREADS, thread_name_prefix="upload") as pool:
        futures: list[Future[tuple[int, int]]] = [pool.submit(send, g) for g in batches(chunks)]
        try:
            for future in as_completed(futures):
                sent, raw = future.result()
                wire += sent
                advance(raw)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return wire
