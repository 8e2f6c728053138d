"""The three-way sync planner (``memhub.sync.planner``).

1. The decision table, every combination of base/local/remote among
   (absent, A, B, C), against an oracle written here from the issue's words rather
   than from the planner's code.
2. A two-machine simulation driven by hypothesis: two folders and a server as dicts,
   random user edits, deletes, creates and renames on either side, and sync rounds
   that apply the plan the way ``FolderSync`` does (uploads conditional on what was
   planned against, conflict copies, deletes as tombstones), sometimes with both
   machines planning on the same server snapshot before either applies. After a
   final round A, B, A both machines and the server hold the same files, and no
   content a user wrote and never replaced is lost.
3. ``conflict_name`` examples.
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memhub.sync.planner import Action, Step, conflict_name, decide, deletions, plan

VALUES = [None, "A", "B", "C"]
COMBINATIONS = list(itertools.product(VALUES, repeat=3))


def oracle(base: str | None, local: str | None, remote: str | None) -> Action | None:
    """What the issue asks for, case by case."""
    changed_here = local != base
    changed_there = remote != base
    if not changed_here and not changed_there:
        return None  # nothing happened anywhere
    if changed_here and not changed_there:  # changed here only → upload / tombstone
        return Action.DELETE_REMOTE if local is None else Action.UPLOAD
    if changed_there and not changed_here:  # changed there only → download / delete
        return Action.DELETE_LOCAL if remote is None else Action.DOWNLOAD
    # changed on both sides
    if local == remote:
        return Action.ADOPT  # the same change on both sides is not a conflict
    if local is None:
        return Action.DOWNLOAD  # deleted here, edited there: the edit wins
    if remote is None:
        return Action.UPLOAD  # edited here, deleted there: the edit wins
    return Action.CONFLICT  # different contents on both sides: keep both


def test_the_table_covers_every_combination() -> None:
    assert len(COMBINATIONS) == 64
    actions = {oracle(*c) for c in COMBINATIONS}
    assert actions == {None, *Action}


@pytest.mark.parametrize(("base", "local", "remote"), COMBINATIONS, ids=str)
def test_decide_matches_the_oracle(base: str | None, local: str | None, remote: str | None) -> None:
    step = decide("notes/a.md", base, local, remote)
    expected = oracle(base, local, remote)
    if expected is None:
        assert step is None
        return
    assert step == Step("notes/a.md", expected, base, local, remote)


# a few rows spelled out, so that a mistake shared by oracle and planner shows here
SPELLED_OUT = [
    (None, "A", None, Action.UPLOAD),  # new here
    (None, None, "A", Action.DOWNLOAD),  # new there
    (None, "A", "A", Action.ADOPT),  # created identically on both sides
    (None, "A", "B", Action.CONFLICT),  # created differently on both sides
    ("A", "B", "A", Action.UPLOAD),
    ("A", "A", "B", Action.DOWNLOAD),
    ("A", None, "A", Action.DELETE_REMOTE),
    ("A", "A", None, Action.DELETE_LOCAL),
    ("A", None, "B", Action.DOWNLOAD),  # delete here, edit there
    ("A", "B", None, Action.UPLOAD),  # edit here, delete there
    ("A", None, None, Action.ADOPT),  # deleted on both sides: forget it
    ("A", "B", "B", Action.ADOPT),  # the same edit on both sides
    ("A", "B", "C", Action.CONFLICT),
    ("A", "A", "A", None),
]


@pytest.mark.parametrize(("base", "local", "remote", "action"), SPELLED_OUT, ids=str)
def test_spelled_out_rows(
    base: str | None, local: str | None, remote: str | None, action: Action | None
) -> None:
    step = decide("x", base, local, remote)
    assert (step.action if step else None) is action


def _dicts(combos: list[tuple[str | None, ...]]) -> tuple[dict[str, str], ...]:
    sides: tuple[dict[str, str], ...] = ({}, {}, {})
    for i, combo in enumerate(combos):
        for side, value in zip(sides, combo, strict=True):
            if value is not None:
                side[f"p{i:02d}"] = value
    return sides


@pytest.mark.parametrize(("push", "pull"), [(True, True), (True, False), (False, True)])
def test_plan_over_every_combination_and_direction(push: bool, pull: bool) -> None:
    base, local, remote = _dicts(list(COMBINATIONS))
    steps = plan(base, local, remote, push=push, pull=pull)
    assert [s.path for s in steps] == sorted(s.path for s in steps)
    by_path = {s.path: s.action for s in steps}
    for i, combo in enumerate(COMBINATIONS):
        expected = oracle(*combo)
        if not push and expected in (Action.UPLOAD, Action.DELETE_REMOTE):
            expected = None  # a pull never changes the server
        if not pull and expected in (Action.DOWNLOAD, Action.DELETE_LOCAL):
            expected = None  # a push never changes the folder
        if not (push and pull) and expected is Action.CONFLICT:
            expected = None  # conflicts wait for a two-way sync
        assert by_path.get(f"p{i:02d}") == expected, combo
    assert deletions(steps) == sum(
        1 for a in by_path.values() if a in (Action.DELETE_LOCAL, Action.DELETE_REMOTE)
    )


# -- conflict names -------------------------------------------------------------------

STAMP = "20250102-030405"


@pytest.mark.parametrize(
    ("path", "host", "expected"),
    [
        ("todo.md", "laptop", "todo.conflict-laptop-20250102-030405.md"),
        ("notes/todo.md", "laptop", "notes/todo.conflict-laptop-20250102-030405.md"),
        ("a/b/c/deep.txt", "pc", "a/b/c/deep.conflict-pc-20250102-030405.txt"),
        ("archive.tar.gz", "pc", "archive.tar.conflict-pc-20250102-030405.gz"),
        ("Makefile", "pc", "Makefile.conflict-pc-20250102-030405"),
        ("dir/README", "pc", "dir/README.conflict-pc-20250102-030405"),
        (".env", "pc", ".env.conflict-pc-20250102-030405"),
        ("cfg/.gitignore", "pc", "cfg/.gitignore.conflict-pc-20250102-030405"),
        (".config.json", "pc", ".config.conflict-pc-20250102-030405.json"),
        ("заметки/день.md", "ноут", "заметки/день.conflict-ноут-20250102-030405.md"),
        ("a.md", "my host.local", "a.conflict-my-host-local-20250102-030405.md"),
        ("a.md", "../../etc", "a.conflict-------etc-20250102-030405.md"),
        ("a.md", "", "a.conflict-host-20250102-030405.md"),
        ("trailing.", "pc", "trailing.conflict-pc-20250102-030405"),
    ],
)
def test_conflict_name(path: str, host: str, expected: str) -> None:
    assert conflict_name(path, host, STAMP) == expected


@given(
    st.lists(st.text("abc.-_é", min_size=1, max_size=6), min_size=1, max_size=4).filter(
        lambda parts: all(p not in (".", "..") for p in parts)
    ),
    st.text(min_size=0, max_size=12),
)
def test_conflict_name_stays_in_the_same_directory(parts: list[str], host: str) -> None:
    path = "/".join(parts)
    copy = conflict_name(path, host, STAMP)
    assert posixpath.dirname(copy) == posixpath.dirname(path)
    name = posixpath.basename(copy)
    assert "/" not in name
    assert ".conflict-" in name and STAMP in name
    assert copy != path


# -- the two-machine simulation ---------------------------------------------------------

PATHS = ["a.md", "b.txt", ".env", "Makefile", "notes/c.md", "notes/deep/d.md", "заметки/е.md"]


@dataclass
class Machine:
    host: str
    files: dict[str, str] = field(default_factory=dict)
    base: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    server: dict[str, str] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)
    # every content a user wrote that no user has since replaced or deleted
    protected: set[str] = field(default_factory=set)
    counter: int = 0
    stamps: int = 0

    def new_content(self, host: str) -> str:
        self.counter += 1
        content = f"{host}-write-{self.counter}"
        self.protected.add(content)
        return content


def user_op(
    world: World, machine: Machine, op: tuple[str, int, int], content: str | None = None
) -> None:
    kind, i, j = op
    path = PATHS[i % len(PATHS)]
    if kind == "write":  # create or edit
        if path in machine.files:
            world.protected.discard(machine.files[path])  # the user replaced what they saw
        machine.files[path] = content or world.new_content(machine.host)
    elif kind == "delete":
        existing = sorted(machine.files)
        if existing:
            victim = existing[i % len(existing)]
            world.protected.discard(machine.files.pop(victim))
    elif kind == "rename":  # a move keeps the content
        existing = sorted(machine.files)
        target = PATHS[j % len(PATHS)]
        if existing:
            source = existing[i % len(existing)]
            if target != source:
                if target in machine.files:
                    world.protected.discard(machine.files[target])
                machine.files[target] = machine.files.pop(source)


def plan_round(world: World, machine: Machine) -> tuple[list[Step], dict[str, str]]:
    """Plan against a snapshot of the server (what the change feed told us)."""
    snapshot = dict(world.server)
    return plan(machine.base, machine.files, snapshot, push=True, pull=True), snapshot


def apply_round(world: World, machine: Machine, steps: list[Step], seen: dict[str, str]) -> None:
    """Apply a plan the way FolderSync does, against a server that may have moved on since:
    writes are conditional on what the plan saw (a failed one leaves the path alone for the
    next round); downloads take the server's current head, and only if the file is
    still what the plan saw."""
    server = world.server

    def upload(path: str, content: str, expected: str | None) -> None:
        if server.get(path) != expected:  # 412: someone else wrote; left for the next round
            return
        server[path] = content
        world.tombstones.discard(path)
        machine.base[path] = content

    def download(path: str, local_expected: str | None) -> None:
        if machine.files.get(path) != local_expected:
            return  # edited here meanwhile
        if path not in server:
            return  # gone meanwhile: the next round decides
        machine.files[path] = server[path]
        machine.base[path] = server[path]

    order = [
        Action.ADOPT,
        Action.CONFLICT,
        Action.DOWNLOAD,
        Action.DELETE_LOCAL,
        Action.UPLOAD,
        Action.DELETE_REMOTE,
    ]
    for action in order:
        for step in (s for s in steps if s.action is action):
            p = step.path
            if action is Action.ADOPT:
                if step.local is None:
                    machine.base.pop(p, None)
                else:
                    machine.base[p] = step.local
            elif action is Action.CONFLICT:
                world.stamps += 1
                copy = conflict_name(p, machine.host, f"{world.stamps:06d}")
                assert copy not in machine.files and copy not in server
                machine.files[copy] = machine.files.pop(p)
                download(p, None)
                upload(copy, machine.files[copy], None)
            elif action is Action.DOWNLOAD:
                download(p, step.local)
            elif action is Action.DELETE_LOCAL:
                if machine.files.get(p) == step.local:
                    machine.files.pop(p, None)
                    machine.base.pop(p, None)
            elif action is Action.UPLOAD:
                upload(p, machine.files[p], seen.get(p))
            elif action is Action.DELETE_REMOTE and server.get(p) == step.base:  # If-Match
                del server[p]
                world.tombstones.add(p)
                machine.base.pop(p, None)


def sync(world: World, machine: Machine) -> None:
    steps, seen = plan_round(world, machine)
    apply_round(world, machine, steps, seen)


def check_nothing_lost(world: World, *machines: Machine) -> None:
    for machine in machines:
        held = set(machine.files.values())
        missing = world.protected - held
        assert not missing, f"{machine.host} lost {sorted(missing)}"
    assert world.protected <= set(world.server.values())


OPS = st.tuples(
    st.sampled_from(["write", "write", "delete", "rename"]),
    st.integers(0, 20),
    st.integers(0, 20),
)
ROUND = st.tuples(
    st.lists(OPS, max_size=4),  # user ops on machine A
    st.lists(OPS, max_size=4),  # user ops on machine B
    st.sampled_from(["AB", "BA", "A", "B", "both-planned-first"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROUND, min_size=1, max_size=6))
def test_two_machines_converge_and_lose_nothing(rounds: list[tuple]) -> None:  # type: ignore[type-arg]
    world = World()
    a, b = Machine("hostA"), Machine("hostB")
    for ops_a, ops_b, order in rounds:
        for op in ops_a:
            user_op(world, a, op)
        for op in ops_b:
            user_op(world, b, op)
        if order == "both-planned-first":  # both plan on the same server, then apply
            steps_a, seen_a = plan_round(world, a)
            steps_b, seen_b = plan_round(world, b)
            apply_round(world, a, steps_a, seen_a)
            apply_round(world, b, steps_b, seen_b)
        else:
            for name in order:
                sync(world, a if name == "A" else b)
        # at every point, what a user wrote and kept is on some machine or on the server
        everywhere = {*a.files.values(), *b.files.values(), *world.server.values()}
        assert world.protected <= everywhere
    for machine in (a, b, a):
        sync(world, machine)
    assert a.files == b.files == world.server, "A, B and the server differ after A, B, A"
    assert a.base == a.files and b.base == b.files
    assert plan(a.base, a.files, world.server, push=True, pull=True) == []
    assert plan(b.base, b.files, world.server, push=True, pull=True) == []
    check_nothing_lost(world, a, b)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PATHS), st.lists(OPS, max_size=5))
def test_a_delete_never_removes_an_edit(path: str, ops_b: list[tuple[str, int, int]]) -> None:
    """A file both machines hold; A edits it, B deletes it (and does whatever else);
    in either order of syncing, the edit is on both machines at the end."""
    for first in ("A", "B"):
        world = World()
        a, b = Machine("hostA"), Machine("hostB")
        user_op(world, a, ("write", PATHS.index(path), 0))
        sync(world, a)
        sync(world, b)
        assert b.files[path] == a.files[path]
        user_op(world, a, ("write", PATHS.index(path), 0))
        edit = a.files[path]
        world.protected.discard(b.files.pop(path))  # B deletes it
        for op in ops_b:
            if op[0] != "delete":  # B's further writes, but no second delete of the edit
                user_op(world, b, op)
        order = (a, b, a, b) if first == "A" else (b, a, b, a)
        for machine in order:
            sync(world, machine)
        assert edit in a.files.values() and edit in b.files.values()
        assert edit in world.server.values()
        assert a.files == b.files == world.server


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, min_size=1, max_size=4), st.lists(OPS, max_size=4))
def test_the_same_change_on_both_sides_is_no_conflict(
    before: list[tuple[str, int, int]], same: list[tuple[str, int, int]]
) -> None:
    """Both machines in sync, then the same edits, deletes and moves on both: no conflict
    copy appears, and both end as they were left."""
    world = World()
    a, b = Machine("hostA"), Machine("hostB")
    for n, op in enumerate(before):
        user_op(world, a, op, f"before-{n}")
    for machine in (a, b, a):
        sync(world, machine)
    for n, op in enumerate(same):
        user_op(world, a, op, f"same-{n}")
        user_op(world, b, op, f"same-{n}")
    expected = dict(a.files)
    assert b.files == expected
    for machine in (a, b, a):
        sync(world, machine)
    assert a.files == b.files == world.server == expected
    assert world.stamps == 0  # no conflict copy was ever made
