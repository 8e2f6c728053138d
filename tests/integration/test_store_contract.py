"""The Store contract, one suite run against every metadata backend (SQLite,
PostgreSQL) combined with every blob store (local, memory, S3).

"Nothing written" is checked the way a sync client would notice it: the
workspace's head rev, its change log and its sync index are all unchanged.
"""

from __future__ import annotations

import hashlib
import io
import random
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from memhub.errors import (
    BadRequest,
    ChunksMissing,
    FencingTokenRejected,
    FileNotFound,
    InvalidChecksum,
    InvalidPath,
    PayloadTooLarge,
    PreconditionFailed,
    RevisionNotFound,
    WorkspaceExists,
    WorkspaceNotFound,
)
from memhub.store import ChunkRef, Fence, Precondition, Revision, Store
from memhub.store.blobs import chunk_key
from memhub.store.model import DEFAULT_CONTENT_TYPE, EMPTY_SHA256
from memhub.store.schema import workspaces

StoreFactory = Callable[..., Store]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def read(store: Store, workspace: str, path: str, rev: int | None = None) -> bytes:
    return store.read_bytes(workspace, path, rev)[1]


def state(store: Store, workspace: str) -> tuple[int, list[Revision], list[Revision]]:
    """What a client can see of a workspace: head rev, change log, sync index."""
    log = store.changes(workspace, 0, limit=10_000).changes
    return store.head_rev(workspace), log, store.sync_index(workspace)


def chunk_blobs(store: Store) -> set[str]:
    return {info.key for info in store.blobs.list("chunks/")}


