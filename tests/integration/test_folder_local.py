"""The local side of folder sync (``memhub.sync.local``) on a real file system.

The scan honours ``.memhubignore`` (gitignore syntax) and the default ignores, never
follows symlinks, and reuses hashes when size and mtime are unchanged; writes are
atomic and never go through a symlink; the folder lock keeps a second sync out,
whether it runs in another process or another thread; a damaged state file is a
clear error, not a silent restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memhub.client import MemhubClient
from memhub.errors import BadRequest, Conflict, InvalidPath
from memhub.sync.folder import FolderSync
from memhub.sync.local import (
    DEFAULT_IGNORES,
    STATE_DIR,
    TMP_PREFIX,
    Entry,
    Ignores,
    State,
    delete_local,
    folder_lock,
    load_ignores,
    scan,
    write_local,
)

# A client that is never used: every check below fails before the first request.
UNUSED_SERVER = "http://127.0.0.1:9"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def scanned(root: Path, state: State | None = None) -> tuple[dict[str, str], list[str]]:
    skipped: list[str] = []
    found = scan(root, state or State(), load_ignores(root), skipped)
    return {rel: f.sha256 for rel, f in found.items()}, skipped


def no_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith((TMP_PREFIX, ".tmp-"))]


# -- ignore rules ------------------------------------------------------------------------

IGNORE_RULES = """\
# comments and blank lines are ignored

