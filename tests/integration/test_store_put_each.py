"""``Store.put_each``: many small writes in one metadata transaction, on every metadata
backend (SQLite, PostgreSQL): one rev each, in order, preconditions per write, and a
failed precondition writes nothing for its entry."""

from __future__ import annotations

from collections.abc import Callable

from memhub.errors import FileNotFound, PathConflict, PreconditionFailed
from memhub.store import Precondition, Store, WriteResult

StoreFactory = Callable[..., Store]


def test_put_each_gives_each_write_its_own_rev(
    make_memory_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store: Store = make_memory_store()
    ws = str(store.create_workspace(new_name())["name"])
    store.put(ws, "taken.md", b"old")
    head = store.head_rev(ws)
    results = store.put_each(
        ws,
        [
            ("a.md", b"alpha", Precondition(exists=False)),
            ("taken.md", b"clobber", Precondition(exists=False)),
            ("b.md", b"beta", Precondition()),
            ("c.md", b"x", Precondition(md5="0" * 32)),
        ],
        author="tester",
        message="batch",
    )
    assert isinstance(results[1], PreconditionFailed)
    assert isinstance(results[3], PreconditionFailed)
    ok = [r for r in results if isinstance(r, WriteResult)]
    assert [r.revision.rev for r in ok] == [head + 1, head + 2]
    assert all(r.created for r in ok)
    assert store.head_rev(ws) == head + 2
    assert store.read_bytes(ws, "a.md")[1] == b"alpha"
    assert store.read_bytes(ws, "b.md")[1] == b"beta"
    assert store.read_bytes(ws, "taken.md")[1] == b"old"
    revision = store.stat(ws, "a.md")
    assert (revision.author, revision.message) == ("tester", "batch")
    changes = store.changes(ws, head).changes
    assert [c.path for c in changes] == ["a.md", "b.md"]
    # an update over a known hash
    sha = store.stat(ws, "a.md").sha256
    [again] = store.put_each(ws, [("a.md", b"alpha 2", Precondition(sha256=sha))])
    assert isinstance(again, WriteResult) and not again.created


def test_put_each_shares_contents_within_and_across_batches(
    make_memory_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store: Store = make_memory_store()
    ws = str(store.create_workspace(new_name())["name"])
    store.put(ws, "old.md", b"same bytes")
    results = store.put_each(
        ws,
        [
            ("one.md", b"same bytes", Precondition()),
            ("two.md", b"same bytes", Precondition()),
            ("three.md", b"other bytes", Precondition()),
        ],
    )
    assert all(isinstance(r, WriteResult) for r in results)
    for path, data in (
        ("one.md", b"same bytes"),
        ("two.md", b"same bytes"),
        ("three.md", b"other bytes"),
    ):
        assert store.read_bytes(ws, path)[1] == data
    assert len(store.list_files(ws)) == 4
    assert store.put_each(ws, []) == []


def test_put_each_refuses_a_case_clash_or_a_delete_of_nothing_for_that_entry_only(
    make_memory_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    store: Store = make_memory_store()
    ws = str(store.create_workspace(new_name())["name"])
    store.put(ws, "Plan.md", b"live")
    store.put(ws, "old.md", b"to delete")
    head = store.head_rev(ws)
    results = store.put_each(
        ws,
        [
            ("plan.md", b"clash", Precondition()),
            ("old.md", None, Precondition(exists=True)),
            ("never.md", None, Precondition()),
            ("X.md", b"first", Precondition()),
            ("x.md", b"its twin", Precondition()),
        ],
    )
    assert isinstance(results[0], PathConflict)
    assert isinstance(results[1], WriteResult) and results[1].revision.deleted
    assert isinstance(results[2], FileNotFound)
    assert isinstance(results[3], WriteResult)
    assert isinstance(results[4], PathConflict)
    assert store.head_rev(ws) == head + 2
    assert [f.path for f in store.list_files(ws)] == ["Plan.md", "X.md"]


def test_put_each_contents_are_the_ones_a_single_put_makes(
    make_memory_store: StoreFactory, new_name: Callable[..., str]
) -> None:
    """Empty, one-chunk and many-chunk contents: the same hashes, sizes and bytes as
    ``put`` gives them (a batch writes one-chunk contents in one blob call)."""
    store: Store = make_memory_store()
    ws = str(store.create_workspace(new_name())["name"])
    size = store.chunks.chunk_size
    bodies = [b"", b"x", b"y" * size, b"z" * (size + 1), bytes(range(256)) * (2 * size // 256)]
    batch = store.put_each(ws, [(f"b{i}", body, Precondition()) for i, body in enumerate(bodies)])
    for i, body in enumerate(bodies):
        single = store.put(ws, f"s{i}", body).revision
        written = batch[i]
        assert isinstance(written, WriteResult)
        assert (written.revision.sha256, written.revision.md5, written.revision.size) == (
            single.sha256, single.md5, single.size,
        )  # fmt: skip
        assert store.read_bytes(ws, f"b{i}")[1] == body
