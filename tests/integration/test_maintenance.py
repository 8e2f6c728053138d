"""``memhub fsck`` and ``memhub gc`` on a SQLite file and a local blob directory
(and once on PostgreSQL for the purge of old revisions), damaging the store by
hand the way a disk or an operator would."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memhub.errors import BlobMissing, RevisionNotFound
from memhub.store import ChunkRef, Store
from memhub.store.blobs import chunk_key, open_blob_store
from memhub.store.maintenance import Retention, fsck, gc
from memhub.store.metadata import Metadata

DAY = 86400.0
StoreFactory = Callable[..., Store]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_blobs(store: Store) -> set[str]:
    return {info.key for info in store.blobs.list("chunks/")}


def keys_of(*contents: bytes, chunk_size: int = 1024) -> set[str]:
    return {
        chunk_key(sha(data[i : i + chunk_size]))
        for data in contents
        for i in range(0, len(data), chunk_size)
    }


def revs(store: Store, workspace: str, path: str) -> list[int]:
    return [r.rev for r in store.history(workspace, path)]


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


def _local_store_factory(metadata_url: str, blob_root: Path) -> Iterator[StoreFactory]:
    opened: list[Store] = []

    def make(*, clock: Callable[[], float] = time.time) -> Store:
        meta = Metadata(metadata_url)
        meta.migrate()
        store = Store(
            meta,
            open_blob_store(blob_root.as_uri() + "?inline_max_bytes=0"),
            chunk_size=1024,
            clock=clock,
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def make_local_store(tmp_path: Path, blob_root: Path) -> Iterator[StoreFactory]:
    """Stores over one SQLite file and one local blob directory."""
    yield from _local_store_factory(f"sqlite:///{tmp_path / 'meta.db'}", blob_root)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def make_any_store(
    request: pytest.FixtureRequest, tmp_path: Path, blob_root: Path
) -> Iterator[StoreFactory]:
    """Like ``make_local_store``, once on SQLite and once on a PostgreSQL database of the
    test's own (gc works on every workspace, so it must not share one)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    yield from _local_store_factory(url, blob_root)


@pytest.fixture
def store(make_local_store: StoreFactory) -> Store:
    return make_local_store()


# -- fsck ------------------------------------------------------------------------------------


def test_fsck_of_a_healthy_store_is_ok(store: Store) -> None:
    big = os.urandom(2500)  # three chunks
    store.create_workspace("one")
    store.create_workspace("two")
    store.put("one", "big.bin", big)
    store.put("one", "big.bin", b"small")
    store.put("one", "gone.md", b"deleted later")
    store.delete("one", "gone.md")
    store.put("two", "same.bin", big)  # the same bytes in another workspace
    store.put("two", "empty", b"")

    report = fsck(store)

    assert report.ok
    assert report.to_dict() == {
        "ok": True,
        "revisions_checked": 6,
        "chunks_checked": 5,  # big's three, small, "deleted later"
        "missing_chunks": [],
        "corrupt_chunks": [],
        "orphan_blobs": [],
        "broken_revisions": [],
    }


def test_fsck_reports_a_chunk_deleted_by_hand(store: Store, blob_root: Path) -> None:
    data = os.urandom(2500)
    store.create_workspace("ws")
    store.put("ws", "other.md", b"unharmed")
    written = store.put("ws", "data.bin", data).revision
    store.put("ws", "copy.bin", data)
    lost = sha(data[1024:2048])
    (blob_root / chunk_key(lost)).unlink()

    report = fsck(store)

    assert not report.ok
    assert report.missing_chunks == [lost]
    assert report.corrupt_chunks == []
    assert report.broken_revisions == [
        {
            "workspace": "ws",
            "sha256": written.sha256,
            "first_rev": written.rev,
            "revisions": 2,
            "problem": f"chunk {lost} is missing or corrupt",
        }
    ]
    with pytest.raises(BlobMissing) as failure:
        store.read_bytes("ws", "data.bin")
    assert failure.value.status == 500
    assert store.read_bytes("ws", "other.md")[1] == b"unharmed"


