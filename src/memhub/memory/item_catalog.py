"""The item catalog: every live item of a workspace in memory, derived from the log.

Like the search index (:mod:`memhub.memory.index`), the catalog is a cache:
it records the last rev it applied and, before it answers, applies every
change after it (one indexed query when nothing changed). It is what makes
listing, filtering and finding an item by id fast at 10,000 items without a
second storage path. A snapshot under ``<index dir>/items/<workspace>.json``
spares a restart from reading every item again; losing it costs one rebuild.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from memhub.memory.item_file import ITEMS_ROOT, Item, parse, parse_path
from memhub.store import Revision, Store

log = logging.getLogger("memhub.items")

SNAPSHOT_VERSION = 1
SAVE_EVERY_SECONDS = 30.0
REBUILD_AFTER = 20_000  # changes behind: read the heads instead of replaying


class Catalog:
    """One workspace's items."""

    def __init__(self, store: Store, workspace: str, snapshot: Path) -> None:
        self.store = store
        self.workspace = workspace
        self.snapshot = snapshot
        self.lock = threading.RLock()
        self.applied_rev = 0
        self.items: dict[str, Item] = {}
        self.by_norm: dict[tuple[str, str], str] = {}
        self._ordered: list[Item] | None = None
        self._dirty = False
        self._saved_at = time.monotonic()
        self._load()

    # -- following the log ----------------------------------------------------

    def catch_up(self, head: int | None = None) -> None:
        """Apply the changes up to the head (``head``: the caller just read it)."""
        if (self.store.head_rev(self.workspace) if head is None else head) == self.applied_rev:
            return
        with self.lock:
            head = self.store.head_rev(self.workspace)  # again: a writer may have moved us
            behind = head - self.applied_rev
            if behind == 0:
                return
            # a snapshot ahead of the store (a restored database) is rebuilt too
            if behind > REBUILD_AFTER or behind < 0 or self.applied_rev == 0:
                self._rebuild(head)
            else:
                while True:
                    page = self.store.changes(self.workspace, self.applied_rev, limit=1000)
                    latest = {r.path: r for r in page.changes if r.path.startswith(ITEMS_ROOT)}
                    self._apply(latest.values())
                    self.applied_rev = page.next_since
                    if not page.has_more:
                        break
            self._dirty = True
            self._maybe_save()

    def _rebuild(self, head: int) -> None:
        self.items.clear()
        self.by_norm.clear()
        self._ordered = None
        after: str | None = None
        while True:
            heads = self.store.list_files(
                self.workspace, prefix=ITEMS_ROOT, after=after, limit=1000
            )
            if not heads:
                break
            self._apply(heads)
            after = heads[-1].path
        self.applied_rev = head  # writes that raced the listing are replayed next time

    def _apply(self, revisions: Iterable[Revision]) -> None:
        live = []
        for revision in revisions:
            where = parse_path(revision.path)
            if where is None:
                continue
            if revision.deleted:
                self._remove(where[1])
            else:
                live.append((revision, where[1]))
        # the chunks of the whole page in one query, not a read plan per item
        refs = self.store.chunk_refs(self.workspace, (r.sha256 for r, _ in live)) if live else {}
        for revision, item_id in live:
            chunks = refs.get(revision.sha256)
            if chunks is None and revision.size:
                continue  # purged since: a later change in the log covers it
            item = parse(revision.path, self.store.read_content(chunks or []))
            if item is None:
                log.warning("%s: %s is not a well-formed item", self.workspace, revision.path)
                self._remove(item_id)
                continue
            self._put(item.with_rev(revision.rev, revision.sha256))

    def _put(self, item: Item) -> None:
        self._remove(item.id)
        self.items[item.id] = item
        self.by_norm.setdefault((item.cube_id, item.norm), item.id)
        self._ordered = None

    def _remove(self, item_id: str) -> None:
        old = self.items.pop(item_id, None)
        if old is None:
            return
        self._ordered = None
        key = (old.cube_id, old.norm)
        if self.by_norm.get(key) == item_id:
            del self.by_norm[key]
            for other in self.items.values():  # another item may state the same fact
                if (other.cube_id, other.norm) == key:
                    self.by_norm[key] = other.id
                    break

    def wrote(self, item: Item | None, item_id: str, rev: int) -> None:
        """Record this process's own write at ``rev`` without reading it back. Only a write
        newer than everything applied is taken; the cursor moves only when no change of
        another writer can be in between (later changes are replayed idempotently)."""
        with self.lock:
            if rev <= self.applied_rev:
                return
            if item is None:
                self._remove(item_id)
            else:
                self._put(item)
            if rev == self.applied_rev + 1:
                self.applied_rev = rev
            self._dirty = True

    # -- reading ----------------------------------------------------------------

    def ordered(self) -> list[Item]:
        """Every item, newest first (created_at, then rev)."""
        with self.lock:
            if self._ordered is None:
                self._ordered = sorted(
                    self.items.values(), key=lambda i: (i.created_at, i.rev), reverse=True
                )
            return self._ordered

    def find_fact(self, cube: str, norm: str) -> Item | None:
        with self.lock:
            item_id = self.by_norm.get((cube, norm))
            return self.items.get(item_id) if item_id else None

    # -- the snapshot ------------------------------------------------------------

    def _load(self) -> None:
        try:
            state = json.loads(self.snapshot.read_text(encoding="utf-8"))
            if state.get("version") != SNAPSHOT_VERSION:
                raise ValueError("snapshot version changed")
            items = [_item_from(d) for d in state["items"]]
            rev = int(state["rev"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("rebuilding the item catalog of %s: %s", self.workspace, exc)
            return
        for item in items:
            self._put(item)
        self.applied_rev = rev

    def _maybe_save(self) -> None:
        if self._dirty and time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
            self.save()

    def save(self) -> None:
        with self.lock:
            if not self._dirty:
                return
            state = {
                "version": SNAPSHOT_VERSION,
                "rev": self.applied_rev,
                "items": [asdict(i) for i in self.items.values()],
            }
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.snapshot.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self.snapshot)
            self._dirty = False
            self._saved_at = time.monotonic()


def _item_from(data: dict[str, Any]) -> Item:
    data = dict(data)
    data["tags"] = tuple(data.get("tags") or ())
    data["sources"] = tuple(data.get("sources") or ())
    return Item(**data)


class Catalogs:
    """Every workspace's catalog under one directory; opened on first use."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._catalogs: dict[str, Catalog] = {}
        self._lock = threading.Lock()

    def current(self, workspace: str) -> Catalog:
        """The workspace's catalog, caught up with the change log."""
        catalog = self.get(workspace)
        catalog.catch_up()
        return catalog

    def get(self, workspace: str) -> Catalog:
        """The workspace's catalog as it is (to record this process's own writes)."""
        catalog = self._catalogs.get(workspace)
        if catalog is None:
            with self._lock:
                catalog = self._catalogs.get(workspace)
                if catalog is None:
                    self.store.workspace_id(workspace)  # WorkspaceNotFound first
                    name = workspace.replace(":", "%3A")
                    catalog = Catalog(self.store, workspace, self.root / f"{name}.json")
                    self._catalogs[workspace] = catalog
        return catalog

    def close(self) -> None:
        for catalog in self._catalogs.values():
            try:
                catalog.save()
            except OSError as exc:  # derived: the next start rebuilds it
                log.warning("could not save the item catalog of %s: %s", catalog.workspace, exc)
