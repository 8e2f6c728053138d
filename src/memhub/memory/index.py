"""The search index: tantivy, per workspace, derived from the change log.

An index is a cache. It records the last rev it applied (``state.json``
beside it) and, before it answers, applies every change after that rev
(:meth:`WorkspaceIndex.catch_up`), so a search right after an acknowledged
write sees it. A missing, damaged or outdated index is rebuilt from the
heads of the store. Every server process keeps its own index directory
(``<index dir>/<node id>/<workspace>``), so nodes over one PostgreSQL never
share a tantivy writer.

Documents are blocks (:mod:`memhub.memory.blocks`). Text is analysed in
Python by :mod:`memhub.memory.analyzer` and handed to tantivy pre-tokenised,
so documents and queries go through one analyzer for every language.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tantivy

from memhub.errors import FileNotFound, MemhubError, StorageUnavailable
from memhub.memory.analyzer import analyze, detect_language, tokens
from memhub.memory.blocks import Block, classify
from memhub.memory.blocks.offload import split_file_offloaded
from memhub.store import Revision, Store

log = logging.getLogger("memhub.index")

INDEX_VERSION = 3  # 2: the "weighted" marker field; 3: "seq" in the block record
MAX_INDEXED_BYTES = 4 * 1024 * 1024  # larger files are kept, not indexed
WRITER_HEAP = 64 * 1024 * 1024
REBUILD_AFTER = 20_000  # changes behind: rebuild from the heads instead of replaying
RETRY_SECONDS = 10.0  # how often files whose bytes could not be read are tried again
STRENGTH_WEIGHT = {"High": 0.828, "Medium": 0.297}  # log2(2 + w): x1.5, x1.2
TEXT_FIELDS = ("text", "context", "heading")


@dataclass(frozen=True, slots=True)
class Ranking:
    """How a search weighs a block's fields. Each query term scores the best of the
    text fields (a disjunction max with a tie breaker); a term that names a speaker
    scores the speaker field instead. ``neighbours`` turns before and after a turn
    are indexed as its context (so it is fixed when the index is built).

    The defaults are chosen by leave-one-conversation-out on the LoCoMo dev files
    (``bench/locomo.py --loo``): every figure there is reported on a file the
    weights were not chosen on."""

    text: float = 1.0
    context: float = 0.7
    heading: float = 0.5
    tie_breaker: float = 0.3
    speaker_boost: float = 2.0
    neighbours: int = 2

    def field_boosts(self) -> tuple[tuple[str, float], ...]:
        return (("text", self.text), ("context", self.context), ("heading", self.heading))


RANKING = Ranking()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    builder.add_text_field("prefixes", stored=False, tokenizer_name="raw")
    builder.add_text_field("file_kind", stored=False, tokenizer_name="raw")
    for name in (*TEXT_FIELDS, "speaker"):
        builder.add_text_field(name, stored=False, tokenizer_name="raw", index_option="position")
    builder.add_integer_field("always_load", indexed=True, fast=True)
    builder.add_integer_field("date", indexed=True, fast=True)
    builder.add_float_field("weight", fast=True)
    # 1 on blocks with a weight: a search scales scores by weight only when some block
    # has one (scaling made tantivy's part of a search ~40% slower at 100k blocks)
    builder.add_integer_field("weighted", indexed=True)
    builder.add_text_field("block", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


SCHEMA = _schema()


@dataclass(frozen=True, slots=True)
class SearchFilters:
    path_prefix: str | None = None
    file_kinds: tuple[str, ...] = ()
    since: float | None = None  # block date (the file's revision time or the block's own)
    until: float | None = None
    always_load_only: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    heading: list[str]
    line_start: int
    line_end: int
    rev: int
    score: float
    text: str
    file_kind: str
    always_load: bool
    strength: str | None
    turn_id: str | None
    speaker: str | None
    date: float
    seq: int = 0  # the block's place in its file

    @classmethod
    def from_record(cls, path: str, data: dict[str, Any], score: float) -> Hit:
        """A hit from the JSON record the index stores with a block."""
        return cls(
            path=path,
            heading=data["heading"],
            line_start=data["line_start"],
            line_end=data["line_end"],
            rev=data["rev"],
            score=score,
            text=data["text"],
            file_kind=data["file_kind"],
            always_load=data["always_load"],
            strength=data["strength"],
            turn_id=data["turn_id"],
            speaker=data["speaker"],
            date=data["date"],
            seq=int(data.get("seq", 0)),
        )

    def to_dict(self, snippet: str) -> dict[str, Any]:
        return {
            "path": self.path,
            "heading": self.heading,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "rev": self.rev,
            "score": round(self.score, 4),
            "snippet": snippet,
            "file_kind": self.file_kind,
            "always_load": self.always_load,
            "strength": self.strength,
            "turn_id": self.turn_id,
            "speaker": self.speaker,
            "date": self.date,
        }


def _pretokenized(text: str, lang: str | None) -> tantivy.PreTokenizedString:
    toks = tokens(text, lang)
    return tantivy.PreTokenizedString(
        text, [tantivy.Token(t.term, t.position, t.start, t.end) for t in toks]
    )


def _prefixes(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i]) + "/"
    yield path


def block_documents(
    blocks: list[Block], revision: Revision, neighbours: int = RANKING.neighbours
) -> Iterator[tantivy.Document]:
    """The tantivy documents of one file's blocks."""
    lang = detect_language(" ".join(b.text[:400] for b in blocks[:20]))
    for i, block in enumerate(blocks):
        doc = tantivy.Document()
        doc.add_text("path", block.path)
        for prefix in _prefixes(block.path):
            doc.add_text("prefixes", prefix)
        doc.add_text("file_kind", block.file_kind)
        when = block.meta.get("when")
        text = f"{block.text} ({when})" if when else block.text
        doc.add_pre_tokenized_text("text", _pretokenized(text, lang))
        if block.speaker:
            doc.add_pre_tokenized_text("speaker", _pretokenized(block.speaker, lang))
        elif block.heading:
            doc.add_pre_tokenized_text("heading", _pretokenized(" / ".join(block.heading), lang))
        context = _context_of(blocks, i, neighbours)
        if context:
            doc.add_pre_tokenized_text("context", _pretokenized(context, lang))
        doc.add_integer("always_load", 1 if block.always_load else 0)
        date = block.timestamp if block.timestamp is not None else revision.created_at
        doc.add_integer("date", int(date))
        weight = STRENGTH_WEIGHT.get(block.strength or "", 0.0)
        doc.add_float("weight", weight)
        if weight:
            doc.add_integer("weighted", 1)
        doc.add_text("block", json.dumps(block_record(block, revision, i), ensure_ascii=False))
        yield doc


