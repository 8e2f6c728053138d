"""Optional semantic search: an OpenAI-compatible ``/v1/embeddings`` provider and a
derived vector index of memory items.

Configured by ``MEMHUB_EMBEDDINGS_URL`` (the API base, e.g.
``http://127.0.0.1:11434/v1`` for Ollama), ``MEMHUB_EMBEDDINGS_MODEL`` and
``MEMHUB_EMBEDDINGS_API_KEY``; without a URL nothing here runs and nothing is
downloaded. Requests are batched, retried with a short back-off and bounded by a
timeout; a provider that still fails raises :class:`EmbeddingsUnavailable`, and
the caller falls back to BM25 (and says so), never a 500.

The vectors are derived like every index: per workspace, keyed by item id and
the sha256 of the item's file (a changed item is embedded again), kept in memory
and saved under ``<index dir>/items/<workspace>.vectors.npz``; losing them costs
re-embedding.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from memhub.config import Settings

log = logging.getLogger("memhub.embeddings")

BATCH = 64
RETRIES = 2
RRF_K = 60  # reciprocal rank fusion: 1 / (RRF_K + rank)
MAX_TEXT_CHARS = 8000  # of one text sent to the provider


class EmbeddingsUnavailable(Exception):
    """The provider did not answer usefully (after retries)."""


class EmbeddingProvider:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            out += self._batch([t[:MAX_TEXT_CHARS] for t in texts[start : start + BATCH]])
        return out

    def _batch(self, texts: list[str]) -> list[list[float]]:
        problem = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(0.2 * 2 ** (attempt - 1))
            try:
                response = self._http.post(self.url, json={"model": self.model, "input": texts})
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise EmbeddingsUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
            return _vectors(response, len(texts))
        raise EmbeddingsUnavailable(problem or "no answer")

    def close(self) -> None:
        self._http.close()


def from_settings(settings: Settings) -> EmbeddingProvider | None:
    """The provider the settings name, or None (then search is BM25 only)."""
    if not settings.embeddings_url:
        return None
    return EmbeddingProvider(
        settings.embeddings_url,
        settings.embeddings_model,
        settings.embeddings_api_key,
        timeout=settings.embeddings_timeout_seconds,
    )


def _vectors(response: httpx.Response, expected: int) -> list[list[float]]:
    try:
        data = response.json()["data"]
        rows = sorted(data, key=lambda d: d.get("index", 0))
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingsUnavailable(f"not an embeddings answer: {exc}") from exc
    if len(vectors) != expected or len({len(v) for v in vectors}) > 1:
        raise EmbeddingsUnavailable("the answer has the wrong number or sizes of vectors")
    return vectors


class VectorIndex:
    """One workspace's item vectors: id -> (file sha256, unit vector)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.vectors: dict[str, tuple[str, Any]] = {}
        self._matrix: tuple[list[str], Any] | None = None
        self._dirty = False
        self._load()

    def missing(self, items: dict[str, str]) -> list[str]:
        """Ids (of ``{id: sha256}``) without a vector for their current content."""
        with self.lock:
            return [i for i, sha in items.items() if self.vectors.get(i, ("", None))[0] != sha]

    def update(self, shas: dict[str, str], ids: list[str], vectors: list[list[float]]) -> None:
        import numpy as np

        with self.lock:
            for item_id, vector in zip(ids, vectors, strict=True):
                array = np.asarray(vector, dtype=np.float32)
                norm = float(np.linalg.norm(array)) or 1.0
                self.vectors[item_id] = (shas[item_id], array / norm)
            self._matrix = None
            self._dirty = True

    def forget_except(self, live: set[str]) -> None:
        with self.lock:
            gone = [i for i in self.vectors if i not in live]
            for item_id in gone:
                del self.vectors[item_id]
            if gone:
                self._matrix = None
                self._dirty = True

    def nearest(self, query: list[float], k: int, allowed: set[str] | None = None) -> list[str]:
        """Ids by cosine similarity to ``query``, best first."""
        import numpy as np

        with self.lock:
            if self._matrix is None:
                ids = list(self.vectors)
                dims = {len(v) for _, v in self.vectors.values()}
                if not ids or len(dims) != 1:
                    return []
                self._matrix = (ids, np.stack([self.vectors[i][1] for i in ids]))
            ids, matrix = self._matrix
        q = np.asarray(query, dtype=np.float32)
        if q.shape[0] != matrix.shape[1]:
            return []  # the model changed: the vectors are re-made as items are embedded
        scores = matrix @ (q / (float(np.linalg.norm(q)) or 1.0))
        order = np.argsort(-scores)
        out = []
        for position in order:
            item_id = ids[int(position)]
            if allowed is None or item_id in allowed:
                out.append(item_id)
                if len(out) == k:
                    break
        return out

    def _load(self) -> None:
        import numpy as np

        try:
            with np.load(self.path, allow_pickle=False) as data:
                ids, shas, matrix = list(data["ids"]), list(data["shas"]), data["vectors"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            log.warning("re-embedding the items of %s: %s", self.path.name, exc)
            return
        if len(ids) != len(shas) or len(ids) != len(matrix):
            log.warning("re-embedding the items of %s: a damaged file", self.path.name)
            return
        self.vectors = {
            str(i): (str(s), matrix[n]) for n, (i, s) in enumerate(zip(ids, shas, strict=True))
        }

    def save(self) -> None:
        import numpy as np

        with self.lock:
            if not self._dirty or not self.vectors:
                return
            ids = list(self.vectors)
            if len({len(self.vectors[i][1]) for i in ids}) != 1:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp.npz")
            np.savez(
                tmp,
                ids=np.array(ids),
                shas=np.array([self.vectors[i][0] for i in ids]),
                vectors=np.stack([self.vectors[i][1] for i in ids]),
            )
            tmp.replace(self.path)
            self._dirty = False


def fuse(rankings: list[list[str]]) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked id lists: (id, score) best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item_id in enumerate(ranking):
            scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
