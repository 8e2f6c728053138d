"""The BlobStore contract, one suite run against every backend (memory, local, S3).

Then what only one backend can show: what a local write leaves on disk, how an
S3 store reports a missing bucket, how blob URLs are read.
"""

from __future__ import annotations

import gc
import random
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from memhub.errors import BadRequest, StorageUnavailable
from memhub.store.blobs import BlobNotFound, BlobStore, open_blob_store, put_all
from memhub.store.blobs.base import READ_PIECE
from memhub.store.blobs.local import LocalBlobStore

KEY = "chunks/ab/" + "ab" * 32  # shaped like the keys the store uses


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# -- the contract, for every backend ------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"x", payload(1000), payload(2 * READ_PIECE + 123)],
    ids=["empty", "one-byte", "1000-bytes", "over-512KiB"],
)
def test_put_then_get_and_open_give_back_the_same_bytes(blob_store: BlobStore, data: bytes) -> None:
    blob_store.put(KEY, data)

    assert blob_store.get(KEY) == data
    pieces = list(blob_store.open(KEY))
    assert b"".join(pieces) == data
    # streamed in bounded memory: over 512 KiB come in at least three pieces
    assert all(len(piece) <= READ_PIECE for piece in pieces)


def test_put_all_stores_every_blob_small_and_large(blob_store: BlobStore) -> None:
    """A batch write's blobs in one call: on the local store the small ones share one
    inline transaction and the large ones are files; elsewhere one put each."""
    items = [(f"chunks/{i:02x}/" + f"{i:02x}" * 32, payload(size, i)) for i, size in
             enumerate([0, 10, 1000, 40_000, 300_000, 7])]  # fmt: skip
    put_all(blob_store, items)
    put_all(blob_store, [])
    for key, data in items:
        assert blob_store.get(key) == data
    assert sorted(info.key for info in blob_store.list()) == sorted(k for k, _ in items)


def test_put_of_the_same_bytes_twice_is_idempotent(blob_store: BlobStore) -> None:
    blob_store.put(KEY, b"same bytes")
    blob_store.put(KEY, b"same bytes")

    assert blob_store.get(KEY) == b"same bytes"
    assert [(info.key, info.size) for info in blob_store.list()] == [(KEY, 10)]


def test_put_over_an_existing_key_replaces_its_bytes(blob_store: BlobStore) -> None:
    blob_store.put(KEY, b"old")
    blob_store.put(KEY, b"newer")

    assert blob_store.get(KEY) == b"newer"
    assert [(info.key, info.size) for info in blob_store.list()] == [(KEY, 5)]


def test_get_and_open_of_an_absent_key_raise_blob_not_found(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blob_store.get("chunks/00/absent")
    with pytest.raises(BlobNotFound):
        blob_store.open("chunks/00/absent")


def test_exists_follows_put_and_delete(blob_store: BlobStore) -> None:
    assert not blob_store.exists(KEY)
    blob_store.put(KEY, b"here")
    assert blob_store.exists(KEY)
    blob_store.delete([KEY])
    assert not blob_store.exists(KEY)
    with pytest.raises(BlobNotFound):
        blob_store.get(KEY)


def test_list_yields_every_key_under_a_prefix_with_its_size(blob_store: BlobStore) -> None:
    blobs = {"chunks/aa/one": b"1", "chunks/ab/two": b"22", "other/three": b"333"}
    before = time.time()
    for key, data in blobs.items():
        blob_store.put(key, data)

    listed = list(blob_store.list("chunks/"))

    assert sorted((info.key, info.size) for info in listed) == [
        ("chunks/aa/one", 1),
        ("chunks/ab/two", 2),
    ]
    assert {info.key for info in blob_store.list()} == set(blobs)
    assert [info.key for info in blob_store.list("chunks/aa/")] == ["chunks/aa/one"]
    assert list(blob_store.list("nothing/")) == []
    # gc's grace period trusts ``modified``: it must be the time of the write (S3
    # rounds it down to the second), not zero and not the future.
    for info in listed:
        assert before - 2 <= info.modified <= time.time() + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "blob_store",
    [pytest.param("local", id="local"), pytest.param("s3", id="s3", marks=pytest.mark.s3)],
    indirect=True,
)
def test_list_and_delete_more_than_a_thousand_keys(blob_store: BlobStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1100)]  # S3 lists and deletes 1,000 at a time
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: blob_store.put(key, b"."), keys))
    blob_store.put("other/keep", b"k")

    assert sorted(info.key for info in blob_store.list("many/")) == keys

    blob_store.delete(iter(keys))

    assert list(blob_store.list("many/")) == []
    assert [info.key for info in blob_store.list()] == ["other/keep"]


def test_delete_removes_the_keys_given_and_ignores_absent_ones(blob_store: BlobStore) -> None:
    blob_store.put("chunks/aa/gone", b"1")
    blob_store.put("chunks/aa/kept", b"2")

    blob_store.delete(["chunks/aa/gone", "chunks/aa/never-there"])
    blob_store.delete([])
    blob_store.delete(["chunks/aa/gone"])

    assert [info.key for info in blob_store.list()] == ["chunks/aa/kept"]


def test_ping_of_a_working_store_succeeds(blob_store: BlobStore) -> None:
    blob_store.ping()


