"""Context assembly: the memory an agent should see for a conversation.

Depths (DiffMem's, over memhub's store):

- ``basic``: the mandatory rules of instruction files and every other
  always-load block, the user entity (``<workspace>.md``), the always-load
  blocks of the top-ranked entities, and the recent timeline;
- ``wide``: basic plus search hits for the conversation;
- ``deep``: wide plus the whole files of the relevant entities;
- ``temporal``: deep plus the recent revision diffs of those files.

Items are added in that priority order and each is taken whole or not at all,
so the result never exceeds ``max_tokens`` (estimated conservatively, see
:func:`estimate_tokens`).

Entity ranking. DiffMem ranked entities by activity alone,
``0.7·log10(commits) + 0.3·exp(−days/30)``, so the same busy entities came
first whatever the conversation was about. memhub keeps that activity prior
(with ``commits + 1`` so that an entity edited once is not scored zero) but
blends it with the entity's relevance to the conversation — its best search
score among the conversation's hits, normalised — ``0.6·relevance +
0.4·activity``: an entity the user is talking about outranks a busy one they
are not.
"""

from __future__ import annotations

import difflib
import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memhub.core.protocol import CONTEXT_DEPTHS
from memhub.errors import (
    BadRequest,
    BlobMissing,
    FileNotFound,
    RevisionNotFound,
    StorageCorrupt,
)
from memhub.memory.block_vectors import BlockSearch
from memhub.memory.blocks import Block, classify
from memhub.memory.blocks.offload import split_file_offloaded
from memhub.memory.documents import Hit, SearchFilters, decode_text
from memhub.memory.index import SearchIndex
from memhub.store import Store

Depth = Literal["basic", "wide", "deep", "temporal"]
DEPTHS: tuple[str, ...] = CONTEXT_DEPTHS
ENTITY_KINDS = ("entity", "user")
MAX_ENTITIES = 5
RECENT_TIMELINE_BLOCKS = 6
CONVERSATION_CHARS = 2000
ACTIVITY_CACHE = 256  # workspaces whose entity activity is kept (one head rev each)


def entity_hints(workspace: str) -> tuple[str, ...]:
    """What every entity path contains (lower case): a prefilter for :func:`classify`."""
    return ("memories/", f"{workspace.lower()}.md")