*.log
!keep.log
build/
/top-only.txt
docs/**/draft-*.md
secret
vendor/
!vendor/wanted.txt
"""

KEPT = [
    "keep.log",  # re-included by negation
    "sub/keep.log",
    "build.txt",  # "build/" names directories only
    "notbuild/build",  # a file called build
    "sub/top-only.txt",  # "/top-only.txt" is anchored at the root
    "docs/final.md",
    "docs/a/draft.md",
    "notes/today.md",
    "wal-notes.md",
]
IGNORED = [
    "a.log",
    "sub/deeper/b.log",
    "build/out.bin",
    "sub/build/nested/out.bin",  # a directory pattern matches at any depth
    "top-only.txt",
    "docs/a/b/draft-1.md",
    "docs/draft-2.md",  # ** matches zero directories too
    "secret",
    "sub/secret/key.pem",
    "vendor/wanted.txt",  # git cannot re-include a file in an excluded directory
    "vendor/lib.py",
]
DEFAULT_IGNORED = [
    ".memhub/state.json",
    ".memhubignore",
    ".memhub-tmp-0123abcd",
    ".git/config",
    "sub/.git/HEAD",
    ".DS_Store",
    "pics/Thumbs.db",
    ".notes.md.swp",
    "notes.md~",
    "memory.db-wal",
    "memory.db-shm",
    "memory.db-journal",
]


def test_scan_honours_memhubignore_and_the_defaults(tmp_path: Path) -> None:
    make(tmp_path, {rel: rel.encode() for rel in KEPT + IGNORED + DEFAULT_IGNORED})
    (tmp_path / ".memhubignore").write_text(IGNORE_RULES)
    found, skipped = scanned(tmp_path)
    assert sorted(found) == sorted(KEPT)
    assert found["keep.log"] == sha(b"keep.log")
    assert skipped == []


def test_without_an_ignore_file_only_the_defaults_apply(tmp_path: Path) -> None:
    make(tmp_path, dict.fromkeys(KEPT + IGNORED + DEFAULT_IGNORED, b"x"))
    (tmp_path / ".memhubignore").unlink()
    found, _ = scanned(tmp_path)
    assert sorted(found) == sorted(KEPT + IGNORED)


RULES = st.lists(
    st.sampled_from(
        [
            "*.log", "!keep.log", "build/", "/top.txt", "docs/**/draft-*.md", "secret",
            "a/b", "!a/b/c", "**/tmp", "*.md", "!*.md", "x?y", "[ab]*", "dir/*/", "\\#x",
            "trailing\\ ", "# comment", "", "!/build/keep", "**", "a/**", "*-wal",
            "**/", "**/x", "a/**/b", "!**/", "b/",
        ]
    ),
    max_size=6,
)  # fmt: skip
SEGMENT = st.sampled_from(
    ["a", "b", "c", "build", "docs", "x", "keep.log", "e.log", "n.md", "draft-1.md", "top.txt",
     "tmp", "secret", "xzy", "#x", "trailing ", ".memhub", "db-wal", "Thumbs.db", "dir"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(RULES, st.lists(st.lists(SEGMENT, min_size=1, max_size=4), min_size=1, max_size=10))
def test_the_prefilter_answers_like_the_spec(rules: list[str], paths: list[list[str]]) -> None:
    """``Ignores`` puts one combined regex in front of pathspec: it must never change
    an answer, for files and for directories (trailing slash)."""
    spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, *rules])
    ignores = Ignores(spec)
    for segments in paths:
        for path in ("/".join(segments), "/".join(segments) + "/"):
            assert ignores.match_file(path) == spec.match_file(path), (rules, path)


@pytest.mark.parametrize("rule", ["!", "\\", "[z-a]"])
def test_a_bad_rule_names_its_line(tmp_path: Path, rule: str) -> None:
    (tmp_path / ".memhubignore").write_text(f"*.log\n{rule}\n")
    with pytest.raises(BadRequest, match="line 2") as caught:
        load_ignores(tmp_path)
    assert caught.value.hint and ".gitignore" in caught.value.hint
    with pytest.raises(BadRequest, match="line 2"):  # a sync stops before touching anything
        _sync(tmp_path)


def test_an_ignore_file_that_is_not_text_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".memhubignore").write_bytes(b"\xff\xfe*.log")
    with pytest.raises(BadRequest, match="not UTF-8"):
        load_ignores(tmp_path)


def test_names_the_server_would_refuse_are_skipped(tmp_path: Path) -> None:
    make(tmp_path, {"good.md": b"1", "back\\slash.md": b"2", "ctl\x01.md": b"3"})
    found, skipped = scanned(tmp_path)
    assert sorted(found) == ["good.md"]
    assert sorted(skipped) == ["back\\slash.md", "ctl\x01.md"]


# -- symlinks ---------------------------------------------------------------------------


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    make(outside, {"secret.txt": b"outside file", "dir/inner.txt": b"outside dir"})
    make(root, {"real.md": b"real", "sub/real2.md": b"real2"})
    (root / "file-link.md").symlink_to(outside / "secret.txt")
    (root / "dir-link").symlink_to(outside / "dir", target_is_directory=True)
    (root / "sub" / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "loop").symlink_to(root, target_is_directory=True)
    found, skipped = scanned(root)
    assert sorted(found) == ["real.md", "sub/real2.md"]
    assert sorted(skipped) == ["dir-link", "file-link.md", "loop", "sub/dangling"]


def test_writes_never_go_through_a_symlinked_directory(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "a").mkdir()
    (root / "a" / "b").symlink_to(outside, target_is_directory=True)
    for rel in ("linked/evil.md", "a/b/evil.md", "a/b/c/evil.md"):
        with pytest.raises(InvalidPath, match="symlink"):
            write_local(root, rel, b"must not land outside")
    assert list(outside.iterdir()) == []
    (outside / "victim.md").write_bytes(b"keep me")
    with pytest.raises(InvalidPath, match="symlink"):
        delete_local(root, "linked/victim.md")
    assert (outside / "victim.md").read_bytes() == b"keep me"


def test_a_symlinked_file_is_neither_replaced_nor_deleted(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside.md"
    root.mkdir()
    outside.write_bytes(b"outside")
    (root / "note.md").symlink_to(outside)
    with pytest.raises(InvalidPath, match="symlink"):
        write_local(root, "note.md", b"new")
    with pytest.raises(InvalidPath, match="symlink"):
        delete_local(root, "note.md")
    assert (root / "note.md").is_symlink()
    assert outside.read_bytes() == b"outside"


def test_paths_that_escape_the_folder_are_refused(tmp_path: Path) -> None:
    for rel in ("../escape.md", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(InvalidPath):
            write_local(tmp_path, rel, b"x")
    assert not (tmp_path.parent / "escape.md").exists()


# -- the quick check ----------------------------------------------------------------------


def _state_from(root: Path) -> State:
    """The state a sync would save: the hash, size and mtime of every file now."""
    skipped: list[str] = []
    state = State(last_sync=time.time())
    for rel, f in scan(root, State(), load_ignores(root), skipped).items():
        state.files[rel] = Entry(f.sha256, 1, f.size, f.mtime_ns)
    return state


def _age(root: Path, seconds: float = 3600) -> None:
    """Date a file (or every file of a directory) back, like files not edited just before
    a sync."""
    then = time.time() - seconds
    for path in [root] if root.is_file() else root.rglob("*"):
        os.utime(path, (then, then))


def test_unchanged_size_and_mtime_reuse_the_saved_hash(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": b"original", "b.md": b"other"})
    _age(tmp_path)
    state = _state_from(tmp_path)
    before = os.stat(tmp_path / "a.md")
    (tmp_path / "a.md").write_bytes(b"ORIGINAL")  # same size
    os.utime(tmp_path / "a.md", ns=(before.st_atime_ns, before.st_mtime_ns))
    found, _ = scanned(tmp_path, state)
    # not re-hashed: the saved hash of the old content is reported
    assert found["a.md"] == sha(b"original") != sha(b"ORIGINAL")
    assert found["b.md"] == sha(b"other")


def test_a_changed_mtime_is_rehashed(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": b"original"})
    _age(tmp_path)
    state = _state_from(tmp_path)
    before = os.stat(tmp_path / "a.md")
    (tmp_path / "a.md").write_bytes(b"ORIGINAL")
    os.utime(tmp_path / "a.md", ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    found, _ = scanned(tmp_path, state)
    assert found["a.md"] == sha(b"ORIGINAL")


def test_a_changed_size_is_rehashed_even_with_the_same_mtime(tmp_path: Path) -> None:
    make(tmp_path, {"a.md": b"original"})
    _age(tmp_path)
    state = _state_from(tmp_path)
    before = os.stat(tmp_path / "a.md")
    (tmp_path / "a.md").write_bytes(b"original, longer")
    os.utime(tmp_path / "a.md", ns=(before.st_atime_ns, before.st_mtime_ns))
    found, _ = scanned(tmp_path, state)
    assert found["a.md"] == sha(b"original, longer")


def test_a_racily_clean_file_is_hashed_again(tmp_path: Path) -> None:
    """A file written just before the sync scanned it may be written again, same size,
    within the file system's timestamp granularity: same size, same mtime, other bytes.
    Its saved hash is not trusted; a file dated well before the scan keeps the fast path."""
    make(tmp_path, {"fresh.md": b"counter 1", "old.md": b"counter 1"})
    _age(tmp_path / "old.md")
    state = _state_from(tmp_path)  # scanned now: fresh.md's mtime is within the window
    for name in ("fresh.md", "old.md"):
        before = os.stat(tmp_path / name)
        (tmp_path / name).write_bytes(b"counter 2")
        os.utime(tmp_path / name, ns=(before.st_atime_ns, before.st_mtime_ns))
    found, _ = scanned(tmp_path, state)
    assert found["fresh.md"] == sha(b"counter 2")
    assert found["old.md"] == sha(b"counter 1")  # outside the window: trusted, as designed
    state.last_sync = None  # a state that does not say when it was scanned trusts nothing
    found, _ = scanned(tmp_path, state)
    assert found["old.md"] == sha(b"counter 2")


# -- atomic writes -------------------------------------------------------------------------


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    for i in range(20):
        write_local(tmp_path, "notes/deep/a.md", f"version {i}".encode())
        write_local(tmp_path, f"notes/other-{i}.md", b"")
    assert (tmp_path / "notes/deep/a.md").read_bytes() == b"version 19"
    assert (tmp_path / "notes/other-3.md").read_bytes() == b""
    assert no_temp_files(tmp_path) == []
    st = write_local(tmp_path, "b.md", b"12345")
    assert st.st_size == 5


def test_a_failed_write_leaves_the_old_state_and_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "taken" / "inside").mkdir(parents=True)  # a directory where a file should go
    with pytest.raises(OSError):
        write_local(tmp_path, "taken", b"data")
    assert (tmp_path / "taken").is_dir()
    assert no_temp_files(tmp_path) == []


def test_delete_tidies_empty_directories_but_not_the_root(tmp_path: Path) -> None:
    write_local(tmp_path, "a/b/c.md", b"x")
    write_local(tmp_path, "a/keep.md", b"y")
    delete_local(tmp_path, "a/b/c.md")
    assert not (tmp_path / "a" / "b").exists()
    assert (tmp_path / "a" / "keep.md").exists()
    delete_local(tmp_path, "a/keep.md")
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []
    delete_local(tmp_path, "gone.md")  # nothing to delete is fine


# -- the folder lock ------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from memhub.sync.local import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def _sync(root: Path) -> None:
    """A sync round of ``root`` (each test below expects it to stop before any request)."""
    with MemhubClient(UNUSED_SERVER, "mh_unused") as client:
        FolderSync(root, client, host="test").run()


def _holder(root: Path) -> subprocess.Popen[str]:
    """A second process that takes the folder lock and keeps it until its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_another_process_holding_the_lock_refuses_a_sync(tmp_path: Path) -> None:
    with _holder(tmp_path) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(Conflict, match="another memhub sync"):
            _sync(tmp_path)
        with pytest.raises(Conflict), folder_lock(tmp_path):
            pass
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with folder_lock(tmp_path):  # released when the holder exits
        pass


