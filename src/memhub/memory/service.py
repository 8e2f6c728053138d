"""The memory layer's one entry point: search, context and index upkeep for a workspace."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from memhub.core.paths import normalize_prefix
from memhub.errors import BadRequest
from memhub.memory.analyzer import highlight
from memhub.memory.block_vectors import BlockSearch
from memhub.memory.context import Context, ContextAssembler
from memhub.memory.documents import SearchFilters
from memhub.memory.embeddings import EmbeddingProvider
from memhub.memory.index import RECHECK_SECONDS, SearchIndex
from memhub.store import Store

MAX_K = 200
SNIPPET_SOURCE = 16 * 1024  # a snippet is found in a block's first 16 KiB (bounded work)


class Memory:
    def __init__(
        self,
        store: Store,
        index_dir: Path,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        embeddings: EmbeddingProvider | None = None,
    ) -> None:
        self.store = store
        self.index = SearchIndex(index_dir, store, recheck_seconds=recheck_seconds, clock=clock)
        # BM25, fused with block vectors when an embedding provider is configured
        self.blocks = BlockSearch(embeddings)
        self.assembler = ContextAssembler(store, self.index, self.blocks)

    def search(
        self,
        workspace: str,
        query: str,
        *,
        k: int = 10,
        offset: int = 0,
        filters: SearchFilters | None = None,
    ) -> dict[str, Any]:
        if not 1 <= k <= MAX_K:
            raise BadRequest(f"k must be between 1 and {MAX_K}")
        if offset < 0:
            raise BadRequest("offset must not be negative")
        if len(query) > 10_000:
            raise BadRequest("the query is limited to 10,000 characters")
        if filters is not None and filters.path_prefix:
            filters = replace(filters, path_prefix=normalize_prefix(filters.path_prefix) or None)
        index = self.index.current(workspace)
        ranked = self.blocks.search(index, query, k=k, offset=offset, filters=filters)
        found: dict[str, Any] = {
            "query": query,
            "total": ranked.total,
            "offset": offset,
            "mode": ranked.mode,
            "results": [
                h.to_dict(highlight(h.text[:SNIPPET_SOURCE], ranked.terms)) for h in ranked.hits
            ],
        }
        if ranked.warning:
            found["warning"] = ranked.warning
        return found

    def context(
        self,
        workspace: str,
        conversation: list[dict[str, Any]],
        *,
        depth: str = "basic",
        max_tokens: int = 8000,
    ) -> Context:
        return self.assembler.assemble(workspace, conversation, depth=depth, max_tokens=max_tokens)

    def rebuild(self, workspace: str) -> dict[str, Any]:
        files = self.index.rebuild(workspace)
        index = self.index.workspace(workspace)
        return {
            "files": files,
            "blocks": index.num_docs(),
            "rev": index.applied_rev,
            "problems": sorted(index.problems.values(), key=lambda p: p["path"]),
        }

    def status(self, workspace: str) -> dict[str, Any]:
        """Blocks, the last applied rev, and the files the index could not take as they
        are (``unreadable``: damaged bytes, retried; ``parse``: indexed as plain text)."""
        index = self.index.current(workspace)
        return {
            "blocks": index.num_docs(),
            "rev": index.applied_rev,
            "problems": sorted(index.problems.values(), key=lambda p: p["path"]),
        }

    def close(self) -> None:
        self.blocks.close()
        self.index.close()
