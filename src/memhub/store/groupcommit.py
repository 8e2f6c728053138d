"""Group commit for SQLite: many callers' write transactions share one COMMIT (one fsync).

SQLite has one writer, and with ``synchronous=FULL`` every COMMIT in WAL mode is
an fsync of the ``-wal``. Taken one at a time, concurrent writers pay an fsync
each and queue behind each other's. Here they queue behind each other's
*statements* instead:

- callers run their blocks one at a time (an in-process lock), each inside a
  ``SAVEPOINT`` of one open ``BEGIN IMMEDIATE`` transaction, the *batch*;
- a block that raises is rolled back to its savepoint: only its own writes
  are undone; the batch's other writes are committed before it raises, since
  it may have failed against them (a precondition on a rev its caller could
  not read yet) and its retry must see them;
- when a block ends and nobody else is waiting for the lock (or the batch is
  full), that caller commits the batch — one COMMIT, one fsync — and wakes
  the others; a caller that saw someone waiting leaves the batch open for
  them and waits for that commit;
- every caller returns only after the COMMIT that holds its writes is
  durable. If the COMMIT fails, every caller of the batch raises
  :class:`~memhub.errors.StorageUnavailable` and none of their writes landed.

So nothing is acknowledged before it is durable, a failed caller writes
nothing, and a batch is one SQLite transaction: revs commit in order.

Other processes on the same file (``memhub serve --workers N``) take SQLite's
write lock per batch. Waiting for it under ``busy_timeout`` means sleeping
(1, 2, 5, 10 … ms) and polling, longer than a batch lasts; so with a
``queue_file`` each batch first takes an exclusive ``flock`` on that file,
which wakes the next process as soon as the previous one has committed.
The lock only orders memhub's own writers: ``BEGIN IMMEDIATE`` still takes
SQLite's lock (and waits under ``busy_timeout`` for anything else), and the
kernel drops the lock of a process that dies.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine

from memhub.errors import StorageUnavailable

MAX_BATCH = 128
# Each block's savepoint, issued as plain SQL: SQLAlchemy's begin_nested() costs more
# than the statements of a small write (its own savepoints inside a block still work).
_SAVEPOINT = "SAVEPOINT memhub_block"
_RELEASE = "RELEASE SAVEPOINT memhub_block"
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT memhub_block"


class WriterQueue:
    """An exclusive ``flock`` on a file beside the database: the line in which the
    processes writing to it take turns (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StorageUnavailable(
                    f"cannot open the writer lock file {self.path}: {exc.strerror}",
                    hint="the database's directory must be writable by memhub",
                ) from exc
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # lets go of the GIL while it waits

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Batch:
    __slots__ = ("conn", "done", "error", "members", "queue", "trans")

    def __init__(self, engine: Engine, queue: WriterQueue | None) -> None:
        if queue is not None:
            queue.acquire()
        try:
            conn = engine.connect().execution_options(memhub_write=True, preserve_rowcount=True)
            try:
                self.trans = conn.begin()  # BEGIN IMMEDIATE (metadata's "begin" event)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            if queue is not None:
                queue.release()
            raise
        self.queue = queue
        self.conn = conn
        self.members = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """Write transactions on one SQLite engine, committed in groups (see the module doc)."""

    def __init__(
        self, engine: Engine, *, max_batch: int = MAX_BATCH, queue_file: Path | None = None
    ) -> None:
        self._engine = engine
        self._queue = WriterQueue(queue_file) if queue_file is not None else None
        self._max_batch = max_batch
        self._lock = threading.Lock()  # held while a caller's block runs or a batch commits
        self._count_lock = threading.Lock()
        self._waiting = 0  # callers blocked on _lock
        self._batch: _Batch | None = None
        self.commits = 0  # batches committed (for tests and metrics)
        self.writes = 0  # blocks committed

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._count_lock:
            self._waiting += 1
        self._lock.acquire()
        with self._count_lock:
            self._waiting -= 1
        try:
            batch = self._batch
            if batch is None:
                batch = self._batch = _Batch(self._engine, self._queue)
        except BaseException:
            self._lock.release()
            raise
        try:
            batch.conn.exec_driver_sql(_SAVEPOINT)
        except BaseException as exc:
            self._abort(batch, exc)
            self._lock.release()
            raise
        try:
            yield batch.conn
        except BaseException:
            try:
                batch.conn.exec_driver_sql(_ROLLBACK_TO)
                batch.conn.exec_driver_sql(_RELEASE)
            except BaseException as rollback_exc:  # the whole transaction is gone
                self._abort(batch, rollback_exc)
                self._lock.release()
                raise
            # A failed block may have failed *because* of the batch's uncommitted
            # writes (a precondition checked against a rev its caller cannot read
            # yet). Commit them now, so its retry reads what it was compared with;
            # keeping the batch open for the next waiter would let retrying writers
            # fail against invisible revs forever.
            if not batch.done.is_set():
                self._finish(batch)
            self._lock.release()
            if batch.error is not None:
                raise self._unavailable(batch.error) from batch.error
            raise
        try:
            batch.conn.exec_driver_sql(_RELEASE)
            batch.members += 1
        except BaseException as exc:
            self._abort(batch, exc)
            self._lock.release()
            raise
        self._end_block(batch)
        self._lock.release()
        batch.done.wait()
        if batch.error is not None:
            raise self._unavailable(batch.error) from batch.error

    @staticmethod
    def _unavailable(error: BaseException) -> StorageUnavailable:
        return StorageUnavailable(
            f"the metadata database could not commit: {error}",
            hint="check free disk space and the database file; nothing of this write landed",
        )

    def _end_block(self, batch: _Batch) -> None:
        """With the lock held: commit the batch unless someone is in line to extend it."""
        if batch.done.is_set():
            return
        with self._count_lock:
            someone_waits = self._waiting > 0
        if someone_waits and batch.members < self._max_batch:
            return
        self._finish(batch)

    def _finish(self, batch: _Batch) -> None:
        self._batch = None
        try:
            if batch.members:
                batch.trans.commit()
                self.commits += 1
                self.writes += batch.members
            else:
                batch.trans.rollback()
        except BaseException as exc:
            batch.error = exc
            self._rollback_quietly(batch)
        finally:
            self._close(batch)

    def _abort(self, batch: _Batch, exc: BaseException) -> None:
        """The transaction is unusable: roll it all back and fail every caller in it."""
        self._batch = None
        batch.error = exc
        self._rollback_quietly(batch)
        self._close(batch)

    @staticmethod
    def _close(batch: _Batch) -> None:
        """The batch is over (committed or not): the next process may write."""
        try:
            batch.conn.close()
        finally:
            if batch.queue is not None:
                batch.queue.release()
            batch.done.set()

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()

    @staticmethod
    def _rollback_quietly(batch: _Batch) -> None:
        # the error that got us here is already recorded and raised to every caller;
        # a rollback of a dead transaction has nothing to add
        try:
            batch.trans.rollback()
        except Exception as exc:
            batch.error = batch.error or exc