def block_record(block: Block, revision: Revision, seq: int) -> dict[str, Any]:
    """What the index stores with a block (a search's :class:`Hit` is made from it)."""
    date = block.timestamp if block.timestamp is not None else revision.created_at
    return {
        "heading": list(block.heading),
        "line_start": block.line_start,
        "line_end": block.line_end,
        "rev": revision.rev,
        "seq": seq,
        "text": block.text,
        "file_kind": block.file_kind,
        "always_load": block.always_load,
        "strength": block.strength,
        "turn_id": block.turn_id,
        "speaker": block.speaker,
        "date": date,
    }


def _context_of(blocks: list[Block], i: int, neighbours: int) -> str:
    if blocks[i].kind != "turn" or neighbours <= 0:
        return ""
    lo, hi = max(0, i - neighbours), min(len(blocks), i + neighbours + 1)
    return "\n".join(blocks[j].text for j in range(lo, hi) if j != i and blocks[j].kind == "turn")


def decode_text(data: bytes, content_type: str) -> str | None:
    """The text of a file worth indexing, or None (binary, or too large)."""
    if len(data) > MAX_INDEXED_BYTES or b"\x00" in data[:8192]:
        return None
    if content_type.startswith(("image/", "audio/", "video/", "application/x-sqlite")):
        return None
    return data.decode("utf-8", errors="replace")


class BlockFollower(Protocol):
    """What follows the index's blocks (the block vectors): told every file the index
    drops or (re)indexes, and given every block again when it may have missed some."""

    def reset(self, blocks: Iterable[tuple[int, Hit]]) -> None: ...
    def removed(self, path: str) -> None: ...
    def added(self, path: str, blocks: list[tuple[int, Hit]]) -> None: ...


