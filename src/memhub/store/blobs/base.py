"""The BlobStore interface: a handful of methods, one module per backend.

Keys are relative, '/'-separated strings chosen by the store (content
addresses such as ``chunks/ab/ab12…``), never client input.

Contract, tested by one suite against every backend:
- ``put`` is durable when it returns and idempotent (same key, same bytes).
- ``get`` / ``open`` of an absent key raise :class:`BlobNotFound`.
- ``delete`` ignores keys that are already gone.
- ``list`` yields every key under a prefix, in no particular order.
- Backend failures surface as :class:`memhub.errors.StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

READ_PIECE = 256 * 1024


class BlobNotFound(KeyError):
    """The key is not in the blob store."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    modified: float = 0.0  # seconds since the epoch


class BlobStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> Iterator[bytes]: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def put_all(store: BlobStore, items: Sequence[tuple[str, bytes]]) -> None:
    """Store every ``(key, bytes)``, durable when it returns: in one go where the store
    can (the local store: small blobs in one inline transaction), else one put each,
    up to 8 at a time (an object store's latency overlaps)."""
    put_many = getattr(store, "put_many", None)
    if put_many is not None:
        put_many(items)
    else:
        put_in_parallel(store.put, items)


def put_in_parallel(put: Callable[[str, bytes], None], items: Sequence[tuple[str, bytes]]) -> None:
    if len(items) <= 1:
        for key, data in items:
            put(key, data)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        for done in [pool.submit(put, key, data) for key, data in items]:
            done.result()  # the first failure is raised (after all have finished)


def chunk_key(sha256: str) -> str:
    return f"chunks/{sha256[:2]}/{sha256}"


def sha_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "chunks" and len(parts[2]) == 64:
        return parts[2]
    return None