class TrickleStream(io.RawIOBase):
    """An upload body that arrives a few bytes per read, as a socket delivers it."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self._data[self._pos : self._pos + min(self._step, len(buffer))]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


# -- workspaces -------------------------------------------------------------------------


def test_create_get_and_list_workspaces(store: Store, new_name: Callable[..., str]) -> None:
    name = new_name("ws")

    created = store.create_workspace(name)

    assert (created["name"], created["head_rev"], created["files"], created["bytes"]) == (
        name,
        0,
        0,
        0,
    )
    store.put(name, "a.md", b"12345")
    store.put(name, "b.md", b"123")
    store.delete(name, "b.md")
    info = store.get_workspace(name)
    assert (info["head_rev"], info["files"], info["bytes"]) == (3, 1, 5)
    listed = {ws["name"]: ws for ws in store.list_workspaces()}
    assert listed[name]["head_rev"] == 3


def test_creating_an_existing_workspace_is_a_conflict(store: Store, workspace: str) -> None:
    with pytest.raises(WorkspaceExists) as failure:
        store.create_workspace(workspace)

    assert failure.value.status == 409
    assert store.create_workspace(workspace, exist_ok=True)["name"] == workspace


def test_an_unknown_workspace_is_not_found(store: Store, new_name: Callable[..., str]) -> None:
    missing = new_name("missing")
    calls: list[Callable[[], object]] = [
        lambda: store.get_workspace(missing),
        lambda: store.put(missing, "a.md", b"x"),
        lambda: store.list_files(missing),
        lambda: store.changes(missing),
        lambda: store.missing_chunks(missing, [sha(b"x")]),
    ]
    for call in calls:
        with pytest.raises(WorkspaceNotFound) as failure:
            call()
        assert failure.value.status == 404
    assert missing not in {ws["name"] for ws in store.list_workspaces()}


@pytest.mark.parametrize("name", ["", "a/b", "..", "with space", "x" * 65])
def test_an_invalid_workspace_name_is_rejected(store: Store, name: str) -> None:
    with pytest.raises(InvalidPath):
        store.create_workspace(name)


# -- writing and reading ---------------------------------------------------------------------


def test_the_first_put_of_a_path_creates_it_at_rev_1(store: Store, workspace: str) -> None:
    first = store.put(workspace, "notes/today.md", b"hello")
    second = store.put(workspace, "notes/today.md", b"hello again")

    assert (first.created, first.revision.rev) == (True, 1)
    assert (second.created, second.revision.rev) == (False, 2)
    assert store.head_rev(workspace) == 2


def test_revs_count_up_by_one_in_each_workspace_independently(
    store: Store, workspace: str, new_name: Callable[..., str]
) -> None:
    other = store.create_workspace(new_name())["name"]
    revs: dict[str, list[int]] = {workspace: [], other: []}

    for i, ws in enumerate([workspace, other, workspace, workspace, other, workspace]):
        revs[ws].append(store.put(ws, f"file-{i}.txt", b"%d" % i).revision.rev)

    assert revs == {workspace: [1, 2, 3, 4], other: [1, 2]}
    assert [r.path for r in store.list_files(other)] == ["file-1.txt", "file-4.txt"]
    with pytest.raises(FileNotFound):
        store.stat(other, "file-0.txt")


def test_a_revision_records_hashes_size_type_and_who_wrote_it(store: Store, workspace: str) -> None:
    data = "Привіт, світ! 你好\n".encode()

    revision = store.put(
        workspace,
        "greeting.txt",
        data,
        content_type="text/plain; charset=utf-8",
        author="agent-7",
        session_id="session-1",
        message="first words",
    ).revision

    assert revision.workspace == workspace
    assert revision.path == "greeting.txt"
    assert (revision.sha256, revision.md5, revision.size) == (sha(data), md5(data), len(data))
    assert revision.content_type == "text/plain; charset=utf-8"
    assert (revision.author, revision.session_id, revision.message) == (
        "agent-7",
        "session-1",
        "first words",
    )
    assert revision.deleted is False
    assert store.stat(workspace, "greeting.txt") == revision
    assert store.revision(workspace, revision.rev) == revision
    assert store.history(workspace, "greeting.txt") == [revision]
    plain = store.put(workspace, "blob.bin", b"\x00").revision
    assert plain.content_type == DEFAULT_CONTENT_TYPE
    assert (plain.author, plain.session_id, plain.message) == (None, None, None)


def test_the_head_and_every_older_revision_read_back_byte_exact(
    store: Store, workspace: str
) -> None:
    versions = [b"first", bytes(range(256)) * 9, b"", "третя версія — 第三版".encode()]

    revs = [store.put(workspace, "doc.bin", data).revision.rev for data in versions]

    assert read(store, workspace, "doc.bin") == versions[-1]
    for rev, data in zip(revs, versions, strict=True):
        assert read(store, workspace, "doc.bin", rev) == data
        _revision, refs = store.read_plan(workspace, "doc.bin", rev)
        assert b"".join(store.iter_content(refs)) == data


def test_content_is_cut_into_chunks_and_read_back(
    make_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store = make_store(chunk_size=7)
    workspace = store.create_workspace(new_name())["name"]
    bodies: list[tuple[str, Callable[[bytes], Any]]] = [
        ("bytes", lambda data: data),
        ("BytesIO", io.BytesIO),
        ("trickle", TrickleStream),  # a stream that returns 3 bytes per read
    ]
    for number, (source, make_body) in enumerate(bodies):
        for size in [0, 14, (300, 100, 50)[number]]:  # empty, two whole chunks, many and a bit
            data = payload(size, seed=number)
            path = f"{source}/{size}.bin"

            written = store.put(workspace, path, make_body(data)).revision

            assert (written.size, written.sha256, written.md5) == (size, sha(data), md5(data))
            revision, refs = store.read_plan(workspace, path)
            assert revision == written
            pieces = [data[i : i + 7] for i in range(0, size, 7)]
            assert refs == [ChunkRef(sha(piece), len(piece)) for piece in pieces], (source, size)
            assert store.read_content(refs) == data


def test_chunk_refs_of_many_contents_match_their_read_plans(
    make_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store = make_store(chunk_size=7)
    workspace = store.create_workspace(new_name())["name"]
    other = store.create_workspace(new_name())["name"]
    heads = [store.put(workspace, f"f{n}.bin", payload(n * 5, seed=n)).revision for n in range(12)]
    elsewhere = store.put(other, "x.bin", payload(40, seed=99)).revision
    asked = [h.sha256 for h in heads] + [elsewhere.sha256, sha(b"never written")]

    found = store.chunk_refs(workspace, asked)

    for head in heads:
        if head.size:
            assert found[head.sha256] == store.read_plan(workspace, head.path)[1]
            assert store.read_content(found[head.sha256]) == read(store, workspace, head.path)
        else:  # an empty content has no chunks, like an unknown one
            assert head.sha256 not in found
    assert elsewhere.sha256 not in found  # another workspace's content is not this one's
    assert sha(b"never written") not in found


def test_equal_content_is_stored_once(store: Store, workspace: str) -> None:
    data = payload(3000)  # three chunks of 1024 bytes and a short one

    first = store.put(workspace, "one.bin", data).revision
    blobs_after_first = chunk_blobs(store)
    second = store.put(workspace, "copies/two.bin", data).revision

    assert chunk_blobs(store) == blobs_after_first
    assert len(blobs_after_first) == 3
    assert second.sha256 == first.sha256
    assert (
        store.read_plan(workspace, "copies/two.bin")[1] == store.read_plan(workspace, "one.bin")[1]
    )
    zeros = bytes(4096)  # four equal chunks: one blob, four references
    store.put(workspace, "zeros.bin", zeros)
    assert len(chunk_blobs(store)) == 4
    assert len(store.read_plan(workspace, "zeros.bin")[1]) == 4
    assert read(store, workspace, "zeros.bin") == zeros


def test_writing_content_the_workspace_already_has_works(store: Store, workspace: str) -> None:
    """A copy of a file, an unchanged file uploaded again, a file reverted by hand."""
    same = payload(1500, seed=7)

    revs = [
        store.put(workspace, "a.bin", same).revision.rev,
        store.put(workspace, "copy-of-a.bin", same).revision.rev,
        store.put(workspace, "a.bin", same).revision.rev,
        store.put(workspace, "a.bin", b"an edit").revision.rev,
        store.put(workspace, "a.bin", same).revision.rev,
    ]

    assert revs == [1, 2, 3, 4, 5]
    assert read(store, workspace, "a.bin") == same
    assert read(store, workspace, "copy-of-a.bin") == same
    assert read(store, workspace, "a.bin", 4) == b"an edit"


def test_paths_are_stored_and_found_in_nfc(store: Store, workspace: str) -> None:
    nfc = "café/résumé.md"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc

    written = store.put(workspace, nfd, b"from a Mac").revision

    assert written.path == nfc
    assert read(store, workspace, nfc) == b"from a Mac"
    with pytest.raises(PreconditionFailed):
        store.put(workspace, nfc, b"again", precondition=Precondition(exists=False))
    assert [r.path for r in store.list_files(workspace)] == [nfc]


def test_invalid_paths_are_rejected_and_nothing_is_written(store: Store, workspace: str) -> None:
    store.put(workspace, "ok.md", b"ok")
    before = state(store, workspace)
    for path in ["", "/abs", "a/../b", "./a", "a//b", "a\\b", "dir/", "a\x00b", "x" * 256]:
        with pytest.raises(InvalidPath) as failure:
            store.put(workspace, path, b"x")
        assert failure.value.status == 400
        with pytest.raises(InvalidPath):
            store.delete(workspace, path)
        with pytest.raises(InvalidPath):
            store.stat(workspace, path)
        with pytest.raises(InvalidPath):
            store.read_plan(workspace, path)
        with pytest.raises(InvalidPath):
            store.history(workspace, path)
        with pytest.raises(InvalidPath):
            store.commit_manifest(workspace, path, [], EMPTY_SHA256)
    assert state(store, workspace) == before


def test_a_body_over_max_bytes_is_payload_too_large_and_nothing_is_written(
    store: Store, workspace: str
) -> None:
    with pytest.raises(PayloadTooLarge) as failure:
        store.put(workspace, "big.bin", b"x" * 11, max_bytes=10)
    assert failure.value.status == 413
    with pytest.raises(PayloadTooLarge):
        store.put(workspace, "big.bin", io.BytesIO(b"x" * 5000), max_bytes=3000)

    assert state(store, workspace) == (0, [], [])
    assert store.put(workspace, "big.bin", b"x" * 10, max_bytes=10).revision.size == 10


# -- preconditions --------------------------------------------------------------------------


def test_exists_false_on_an_existing_path_fails_and_writes_nothing(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "a.md", b"v1")
    before = state(store, workspace)

    with pytest.raises(PreconditionFailed) as failure:
        store.put(workspace, "a.md", b"v2", precondition=Precondition(exists=False))

    assert failure.value.status == 412
    assert failure.value.context is not None
    assert failure.value.context["current_md5"] == md5(b"v1")
    assert state(store, workspace) == before
    assert read(store, workspace, "a.md") == b"v1"
    # the failed write used no rev: the next write is rev 2
    assert store.put(workspace, "a.md", b"v2").revision.rev == 2


def test_a_hash_or_rev_mismatch_fails_and_writes_nothing(store: Store, workspace: str) -> None:
    store.put(workspace, "a.md", b"v1")
    before = state(store, workspace)
    mismatches = [
        Precondition(md5=md5(b"something else")),
        Precondition(sha256=sha(b"something else")),
        Precondition(rev=99),
        Precondition(exists=True, md5=md5(b"something else")),
        Precondition(sha256=sha(b"v1"), md5=md5(b"something else")),
    ]
    for precondition in mismatches:
        with pytest.raises(PreconditionFailed) as failure:
            store.put(workspace, "a.md", b"v2", precondition=precondition)
        assert failure.value.status == 412
    assert state(store, workspace) == before


def test_a_matching_precondition_lets_the_write_through(store: Store, workspace: str) -> None:
    store.put(workspace, "a.md", b"v1")

    by_md5 = store.put(workspace, "a.md", b"v2", precondition=Precondition(md5=md5(b"v1")))
    by_sha = store.put(workspace, "a.md", b"v3", precondition=Precondition(sha256=sha(b"v2")))
    by_rev = store.put(workspace, "a.md", b"v4", precondition=Precondition(exists=True, rev=3))

    assert [r.revision.rev for r in (by_md5, by_sha, by_rev)] == [2, 3, 4]
    assert not any(r.created for r in (by_md5, by_sha, by_rev))
    assert read(store, workspace, "a.md") == b"v4"


def test_a_precondition_on_a_missing_path_fails(store: Store, workspace: str) -> None:
    for precondition in [
        Precondition(exists=True),
        Precondition(md5=md5(b"")),
        Precondition(sha256=EMPTY_SHA256),
        Precondition(rev=1),
    ]:
        with pytest.raises(PreconditionFailed) as failure:
            store.put(workspace, "absent.md", b"", precondition=precondition)
        assert failure.value.status == 412

    assert state(store, workspace) == (0, [], [])
    with pytest.raises(FileNotFound):
        store.stat(workspace, "absent.md")


def test_a_deleted_path_counts_as_absent(store: Store, workspace: str) -> None:
    store.put(workspace, "a.md", b"v1")
    store.delete(workspace, "a.md")

    for precondition in [Precondition(exists=True), Precondition(md5=md5(b"v1"))]:
        with pytest.raises(PreconditionFailed):
            store.put(workspace, "a.md", b"v2", precondition=precondition)
    result = store.put(workspace, "a.md", b"v2", precondition=Precondition(exists=False))

    assert (result.created, result.revision.rev) == (True, 3)
    assert read(store, workspace, "a.md") == b"v2"


# -- delete -------------------------------------------------------------------------------------


def test_delete_records_a_tombstone_that_keeps_the_deleted_hashes(
    store: Store, workspace: str
) -> None:
    written = store.put(workspace, "a.md", b"content", content_type="text/markdown").revision

    tombstone = store.delete(workspace, "a.md", author="agent", message="clean up")

    assert (tombstone.rev, tombstone.deleted, tombstone.size) == (2, True, 0)
    assert (tombstone.sha256, tombstone.md5) == (written.sha256, written.md5)
    assert (tombstone.author, tombstone.message) == ("agent", "clean up")
    assert store.stat(workspace, "a.md", include_deleted=True) == tombstone
    with pytest.raises(FileNotFound):
        store.stat(workspace, "a.md")
    info = store.get_workspace(workspace)
    assert (info["files"], info["bytes"]) == (0, 0)


def test_deleting_an_absent_or_deleted_path_is_not_found(store: Store, workspace: str) -> None:
    with pytest.raises(FileNotFound) as failure:
        store.delete(workspace, "never.md")
    assert failure.value.status == 404
    store.put(workspace, "a.md", b"x")
    store.delete(workspace, "a.md")
    before = state(store, workspace)

    with pytest.raises(FileNotFound):
        store.delete(workspace, "a.md")

    assert state(store, workspace) == before


def test_delete_with_a_mismatched_hash_fails(store: Store, workspace: str) -> None:
    store.put(workspace, "a.md", b"v1")

    with pytest.raises(PreconditionFailed):
        store.delete(workspace, "a.md", precondition=Precondition(sha256=sha(b"v0")))
    assert read(store, workspace, "a.md") == b"v1"

    store.delete(workspace, "a.md", precondition=Precondition(sha256=sha(b"v1")))
    with pytest.raises(FileNotFound):
        read(store, workspace, "a.md")


def test_a_deleted_head_is_not_found_but_older_revisions_stay_readable(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "a.md", b"v1")
    store.put(workspace, "a.md", b"v2")
    tombstone = store.delete(workspace, "a.md")

    with pytest.raises(FileNotFound):
        read(store, workspace, "a.md")
    with pytest.raises(FileNotFound):
        read(store, workspace, "a.md", tombstone.rev)
    assert read(store, workspace, "a.md", 1) == b"v1"
    assert read(store, workspace, "a.md", 2) == b"v2"


def test_reading_a_rev_of_another_path_or_an_unknown_rev_fails(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "a.md", b"a")
    store.put(workspace, "b.md", b"b")

    with pytest.raises(RevisionNotFound):
        store.read_plan(workspace, "a.md", 2)
    with pytest.raises(RevisionNotFound) as failure:
        store.read_plan(workspace, "a.md", 99)
    assert failure.value.status == 404
    with pytest.raises(RevisionNotFound):
        store.revision(workspace, 99)


# -- history and restore ---------------------------------------------------------------------


def test_history_is_newest_first_and_pages_with_before(store: Store, workspace: str) -> None:
    for i in range(5):
        store.put(workspace, "h.md", b"v%d" % i)
        store.put(workspace, "other.md", b"o%d" % i)
    store.delete(workspace, "h.md")

    full = store.history(workspace, "h.md")

    assert [r.rev for r in full] == [11, 9, 7, 5, 3, 1]
    assert full[0].deleted and not any(r.deleted for r in full[1:])
    pages: list[Revision] = []
    before: int | None = None
    while page := store.history(workspace, "h.md", limit=4, before=before):
        pages.extend(page)
        before = page[-1].rev
    assert pages == full
    assert store.history(workspace, "h.md", before=5) == full[4:]
    assert store.history(workspace, "never.md") == []


def test_restore_writes_a_new_revision_with_the_old_content(store: Store, workspace: str) -> None:
    original = store.put(workspace, "r.md", b"original", content_type="text/markdown").revision
    store.put(workspace, "r.md", b"changed")

    result = store.restore(workspace, "r.md", original.rev, author="me")

    restored = result.revision
    assert (result.created, restored.rev) == (False, 3)
    assert (restored.sha256, restored.md5, restored.size) == (original.sha256, original.md5, 8)
    assert restored.content_type == "text/markdown"
    assert (restored.author, restored.message) == ("me", "restore of rev 1")
    assert read(store, workspace, "r.md") == b"original"
    assert [r.rev for r in store.history(workspace, "r.md")] == [3, 2, 1]


def test_restore_brings_a_deleted_path_back(store: Store, workspace: str) -> None:
    store.put(workspace, "r.md", b"keep me")
    store.delete(workspace, "r.md")

    result = store.restore(workspace, "r.md", 1)

    assert (result.created, result.revision.rev) == (True, 3)
    assert read(store, workspace, "r.md") == b"keep me"


def test_restore_rejects_a_tombstone_and_a_rev_of_another_path(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "a.md", b"a")
    store.delete(workspace, "a.md")
    store.put(workspace, "b.md", b"b")
    before = state(store, workspace)

    with pytest.raises(BadRequest) as failure:
        store.restore(workspace, "a.md", 2)
    assert failure.value.status == 400
    with pytest.raises(RevisionNotFound):
        store.restore(workspace, "a.md", 3)
    with pytest.raises(RevisionNotFound):
        store.restore(workspace, "a.md", 99)

    assert state(store, workspace) == before


# -- the change log, listings, the sync index ---------------------------------------------------


def test_changes_come_in_rev_order_and_page_with_next_since(store: Store, workspace: str) -> None:
    store.put(workspace, "a.md", b"1")
    store.put(workspace, "b.md", b"2")
    store.put(workspace, "a.md", b"3")
    store.delete(workspace, "b.md")
    store.put(workspace, "c.md", b"5")

    page = store.changes(workspace, 0)

    assert [(r.rev, r.path, r.deleted) for r in page.changes] == [
        (1, "a.md", False),
        (2, "b.md", False),
        (3, "a.md", False),
        (4, "b.md", True),
        (5, "c.md", False),
    ]
    assert (page.has_more, page.next_since, page.head_rev) == (False, 5, 5)
    seen: list[int] = []
    since = 0
    while True:
        part = store.changes(workspace, since, limit=2)
        seen.extend(r.rev for r in part.changes)
        assert part.next_since == (part.changes[-1].rev if part.changes else since)
        since = part.next_since
        if not part.has_more:
            break
    assert seen == [1, 2, 3, 4, 5]
    exact = store.changes(workspace, 3, limit=2)
    assert ([r.rev for r in exact.changes], exact.has_more) == ([4, 5], False)
    caught_up = store.changes(workspace, 5)
    assert (caught_up.changes, caught_up.has_more, caught_up.next_since, caught_up.head_rev) == (
        [],
        False,
        5,
        5,
    )
    with pytest.raises(BadRequest):
        store.changes(workspace, -1)
    with pytest.raises(BadRequest):
        store.changes(workspace, 0, limit=0)


def test_list_files_filters_by_prefix_hides_tombstones_and_pages(
    store: Store, workspace: str
) -> None:
    for path in [
        "notes/b.md",
        "notes/a.md",
        "notes/sub/c.md",
        "notes.md",
        "todo.md",
        "notes/gone.md",
    ]:
        store.put(workspace, path, path.encode())
    store.delete(workspace, "notes/gone.md")

    def paths(revisions: list[Revision]) -> list[str]:
        return [r.path for r in revisions]

    assert paths(store.list_files(workspace)) == [
        "notes.md",
        "notes/a.md",
        "notes/b.md",
        "notes/sub/c.md",
        "todo.md",
    ]
    assert paths(store.list_files(workspace, prefix="notes/")) == [
        "notes/a.md",
        "notes/b.md",
        "notes/sub/c.md",
    ]
    with_deleted = store.list_files(workspace, prefix="notes/", include_deleted=True)
    assert paths(with_deleted) == ["notes/a.md", "notes/b.md", "notes/gone.md", "notes/sub/c.md"]
    assert [r.deleted for r in with_deleted] == [False, False, True, False]
    first = store.list_files(workspace, prefix="notes/", limit=2)
    rest = store.list_files(workspace, prefix="notes/", limit=2, after=first[-1].path)
    assert (paths(first), paths(rest)) == (["notes/a.md", "notes/b.md"], ["notes/sub/c.md"])
    assert store.list_files(workspace, prefix="nothing/") == []
    with pytest.raises(InvalidPath):
        store.list_files(workspace, prefix="../")


def test_the_sync_index_has_the_head_of_every_path_including_tombstones(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "a.md", b"a1")
    store.put(workspace, "a.md", b"a2")
    store.put(workspace, "b.md", b"b1")
    store.delete(workspace, "b.md")

    index = store.sync_index(workspace)

    assert [(r.path, r.rev, r.md5, r.deleted) for r in index] == [
        ("a.md", 2, md5(b"a2"), False),
        ("b.md", 4, md5(b"b1"), True),
    ]


def test_a_read_transaction_is_one_consistent_snapshot(store: Store, workspace: str) -> None:
    """``Metadata.read`` promises one snapshot for all its statements. Reads that take
    several statements rely on it: ``read_plan`` (a revision, then its chunks) racing a
    gc, ``fsck`` (revisions, then contents) racing a gc, ``changes`` (rows, then head)."""
    store.put(workspace, "a.md", b"1")
    head = select(workspaces.c.head_rev).where(workspaces.c.name == workspace)

    with store.meta.read() as conn:
        first = conn.execute(head).scalar_one()
        store.put(workspace, "a.md", b"2")  # another transaction commits meanwhile
        second = conn.execute(head).scalar_one()

    assert (first, second) == (1, 1)
    assert store.head_rev(workspace) == 2


# -- chunked uploads ----------------------------------------------------------------------------


def test_a_chunked_upload_sends_only_missing_chunks_then_commits(
    store: Store, workspace: str
) -> None:
    parts = [b"part one|", b"part two|", b"part one|"]
    shas = [sha(part) for part in parts]
    whole = b"".join(parts)

    assert store.missing_chunks(workspace, shas) == [shas[0], shas[1]]
    assert store.put_chunk(workspace, shas[0], parts[0]) is True
    assert store.put_chunk(workspace, shas[0], parts[0]) is False
    assert store.missing_chunks(workspace, shas) == [shas[1]]
    assert store.put_chunk(workspace, shas[1], parts[1]) is True
    assert store.missing_chunks(workspace, shas) == []
    manifest = [ChunkRef(s, len(part)) for s, part in zip(shas, parts, strict=True)]

    result = store.commit_manifest(
        workspace, "db/memory.sqlite", manifest, sha(whole), content_type="application/x-sqlite3"
    )

    assert (result.created, result.revision.rev) == (True, 1)
    assert (result.revision.size, result.revision.md5) == (len(whole), md5(whole))
    assert result.revision.content_type == "application/x-sqlite3"
    assert read(store, workspace, "db/memory.sqlite") == whole
    assert store.read_plan(workspace, "db/memory.sqlite")[1] == manifest


def test_put_chunk_checks_the_bytes_against_their_address(store: Store, workspace: str) -> None:
    with pytest.raises(InvalidChecksum) as failure:
        store.put_chunk(workspace, sha(b"declared"), b"actual")
    assert (failure.value.status, failure.value.code) == (400, "CHECKSUM_MISMATCH")
    for address in ["xyz", sha(b"a")[:63], sha(b"a") + "0", "g" * 64]:
        with pytest.raises(BadRequest):
            store.put_chunk(workspace, address, b"a")
    with pytest.raises(BadRequest):
        store.missing_chunks(workspace, ["not-a-hash"])
    too_big = bytes(16 * 1024 + 1)
    with pytest.raises(PayloadTooLarge):
        store.put_chunk(workspace, sha(too_big), too_big)

    assert store.missing_chunks(workspace, [sha(b"actual"), sha(b"a"), sha(too_big)]) == [
        sha(b"actual"),
        sha(b"a"),
        sha(too_big),
    ]


def test_commit_manifest_rejects_a_wrong_whole_sha256(store: Store, workspace: str) -> None:
    store.put_chunk(workspace, sha(b"chunk"), b"chunk")
    manifest = [ChunkRef(sha(b"chunk"), 5)]

    with pytest.raises(InvalidChecksum):
        store.commit_manifest(workspace, "f.bin", manifest, sha(b"something else"))
    with pytest.raises(BadRequest):
        store.commit_manifest(workspace, "f.bin", manifest, "not-a-sha256")

    assert state(store, workspace) == (0, [], [])


def test_commit_manifest_rejects_chunks_never_uploaded(store: Store, workspace: str) -> None:
    store.put_chunk(workspace, sha(b"here"), b"here")
    manifest = [ChunkRef(sha(b"here"), 4), ChunkRef(sha(b"never"), 5)]

    with pytest.raises(ChunksMissing) as failure:
        store.commit_manifest(workspace, "f.bin", manifest, sha(b"herenever"))

    assert failure.value.context == {"missing": [sha(b"never")]}
    assert state(store, workspace) == (0, [], [])


def test_commit_manifest_does_not_accept_chunks_another_workspace_uploaded(
    store: Store, workspace: str, new_name: Callable[..., str]
) -> None:
    other = store.create_workspace(new_name())["name"]
    secret = b"another tenant's bytes"
    store.put_chunk(other, sha(secret), secret)
    store.put(other, "secret.txt", secret)
    assert store.blobs.exists(chunk_key(sha(secret)))  # the bytes are in the shared blob store

    assert store.missing_chunks(workspace, [sha(secret)]) == [sha(secret)]
    with pytest.raises(ChunksMissing):
        store.commit_manifest(
            workspace, "stolen.txt", [ChunkRef(sha(secret), len(secret))], sha(secret)
        )

    assert state(store, workspace) == (0, [], [])


def test_commit_manifest_accepts_uppercase_chunk_hashes(store: Store, workspace: str) -> None:
    """put_chunk and missing_chunks accept hex in either case, so a manifest must too."""
    data = b"chunk named in upper case"
    upper = sha(data).upper()
    assert store.put_chunk(workspace, upper, data) is True
    assert store.missing_chunks(workspace, [upper]) == []

    result = store.commit_manifest(workspace, "u.bin", [ChunkRef(upper, len(data))], upper)

    assert result.revision.sha256 == sha(data)
    assert read(store, workspace, "u.bin") == data


def test_commit_manifest_rejects_chunk_sizes_that_do_not_match_the_chunks(
    store: Store, workspace: str
) -> None:
    """The server reads every chunk back; a manifest that misstates a chunk's size must
    not be recorded (read_plan would hand out wrong sizes and fsck would call the
    revision broken)."""
    data = b"twelve bytes"
    store.put_chunk(workspace, sha(data), data)

    with pytest.raises(BadRequest):
        store.commit_manifest(workspace, "s.bin", [ChunkRef(sha(data), 5)], sha(data))

    assert state(store, workspace) == (0, [], [])


# -- fencing ----------------------------------------------------------------------------------


def test_a_write_fenced_with_the_current_token_commits(store: Store, workspace: str) -> None:
    lease = store.leases.acquire(workspace, "writer", "agent-a", ttl=60)
    fence = Fence("writer", lease.token)

    store.put(workspace, "f.md", b"1", fence=fence)
    store.put_chunk(workspace, sha(b"2"), b"2")
    store.commit_manifest(workspace, "g.md", [ChunkRef(sha(b"2"), 1)], sha(b"2"), fence=fence)
    store.delete(workspace, "f.md", fence=fence)

    assert store.head_rev(workspace) == 3
    assert read(store, workspace, "g.md") == b"2"


def test_a_write_fenced_with_a_stale_token_is_rejected_and_writes_nothing(
    store: Store, workspace: str
) -> None:
    old = store.leases.acquire(workspace, "writer", "agent-a", ttl=60)
    store.put(workspace, "f.md", b"mine", fence=Fence("writer", old.token))
    new = store.leases.acquire(workspace, "writer", "agent-b", ttl=60, force=True)
    store.put_chunk(workspace, sha(b"late"), b"late")
    before = state(store, workspace)
    stale = Fence("writer", old.token)

    with pytest.raises(FencingTokenRejected) as failure:
        store.put(workspace, "f.md", b"stale", fence=stale)
    assert failure.value.status == 412
    assert failure.value.context is not None
    assert failure.value.context["current_token"] == new.token
    with pytest.raises(FencingTokenRejected):
        store.delete(workspace, "f.md", fence=stale)
    with pytest.raises(FencingTokenRejected):
        store.commit_manifest(
            workspace, "g.md", [ChunkRef(sha(b"late"), 4)], sha(b"late"), fence=stale
        )
    with pytest.raises(FencingTokenRejected):
        store.put(workspace, "f.md", b"x", fence=Fence("no-such-lease", 1))

    assert state(store, workspace) == before
    assert read(store, workspace, "f.md") == b"mine"
    store.put(workspace, "f.md", b"theirs", fence=Fence("writer", new.token))
    assert read(store, workspace, "f.md") == b"theirs"


# -- concurrency --------------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_read_modify_write_with_md5_preconditions_loses_no_update(
    make_memory_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store = make_memory_store()
    workspace = store.create_workspace(new_name())["name"]
    store.put(workspace, "counter", b"0")

    def increment_25_times() -> int:
        conflicts = 0
        for _ in range(25):
            for _attempt in range(10_000):
                current, data = store.read_bytes(workspace, "counter")
                try:
                    store.put(
                        workspace,
                        "counter",
                        b"%d" % (int(data) + 1),
                        precondition=Precondition(md5=current.md5),
                    )
                    break
                except PreconditionFailed:
                    conflicts += 1
            else:
                raise AssertionError("no increment got through in 10,000 attempts")
        return conflicts

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(increment_25_times) for _ in range(8)]
        for future in futures:
            future.result()

    assert read(store, workspace, "counter") == b"200"
    log = store.changes(workspace, 0, limit=1000).changes
    assert [r.rev for r in log] == list(range(1, 202))  # one rev per successful write, no gaps
    assert [read(store, workspace, "counter", r.rev) for r in log[-3:]] == [b"198", b"199", b"200"]