class WorkspaceIndex:
    """One workspace's index directory, writer and catch-up state."""

    def __init__(
        self, root: Path, workspace: str, store: Store, ranking: Ranking = RANKING
    ) -> None:
        self.root = root
        self.workspace = workspace
        self.store = store
        self.ranking = ranking
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
            with self._rolling_back():
                applied = 0
                while head > self.applied_rev:
                    page = self.store.changes(self.workspace, self.applied_rev, limit=1000)
                    latest = {r.path: r for r in page.changes}
                    self._apply(latest.values())
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
        with self._rolling_back():
            head = self.store.head_rev(self.workspace)
            writer = self._writer_handle()
            writer.delete_all_documents()
            self.problems = {}
            if self.follower is not None:
                self.follower.reset([])
            count = 0
            after: str | None = None
            while True:
                heads = self.store.list_files(self.workspace, after=after, limit=1000)
                if not heads:
                    break
                self._apply(heads, fresh=True)
                count += len(heads)
                after = heads[-1].path
            self.applied_rev = head
            self._commit()
        # writes that raced the listing are replayed (idempotently) by the next catch-up
        return count

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

    def _apply(self, heads: Iterable[Revision], *, fresh: bool = False) -> None:
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
        # the chunks of the whole page in one query, not a read plan per file
        refs = self.store.chunk_refs(self.workspace, (r.sha256 for r in todo)) if todo else {}
        for revision in todo:
            chunks = refs.get(revision.sha256)
            if chunks is None and revision.size:
                continue  # purged since: a later change in the log covers it
            try:
                data = self.store.read_content(chunks or [])
            except StorageUnavailable:
                raise
            except MemhubError as exc:  # damaged bytes: reported, and tried again later
                log.error("cannot index %s rev %s: %s", revision.path, revision.rev, exc)
                self._problem(revision, "unreadable", exc.code, exc.detail)
                continue
            text = decode_text(data, revision.content_type)
            if text is None:
                continue
            blocks, error = split_file_offloaded(revision.path, text, workspace=self.workspace)
            if error is not None:
                self._problem(revision, "parse", "PARSED_AS_TEXT", error)
            for doc in block_documents(blocks, revision, self.ranking.neighbours):
                writer.add_document(doc)
            if self.follower is not None:
                self.follower.added(
                    revision.path,
                    [
                        (seq, Hit.from_record(revision.path, block_record(b, revision, seq), 0.0))
                        for seq, b in enumerate(blocks)
                    ],
                )

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
        text_query = _text_query(searcher, terms, self.ranking)
        musts = _filter_queries(filters)
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


def _text_query(
    searcher: tantivy.Searcher, terms: list[str], ranking: Ranking
) -> tantivy.Query | None:
    """Each term: a name of a speaker → the speaker field; otherwise the best of the
    text fields (disjunction max). Repeated terms weigh more."""
    if not terms:
        return None
    weights: dict[str, float] = {}
    for term in terms:
        weights[term] = weights.get(term, 0.0) + 1.0
    clauses = []
    for term, weight in weights.items():
        if searcher.doc_freq("speaker", term) > 0:
            query = tantivy.Query.term_query(SCHEMA, "speaker", term, index_option="freq")
            clauses.append(
                (
                    tantivy.Occur.Should,
                    tantivy.Query.boost_query(query, ranking.speaker_boost * weight),
                )
            )
            continue
        per_field = [
            tantivy.Query.boost_query(
                tantivy.Query.term_query(SCHEMA, field, term, index_option="freq"), boost * weight
            )
            for field, boost in ranking.field_boosts()
            if boost > 0
        ]
        clauses.append(
            (
                tantivy.Occur.Should,
                tantivy.Query.disjunction_max_query(per_field, ranking.tie_breaker),
            )
        )
    return tantivy.Query.boolean_query(clauses)


def _filter_queries(filters: SearchFilters) -> list[tantivy.Query]:
    out: list[tantivy.Query] = []
    if filters.path_prefix:
        out.append(_prefix_query(filters.path_prefix))
    if filters.file_kinds:
        out.append(
            tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Should, tantivy.Query.term_query(SCHEMA, "file_kind", kind))
                    for kind in filters.file_kinds
                ]
            )
        )
    if filters.since is not None or filters.until is not None:
        out.append(
            tantivy.Query.range_query(
                SCHEMA,
                "date",
                tantivy.FieldType.Integer,
                int(filters.since) if filters.since is not None else None,
                int(filters.until) if filters.until is not None else None,
            )
        )
    if filters.always_load_only:
        out.append(tantivy.Query.term_query(SCHEMA, "always_load", 1))
    return out


def _prefix_query(prefix: str) -> tantivy.Query:
    """Paths starting with ``prefix`` (as the store's listings): a folder (``notes/``) is
    a term of the prefixes field; any other string, a regex over the path terms."""
    if prefix.endswith("/"):
        return tantivy.Query.term_query(SCHEMA, "prefixes", prefix)
    escaped = "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):X}}}" for ch in prefix)
    return tantivy.Query.regex_query(SCHEMA, "path", f"{escaped}.*")


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


def _safe_dir(name: str) -> str:
    # workspace names are [A-Za-z0-9-_.:@] (validate_name); ':' is not portable on disk
    return name.replace(":", "%3A")
