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

from collections.abc import Iterable, Iterator
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


def chunk_key(sha256: str) -> str:
    return f"chunks/{sha256[:2]}/{sha256}"


def sha_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "chunks" and len(parts[2]) == 64:
        return parts[2]
    return None
