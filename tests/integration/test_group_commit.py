"""Group commit on SQLite and the inline tier of the local blob store.

What a caller must be able to rely on: a write that returned is in the file
(another connection, opened afterwards, sees it), a write that raised left
nothing, concurrent writers really do share COMMITs, and a transaction that
breaks fails every caller that shared it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from memhub.errors import PreconditionFailed, StorageUnavailable
from memhub.store import open_store
from memhub.store.blobs import chunk_key, open_blob_store
from memhub.store.blobs.local import LocalBlobStore
from memhub.store.maintenance import fsck
from memhub.store.metadata import Metadata
from memhub.store.model import Precondition

THREADS = 8
WRITES = 200


def rows_in(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [int(r[0]) for r in conn.execute("SELECT n FROM t ORDER BY n")]


@pytest.fixture
def meta(tmp_path: Path) -> Metadata:
    meta = Metadata(f"sqlite:///{tmp_path / 'g.db'}")
    with meta.write() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return meta


def test_concurrent_writes_share_commits_and_all_land(meta: Metadata, tmp_path: Path) -> None:
    group = meta._group
    assert group is not None
    commits_before, writes_before = group.commits, group.writes
    gate = threading.Barrier(THREADS)

    def write(n: int) -> int:
        if n < THREADS:
            gate.wait()  # start together, so that some must queue
        with meta.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        # acknowledged: a connection opened now, outside memhub, sees it
        assert n in rows_in(tmp_path / "g.db")
        return n

    with ThreadPoolExecutor(THREADS) as pool:
        done = list(pool.map(write, range(WRITES)))

    assert rows_in(tmp_path / "g.db") == sorted(done) == list(range(WRITES))
    assert group.writes - writes_before == WRITES
    assert group.commits - commits_before < WRITES  # some COMMITs were shared
    meta.close()


def test_a_failing_caller_undoes_only_its_own_writes(meta: Metadata, tmp_path: Path) -> None:
    inside = threading.Event()
    release = threading.Event()
    outcomes: dict[int, str] = {}

    def holder() -> None:  # keeps the batch open while the others line up behind it
        with meta.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1000)"))
            inside.set()
            release.wait(10)
        outcomes[1000] = "ok"

    def write(n: int) -> None:
        try:
            with meta.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                if n % 2:
                    raise PreconditionFailed("odd")
            outcomes[n] = "ok"
        except PreconditionFailed:
            outcomes[n] = "failed"

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(10)
    others = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(20)

    assert outcomes == {1000: "ok", 0: "ok", 1: "failed", 2: "ok", 3: "failed", 4: "ok",
                        5: "failed"}  # fmt: skip
    assert rows_in(tmp_path / "g.db") == [0, 2, 4, 1000]
    meta.close()


def test_a_broken_transaction_fails_every_caller_that_shared_it(
    meta: Metadata, tmp_path: Path
) -> None:
    inside = threading.Event()
    release = threading.Event()
    errors: dict[str, BaseException] = {}

    def first() -> None:
        try:
            with meta.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                inside.set()
                release.wait(10)
        except BaseException as exc:
            errors["first"] = exc

    def breaker() -> None:
        try:
            with meta.write() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
                conn.exec_driver_sql("ROLLBACK")  # the whole transaction is gone
        except BaseException as exc:
            errors["breaker"] = exc

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=breaker)
    b.start()
    release.set()
    a.join(20)
    b.join(20)

    assert isinstance(errors.get("first"), StorageUnavailable)
    assert "breaker" in errors
    assert rows_in(tmp_path / "g.db") == []
    with meta.write() as conn:  # and the next write works
        conn.execute(text("INSERT INTO t VALUES (3)"))
    assert rows_in(tmp_path / "g.db") == [3]
    meta.close()


def test_a_failing_caller_raises_only_after_the_writes_it_saw_are_committed(
    meta: Metadata, tmp_path: Path
) -> None:
    """A precondition fails against the batch's uncommitted rows: when it raises, its
    caller must be able to read them, or a read-check-write retry loop never
    converges while other writers keep the batch open (a livelock seen under load)."""
    inside = threading.Event()
    release = threading.Event()
    seen_on_failure: list[list[int]] = []

    def holder() -> None:
        with meta.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            inside.set()
            release.wait(10)

    def checker() -> None:
        try:
            with meta.write() as conn:
                if conn.execute(text("SELECT count(*) FROM t")).scalar_one():
                    raise PreconditionFailed("the row it checked for is there")
        except PreconditionFailed:
            seen_on_failure.append(rows_in(tmp_path / "g.db"))

    def waiter() -> None:  # keeps someone in line, so nobody commits on "no one waits"
        with meta.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))

    a = threading.Thread(target=holder)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=checker)
    b.start()
    c = threading.Thread(target=waiter)
    c.start()
    release.set()
    for t in (a, b, c):
        t.join(20)

    assert seen_on_failure and 1 in seen_on_failure[0]
    assert rows_in(tmp_path / "g.db") == [1, 2]
    meta.close()


# -- the inline tier -------------------------------------------------------------------


def test_small_blobs_go_inline_large_ones_to_files(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = open_blob_store(root.as_uri() + "?inline_max_bytes=100")
    assert isinstance(store, LocalBlobStore)
    small, large = "chunks/aa/" + "a" * 64, "chunks/bb/" + "b" * 64
    store.put(small, b"s" * 100)
    store.put(large, b"L" * 101)

    assert not (root / "chunks" / "aa").exists()
    assert (root / "chunks" / "bb" / ("b" * 64)).read_bytes() == b"L" * 101
    assert sorted((i.key, i.size) for i in store.list("chunks/")) == [(small, 100), (large, 101)]
    assert store.exists(small) and store.exists(large)
    store.close()

    reopened = open_blob_store(root.as_uri() + "?inline_max_bytes=100")
    assert reopened.get(small) == b"s" * 100
    assert b"".join(reopened.open(small)) == b"s" * 100
    reopened.delete([small, large])
    assert list(reopened.list()) == []
    reopened.close()


def test_concurrent_store_puts_are_all_readable_and_fsck_clean(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}", (tmp_path / "blobs").as_uri())
    store.create_workspace("w")

    def put(i: int) -> str:
        result = store.put("w", f"notes/{i}.md", f"note {i}\n".encode() * 50,
                           precondition=Precondition(exists=False))  # fmt: skip
        return result.revision.sha256

    with ThreadPoolExecutor(THREADS) as pool:
        shas = list(pool.map(put, range(120)))
    store.close()

    again = open_store(f"sqlite:///{tmp_path / 'm.db'}", (tmp_path / "blobs").as_uri())
    assert [again.read_bytes("w", f"notes/{i}.md")[1] for i in (0, 57, 119)] == [
        f"note {i}\n".encode() * 50 for i in (0, 57, 119)
    ]
    assert again.head_rev("w") == 120
    assert not list((tmp_path / "blobs").glob("chunks/*/*"))  # all of them inline
    assert all(again.blobs.exists(chunk_key(s)) for s in shas)
    report = fsck(again)
    assert report.ok, report
    again.close()


def test_fsck_finds_an_inline_blob_deleted_by_hand(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}", (tmp_path / "blobs").as_uri())
    store.create_workspace("w")
    sha = store.put("w", "a.md", b"kept").revision.sha256
    lost = store.put("w", "b.md", b"lost by hand").revision.sha256
    with sqlite3.connect(tmp_path / "m.db") as conn:  # the inline tier: the metadata DB
        conn.execute("DELETE FROM inline_blobs WHERE key = ?", (chunk_key(lost),))

    report = fsck(store)
    assert not report.ok
    assert report.missing_chunks == [lost]
    assert store.read_bytes("w", "a.md")[1] == b"kept"
    assert sha != lost
    store.close()


# -- the writer queue: processes take turns on a flock, not in SQLite's busy handler ----


def test_a_writer_waits_in_line_while_another_process_holds_the_queue(
    meta: Metadata, tmp_path: Path
) -> None:
    queue_file = tmp_path / "g.db.writers"
    with meta.write() as conn:  # the queue file exists once a batch has run
        conn.execute(text("INSERT INTO t VALUES (0)"))
    other = os.open(queue_file, os.O_RDWR)  # another open file: as another process's
    fcntl.flock(other, fcntl.LOCK_EX)
    done = threading.Event()

    def write() -> None:
        with meta.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert not done.wait(0.5)  # in line behind the other holder
        assert rows_in(tmp_path / "g.db") == [0]
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
    assert done.wait(20)
    thread.join(20)
    assert rows_in(tmp_path / "g.db") == [0, 1]
    # and the queue is free again once the batch is over, even after a failed block
    with pytest.raises(RuntimeError), meta.write() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("refused")
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(other)
    assert rows_in(tmp_path / "g.db") == [0, 1]