@pytest.mark.parametrize("replacement", [b"X" * 1024, b"short"], ids=["same-size", "other-size"])
def test_fsck_reports_a_chunk_overwritten_with_other_bytes(
    store: Store, blob_root: Path, replacement: bytes
) -> None:
    data = os.urandom(2048)
    store.create_workspace("ws")
    store.put("ws", "data.bin", data)
    damaged = sha(data[:1024])
    (blob_root / chunk_key(damaged)).write_bytes(replacement)

    report = fsck(store)

    assert not report.ok
    assert report.corrupt_chunks == [damaged]
    assert report.missing_chunks == []
    assert len(report.broken_revisions) == 1


def test_fsck_lists_orphan_blobs_without_calling_the_store_damaged(store: Store) -> None:
    store.create_workspace("ws")
    store.put("ws", "a.md", b"a")
    orphan = chunk_key(sha(b"written, never committed"))
    store.blobs.put(orphan, b"written, never committed")

    report = fsck(store)

    assert report.ok
    assert report.orphan_blobs == [orphan]


# -- gc ----------------------------------------------------------------------------------------


def test_gc_keeping_one_revision_purges_history_but_never_a_head(
    make_any_store: StoreFactory,
) -> None:
    store = make_any_store()
    store.create_workspace("ws")
    versions = [b"v1 " * 500, b"v2 " * 500, b"v3 " * 500]  # two chunks each
    for data in versions:
        store.put("ws", "a.md", data)
    store.put("ws", "b.md", b"b's only content")
    store.delete("ws", "b.md")
    store.put("ws", "c.md", b"c, written once")

    report = gc(store, retention=Retention(keep_revisions=1), grace_seconds=0)

    assert report.revisions_purged == 3  # a's v1 and v2, b's content revision
    assert report.contents_deleted == 2  # v1 and v2: nothing refers to them any more
    assert report.chunks_deleted == 4
    assert report.blobs_deleted == 4
    assert report.bytes_freed == 3000
    assert (revs(store, "ws", "a.md"), revs(store, "ws", "b.md"), revs(store, "ws", "c.md")) == (
        [3],
        [5],
        [6],
    )
    assert store.read_bytes("ws", "a.md")[1] == versions[2]
    assert store.read_bytes("ws", "c.md")[1] == b"c, written once"
    with pytest.raises(RevisionNotFound):
        store.read_bytes("ws", "a.md", 1)
    # the tombstone still names b's last content, so those bytes stay
    assert chunk_blobs(store) == keys_of(versions[2], b"b's only content", b"c, written once")
    assert fsck(store).ok
    assert store.put("ws", "d.md", b"after gc").revision.rev == 7  # revs never go back


def _three_versions_and_an_unused_chunk(store: Store) -> None:
    store.create_workspace("ws")
    for i in range(3):
        store.put("ws", "a.md", b"version %d" % i)
    store.put_chunk("ws", sha(b"uploaded, never committed"), b"uploaded, never committed")


def test_gc_dry_run_deletes_nothing(store: Store) -> None:
    _three_versions_and_an_unused_chunk(store)
    blobs_before = chunk_blobs(store)

    report = gc(store, retention=Retention(keep_revisions=1), grace_seconds=0, dry_run=True)

    assert report.dry_run
    assert report.revisions_purged == 2
    assert revs(store, "ws", "a.md") == [3, 2, 1]
    assert store.read_bytes("ws", "a.md", 1)[1] == b"version 0"
    assert chunk_blobs(store) == blobs_before
    assert store.missing_chunks("ws", [sha(b"uploaded, never committed")]) == []
    assert fsck(store).ok


