"""The index reads a page of small files in one query (memhub.store.readahead): the
same index as reading them one by one, and damaged or missing bytes are still found
and reported by the store's own read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from memhub.memory.index import WorkspaceIndex
from memhub.store import Store, readahead
from memhub.store.blobs import open_blob_store
from memhub.store.blobs.base import chunk_key
from memhub.store.metadata import Metadata
from memhub.store.readahead import inline_chunks
from memhub.store.schema import inline_blobs

WS = "notes"


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store whose small blobs are rows of its metadata database (the default layout)."""
    meta = Metadata(sqlite_url)
    store = Store(meta, open_blob_store((tmp_path / "blobs").as_uri(), metadata=meta))
    store.create_workspace(WS)
    yield store
    meta.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fill(store: Store) -> dict[str, bytes]:
    files = {
        f"notes/n{i:02d}.md": f"## Note {i}\n\nlighthouse keeper number {i}\n".encode()
        for i in range(30)
    }
    files["notes/big.md"] = b"## Big\n\n" + b"a lighthouse on the rocks. " * 2000  # a file blob
    for path, data in files.items():
        store.put(WS, path, data)
    return files


def indexed(index: WorkspaceIndex) -> list[tuple[str, int, str]]:
    return sorted((hit.path, seq, hit.text) for seq, hit in index._all_blocks())


def test_read_ahead_gives_the_verified_inline_chunks_only(store: Store) -> None:
    files = fill(store)
    refs = store.chunk_refs(WS, (sha(data) for data in files.values()))
    ahead = inline_chunks(store, (ref for chunks in refs.values() for ref in chunks))
    small = {sha(data): data for path, data in files.items() if path != "notes/big.md"}
    assert ahead == small  # the big file's chunk is a file of the blob directory: not here
    rotted = sha(files["notes/n03.md"])
    with store.meta.write() as conn:
        conn.execute(
            update(inline_blobs)
            .where(inline_blobs.c.key == chunk_key(rotted))
            .values(data=b"R" * len(files["notes/n03.md"]))
        )
    again = inline_chunks(store, (ref for chunks in refs.values() for ref in chunks))
    assert rotted not in again and len(again) == len(small) - 1


def test_the_index_is_the_same_with_and_without_read_ahead(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store)
    ahead = WorkspaceIndex(tmp_path / "ahead", WS, store, processes=0)
    ahead.rebuild()
    monkeypatch.setattr(readahead, "inline_chunks", lambda store, refs: {})
    one_by_one = WorkspaceIndex(tmp_path / "one-by-one", WS, store, processes=0)
    one_by_one.rebuild()
    try:
        assert indexed(ahead) == indexed(one_by_one)
        assert len({path for path, _, _ in indexed(ahead)}) == 31
    finally:
        ahead.close()
        one_by_one.close()


def test_small_read_ahead_groups_read_every_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store)
    monkeypatch.setattr(readahead, "READ_AHEAD_BYTES", 100)  # about a file per group
    index = WorkspaceIndex(tmp_path / "index", WS, store, processes=0)
    try:
        index.rebuild()
        assert len({path for path, _, _ in indexed(index)}) == 31
    finally:
        index.close()


def test_a_rotted_inline_chunk_is_reported_not_indexed(store: Store, tmp_path: Path) -> None:
    files = fill(store)
    rotted = sha(files["notes/n07.md"])
    with store.meta.write() as conn:
        conn.execute(
            update(inline_blobs)
            .where(inline_blobs.c.key == chunk_key(rotted))
            .values(data=b"R" * len(files["notes/n07.md"]))
        )
    told: list[str] = []
    store.add_corruption_listener(told.append)
    index = WorkspaceIndex(tmp_path / "index", WS, store, processes=0)
    try:
        index.rebuild()
        paths = {path for path, _, _ in indexed(index)}
        assert "notes/n07.md" not in paths and len(paths) == 30
        problem = index.problems["notes/n07.md"]
        assert (problem["kind"], problem["error_code"]) == ("unreadable", "STORAGE_CORRUPT")
        assert told == [rotted]  # the store's own read found it, and said so
    finally:
        index.close()


def test_no_read_ahead_while_the_blob_directory_is_out(store: Store, tmp_path: Path) -> None:
    """The store's own read fails while its directory is out (StorageUnavailable: the
    index answers 503), so reading ahead from the database must not hide the outage."""
    files = fill(store)
    refs = store.chunk_refs(WS, (sha(data) for data in files.values()))
    every = [ref for chunks in refs.values() for ref in chunks]
    (tmp_path / "blobs").rename(tmp_path / "aside")
    (tmp_path / "blobs").write_text("not a directory")
    try:
        assert inline_chunks(store, every) == {}
    finally:
        (tmp_path / "blobs").unlink()
        (tmp_path / "aside").rename(tmp_path / "blobs")
    assert len(inline_chunks(store, every)) == len(files) - 1
