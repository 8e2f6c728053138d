"""``Store.put_many``, the atomic multi-file conditional write sessions and the git import
commit through: over every metadata backend × blob store (the contract suite's fixtures),
and concurrent session commits that touch the same file on every metadata backend."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from memhub.errors import (
    BadRequest,
    FileNotFound,
    PathConflict,
    PreconditionFailed,
    SessionConflict,
)
from memhub.memory.sessions import Sessions
from memhub.store import Precondition, Store


def test_all_writes_become_revisions_in_rev_order(store: Store, workspace: str) -> None:
    base = store.put(workspace, "keep.md", b"old").revision
    results = store.put_many(
        workspace,
        [
            ("a.md", b"A", Precondition(exists=False)),
            ("keep.md", b"new", Precondition(sha256=base.sha256)),
            ("gone.txt", b"x", Precondition()),
        ],
        author="tester",
        session_id="s-1",
        message="one commit",
        created_at=1_600_000_000.0,
    )
    revs = [r.revision.rev for r in results]
    assert revs == [base.rev + 1, base.rev + 2, base.rev + 3]
    assert [r.created for r in results] == [True, False, True]
    assert store.read_bytes(workspace, "keep.md")[1] == b"new"
    for r in results:
        assert r.revision.session_id == "s-1" and r.revision.author == "tester"
        assert r.revision.created_at == 1_600_000_000.0
    deleted = store.put_many(workspace, [("gone.txt", None, Precondition(exists=True))])
    assert deleted[0].revision.deleted
    with pytest.raises(FileNotFound):
        store.read_bytes(workspace, "gone.txt")


def test_a_failed_precondition_writes_nothing(store: Store, workspace: str) -> None:
    store.put(workspace, "taken.md", b"mine")
    head = store.head_rev(workspace)
    writes = [
        ("new-1.md", b"1", Precondition(exists=False)),
        ("taken.md", b"theirs", Precondition(exists=False)),  # fails: it exists
        ("new-2.md", b"2", Precondition()),
    ]
    with pytest.raises(PreconditionFailed):
        store.put_many(workspace, writes)
    assert store.head_rev(workspace) == head
    assert store.read_bytes(workspace, "taken.md")[1] == b"mine"
    assert [r.path for r in store.list_files(workspace)] == ["taken.md"]
    with pytest.raises(FileNotFound):  # a delete of nothing fails the whole commit too
        store.put_many(workspace, [("x.md", b"x", Precondition()), ("nope", None, Precondition())])
    assert store.head_rev(workspace) == head
    with pytest.raises(BadRequest):
        store.put_many(workspace, [("d.md", b"1", Precondition()), ("d.md", b"2", Precondition())])


def test_concurrent_session_commits_one_wins(
    make_memory_store: Callable[..., Store], new_name: Callable[..., str]
) -> None:
    """Sessions staged against the same heads (they share the user entity): committed at
    once from two store instances (two nodes), exactly one succeeds."""
    node_a, node_b = make_memory_store(), make_memory_store()
    ws = str(node_a.create_workspace(new_name())["name"])
    staged = Sessions(node_a)
    for i in range(6):
        staged.process(ws, f"s-{i}", f"Met Person{i} at the Harbor Cafe.", "2024-04-01")
    outcomes: list[str] = []
    lock = threading.Lock()

    def commit(node: Store, session: str) -> None:
        try:
            Sessions(node).commit(ws, session)
            result = "ok"
        except SessionConflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [
        threading.Thread(target=commit, args=(node_a if i % 2 else node_b, f"s-{i}"))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    user = node_a.read_bytes(ws, f"{ws}.md")[1].decode()
    assert user.count("/START\n### 2024-04-01 — session") == 1


def test_a_name_that_differs_only_in_case_fails_the_whole_commit(
    store: Store, workspace: str
) -> None:
    store.put(workspace, "notes/Plan.md", b"live")
    head = store.head_rev(workspace)
    with pytest.raises(PathConflict):
        store.put_many(
            workspace, [("a.md", b"a", Precondition()), ("notes/plan.md", b"x", Precondition())]
        )
    with pytest.raises(PathConflict):  # two new names of one batch clash with each other
        store.put_many(workspace, [("B.md", b"1", Precondition()), ("b.md", b"2", Precondition())])
    assert store.head_rev(workspace) == head
    # the live file itself may be replaced, and a deleted one's other case is free
    store.put_many(workspace, [("notes/Plan.md", b"new", Precondition(exists=True))])
    store.put_many(workspace, [("notes/Plan.md", None, Precondition())])
    [moved] = store.put_many(workspace, [("notes/plan.md", b"lower", Precondition())])
    assert moved.created


@pytest.mark.parametrize(
    ("live", "other"),
    [("Заметки/План.md", "заметки/план.md"), ("Ärger.md", "ärger.md"), ("STRASSE.md", "straße.md")],
)
def test_case_clashes_are_found_in_every_script(
    store: Store, workspace: str, live: str, other: str
) -> None:
    """Not only ASCII: SQLite's lower() folds ASCII only, PostgreSQL's depends on its locale."""
    store.put(workspace, live, b"live")
    with pytest.raises(PathConflict):
        store.put(workspace, other, b"clash")
    with pytest.raises(PathConflict):
        store.put_many(workspace, [(other, b"clash", Precondition())])
    assert [f.path for f in store.list_files(workspace)] == [live]