def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    with _holder(tmp_path) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.kill()  # no clean-up code runs
        holder.wait(timeout=10)
    with folder_lock(tmp_path):
        pass


def test_another_thread_holding_the_lock_refuses_a_sync(tmp_path: Path) -> None:
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with folder_lock(tmp_path):
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        with pytest.raises(Conflict, match="another memhub sync"):
            _sync(tmp_path)
    finally:
        release.set()
        thread.join(10)
    with folder_lock(tmp_path):
        pass


# -- the state file ------------------------------------------------------------------------


def test_a_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    (tmp_path / STATE_DIR / "state.json").write_text('{"files": {"a.md": {"sha2')
    with pytest.raises(Conflict, match="damaged") as caught:
        _sync(tmp_path)
    assert "state.json" in caught.value.detail
    assert caught.value.hint and "remove it" in caught.value.hint


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"files": []}',
        '{"files": {"a.md": {"nonsense": 1}}}',
        '{"files": {"a.md": "not an entry"}}',
        '{"cursor": "many"}',
        "\x00\x01binary",
    ],
    ids=["list", "files-list", "bad-entry-keys", "entry-not-object", "bad-cursor", "binary"],
)
def test_a_state_file_of_the_wrong_shape_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / STATE_DIR).mkdir()
    (tmp_path / STATE_DIR / "state.json").write_text(content)
    with pytest.raises(Conflict, match="damaged"):
        State.load(tmp_path)


def test_the_state_file_round_trips(tmp_path: Path) -> None:
    state = State(server="http://x", workspace="w", prefix="p/", cursor=42)
    state.files["a.md"] = Entry(sha(b"a"), 3, 1, 123)
    state.pending["b.md"] = {"sha256": None, "rev": 7}
    state.save(tmp_path)
    loaded = State.load(tmp_path)
    assert loaded == state
    assert json.loads((tmp_path / STATE_DIR / "state.json").read_text())["cursor"] == 42
    assert no_temp_files(tmp_path) == []
