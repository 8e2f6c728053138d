"""Blobs in a local directory (``file:///path``), written durably.

Each put: unique temp name in the target directory → write → fsync →
``os.replace`` → fsync the directory. A crash leaves either the old state or
the new one, plus at worst a ``.tmp-*`` file that :meth:`list` ignores and
``memhub gc`` removes. Blobs up to ``inline_max_bytes`` (the URL's
``?inline_max_bytes=N``; 0 turns it off) go instead into an inline tier: as
durable, cheaper under concurrency. Opened by the store, the tier is the
metadata database (:mod:`memhub.store.blobs.metainline`), where a write puts its
small blobs in the same transaction as its revision; opened on its own, a
group-committed SQLite file (:mod:`memhub.store.blobs.inline`). A data dir that
has that file from before keeps it as a second inline tier, read and collected,
never written.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from memhub.core.durable import TMP_PREFIX, fsync_dir, write_durably
from memhub.errors import StorageUnavailable
from memhub.store.blobs.base import READ_PIECE, BlobInfo, BlobNotFound, put_in_parallel
from memhub.store.blobs.inline import DEFAULT_INLINE_MAX, INLINE_DIR, InlineBlobs
from memhub.store.blobs.metainline import MetadataInline

if TYPE_CHECKING:
    from memhub.store.metadata import Metadata


class InlineTier(Protocol):
    """Where small blobs go: :class:`InlineBlobs` or :class:`MetadataInline`."""

    max_bytes: int

    def put(self, key: str, data: bytes, now: float) -> None: ...

    def put_many(self, items: builtins.list[tuple[str, bytes]], now: float) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def close(self) -> None: ...


class LocalBlobStore:
    def __init__(
        self,
        root: Path,
        url: str | None = None,
        *,
        inline_max_bytes: int = DEFAULT_INLINE_MAX,
        metadata: Metadata | None = None,
    ) -> None:
        self.root = root
        self.url = url or root.as_uri()
        self._known_dirs: set[Path] = set()
        self._dir_lock = threading.Lock()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot create the blob directory {root}: {exc.strerror}",
                hint="check MEMHUB_BLOB_URL / --data-dir and the directory's permissions",
            ) from exc
        self._inline: InlineTier | None = None
        self._legacy: InlineBlobs | None = None  # read and collected, never written
        # what a write hands its small blobs to inside its own transaction (see the doc)
        self.within: MetadataInline | None = None
        if inline_max_bytes > 0 and metadata is not None:
            self._inline = self.within = MetadataInline(metadata, inline_max_bytes, self.ping)
            if (root / INLINE_DIR / "blobs.sqlite").exists():
                self._legacy = InlineBlobs(root, inline_max_bytes)
        elif inline_max_bytes > 0:
            self._inline = InlineBlobs(root, inline_max_bytes)

    def _tiers(self) -> builtins.list[InlineTier]:
        return [t for t in (self._inline, self._legacy) if t is not None]

    def _inline_get(self, key: str) -> bytes | None:
        for tier in self._tiers():
            found = tier.get(key)
            if found is not None:
                return found
        return None

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._known_dirs:
            return
        with self._dir_lock:
            if not directory.is_dir():
                missing: list[Path] = []
                probe = directory
                while not probe.exists():
                    missing.append(probe)
                    probe = probe.parent
                directory.mkdir(parents=True, exist_ok=True)
                for created in reversed(missing):
                    fsync_dir(created.parent)
            self._known_dirs.add(directory)

    def put(self, key: str, data: bytes) -> None:
        if self._inline is not None and len(data) <= self._inline.max_bytes:
            self._inline.put(key, data, time.time())
            return
        target = self._path(key)
        try:
            self._ensure_dir(target.parent)
            write_durably(target, data)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot write blob {key}: {exc.strerror}",
                hint="check free disk space and permissions of the blob directory",
            ) from exc

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """:meth:`put` of each; the small ones share one inline transaction."""
        small: builtins.list[tuple[str, bytes]] = []
        files: builtins.list[tuple[str, bytes]] = []
        for key, data in items:
            inline = self._inline is not None and len(data) <= self._inline.max_bytes
            (small if inline else files).append((key, data))
        put_in_parallel(self.put, files)  # their fsyncs overlap
        if small and self._inline is not None:
            self._inline.put_many(small, time.time())

    def get(self, key: str) -> bytes:
        # the file first: a failed open is cheaper than a query, and large blobs are files
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            if (inline := self._inline_get(key)) is not None:
                return inline
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read blob {key}: {exc.strerror}") from exc

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            if (inline := self._inline_get(key)) is not None:
                return _pieces_of(inline)
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read blob {key}: {exc.strerror}") from exc
        return _FilePieces(handle)

    def exists(self, key: str) -> bool:
        if self._path(key).is_file():
            return True
        return any(tier.exists(key) for tier in self._tiers())

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        for tier in self._tiers():
            yield from tier.list(prefix)
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and INLINE_DIR in dirnames:
                dirnames.remove(INLINE_DIR)
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    st = full.stat()
                    yield BlobInfo(key, st.st_size, st.st_mtime)

    def list_temp_files(self) -> builtins.list[Path]:
        return [
            Path(dirpath) / name
            for dirpath, _d, names in os.walk(self.root)
            for name in names
            if name.startswith(TMP_PREFIX)
        ]

    def delete(self, keys: Iterable[str]) -> None:
        keys = builtins.list(keys)
        for tier in self._tiers():
            tier.delete(keys)
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"blob directory {self.root} is not writable")

    def close(self) -> None:
        for tier in self._tiers():
            tier.close()


def _pieces_of(data: bytes) -> Iterator[bytes]:
    """An inline blob as pieces (a generator: it has ``close`` like a file's pieces)."""
    for start in range(0, len(data), READ_PIECE):
        yield data[start : start + READ_PIECE]


class _FilePieces:
    """The pieces of an open file; closing it (read or not) closes the file."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def __iter__(self) -> _FilePieces:
        return self

    def __next__(self) -> bytes:
        piece = self._handle.read(READ_PIECE) if not self._handle.closed else b""
        if not piece:
            self._handle.close()
            raise StopIteration
        return piece

    def close(self) -> None:
        self._handle.close()
