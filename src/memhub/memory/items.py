"""Memory items: add (deduplicated), get, update, delete, list, search, history.

Items are files (:mod:`memhub.memory.item_file`); this service writes them
through the store and reads them through the derived catalog
(:mod:`memhub.memory.item_catalog`) and the search index. The HTTP routes
(``/v1/workspaces/{ws}/items``, ``/product/*``) and ``memhub items`` all call it.

Adding a fact that an item of the same cube already states (after
:func:`~memhub.memory.item_file.normalise`) updates that item instead of
creating a second one: its tags and info are merged and ``updated_at`` moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from memhub.core.paths import validate_name
from memhub.errors import BadRequest, FileNotFound, NotFound, PreconditionFailed
from memhub.memory.embeddings import EmbeddingProvider
from memhub.memory.item_catalog import Catalogs
from memhub.memory.item_file import (
    ITEMS_ROOT,
    MAX_TEXT,
    Item,
    check_id,
    fact_id,
    key_of,
    now_iso,
    parse,
    plain,
    render,
)
from memhub.memory.item_filter import Predicate
from memhub.memory.item_search import Hits, ItemSearch
from memhub.memory.service import Memory
from memhub.store import Precondition, Revision, Store

MAX_BATCH = 1000
CONTENT_TYPE = "text/markdown; charset=utf-8"

# ``mode: fine``: messages in, facts out. The LLM provider is wired here when one is
# configured (see ``Items.extractor``); without one, fine behaves like fast.
Extractor = Callable[[list[dict[str, str]]], list[str]]


@dataclass(frozen=True, slots=True)
class Draft:
    """An item to add: its text and metadata."""

    memory: str
    cube_id: str
    memory_type: str = "LongTermMemory"
    key: str | None = None
    tags: tuple[str, ...] = ()
    info: dict[str, Any] | None = None
    source: str | None = None
    sources: tuple[dict[str, Any], ...] = ()
    session_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Added:
    item: Item
    action: str  # created | updated


class Items:
    def __init__(
        self,
        store: Store,
        memory: Memory,
        index_dir: Path,
        extractor: Extractor | None = None,
        embeddings: EmbeddingProvider | None = None,
    ) -> None:
        self.store = store
        self.memory = memory
        self.catalogs = Catalogs(store, index_dir / "items")
        self.searcher = ItemSearch(store, memory, self.catalogs, index_dir / "items", embeddings)
        self.extractor = extractor

    # -- writing ----------------------------------------------------------------

    def add(self, workspace: str, drafts: list[Draft], *, author: str | None = None) -> list[Added]:
        """Add items in one metadata transaction. Facts the cube already holds (or that
        repeat within the batch) update one item; an entry whose write loses a race
        is retried on its own."""
        if len(drafts) > MAX_BATCH:
            raise BadRequest(f"at most {MAX_BATCH} items in one request")
        checked = [_checked(d) for d in drafts]
        catalog = self.catalogs.current(workspace)
        now = now_iso()
        plans: dict[tuple[str, str], _Plan] = {}
        for i, draft in enumerate(checked):
            fresh = _fresh(draft, now)
            plan = plans.get((fresh.cube_id, fresh.norm))
            if plan is not None:
                plan.item = _merge(plan.item, fresh, now)
                plan.indices.append(i)
                continue
            same = catalog.find_fact(fresh.cube_id, fresh.norm)
            item = fresh if same is None else _merge(same, fresh, now)
            plans[(fresh.cube_id, fresh.norm)] = _Plan(item, same, [i])
        results: list[Added | None] = [None] * len(checked)
        batch = list(plans.values())
        if len({p.item.path for p in batch}) != len(batch):
            alone, batch = batch, []  # an edited item sits at a new fact's id: one by one
        else:
            alone = []
        if batch:
            written = self.store.put_each(
                workspace,
                [(p.item.path, render(p.item), p.condition()) for p in batch],
                content_type=CONTENT_TYPE,
                author=author,
                message="add items",
            )
            recorder = self.catalogs.get(workspace)
            for plan, result in zip(batch, written, strict=True):
                if isinstance(result, Exception):
                    alone.append(plan)
                    continue
                item = plan.item.with_rev(result.revision.rev, result.revision.sha256)
                recorder.wrote(item, item.id, item.rev)
                first = "created" if plan.base is None else "updated"
                for n, i in enumerate(plan.indices):
                    results[i] = Added(item, first if n == 0 else "updated")
        for plan in alone:
            for n, i in enumerate(plan.indices):
                one = self._add_one(workspace, checked[i], author)
                results[i] = one if n == 0 else Added(one.item, "updated")
        return [r for r in results if r is not None]

    def _add_one(self, workspace: str, draft: Draft, author: str | None) -> Added:
        catalog = self.catalogs.current(workspace)
        now = now_iso()
        fresh = _fresh(draft, now)
        for _attempt in range(3):
            same = catalog.find_fact(draft.cube_id, fresh.norm)
            if same is not None:
                try:
                    return Added(
                        self._write(workspace, _merge(same, fresh, now), same, author), "updated"
                    )
                except (PreconditionFailed, FileNotFound):
                    catalog.catch_up()  # it changed under us: look again
                    continue
            try:
                written = self._write(workspace, fresh, None, author)
                return Added(written, "created")
            except PreconditionFailed:
                catalog.catch_up()
                if catalog.find_fact(draft.cube_id, fresh.norm) is None:
                    # the fact's id is taken by an item since edited to another text
                    fresh = replace(fresh, id=str(uuid.uuid4()))
        raise PreconditionFailed(
            "the item changed three times while it was being added; try again",
            context={"id": fresh.id},
        )

    def update(
        self,
        workspace: str,
        item_id: str,
        changes: dict[str, Any],
        *,
        if_rev: int | None = None,
        author: str | None = None,
    ) -> Item:
        current = self.get(workspace, item_id)
        _check_rev(current, if_rev)
        allowed = {"memory", "memory_type", "key", "tags", "info", "source", "session_id", "status"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadRequest(
                f"cannot update {sorted(unknown)}", context={"fields": sorted(allowed)}
            )
        values: dict[str, Any] = {k: (tuple(v) if k == "tags" else v) for k, v in changes.items()}
        new = replace(current, **values, updated_at=now_iso())
        draft = _checked(
            Draft(
                memory=new.memory,
                cube_id=new.cube_id,
                memory_type=new.memory_type,
                tags=new.tags,
                info=new.info,
            )
        )
        new = replace(new, memory=draft.memory, tags=draft.tags)
        if "key" not in changes and "memory" in changes and current.key == key_of(current.memory):
            new = replace(new, key=key_of(new.memory))
        return self._write(workspace, new, current, author)

    def delete(
        self, workspace: str, item_id: str, *, if_rev: int | None = None, author: str | None = None
    ) -> Revision:
        current = self.get(workspace, item_id)
        _check_rev(current, if_rev)
        revision = self.store.delete(
            workspace,
            current.path,
            precondition=Precondition(sha256=current.sha256),
            author=author,
            message=f"delete item {current.id}",
        )
        self.catalogs.get(workspace).wrote(None, current.id, revision.rev)
        return revision

    def _write(self, workspace: str, item: Item, base: Item | None, author: str | None) -> Item:
        """Write ``item``: create-only when ``base`` is None, else only over ``base``."""
        condition = Precondition(exists=False) if base is None else Precondition(sha256=base.sha256)
        result = self.store.put(
            workspace,
            item.path,
            render(item),
            precondition=condition,
            content_type=CONTENT_TYPE,
            author=author,
            session_id=item.session_id,
            message=("add" if base is None else "update") + f" item {item.id}",
        )
        written = item.with_rev(result.revision.rev, result.revision.sha256)
        self.catalogs.get(workspace).wrote(written, written.id, written.rev)
        return written

    # -- reading ----------------------------------------------------------------

    def get(self, workspace: str, item_id: str) -> Item:
        item_id = check_id(item_id)
        item = self.catalogs.current(workspace).items.get(item_id)
        if item is None:
            raise NotFound(f"no memory item {item_id}", context={"id": item_id})
        return item

    def find(self, workspace: str, item_id: str) -> Item | None:
        try:
            return self.get(workspace, item_id)
        except (NotFound, BadRequest):
            return None

    def list_items(
        self,
        workspace: str,
        *,
        cube: str | None = None,
        where: Predicate | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> tuple[list[Item], int]:
        """Items newest first (and how many match), ``limit`` after ``offset``."""
        chosen = [
            i
            for i in self.catalogs.current(workspace).ordered()
            if (cube is None or i.cube_id == cube) and (where is None or where(i.fields()))
        ]
        end = None if limit is None else offset + limit
        return chosen[offset:end], len(chosen)

    def search(
        self,
        workspace: str,
        query: str,
        *,
        k: int = 10,
        cube: str | None = None,
        where: Predicate | None = None,
        relativity: float = 0.0,
    ) -> Hits:
        """Items only: BM25, fused with vector ranks when embeddings are configured
        (:mod:`memhub.memory.item_search`)."""
        return self.searcher.search(
            workspace, query, k=k, cube=cube, where=where, relativity=relativity
        )

    def history(self, workspace: str, item_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Every version of an item, newest first (deleted versions as tombstones)."""
        item_id = check_id(item_id)
        catalog = self.catalogs.current(workspace)
        current = catalog.items.get(item_id)
        paths = [current.path] if current else self._paths_of(workspace, item_id)
        out: list[dict[str, Any]] = []
        for path in paths:
            for revision in self.store.history(workspace, path, limit=limit):
                entry: dict[str, Any] = {
                    "rev": revision.rev,
                    "created_at": revision.created_at,
                    "deleted": revision.deleted,
                    "author": revision.author,
                    "message": revision.message,
                    "item": None,
                }
                if not revision.deleted:
                    found, data = self.store.read_bytes(workspace, path, revision.rev)
                    item = parse(path, data)
                    entry["item"] = (
                        item.with_rev(found.rev, found.sha256).to_dict() if item else None
                    )
                out.append(entry)
        if not out:
            raise NotFound(f"no memory item {item_id}", context={"id": item_id})
        out.sort(key=lambda e: e["rev"], reverse=True)
        return out[:limit]

    def _paths_of(self, workspace: str, item_id: str) -> list[str]:
        """Paths a deleted item may have had (tombstones stay in the file list)."""
        found: list[str] = []
        after: str | None = None
        while True:
            page = self.store.list_files(
                workspace, prefix=ITEMS_ROOT, include_deleted=True, after=after, limit=1000
            )
            found += [r.path for r in page if r.path.endswith(f"/{item_id}.md")]
            if len(page) < 1000:
                return found
            after = page[-1].path

    def close(self) -> None:
        self.catalogs.close()
        self.searcher.close()