def test_gc_dry_run_reports_what_the_real_run_then_does(store: Store) -> None:
    """``memhub gc --dry-run`` is how an operator decides whether to run gc: its numbers
    must be the real run's, including the contents, chunks and bytes that the purge of
    old revisions frees."""
    _three_versions_and_an_unused_chunk(store)

    dry = gc(store, retention=Retention(keep_revisions=1), grace_seconds=0, dry_run=True)
    real = gc(store, retention=Retention(keep_revisions=1), grace_seconds=0)

    assert (real.revisions_purged, real.contents_deleted, real.chunks_deleted) == (2, 2, 3)
    assert dry.to_dict() == {**real.to_dict(), "dry_run": True}


def test_gc_spares_blobs_and_chunks_younger_than_the_grace_period(
    make_local_store: StoreFactory, clock: Any
) -> None:
    store = make_local_store(clock=clock)
    store.create_workspace("ws")
    orphan = chunk_key(sha(b"a write in progress"))
    store.blobs.put(orphan, b"a write in progress")
    pending = b"a chunk uploaded before its manifest"
    store.put_chunk("ws", sha(pending), pending)

    clock.advance(3600)
    report = gc(store, grace_seconds=2 * 3600)

    assert (report.chunks_deleted, report.blobs_deleted) == (0, 0)
    assert store.blobs.exists(orphan)
    store.commit_manifest("ws", "p.bin", [ChunkRef(sha(pending), len(pending))], sha(pending))
    assert store.read_bytes("ws", "p.bin")[1] == pending

    clock.advance(2 * 3600)
    late = gc(store, grace_seconds=2 * 3600)

    assert (late.chunks_deleted, late.blobs_deleted) == (0, 1)
    assert not store.blobs.exists(orphan)
    assert store.read_bytes("ws", "p.bin")[1] == pending
    assert fsck(store).to_dict()["orphan_blobs"] == []


def test_gc_collects_an_uploaded_chunk_no_manifest_used_after_the_grace_period(
    make_local_store: StoreFactory, clock: Any
) -> None:
    store = make_local_store(clock=clock)
    store.create_workspace("ws")
    abandoned = b"an upload whose client went away"
    store.put_chunk("ws", sha(abandoned), abandoned)
    clock.advance(2 * DAY)

    report = gc(store)  # the default grace period is one day

    assert (report.chunks_deleted, report.blobs_deleted) == (1, 1)
    assert store.missing_chunks("ws", [sha(abandoned)]) == [sha(abandoned)]
    assert fsck(store).ok


def test_gc_keep_days_purges_revisions_older_than_the_window(
    make_local_store: StoreFactory, clock: Any
) -> None:
    store = make_local_store(clock=clock)
    store.create_workspace("ws")
    for day in range(4):  # one version a day: revs 1..4, rev 4 is the head
        store.put("ws", "log.md", b"day %d" % day)
        clock.advance(DAY)
    store.put("ws", "old.md", b"written once, long ago")
    clock.advance(10 * DAY)
    store.put("ws", "log.md", b"today")  # rev 6; revs 1..4 are now 10 to 14 days old

    assert gc(store, retention=Retention(keep_days=12), grace_seconds=0).revisions_purged == 2
    assert revs(store, "ws", "log.md") == [6, 4, 3]
    assert gc(store, retention=Retention(keep_days=1), grace_seconds=0).revisions_purged == 2
    assert revs(store, "ws", "log.md") == [6]
    assert revs(store, "ws", "old.md") == [5]  # a head, however old
    assert store.read_bytes("ws", "old.md")[1] == b"written once, long ago"
    assert fsck(store).ok


def test_gc_removes_stale_temp_files_of_interrupted_writes(store: Store, blob_root: Path) -> None:
    store.create_workspace("ws")
    store.put("ws", "a.md", b"a")
    stale = blob_root / "chunks" / ".tmp-stale"
    fresh = blob_root / "chunks" / ".tmp-fresh"
    stale.write_bytes(b"left by a crash two days ago")
    fresh.write_bytes(b"a write in progress")
    two_days_ago = time.time() - 2 * DAY
    os.utime(stale, (two_days_ago, two_days_ago))

    gc(store)

    assert not stale.exists()
    assert fresh.exists()
    assert store.read_bytes("ws", "a.md")[1] == b"a"