def test_an_opened_blob_closed_unread_releases_its_resources(blob_store: BlobStore) -> None:
    """A download that is abandoned before its first byte (a client that hangs up)
    must not leave the blob's file open until the garbage collector finds it."""
    blob_store.put(KEY, b"bytes nobody reads")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pieces = blob_store.open(KEY)
        pieces.close()  # type: ignore[attr-defined]
        del pieces
        gc.collect()

    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- local directory ------------------------------------------------------------------


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def local_store(blob_root: Path) -> LocalBlobStore:
    """Every blob in its own file (the inline tier has its own tests: test_group_commit.py)."""
    store = open_blob_store(blob_root.as_uri() + "?inline_max_bytes=0")
    assert isinstance(store, LocalBlobStore)
    return store


def temp_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.startswith(".tmp-")]


def test_local_puts_leave_no_temp_files(local_store: LocalBlobStore, blob_root: Path) -> None:
    for i in range(5):
        local_store.put(f"chunks/{i:02x}/blob", b"data" * i)

    assert temp_files(blob_root) == []
    assert local_store.list_temp_files() == []
    assert (blob_root / "chunks" / "03" / "blob").read_bytes() == b"data" * 3


def test_local_leftover_temp_file_is_not_listed(
    local_store: LocalBlobStore, blob_root: Path
) -> None:
    local_store.put("chunks/aa/real", b"real")
    leftover = blob_root / "chunks" / "aa" / ".tmp-0123456789abcdef"
    leftover.write_bytes(b"half of a write cut short by a crash")

    assert [info.key for info in local_store.list()] == ["chunks/aa/real"]
    assert [info.key for info in local_store.list("chunks/aa/")] == ["chunks/aa/real"]
    assert local_store.list_temp_files() == [leftover]


def test_local_failing_write_raises_storage_unavailable_and_leaves_no_temp_file(
    local_store: LocalBlobStore, blob_root: Path
) -> None:
    # A directory where the blob should go: the temp file is written, the rename fails.
    # (Tests run as root here, so a read-only directory would not stop the write.)
    blocked = blob_root / "chunks" / "aa" / "blocked"
    blocked.mkdir(parents=True)

    with pytest.raises(StorageUnavailable) as failure:
        local_store.put("chunks/aa/blocked", b"bytes")

    assert failure.value.status == 503
    assert failure.value.hint
    assert temp_files(blob_root) == []
    assert blocked.is_dir()
    assert list(blocked.iterdir()) == []


def test_local_write_below_a_file_raises_storage_unavailable(
    local_store: LocalBlobStore, blob_root: Path
) -> None:
    (blob_root / "chunks").write_bytes(b"a file where a directory belongs")

    with pytest.raises(StorageUnavailable):
        local_store.put("chunks/aa/blob", b"bytes")

    assert temp_files(blob_root) == []


def test_local_store_whose_directory_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")

    with pytest.raises(StorageUnavailable) as failure:
        open_blob_store((tmp_path / "a-file" / "blobs").as_uri())

    assert failure.value.hint


# -- S3 ------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_missing_bucket_is_storage_unavailable_not_blob_not_found(s3_server: str) -> None:
    store = open_blob_store("s3://memhub-no-such-bucket/prefix", s3_endpoint_url=s3_server)
    try:
        with pytest.raises(StorageUnavailable) as failure:
            store.ping()
        assert failure.value.status == 503
        assert failure.value.hint
        # Every operation says so: a missing bucket is not a missing blob (an fsck
        # without hash checks would otherwise call every chunk of the store lost).
        with pytest.raises(StorageUnavailable):
            store.get(KEY)
        with pytest.raises(StorageUnavailable):
            list(store.list("chunks/"))
        with pytest.raises(StorageUnavailable):
            store.exists(KEY)
    finally:
        store.close()


@pytest.mark.s3
def test_s3_stores_under_different_prefixes_of_one_bucket_are_separate(
    s3_server: str, s3_bucket: str
) -> None:
    first = open_blob_store(f"s3://{s3_bucket}/tenant", s3_endpoint_url=s3_server)
    second = open_blob_store(f"s3://{s3_bucket}/tenant2/", s3_endpoint_url=s3_server)
    try:
        first.put(KEY, b"first")
        second.put(KEY, b"second")

        assert first.get(KEY) == b"first"
        assert second.get(KEY) == b"second"
        assert [info.key for info in first.list()] == [KEY]
        assert [info.key for info in second.list()] == [KEY]

        first.delete([KEY])
        assert not first.exists(KEY)
        assert second.get(KEY) == b"second"
    finally:
        first.close()
        second.close()


# -- blob URLs -------------------------------------------------------------------------------


def test_file_url_names_an_absolute_directory(tmp_path: Path) -> None:
    store = open_blob_store(f"file://localhost{(tmp_path / 'with space').as_posix()}")
    store.put(KEY, b"x")
    assert (tmp_path / "with space" / ".inline").is_dir()  # small blobs: the inline tier
    assert open_blob_store((tmp_path / "with space").as_uri()).get(KEY) == b"x"


def test_file_url_with_a_host_part_is_rejected(tmp_path: Path) -> None:
    """``file://data/blobs`` (a relative path written with two slashes) must not put
    the blobs in ``/blobs``: only ``file:///dir`` and ``file://localhost/dir`` name a
    local directory."""
    target = tmp_path / "blobs"

    with pytest.raises(BadRequest):
        open_blob_store(f"file://data{target.as_posix()}")

    assert not target.exists()


@pytest.mark.parametrize("url", ["ftp://host/dir", "s3:///prefix-without-bucket", "blobs"])
def test_unusable_blob_urls_are_rejected(url: str) -> None:
    with pytest.raises(BadRequest) as failure:
        open_blob_store(url)
    assert failure.value.hint
