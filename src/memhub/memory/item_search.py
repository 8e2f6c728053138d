"""Search over memory items: BM25 from the workspace's index, fused with vector ranks
when an embedding provider is configured (reciprocal rank fusion).

``relativity`` is the fused (or BM25) score divided by the best one of the answer, so
the best hit is 1.0; items under the caller's ``relativity`` are dropped. When the
provider fails, the answer is BM25's and carries a warning (the routes send it as
``X-Memhub-Warning``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from memhub.core.paths import validate_name
from memhub.errors import BadRequest
from memhub.memory.documents import SearchFilters
from memhub.memory.embeddings import EmbeddingProvider, EmbeddingsUnavailable, VectorIndex, fuse
from memhub.memory.item_catalog import Catalog, Catalogs
from memhub.memory.item_file import ITEMS_ROOT, Item
from memhub.memory.item_filter import Predicate
from memhub.memory.service import MAX_K, Memory
from memhub.store import Store

log = logging.getLogger("memhub.items")

CANDIDATES = 50  # per ranking, before fusion


@dataclass(frozen=True, slots=True)
class Found:
    item: Item
    score: float
    relativity: float


@dataclass(slots=True)
class Hits:
    found: list[Found] = field(default_factory=list)
    mode: str = "bm25"  # bm25 | hybrid
    warning: str | None = None


class ItemSearch:
    def __init__(
        self,
        store: Store,
        memory: Memory,
        catalogs: Catalogs,
        root: Path,
        embeddings: EmbeddingProvider | None = None,
    ) -> None:
        self.store = store
        self.memory = memory
        self.catalogs = catalogs
        self.root = root
        self.embeddings = embeddings
        self._vectors: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()

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
        if not 1 <= k <= MAX_K:
            raise BadRequest(f"top_k must be between 1 and {MAX_K}")
        if len(query) > 10_000:
            raise BadRequest("the query is limited to 10,000 characters")
        cube = validate_name(cube, "cube") if cube else None
        prefix = f"{ITEMS_ROOT}{cube}/" if cube else ITEMS_ROOT
        # one read of the head for both derived layers; no snippets (items are short)
        head = self.store.head_rev(workspace)
        catalog = self.catalogs.get(workspace)
        index = self.memory.index.workspace(workspace)
        index.catch_up(head)
        catalog.catch_up(head)
        wanted = MAX_K if where is not None else (max(k, CANDIDATES) if self.embeddings else k)
        filters = SearchFilters(path_prefix=prefix, file_kinds=("item",))
        hits, _terms, _total = index.search(query, k=wanted, filters=filters)

        def admitted(item: Item | None, path: str | None = None) -> bool:
            if item is None or (path is not None and item.path != path):
                return False
            if cube is not None and item.cube_id != cube:
                return False
            return where is None or where(item.fields())

        bm25: list[tuple[str, float]] = []
        for hit in hits:
            item = catalog.items.get(hit.path.rsplit("/", 1)[-1][:-3])
            if admitted(item, hit.path):
                assert item is not None
                bm25.append((item.id, hit.score))
        result = Hits()
        ranked = bm25
        if self.embeddings is not None and query.strip():
            try:
                allowed = None
                if where is not None or cube is not None:
                    with catalog.lock:
                        allowed = {i for i, item in catalog.items.items() if admitted(item)}
                nearest = self._nearest(workspace, catalog, query, wanted, allowed)
            except EmbeddingsUnavailable as exc:
                log.warning("embeddings unavailable, BM25 only: %s", exc)
                result.warning = f"embeddings unavailable, BM25 only: {exc}"[:300]
            else:
                ranked = fuse([[i for i, _ in bm25], nearest])
                result.mode = "hybrid"
        best = max((score for _, score in ranked), default=0.0)
        for item_id, score in ranked:
            rel = round(score / best, 4) if best > 0 else 0.0
            found = catalog.items.get(item_id)  # None: deleted by another request meanwhile
            if found is None or (relativity and rel < relativity):
                continue
            result.found.append(Found(found, score, rel))
            if len(result.found) == k:
                break
        return result

    def _nearest(
        self, workspace: str, catalog: Catalog, query: str, k: int, allowed: set[str] | None
    ) -> list[str]:
        assert self.embeddings is not None
        vectors = self._index(workspace)
        with catalog.lock:
            live = {i: item.sha256 for i, item in catalog.items.items()}
            texts = {i: item.memory for i, item in catalog.items.items()}
        missing = vectors.missing(live)
        if missing:  # the vectors follow the catalog, like the text index follows the log
            made = self.embeddings.embed([texts[i] for i in missing])
            vectors.update(live, missing, made)
        vectors.forget_except(set(live))
        [query_vector] = self.embeddings.embed([query])
        return vectors.nearest(query_vector, k, allowed)

    def _index(self, workspace: str) -> VectorIndex:
        with self._lock:
            index = self._vectors.get(workspace)
            if index is None:
                name = workspace.replace(":", "%3A")
                index = VectorIndex(self.root / f"{name}.vectors.npz")
                self._vectors[workspace] = index
            return index

    def close(self) -> None:
        for index in self._vectors.values():
            try:
                index.save()
            except OSError as exc:  # derived: re-made on the next search
                log.warning("could not save the item vectors: %s", exc)
        if self.embeddings is not None:
            self.embeddings.close()
