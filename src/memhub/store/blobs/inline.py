"""Small blobs of a local blob store, kept in one SQLite file and group-committed.

A durable file write costs two fsyncs (the file, then its directory) that
concurrent writers cannot share. Blobs up to ``max_bytes`` go instead into
``<root>/.inline/blobs.sqlite`` (WAL, ``synchronous=FULL``) through
:class:`~memhub.store.groupcommit.GroupCommit`: concurrent puts share one
COMMIT, and each put returns only once that COMMIT is durable — the same
promise as a file write, so the store's order (blob durable, then metadata)
holds unchanged. ``bench/blob_api.py`` measures both.

Keys stay the blob store's keys; a key may be both here and in a file (after
the threshold changed): both hold the same bytes, since keys are content
addresses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, Float, LargeBinary, MetaData, String, Table, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import func

from memhub.errors import StorageUnavailable
from memhub.store.blobs.base import BlobInfo
from memhub.store.groupcommit import GroupCommit
from memhub.store.metadata import sqlite_engine

INLINE_DIR = ".inline"
DEFAULT_INLINE_MAX = 16 * 1024

_meta = MetaData()
_blobs = Table(
    "blobs",
    _meta,
    Column("key", String, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("modified", Float, nullable=False),
    sqlite_with_rowid=False,
)
# plain SQL: a point read must not pay for statement compilation
_GET = "SELECT data FROM blobs WHERE key = ?"
_EXISTS = "SELECT 1 FROM blobs WHERE key = ?"


class InlineBlobs:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.path = root / INLINE_DIR / "blobs.sqlite"
        with self._translate("open"):
            self.engine = sqlite_engine(str(self.path))
            _meta.create_all(self.engine)
        self._identity = self._file_identity()
        self._group = GroupCommit(self.engine)

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _check_in_place(self) -> None:
        """An open SQLite file keeps taking writes after its directory was removed or
        replaced: those writes are lost with the unlinked file. Refuse to call them
        durable (one stat per put)."""
        if self._file_identity() != self._identity:
            raise StorageUnavailable(
                f"the inline blob file {self.path} is gone or was replaced",
                hint="the blob directory changed under the running server: restore it and "
                "restart memhub",
            )

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            raise StorageUnavailable(
                f"cannot {what} the inline blob file {self.path}: {exc.orig}",
                hint="check free disk space and permissions of the blob directory",
            ) from exc

    def put(self, key: str, data: bytes, now: float) -> None:
        """Durable when it returns (its batch's COMMIT is)."""
        with self._translate("write"), self._group.transaction() as conn:
            conn.execute(
                _blobs.insert().prefix_with("OR REPLACE"),
                {"key": key, "data": data, "modified": now},
            )
        self._check_in_place()

    def put_many(self, items: list[tuple[str, bytes]], now: float) -> None:
        """Many blobs in one transaction of the group commit (one share of one fsync);
        durable when it returns."""
        if not items:
            return
        with self._translate("write"), self._group.transaction() as conn:
            conn.execute(
                _blobs.insert().prefix_with("OR REPLACE"),
                [{"key": key, "data": data, "modified": now} for key, data in items],
            )
        self._check_in_place()

    def get(self, key: str) -> bytes | None:
        with self._translate("read"), self.engine.connect() as conn:
            value = conn.exec_driver_sql(_GET, (key,)).scalar()
        return bytes(value) if value is not None else None

    def exists(self, key: str) -> bool:
        with self._translate("read"), self.engine.connect() as conn:
            found = conn.exec_driver_sql(_EXISTS, (key,)).first()
        return found is not None

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        stmt = select(_blobs.c.key, func.length(_blobs.c.data), _blobs.c.modified)
        if prefix:
            stmt = stmt.where(func.substr(_blobs.c.key, 1, len(prefix)) == prefix)
        with self._translate("read"), self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(_blobs.c.key)).all()
        for key, size, modified in rows:
            yield BlobInfo(key, int(size), float(modified))

    def delete(self, keys: Iterable[str]) -> None:
        doomed = list(keys)
        for start in range(0, len(doomed), 500):
            with self._translate("write"), self._group.transaction() as conn:
                conn.execute(delete(_blobs).where(_blobs.c.key.in_(doomed[start : start + 500])))

    def close(self) -> None:
        self.engine.dispose()
