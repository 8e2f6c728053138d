"""An in-memory blob store, for tests and throwaway servers (``memory://``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from memhub.store.blobs.base import READ_PIECE, BlobInfo, BlobNotFound


class MemoryBlobStore:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._data: dict[str, bytes] = {}
        self._modified: dict[str, float] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._data[key] = bytes(data)
            self._modified[key] = time.time()

    def get(self, key: str) -> bytes:
        try:
            return self._data[key]
        except KeyError:
            raise BlobNotFound(key) from None

    def open(self, key: str) -> Iterator[bytes]:
        data = self.get(key)
        return (data[i : i + READ_PIECE] for i in range(0, len(data), READ_PIECE))

    def exists(self, key: str) -> bool:
        return key in self._data

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        with self._lock:
            items = [
                BlobInfo(k, len(v), self._modified.get(k, 0.0))
                for k, v in self._data.items()
                if k.startswith(prefix)
            ]
        return iter(items)

    def delete(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)
                self._modified.pop(key, None)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
