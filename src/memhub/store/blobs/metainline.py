"""Small blobs of a local blob store, kept in the metadata database.

The local store's first inline tier (:mod:`memhub.store.blobs.inline`) kept
small blobs in a SQLite file of their own: as durable as a file and cheaper
under concurrency, but a small write still paid two group commits one after
the other (the blob's, then its revision's). Here the blobs are rows of the
metadata database's ``inline_blobs`` table instead, and a write hands them to
:meth:`MetadataInline.put_within`, inside the very transaction that records
the revision naming them: one COMMIT (one fsync, shared by every writer of the
group commit) and no file fsync at all. The store's order "bytes durable
before the metadata that names them" holds trivially, since both land in one
atomic COMMIT; a refused write (a failed precondition) leaves no bytes.

Blobs put on their own (chunks uploaded one by one) take a transaction of
their own, durable when :meth:`MetadataInline.put` returns, as any blob put.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from sqlalchemy import Connection, bindparam, delete, func, select

from memhub.store.blobs.base import BlobInfo
from memhub.store.metadata import Metadata
from memhub.store.schema import inline_blobs

_GET = select(inline_blobs.c.data).where(inline_blobs.c.key == bindparam("key"))
_EXISTS = select(inline_blobs.c.key).where(inline_blobs.c.key == bindparam("key"))
_BATCH = 500  # keys per statement (deletes and batch reads)


class MetadataInline:
    """The inline tier of :class:`~memhub.store.blobs.local.LocalBlobStore` in the
    metadata database: blobs up to ``max_bytes``."""

    def __init__(
        self, meta: Metadata, max_bytes: int, check: Callable[[], None] = lambda: None
    ) -> None:
        self.meta = meta
        self.max_bytes = max_bytes
        self.check = check  # the blob store's own health check (its directory)

    def put_within(self, conn: Connection, items: Sequence[tuple[str, bytes]], now: float) -> None:
        """Store blobs inside the caller's write transaction: durable when it commits.
        An upsert, so a blob written again (same key, same bytes) is touched and ``gc``
        spares it for its grace period. ``check`` runs first: a blob store whose
        directory is gone takes no writes, inline or not (as ``/health`` reports)."""
        if items:
            self.check()
            conn.execute(
                self.meta.upsert(inline_blobs, ("key",)),
                [{"key": key, "data": data, "modified": now} for key, data in items],
            )

    def put(self, key: str, data: bytes, now: float) -> None:
        """Durable when it returns (its transaction has committed)."""
        self.put_many([(key, data)], now)

    def put_many(self, items: Sequence[tuple[str, bytes]], now: float) -> None:
        if not items:
            return
        with self.meta.write() as conn:
            self.put_within(conn, items, now)

    def get(self, key: str) -> bytes | None:
        with self.meta.read() as conn:
            value = conn.execute(_GET, {"key": key}).scalar()
        return bytes(value) if value is not None else None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The blobs of ``keys`` this tier holds (the others are absent), in one query
        per :data:`_BATCH` keys: a reader of many small files pays one round trip
        instead of a connection and a query each."""
        wanted = list(keys)
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            stmt = select(inline_blobs.c.key, inline_blobs.c.data).where(
                inline_blobs.c.key.in_(batch)
            )
            with self.meta.read() as conn:
                out.update((str(key), bytes(data)) for key, data in conn.execute(stmt))
        return out

    def exists(self, key: str) -> bool:
        with self.meta.read() as conn:
            return conn.execute(_EXISTS, {"key": key}).first() is not None

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        stmt = select(inline_blobs.c.key, func.length(inline_blobs.c.data), inline_blobs.c.modified)
        if prefix:
            stmt = stmt.where(func.substr(inline_blobs.c.key, 1, len(prefix)) == prefix)
        with self.meta.read() as conn:
            rows = conn.execute(stmt.order_by(inline_blobs.c.key)).all()
        for key, size, modified in rows:
            yield BlobInfo(str(key), int(size), float(modified))

    def delete(self, keys: Iterable[str]) -> None:
        doomed = list(keys)
        for start in range(0, len(doomed), _BATCH):
            with self.meta.write() as conn:
                conn.execute(
                    delete(inline_blobs).where(
                        inline_blobs.c.key.in_(doomed[start : start + _BATCH])
                    )
                )

    def close(self) -> None:
        """Nothing of its own to close: the metadata database is the store's."""
