"""Semantic search over file blocks: the search index's blocks embedded, fused with BM25.

Only when an embedding provider is configured (:mod:`memhub.memory.embeddings`: the
same client, vector index and reciprocal rank fusion the items use). The vectors are
derived like the text index they follow: per workspace, keyed by path and block seq
and valid for one rev of the file, kept in memory and saved as ``vectors.npz`` in the
workspace's index directory; losing them costs re-embedding.

The index tells its :class:`BlockVectors` every file it drops or indexes as it
follows the change log (:meth:`~memhub.memory.index.WorkspaceIndex.follow`); a
search embeds the blocks that have no vector yet (in the provider's batches), then
fuses the BM25 ranking with the nearest blocks. A provider that fails leaves the
answer to BM25, with a warning the routes send as ``X-Memhub-Warning``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from memhub.memory.documents import Hit, SearchFilters
from memhub.memory.embeddings import EmbeddingProvider, EmbeddingsUnavailable, VectorIndex, fuse
from memhub.memory.index import WorkspaceIndex

log = logging.getLogger("memhub.embeddings")

CANDIDATES = 50  # per ranking, before fusion (at least offset + k)
EMBED_STEP = 512  # blocks embedded between two saves of progress into the vector index


def _key(path: str, seq: int) -> str:
    return f"{path}\n{seq}"


def admits(filters: SearchFilters | None, hit: Hit) -> bool:
    """Whether ``hit`` passes ``filters`` as the text index applies them."""
    if filters is None:
        return True
    if filters.path_prefix and not hit.path.startswith(filters.path_prefix):
        return False
    if filters.file_kinds and hit.file_kind not in filters.file_kinds:
        return False
    if filters.since is not None and int(hit.date) < int(filters.since):
        return False
    if filters.until is not None and int(hit.date) > int(filters.until):
        return False
    return not (filters.always_load_only and not hit.always_load)


def embedding_text(hit: Hit) -> str:
    """What is embedded of a block: its text (which starts with its heading line), and
    who said it for a conversation's turn."""
    return f"{hit.speaker}: {hit.text}" if hit.speaker else hit.text


class BlockVectors:
    """One workspace's blocks (followed from its index) and their vectors."""

    def __init__(self, path: Path) -> None:
        self.vectors = VectorIndex(path)
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # one search embeds; the others wait for it
        self.blocks: dict[str, Hit] = {}
        self._paths: dict[str, list[str]] = {}
        self._generation = 0  # moves with every change the index reports
        self._refreshed = -1  # the generation every block had a vector at

    # -- following the index (a BlockFollower) ------------------------------------

    def reset(self, blocks: Iterable[tuple[int, Hit]]) -> None:
        with self._lock:
            self.blocks.clear()
            self._paths.clear()
            for seq, hit in blocks:
                self._add(_key(hit.path, seq), hit)
            self._generation += 1

    def removed(self, path: str) -> None:
        with self._lock:
            for key in self._paths.pop(path, ()):
                self.blocks.pop(key, None)
            self._generation += 1

    def added(self, path: str, blocks: list[tuple[int, Hit]]) -> None:
        with self._lock:
            for key in self._paths.pop(path, ()):
                self.blocks.pop(key, None)
            for seq, hit in blocks:
                self._add(_key(path, seq), hit)
            self._generation += 1

    def _add(self, key: str, hit: Hit) -> None:
        self.blocks[key] = hit
        self._paths.setdefault(hit.path, []).append(key)

    # -- embedding and searching --------------------------------------------------

    def refresh(self, provider: EmbeddingProvider) -> int:
        """Embed every block without a vector for its rev; returns how many were."""
        with self._refreshing:
            return self._refresh(provider)

    def _refresh(self, provider: EmbeddingProvider) -> int:
        with self._lock:
            generation = self._generation
            if generation == self._refreshed:
                return 0
            wanted = {key: str(hit.rev) for key, hit in self.blocks.items()}
            texts = {key: embedding_text(hit) for key, hit in self.blocks.items()}
        missing = self.vectors.missing(wanted)
        for start in range(0, len(missing), EMBED_STEP):
            step = missing[start : start + EMBED_STEP]
            self.vectors.update(wanted, step, provider.embed([texts[k] for k in step]))
        self.vectors.forget_except(set(wanted))
        with self._lock:
            if self._generation == generation:
                self._refreshed = generation
        return len(missing)

    def nearest(self, query: list[float], k: int, filters: SearchFilters | None) -> list[Hit]:
        allowed = None
        if filters is not None and filters != SearchFilters():
            with self._lock:
                allowed = {key for key, hit in self.blocks.items() if admits(filters, hit)}
        found = []
        for key in self.vectors.nearest(query, k, allowed):
            hit = self.blocks.get(key)
            if hit is not None:  # None: dropped by a change since the refresh
                found.append(hit)
        return found


@dataclass(slots=True)
class Ranked:
    hits: list[Hit]
    terms: set[str]
    total: int
    mode: str = "bm25"  # bm25 | hybrid
    warning: str | None = None


class BlockSearch:
    """BM25 from a workspace's index, fused with its block vectors when a provider is set."""

    def __init__(self, embeddings: EmbeddingProvider | None = None) -> None:
        self.embeddings = embeddings
        self._vectors: dict[str, BlockVectors] = {}
        self._lock = threading.Lock()

    def search(
        self,
        index: WorkspaceIndex,
        query: str,
        *,
        k: int = 10,
        offset: int = 0,
        filters: SearchFilters | None = None,
    ) -> Ranked:
        if self.embeddings is None or not query.strip():
            hits, terms, total = index.search(query, k=k, offset=offset, filters=filters)
            return Ranked(hits, terms, total)
        wanted = max(offset + k, CANDIDATES)
        bm25, terms, total = index.search(query, k=wanted, filters=filters)
        try:
            vectors = self._follow(index)
            vectors.refresh(self.embeddings)
            [query_vector] = self.embeddings.embed([query])
            near = vectors.nearest(query_vector, wanted, filters)
        except EmbeddingsUnavailable as exc:
            log.warning("embeddings unavailable, BM25 only: %s", exc)
            warning = f"embeddings unavailable, BM25 only: {exc}"[:300]
            return Ranked(bm25[offset : offset + k], terms, total, warning=warning)
        by_key = {_key(h.path, h.seq): h for h in near}
        by_key.update({_key(h.path, h.seq): h for h in bm25})
        fused = fuse([[_key(h.path, h.seq) for h in bm25], [_key(h.path, h.seq) for h in near]])
        hits = [replace(by_key[key], score=score) for key, score in fused]
        return Ranked(hits[offset : offset + k], terms, max(total, len(hits)), mode="hybrid")

    def _follow(self, index: WorkspaceIndex) -> BlockVectors:
        with self._lock:
            vectors = self._vectors.get(index.workspace)
            if vectors is None:
                vectors = BlockVectors(index.root / "vectors.npz")
                index.follow(vectors)
                self._vectors[index.workspace] = vectors
            return vectors

    def close(self) -> None:
        for vectors in self._vectors.values():
            try:
                vectors.vectors.save()
            except OSError as exc:  # derived: re-made on the next search
                log.warning("could not save the block vectors: %s", exc)
