"""The local blob store's inline tier in the metadata database (blobs/metainline.py).

A small write stores its bytes in the transaction that records its revision: no
chunk file, a row of ``inline_blobs``; a refused write leaves no bytes behind;
reads, fsck and gc see the rows as blobs; a data dir from before keeps its
``.inline/blobs.sqlite`` readable and collectable. Over SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from memhub.errors import PreconditionFailed
from memhub.store import Store
from memhub.store.blobs import chunk_key, open_blob_store
from memhub.store.blobs.local import LocalBlobStore
from memhub.store.maintenance import Retention, fsck, gc
from memhub.store.metadata import Metadata
from memhub.store.model import Precondition
from memhub.store.schema import inline_blobs

INLINE_MAX = 1000


def unique_name() -> str:
    return f"ws-{uuid.uuid4().hex[:12]}"


Make = Callable[..., Store]


@pytest.fixture
def make(metadata_url: str, tmp_path: Path) -> Iterator[Make]:
    """Stores over ``metadata_url`` whose local blob store keeps blobs up to
    ``INLINE_MAX`` bytes in that database (as ``open_store`` builds them)."""
    opened: list[Store] = []

    def build(*, clock: Callable[[], float] | None = None) -> Store:
        meta = Metadata(metadata_url)
        blobs = open_blob_store(
            (tmp_path / "blobs").as_uri() + f"?inline_max_bytes={INLINE_MAX}", metadata=meta
        )
        store = Store(meta, blobs, chunk_size=4096, **({"clock": clock} if clock else {}))
        opened.append(store)
        return store

    yield build
    for store in opened:
        store.close()


def inline_keys(store: Store, keys: list[str]) -> set[str]:
    with store.meta.read() as conn:
        rows = conn.execute(select(inline_blobs.c.key).where(inline_blobs.c.key.in_(keys)))
        return {str(key) for (key,) in rows}


def chunk_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "blobs").glob("chunks/*/*"))


def test_a_small_put_stores_its_bytes_in_the_metadata_database(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    body = os.urandom(INLINE_MAX)
    sha = store.put(ws, "small.bin", body).revision.sha256

    assert inline_keys(store, [chunk_key(sha)]) == {chunk_key(sha)}
    assert chunk_files(tmp_path) == []  # no file, so no file fsync
    assert store.read_bytes(ws, "small.bin")[1] == body
    again = make()  # another process's view: it is committed
    assert again.read_bytes(ws, "small.bin")[1] == body


def test_a_larger_put_is_a_file_and_not_inline(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    body = os.urandom(INLINE_MAX + 1)
    sha = store.put(ws, "large.bin", body).revision.sha256

    assert inline_keys(store, [chunk_key(sha)]) == set()
    assert [p.name for p in chunk_files(tmp_path)] == [sha]
    assert store.read_bytes(ws, "large.bin")[1] == body


def test_a_multi_chunk_put_keeps_its_small_tail_inline(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    body = os.urandom(4096 + 10)  # one full chunk (a file) and a 10-byte tail (inline)
    _, refs = store.read_plan(ws, store.put(ws, "two.bin", body).revision.path)

    assert [r.size for r in refs] == [4096, 10]
    assert inline_keys(store, [chunk_key(r.sha256) for r in refs]) == {chunk_key(refs[1].sha256)}
    assert store.read_bytes(ws, "two.bin")[1] == body


def test_a_refused_write_leaves_no_bytes(make: Make) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    store.put(ws, "taken.md", b"first")
    loser = os.urandom(100)
    with pytest.raises(PreconditionFailed):
        store.put(ws, "taken.md", loser, precondition=Precondition(exists=False))

    assert inline_keys(store, [chunk_key(hashlib.sha256(loser).hexdigest())]) == set()
    assert store.read_bytes(ws, "taken.md")[1] == b"first"


def test_batch_writes_store_accepted_bytes_and_only_those(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    store.put(ws, "exists.md", b"here")
    bodies = {"a.md": os.urandom(50), "exists.md": os.urandom(60), "b.md": os.urandom(70)}
    results = store.put_each(
        ws,
        [(path, data, Precondition(exists=False)) for path, data in bodies.items()],
    )

    assert isinstance(results[1], PreconditionFailed)
    keys = {p: chunk_key(hashlib.sha256(d).hexdigest()) for p, d in bodies.items()}
    assert inline_keys(store, list(keys.values())) == {keys["a.md"], keys["b.md"]}
    assert chunk_files(tmp_path) == []
    assert store.read_bytes(ws, "b.md")[1] == bodies["b.md"]


def test_an_imported_history_stamps_its_rows_with_the_clock_not_its_own_time(
    make: Make,
) -> None:
    """gc spares a blob for a grace period counted from its ``modified``: a row of an
    import dated years ago must not look old enough to collect while it is written."""
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    data = os.urandom(300)
    [result] = store.put_many(ws, [("old.md", data, Precondition())], created_at=1e9)

    assert result.revision.created_at == 1e9
    with store.meta.read() as conn:
        modified = conn.execute(
            select(inline_blobs.c.modified).where(
                inline_blobs.c.key == chunk_key(hashlib.sha256(data).hexdigest())
            )
        ).scalar_one()
    assert modified > time.time() - 3600


def test_concurrent_small_puts_all_land_and_fsck_is_clean(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]

    def put(i: int) -> str:
        data = f"note {i}\n".encode() * 20
        return store.put(
            ws, f"n/{i}.md", data, precondition=Precondition(exists=False)
        ).revision.sha256

    with ThreadPoolExecutor(8) as pool:
        shas = list(pool.map(put, range(80)))

    assert inline_keys(store, [chunk_key(s) for s in shas]) == {chunk_key(s) for s in shas}
    assert chunk_files(tmp_path) == []
    assert store.read_bytes(ws, "n/79.md")[1] == b"note 79\n" * 20
    again = make()
    assert all(again.blobs.get(chunk_key(s)) for s in shas)
    if again.meta.dialect == "sqlite":  # PostgreSQL's database is shared by other tests
        assert fsck(again).ok


def test_an_uploaded_small_chunk_is_inline_too(make: Make, tmp_path: Path) -> None:
    store = make()
    ws = store.create_workspace(unique_name())["name"]
    data = os.urandom(200)
    sha = hashlib.sha256(data).hexdigest()
    assert store.put_chunk(ws, sha, data)

    assert inline_keys(store, [chunk_key(sha)]) == {chunk_key(sha)}
    assert chunk_files(tmp_path) == []
    assert store.blobs.get(chunk_key(sha)) == data


# -- SQLite only: one data dir of its own -------------------------------------------------


def test_fsck_and_gc_see_inline_rows(tmp_path: Path, clock: Any) -> None:
    meta = Metadata(f"sqlite:///{tmp_path / 'm.db'}")
    meta.migrate()
    blobs = open_blob_store((tmp_path / "blobs").as_uri(), metadata=meta)
    store = Store(meta, blobs, clock=clock)
    store.create_workspace("w")
    kept = store.put("w", "kept.md", b"kept").revision.sha256
    gone = store.put("w", "gone.md", b"gone").revision.sha256
    store.put("w", "gone.md", b"replaced")
    clock.advance(120)  # past the grace period of the rows (the store's clock stamps them)

    report = gc(store, retention=Retention(keep_revisions=1), grace_seconds=60)

    assert report.blobs_deleted == 1
    assert not blobs.exists(chunk_key(gone))
    assert blobs.exists(chunk_key(kept))
    assert store.read_bytes("w", "gone.md")[1] == b"replaced"
    assert fsck(store).ok
    store.close()


def test_a_data_dir_from_before_keeps_its_inline_file_readable(tmp_path: Path) -> None:
    """Blobs written to ``.inline/blobs.sqlite`` (the first inline tier) still read,
    list and delete once the store keeps new small blobs in the metadata database."""
    root = tmp_path / "blobs"
    old = open_blob_store(root.as_uri())
    assert isinstance(old, LocalBlobStore) and old.within is None
    old_key = chunk_key("a" * 64)
    old.put(old_key, b"old small blob")
    old.close()

    meta = Metadata(f"sqlite:///{tmp_path / 'm.db'}")
    meta.migrate()
    new = open_blob_store(root.as_uri(), metadata=meta)
    assert isinstance(new, LocalBlobStore) and new.within is not None
    new_key = chunk_key("b" * 64)
    new.put(new_key, b"new small blob")

    assert new.get(old_key) == b"old small blob"
    assert b"".join(new.open(old_key)) == b"old small blob"
    assert new.exists(old_key) and new.exists(new_key)
    assert sorted(i.key for i in new.list("chunks/")) == [old_key, new_key]
    assert not (root / "chunks").exists()  # both inline, neither a file
    new.delete([old_key, new_key])
    assert list(new.list()) == []
    new.close()
    meta.close()