class _Plan:
    """One write of a batch: the item, the stored version it replaces, the drafts it serves."""

    def __init__(self, item: Item, base: Item | None, indices: list[int]) -> None:
        self.item = item
        self.base = base
        self.indices = indices

    def condition(self) -> Precondition:
        if self.base is None:
            return Precondition(exists=False)
        return Precondition(sha256=self.base.sha256)


def _fresh(draft: Draft, now: str) -> Item:
    return Item(
        id=fact_id(draft.cube_id, draft.memory),
        cube_id=draft.cube_id,
        memory=draft.memory,
        memory_type=draft.memory_type,
        key=draft.key or key_of(draft.memory),
        tags=draft.tags,
        info=dict(draft.info or {}),
        source=draft.source,
        sources=draft.sources,
        session_id=draft.session_id,
        user_id=draft.user_id,
        created_at=now,
        updated_at=now,
    )


def _checked(draft: Draft) -> Draft:
    memory = draft.memory.strip()
    if not memory:
        raise BadRequest("an item needs a non-empty text")
    if len(memory) > MAX_TEXT:
        raise BadRequest(f"an item's text is limited to {MAX_TEXT} characters")
    cube = validate_name(draft.cube_id, "cube")
    tags = tuple(dict.fromkeys(t.strip() for t in draft.tags if t.strip()))
    if len(tags) > 100 or any(len(t) > 200 for t in tags):
        raise BadRequest("at most 100 tags of at most 200 characters")
    if not draft.memory_type or len(draft.memory_type) > 64:
        raise BadRequest("memory_type must be 1 to 64 characters")
    if draft.info and plain(draft.info) != draft.info:
        raise BadRequest("info must be plain JSON (finite numbers)")
    return replace(draft, memory=memory, cube_id=cube, tags=tags)


def _merge(old: Item, new: Item, now: str) -> Item:
    return replace(
        old,
        tags=tuple(dict.fromkeys((*old.tags, *new.tags))),
        info={**old.info, **new.info},
        sources=(*old.sources, *new.sources)[-20:],
        session_id=new.session_id or old.session_id,
        updated_at=now,
    )


def _check_rev(item: Item, if_rev: int | None) -> None:
    if if_rev is not None and if_rev != item.rev:
        raise PreconditionFailed(
            f"item {item.id} is at rev {item.rev}, not {if_rev}",
            context={"id": item.id, "rev": item.rev},
        )
