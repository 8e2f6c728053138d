"""The files tree: one directory level at a time, with sizes and last changes.

A directory's entries are its files and its subdirectories (each with the
number of files, the bytes and the newest change below it). The listing of a
workspace is read once per workspace head (``head_rev``): any write moves the
head, so a cached listing is never stale, and browsing a workspace of 10,000
files costs one cheap query per page until something changes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from memhub.store import Store
from memhub.store.schema import files

PAGE = 200
CACHED_WORKSPACES = 16
CACHED_LISTINGS = 256  # directories per workspace snapshot


@dataclass(slots=True)
class Entry:
    name: str
    path: str  # a file's path, or a directory's prefix ending in "/"
    is_dir: bool
    size: int = 0
    files: int = 0
    changed_at: float = 0.0
    rev: int = 0
    author: str | None = None


@dataclass(slots=True)
class Directory:
    entries: list[Entry] = field(default_factory=list)
    files: int = 0
    size: int = 0


@dataclass(slots=True)
class _Snapshot:
    head_rev: int
    rows: list[tuple[str, int, float, int, str | None]]  # path, size, created_at, rev, author
    listings: dict[str, Directory] = field(default_factory=dict)  # by prefix, built on demand


class Tree:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: OrderedDict[str, _Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def _snapshot(self, workspace: str) -> _Snapshot:
        head = self.store.head_rev(workspace)
        with self._lock:
            cached = self._cache.get(workspace)
            if cached is not None and cached.head_rev == head:
                self._cache.move_to_end(workspace)
                return cached
        ws_id = self.store.workspace_id(workspace)
        stmt = (
            select(files.c.path, files.c.size, files.c.created_at, files.c.rev, files.c.author)
            .where(files.c.workspace_id == ws_id, files.c.deleted.is_(False))
            .order_by(files.c.path)
        )
        with self.store.meta.read() as conn:
            rows = [(r[0], int(r[1]), float(r[2]), int(r[3]), r[4]) for r in conn.execute(stmt)]
        # the head read before the rows: a write in between only makes the next read refresh
        snapshot = _Snapshot(head, rows)
        with self._lock:
            self._cache[workspace] = snapshot
            self._cache.move_to_end(workspace)
            while len(self._cache) > CACHED_WORKSPACES:
                self._cache.popitem(last=False)
        return snapshot

    def deleted(self, workspace: str, prefix: str, limit: int = PAGE) -> list[Entry]:
        """Deleted files under ``prefix``, most recently deleted first (to restore them)."""
        ws_id = self.store.workspace_id(workspace)
        stmt = select(files.c.path, files.c.created_at, files.c.rev, files.c.author).where(
            files.c.workspace_id == ws_id, files.c.deleted.is_(True)
        )
        if prefix:
            stmt = stmt.where(func.substr(files.c.path, 1, len(prefix)) == prefix)
        stmt = stmt.order_by(files.c.rev.desc()).limit(limit)
        with self.store.meta.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            Entry(r[0][len(prefix) :], r[0], False, 0, 0, float(r[1]), int(r[2]), r[3])
            for r in rows
        ]

    def directory(self, workspace: str, prefix: str) -> Directory:
        """The entries directly under ``prefix`` ("" or ending in "/"): directories first."""
        snapshot = self._snapshot(workspace)
        listing = snapshot.listings.get(prefix)
        if listing is None:
            listing = _listing(snapshot.rows, prefix)
            with self._lock:
                if len(snapshot.listings) >= CACHED_LISTINGS:
                    snapshot.listings.clear()
                snapshot.listings[prefix] = listing
        return listing


def _listing(rows: list[tuple[str, int, float, int, str | None]], prefix: str) -> Directory:
    dirs: dict[str, Entry] = {}
    leaves: list[Entry] = []
    out = Directory()
    for path, size, created_at, rev, author in rows:
        if not path.startswith(prefix):
            continue
        out.files += 1
        out.size += size
        rest = path[len(prefix) :]
        name, slash, _ = rest.partition("/")
        if slash:
            entry = dirs.get(name)
            if entry is None:
                entry = dirs[name] = Entry(name, prefix + name + "/", True)
            entry.files += 1
            entry.size += size
            if created_at > entry.changed_at:
                entry.changed_at, entry.rev, entry.author = created_at, rev, author
        else:
            leaves.append(Entry(name, path, False, size, 1, created_at, rev, author))
    out.entries = [*dirs.values(), *leaves]
    return out
