"""The search index: tantivy, per workspace, derived from the change log.

An index is a cache. It records the last rev it applied (``state.json``
beside it) and, before it answers, applies every change after that rev
(:meth:`WorkspaceIndex.catch_up`), so a search right after an acknowledged
write sees it. A missing, damaged or outdated index is rebuilt from the
heads of the store. Every server process keeps its own index directory
(``<index dir>/<node id>/<workspace>``), so nodes over one PostgreSQL never
share a tantivy writer.

Documents are blocks (:mod:`memhub.memory.blocks`). Text is analysed in
Python by :mod:`memhub.memory.analyzer` and handed to tantivy as analysed terms
(:mod:`memhub.memory.documents`), so documents and queries go through one analyzer
for every language. This process reads the files and adds the documents; cutting
and analysing many files happens in worker processes (:mod:`memhub.memory.prepare`).

About 460 lines, most of them :class:`WorkspaceIndex`: opening, checking, rebuilding,
catching up and searching one index directory are one life cycle with one lock, and
read best together.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import tantivy

from memhub.errors import FileNotFound, MemhubError, StorageUnavailable
from memhub.memory import queries
from memhub.memory.analyzer import analyze
from memhub.memory.blocks import classify
from memhub.memory.documents import (
    MAX_INDEXED_BYTES,
    RANKING,
    SCHEMA,
    Hit,
    Ranking,
    SearchFilters,
    decode_text,
    document,
)
from memhub.memory.prepare import Job, Preparer, default_processes
from memhub.store import Revision, Store
from memhub.store.readahead import contents_ahead

log = logging.getLogger("memhub.index")

INDEX_VERSION = 4  # 2: the "weighted" marker field; 3: "seq" in the block record;
# 4: text fields from space-joined terms (frequencies, no positions), the record as bytes
WRITER_HEAP = 64 * 1024 * 1024
REBUILD_AFTER = 20_000  # changes behind: rebuild from the heads instead of replaying
PAGE = 1000  # heads listed, or changes read, per query
RETRY_SECONDS = 10.0  # how often files whose bytes could not be read are tried again


class BlockFollower(Protocol):
    """What follows the index's blocks (the block vectors): told every file the index
    drops or (re)indexes, and given every block again when it may have missed some."""

    def reset(self, blocks: Iterable[tuple[int, Hit]]) -> None: ...
    def removed(self, path: str) -> None: ...
    def added(self, path: str, blocks: list[tuple[int, Hit]]) -> None: ...


class WorkspaceIndex:
    """One workspace's index directory, writer and catch-up state."""

    def __init__(
        self,
        root: Path,
        workspace: str,
        store: Store,
        ranking: Ranking = RANKING,
        *,
        processes: int | None = None,
    ) -> None:
        self.root = root
        self.workspace = workspace
        self.store = store
        self.ranking = ranking
        # worker processes preparing files for a rebuild or a long catch-up
        self.processes = default_processes() if processes is None else processes
        self._lock = threading.Lock()
        self._writer: Any = None
        self.applied_rev = 0
        self.problems: dict[str, dict[str, Any]] = {}
        self._next_retry = 0.0
        self.follower: BlockFollower | None = None
        self.index = self._open()

    # -- opening and state --------------------------------------------------

    def _state_path(self) -> Path:
        return self.root / "state.json"

    def _open(self) -> tantivy.Index:
        data_dir = self.root / "tantivy"
        try:
            state = json.loads(self._state_path().read_text(encoding="utf-8"))
            if state.get("version") != INDEX_VERSION:
                raise ValueError("index version changed")
            if state.get("neighbours", RANKING.neighbours) != self.ranking.neighbours:
                raise ValueError("the indexed context changed")
            if not (data_dir / "meta.json").is_file():
                raise ValueError("the tantivy index is missing")
            index = tantivy.Index(SCHEMA, path=str(data_dir), reuse=True)
            self.applied_rev = int(state["rev"])
            self.problems = {str(k): dict(v) for k, v in dict(state.get("problems", {})).items()}
            return index
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if self.root.exists():
                log.warning("rebuilding the index of %s: %s", self.workspace, exc)
                shutil.rmtree(self.root, ignore_errors=True)
            data_dir.mkdir(parents=True, exist_ok=True)
            self.applied_rev = 0
            self.problems = {}
            return tantivy.Index(SCHEMA, path=str(data_dir), reuse=False)

    def _save_state(self) -> None:
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "version": INDEX_VERSION,
                    "rev": self.applied_rev,
                    "neighbours": self.ranking.neighbours,
                    "problems": self.problems,
                }
            )
        )
        tmp.replace(self._state_path())

    def _writer_handle(self) -> Any:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    # -- following the log ----------------------------------------------------

    def catch_up(self, head: int | None = None) -> int:
        """Apply every change after the last applied rev; returns how many were applied.

        Never skips a change it could not apply: when the store cannot be read
        (:class:`StorageUnavailable`) the uncommitted work is rolled back, the cursor
        stays where it was and the error goes to the caller (the API answers 503);
        the next call retries. A file whose bytes are damaged, or which its kind's
        parser could not read, is recorded in :attr:`problems` (the index status
        reports it) and the damaged ones are tried again every ``RETRY_SECONDS``."""
        head = self.store.head_rev(self.workspace) if head is None else head
        retry = self._retry_due()
        if head <= self.applied_rev and not retry:
            return 0
        with self._lock:
            if head - self.applied_rev > REBUILD_AFTER or self.applied_rev == 0:
                return self._rebuild_locked()
            with self._rolling_back(), self._preparer() as preparer:
                applied = 0
                while head > self.applied_rev:
                    page = self.store.changes(self.workspace, self.applied_rev, limit=PAGE)
                    latest = {r.path: r for r in page.changes}
                    self._apply(latest.values(), preparer)
                    applied += len(page.changes)
                    self.applied_rev = page.next_since
                    self._commit()
                    if not page.has_more:
                        break
                if retry:
                    self._retry_unreadable()
                    self._commit()
            return applied

    @contextlib.contextmanager
    def _rolling_back(self) -> Iterator[None]:
        """Undo the uncommitted writes and the cursor if the block fails."""
        committed_rev, problems = self.applied_rev, dict(self.problems)
        try:
            yield
        except BaseException:
            if self._writer is not None:
                self._writer.rollback()
            self.applied_rev, self.problems = committed_rev, problems
            if self.follower is not None:  # it was told of writes that are undone
                self.follower.reset(self._all_blocks())
            raise

    def follow(self, follower: BlockFollower) -> None:
        """Give ``follower`` every committed block, then tell it of every change."""
        with self._lock:
            follower.reset(self._all_blocks())
            self.follower = follower

    def _all_blocks(self) -> list[tuple[int, Hit]]:
        searcher = self.index.searcher()
        if not searcher.num_docs:
            return []
        result = searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs)
        out = []
        for _score, address in result.hits:
            doc = searcher.doc(address)
            record = json.loads(doc["block"][0])
            out.append((int(record["seq"]), Hit.from_record(doc["path"][0], record, 0.0)))
        return out

    def rebuild(self) -> int:
        with self._lock:
            return self._rebuild_locked()

    def _rebuild_locked(self) -> int:
        with self._rolling_back(), self._preparer() as preparer:
            head = self.store.head_rev(self.workspace)
            writer = self._writer_handle()
            writer.delete_all_documents()
            self.problems = {}
            if self.follower is not None:
                self.follower.reset([])
            heads = itertools.chain.from_iterable(self._listing())
            count = self._apply(heads, preparer, fresh=True)
            self.applied_rev = head
            self._commit()
        # writes that raced the listing are replayed (idempotently) by the next catch-up
        return count

    def _listing(self) -> Iterator[list[Revision]]:
        after: str | None = None
        while heads := self.store.list_files(self.workspace, after=after, limit=PAGE):
            yield heads
            after = heads[-1].path

    def _preparer(self) -> Preparer:
        return Preparer(self.workspace, self.ranking.neighbours, self.processes)

    def _retry_due(self) -> bool:
        unreadable = any(p["kind"] == "unreadable" for p in self.problems.values())
        return unreadable and time.monotonic() >= self._next_retry

    def _retry_unreadable(self) -> None:
        self._next_retry = time.monotonic() + RETRY_SECONDS
        paths = [path for path, p in self.problems.items() if p["kind"] == "unreadable"]
        for path in paths:
            try:
                head = self.store.stat(self.workspace, path, include_deleted=True)
            except FileNotFound:
                self.problems.pop(path, None)
                continue
            self._apply([head])

    def _apply(
        self,
        heads: Iterable[Revision],
        preparer: Preparer | None = None,
        *,
        fresh: bool = False,
    ) -> int:
        """Index the heads (replacing what each path had unless ``fresh``); returns how
        many heads there were. Files are read here and prepared by ``preparer``."""
        preparer = preparer or Preparer(self.workspace, self.ranking.neighbours)
        writer = self._writer_handle()
        taken = 0

        def jobs() -> Iterator[Job]:
            nonlocal taken
            for page in _pages(heads):
                taken += len(page)
                yield from self._read(page, fresh=fresh)

        for revision, prepared in preparer.map(jobs()):
            if prepared.error is not None:
                self._problem(revision, "parse", "PARSED_AS_TEXT", prepared.error)
            for fields in prepared.fields:
                writer.add_document(document(fields))
            if self.follower is not None:
                self.follower.added(
                    revision.path,
                    [
                        (seq, Hit.from_record(revision.path, json.loads(fields.record), 0.0))
                        for seq, fields in enumerate(prepared.fields)
                    ],
                )
        return taken

    def _read(self, heads: list[Revision], *, fresh: bool) -> Iterator[Job]:
        """The text of each head worth indexing; what each path had is deleted first."""
        writer = self._writer_handle()
        todo = []
        for revision in heads:
            if not fresh:
                writer.delete_documents_by_term("path", revision.path)
                if self.follower is not None:
                    self.follower.removed(revision.path)
            self.problems.pop(revision.path, None)
            if revision.deleted or classify(revision.path, self.workspace) == "binary":
                continue
            if revision.size > MAX_INDEXED_BYTES:
                continue
            todo.append(revision)
        # the chunks of the whole page in one query, not a read plan per file; the small
        # ones' bytes in one more (any other is read through the store, one by one)
        refs = self.store.chunk_refs(self.workspace, (r.sha256 for r in todo)) if todo else {}
        for revision, ahead in contents_ahead(self.store, todo, refs):
            chunks = refs.get(revision.sha256)
            if chunks is None and revision.size:
                continue  # purged since: a later change in the log covers it
            try:
                data = ahead if ahead is not None else self.store.read_content(chunks or [])
            except StorageUnavailable:
                raise
            except MemhubError as exc:  # damaged bytes: reported, and tried again later
                log.error("cannot index %s rev %s: %s", revision.path, revision.rev, exc)
                self._problem(revision, "unreadable", exc.code, exc.detail)
                continue
            text = decode_text(data, revision.content_type)
            if text is not None:
                yield revision, text

    def _problem(self, revision: Revision, kind: str, code: str, detail: str) -> None:
        self.problems[revision.path] = {
            "path": revision.path,
            "rev": revision.rev,
            "kind": kind,
            "error_code": code,
            "detail": detail[:500],
        }

    def _commit(self) -> None:
        writer = self._writer_handle()
        writer.commit()
        self.index.reload()
        self._save_state()

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    self._writer.wait_merging_threads()
                self._writer = None

    # -- searching -------------------------------------------------------------------

    def search(
        self, query: str, *, k: int = 10, offset: int = 0, filters: SearchFilters | None = None
    ) -> tuple[list[Hit], set[str], int]:
        """Top hits for ``query`` (after ``offset``), the query's terms, the match count."""
        filters = filters or SearchFilters()
        terms = analyze(query)
        searcher = self.index.searcher()
        text_query = queries.text_query(searcher, terms, self.ranking)
        musts = queries.filter_queries(filters)
        if text_query is None and not musts:
            return [], set(terms), 0
        clauses = [(tantivy.Occur.Must, q) for q in musts]
        if text_query is not None:
            clauses.append((tantivy.Occur.Must, text_query))
        final = tantivy.Query.boolean_query(clauses)
        weighted = text_query is not None and searcher.doc_freq("weighted", 1) > 0
        result = (
            searcher.search(final, limit=k, offset=offset, count=True, weight_by_field="weight")
            if weighted
            else searcher.search(final, limit=k, offset=offset, count=True)
        )
        hits = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            hits.append(Hit.from_record(doc["path"][0], json.loads(doc["block"][0]), float(score)))
        return hits, set(terms), int(getattr(result, "count", 0) or 0)

    def num_docs(self) -> int:
        return int(self.index.searcher().num_docs)