def estimate_tokens(text: str) -> int:
    """A conservative token count: one token per 4 UTF-8 bytes (Cyrillic and CJK
    count 2–3 bytes a character, which over- rather than under-estimates)."""
    return max(1, (len(text.encode("utf-8")) + 3) // 4)


@dataclass(slots=True)
class Source:
    section: str
    path: str
    heading: list[str]
    rev: int
    tokens: int
    line_start: int | None = None
    line_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Context:
    workspace: str
    depth: str
    max_tokens: int
    parts: dict[str, list[str]] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    used: int = 0
    skipped: int = 0
    seen: set[tuple[str, int, int]] = field(default_factory=set)
    problems: list[dict[str, Any]] = field(default_factory=list)  # files left out: damaged
    warning: str | None = None  # the embedding provider failed: BM25 alone

    def covers(self, path: str, rev: int) -> bool:
        """Whether the whole file is in already (its blocks need not be)."""
        return (path, 0, rev) in self.seen

    def add(self, section: str, source: Source, text: str, key: tuple[str, int, int]) -> bool:
        if key in self.seen or self.covers(key[0], key[2]):
            return False
        cost = estimate_tokens(text) + 2  # the item and the blank line after it
        if section not in self.parts:  # the first item of a section brings its heading
            cost += estimate_tokens(f"## {section}\n\n")
        if self.used + cost > self.max_tokens:
            self.skipped += 1
            return False
        self.seen.add(key)
        self.used += cost
        source.tokens = cost
        self.parts.setdefault(section, []).append(text)
        self.sources.append(source)
        return True

    def markdown(self) -> str:
        return "\n\n".join(
            f"## {title}\n\n" + "\n\n".join(items) for title, items in self.parts.items() if items
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "depth": self.depth,
            "max_tokens": self.max_tokens,
            "tokens": self.used,
            "markdown": self.markdown(),
            "sources": [s.to_dict() for s in self.sources],
            "skipped": self.skipped,
            "problems": self.problems,
        }


def conversation_text(conversation: list[dict[str, Any]]) -> str:
    """The query a conversation stands for: its latest messages, the last one first."""
    texts = [str(m.get("content") or "") for m in conversation if isinstance(m, dict)]
    user = [t for t in texts if t.strip()]
    out = ""
    for text in reversed(user):
        if len(out) >= CONVERSATION_CHARS:
            break
        out = f"{out}\n{text}" if out else text
    return out[: CONVERSATION_CHARS * 2]


class ContextAssembler:
    def __init__(self, store: Store, index: SearchIndex, blocks: BlockSearch) -> None:
        self.store = store
        self.index = index
        self.blocks = blocks
        self._lock = threading.Lock()
        # workspace -> (head rev, entity activity rows), least recently written first
        self._activity: dict[str, tuple[int, list[tuple[str, int, float]]]] = {}

    def assemble(
        self,
        workspace: str,
        conversation: list[dict[str, Any]],
        *,
        depth: str = "basic",
        max_tokens: int = 8000,
    ) -> Context:
        if depth not in DEPTHS:
            raise BadRequest(f"depth must be one of {', '.join(DEPTHS)}", context={"depth": depth})
        if max_tokens < 1:
            raise BadRequest("max_tokens must be positive")
        index = self.index.current(workspace)
        ctx = Context(workspace, depth, max_tokens)
        query = conversation_text(conversation)
        hits: list[Hit] = []
        if query.strip():
            ranked = self.blocks.search(index, query, k=30)
            hits, ctx.warning = ranked.hits, ranked.warning

        always, _, _ = index.search("", k=500, filters=SearchFilters(always_load_only=True))
        rules = [h for h in always if h.file_kind == "instructions"]
        for hit in rules:
            self._add_hit(ctx, "Rules", hit)
        self._add_user_entity(ctx, workspace)
        entities = self.rank_entities(workspace, hits)
        top = {path for path, _ in entities[:MAX_ENTITIES]}
        for hit in always:
            if hit.file_kind != "instructions" and (
                hit.path in top or hit.file_kind not in ENTITY_KINDS
            ):
                self._add_hit(ctx, "Always load", hit)
        self._add_timeline(ctx, workspace)
        if depth in ("deep", "temporal"):
            for path, _score in entities[:MAX_ENTITIES]:
                self._add_file(ctx, workspace, path)
        if depth == "temporal":
            for path, _score in entities[:MAX_ENTITIES]:
                self._add_diff(ctx, workspace, path)
        if depth != "basic":
            for hit in hits:
                self._add_hit(ctx, "Relevant memories", hit)
        return ctx

    # -- entity ranking ------------------------------------------------------

    def rank_entities(self, workspace: str, hits: list[Hit]) -> list[tuple[str, float]]:
        now = self.store.clock()
        activity: dict[str, float] = {}
        for path, count, last in self.entity_activity(workspace):
            days = max(0.0, (now - float(last)) / 86400)
            activity[path] = 0.7 * math.log10(count + 1) + 0.3 * math.exp(-days / 30)
        if not activity:
            return []
        relevance: dict[str, float] = {}
        for hit in hits:
            if hit.path in activity:
                relevance[hit.path] = max(relevance.get(hit.path, 0.0), hit.score)
        top_rel = max(relevance.values(), default=0.0) or 1.0
        top_act = max(activity.values()) or 1.0
        ranked = [
            (path, 0.6 * relevance.get(path, 0.0) / top_rel + 0.4 * act / top_act)
            for path, act in activity.items()
        ]
        ranked.sort(key=lambda item: (-item[1], item[0]))
        return ranked

    def entity_activity(self, workspace: str) -> list[tuple[str, int, float]]:
        """(path, revisions, last change) of the live entity files, read once per head
        rev of the workspace: the live paths that can be entities first, then the
        activity of those paths only (by the path index, never every revision)."""
        head = self.store.head_rev(workspace)  # before reading: a later write only re-reads
        with self._lock:
            cached = self._activity.get(workspace)
            if cached is not None and cached[0] == head:
                return cached[1]
        candidates = self.store.live_paths(workspace, containing=entity_hints(workspace))
        entities = [p for p in candidates if classify(p, workspace) in ENTITY_KINDS]
        rows = self.store.path_activity(workspace, entities) if entities else []
        with self._lock:
            self._activity.pop(workspace, None)
            self._activity[workspace] = (head, rows)
            while len(self._activity) > ACTIVITY_CACHE:
                self._activity.pop(next(iter(self._activity)))
        return rows

    # -- pieces --------------------------------------------------------------------

    def _add_hit(self, ctx: Context, section: str, hit: Hit) -> None:
        title = " › ".join(hit.heading) if hit.heading else hit.path
        text = f"### {hit.path} — {title}\n\n{hit.text}"
        source = Source(section, hit.path, hit.heading, hit.rev, 0, hit.line_start, hit.line_end)
        ctx.add(section, source, text, (hit.path, hit.line_start, hit.rev))

    def _blocks_of(
        self, ctx: Context, workspace: str, path: str
    ) -> tuple[int, str, list[Block]] | None:
        try:
            revision, data = self.store.read_bytes(workspace, path)
        except (FileNotFound, RevisionNotFound):  # absent or deleted: not part of it
            return None
        except (BlobMissing, StorageCorrupt) as exc:  # damaged: left out, and said so
            ctx.problems.append({"path": path, "error_code": exc.code, "detail": exc.detail})
            return None
        # StorageUnavailable goes up: a context without its files is not an answer (503)
        text = decode_text(data, revision.content_type)
        if text is None:
            return None
        return revision.rev, text, split_file_offloaded(path, text, workspace=workspace)[0]

    def _add_user_entity(self, ctx: Context, workspace: str) -> None:
        for path in (f"{workspace}.md", f"memories/people/{workspace}.md"):
            if self._add_file(ctx, workspace, path, section="User"):
                return

    def _add_file(self, ctx: Context, workspace: str, path: str, section: str = "Files") -> bool:
        loaded = self._blocks_of(ctx, workspace, path)
        if loaded is None:
            return False
        rev, text, blocks = loaded
        whole = f"### {path}\n\n{text.strip()}"
        source = Source(section, path, [], rev, 0, 1, text.count("\n") + 1)
        if ctx.add(section, source, whole, (path, 0, rev)):
            return True
        # too big whole: its always-load blocks, then the rest in order, each if it fits
        for block in sorted(blocks, key=lambda b: not b.always_load):
            self._add_block(ctx, section, block, rev)
        return True

    def _add_block(self, ctx: Context, section: str, block: Block, rev: int) -> None:
        title = block.title or block.path
        text = f"### {block.path} — {title}\n\n{block.text}"
        source = Source(
            section, block.path, list(block.heading), rev, 0, block.line_start, block.line_end
        )
        ctx.add(section, source, text, (block.path, block.line_start, rev))

    def _add_timeline(self, ctx: Context, workspace: str) -> None:
        heads = self.store.list_files(workspace, prefix="timeline/", limit=1000)
        months = sorted((h for h in heads if classify(h.path) == "timeline"), key=lambda h: h.path)
        added = 0
        for head in reversed(months[-2:]):
            loaded = self._blocks_of(ctx, workspace, head.path)
            if loaded is None:
                continue
            rev, _text, blocks = loaded
            for block in reversed(blocks):
                if added >= RECENT_TIMELINE_BLOCKS:
                    return
                self._add_block(ctx, "Recent timeline", block, rev)
                added += 1

    def _add_diff(self, ctx: Context, workspace: str, path: str) -> None:
        history = self.store.history(workspace, path, limit=2)
        if len(history) < 2 or history[0].deleted or history[1].deleted:
            return
        new, old = history
        try:
            _r1, after = self.store.read_bytes(workspace, path, new.rev)
            _r2, before = self.store.read_bytes(workspace, path, old.rev)
        except (FileNotFound, RevisionNotFound):  # a purged revision just has no diff
            return
        except (BlobMissing, StorageCorrupt) as exc:
            ctx.problems.append({"path": path, "error_code": exc.code, "detail": exc.detail})
            return
        diff = "\n".join(
            difflib.unified_diff(
                before.decode("utf-8", "replace").splitlines(),
                after.decode("utf-8", "replace").splitlines(),
                f"{path}@{old.rev}",
                f"{path}@{new.rev}",
                lineterm="",
                n=1,
            )
        )
        if diff:
            text = f"### {path}: rev {old.rev} → {new.rev}\n\n```diff\n{diff}\n```"
            source = Source("Recent changes", path, [], new.rev, 0)
            ctx.add("Recent changes", source, text, (f"diff:{path}", 0, new.rev))
