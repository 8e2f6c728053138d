"""The local side of a folder sync: its state file, ignore rules, scan, lock and writes.

A synced folder keeps ``.memhub/state.json``: the server, workspace and remote
prefix it syncs with, the change-feed cursor, and per path the hash, rev, size
and mtime last synced. The size and mtime let a scan skip hashing files that
have not changed, so a no-op sync of thousands of files costs a ``stat`` each.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pathspec

from memhub.errors import Conflict, InvalidPath
from memhub.store.blobs.local import fsync_dir, write_durably
from memhub.store.paths import normalize_path

STATE_DIR = ".memhub"
IGNORE_FILE = ".memhubignore"
TMP_PREFIX = ".memhub-tmp-"
DEFAULT_IGNORES = (
    f"{STATE_DIR}/",
    IGNORE_FILE,
    f"{TMP_PREFIX}*",
    ".git/",
    ".DS_Store",
    "Thumbs.db",
    "*.swp",
    "*~",
    "*-wal",
    "*-shm",
    "*-journal",
)


@dataclass(slots=True)
class Entry:
    sha256: str
    rev: int = 0
    size: int = 0
    mtime_ns: int = 0


@dataclass(slots=True)
class State:
    server: str = ""
    workspace: str = ""
    prefix: str = ""
    cursor: int = 0
    files: dict[str, Entry] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # remote ≠ base, unresolved
    last_sync: float | None = None

    @classmethod
    def load(cls, root: Path) -> State:
        path = root / STATE_DIR / "state.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except ValueError as exc:
            raise Conflict(
                f"the sync state {path} is damaged",
                hint="remove it to start over (the next sync compares contents, losing nothing)",
            ) from exc
        files = {p: Entry(**e) for p, e in data.get("files", {}).items()}
        return cls(
            server=data.get("server", ""),
            workspace=data.get("workspace", ""),
            prefix=data.get("prefix", ""),
            cursor=int(data.get("cursor", 0)),
            files=files,
            pending=data.get("pending", {}),
            last_sync=data.get("last_sync"),
        )

    def save(self, root: Path) -> None:
        directory = root / STATE_DIR
        directory.mkdir(exist_ok=True)
        data = asdict(self)
        write_durably(directory / "state.json", json.dumps(data, indent=1).encode())


@dataclass(frozen=True, slots=True)
class LocalFile:
    sha256: str
    size: int
    mtime_ns: int


def load_ignores(root: Path) -> pathspec.GitIgnoreSpec:
    lines = list(DEFAULT_IGNORES)
    with contextlib.suppress(FileNotFoundError):
        lines += (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def scan(
    root: Path, state: State, ignores: pathspec.GitIgnoreSpec, skipped: list[str]
) -> dict[str, LocalFile]:
    """Every regular file under ``root`` that is not ignored, by its relative path.

    Symlinks are never followed (listed in ``skipped``), nor are paths the server
    would refuse. Hashes are reused from the state when size and mtime match.
    """
    found: dict[str, LocalFile] = {}
    for rel, st in _walk(root, "", ignores, skipped):
        known = state.files.get(rel)
        if known is not None and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
            sha = known.sha256
        else:
            try:
                sha = hash_file(root / rel)
            except OSError:
                skipped.append(rel)
                continue
        found[rel] = LocalFile(sha, st.st_size, st.st_mtime_ns)
    return found


def _walk(
    root: Path, rel_dir: str, ignores: pathspec.GitIgnoreSpec, skipped: list[str]
) -> Iterator[tuple[str, os.stat_result]]:
    try:
        entries = list(os.scandir(root / rel_dir if rel_dir else root))
    except OSError:
        skipped.append(rel_dir or ".")
        return
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if entry.is_symlink():
            skipped.append(rel)
            continue
        if entry.is_dir(follow_symlinks=False):
            if not ignores.match_file(rel + "/"):
                yield from _walk(root, rel, ignores, skipped)
            continue
        if ignores.match_file(rel):
            continue
        try:
            normalize_path(rel)
        except InvalidPath:
            skipped.append(rel)
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            yield rel, st


def write_local(root: Path, rel: str, data: bytes) -> os.stat_result:
    """Write a synced file atomically (temp, fsync, rename, fsync dir); never through a
    symlink and never outside ``root``."""
    target = safe_target(root, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}")
    write_durably(tmp, data)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    return target.stat()


def delete_local(root: Path, rel: str) -> None:
    target = safe_target(root, rel)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    parent = target.parent
    while parent != root and not any(parent.iterdir()):  # tidy empty directories
        parent.rmdir()
        parent = parent.parent


def safe_target(root: Path, rel: str) -> Path:
    rel = normalize_path(rel)
    target = root.joinpath(*rel.split("/"))
    probe = root
    for part in rel.split("/")[:-1]:
        probe = probe / part
        if probe.is_symlink():
            raise InvalidPath(f"{rel}: {probe} is a symlink; not writing through it")
    if target.is_symlink():
        raise InvalidPath(f"{rel} is a symlink; not replacing it")
    return target


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """One sync of a folder at a time (an flock, released if the process dies)."""
    directory = root / STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[Any] = (directory / "lock").open("a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another memhub sync of {root} is running", hint="wait for it to finish"
            ) from None
        yield
    finally:
        handle.close()