RECHECK_SECONDS = 0.25  # how stale a search may be about writes through other nodes


class SearchIndex:
    """Every workspace's index under one directory; opened on first use.

    Knowing the head rev of a workspace costs a database query. Writes through this
    process announce their rev (a store listener), so a search asks the database only
    when ``recheck_seconds`` have passed since it last did: writes here are seen at
    once, writes through other nodes within that interval."""

    def __init__(
        self,
        root: Path,
        store: Store,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.store = store
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._indexes: dict[str, WorkspaceIndex] = {}
        self._lock = threading.Lock()
        # workspace -> (highest rev known, clock() when the database was last asked)
        self._heads: dict[str, tuple[int, float]] = {}
        store.add_listener(self._committed)

    def _committed(self, workspace: str, rev: int) -> None:
        with self._lock:
            known, asked = self._heads.get(workspace, (0, -math.inf))
            self._heads[workspace] = (max(known, rev), asked)

    def head(self, workspace: str) -> int:
        """The workspace's head rev: announced by this process's writes, and asked of
        the database at most every ``recheck_seconds``."""
        now = self.clock()
        known, asked = self._heads.get(workspace, (0, -math.inf))
        if now - asked < self.recheck_seconds:
            return known
        head = self.store.head_rev(workspace)
        with self._lock:
            known, _ = self._heads.get(workspace, (0, -math.inf))
            self._heads[workspace] = (max(known, head), now)
        return max(known, head)

    def workspace(self, name: str) -> WorkspaceIndex:
        index = self._indexes.get(name)
        if index is not None:
            return index
        with self._lock:
            index = self._indexes.get(name)
            if index is None:
                self.store.workspace_id(name)  # WorkspaceNotFound before touching the disk
                index = WorkspaceIndex(self.root / _safe_dir(name), name, self.store)
                self._indexes[name] = index
        return index

    def current(self, name: str) -> WorkspaceIndex:
        """The workspace's index, caught up with the change log."""
        index = self.workspace(name)
        index.catch_up(self.head(name))
        return index

    def rebuild(self, name: str) -> int:
        return self.workspace(name).rebuild()

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()


def _pages(heads: Iterable[Revision]) -> Iterator[list[Revision]]:
    it = iter(heads)
    while page := list(itertools.islice(it, PAGE)):
        yield page


def _safe_dir(name: str) -> str:
    # workspace names are [A-Za-z0-9-_.:@] (validate_name); ':' is not portable on disk
    return name.replace(":", "%3A")
