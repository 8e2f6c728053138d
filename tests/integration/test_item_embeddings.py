"""Optional semantic search of memory items against a fake OpenAI-compatible embeddings
server (``tests/fake_embeddings.py``, deterministic vectors): fusion finds what BM25
cannot, an outage degrades to BM25 with a warning header (never a 500), the vectors are
a derived index (saved, reused, re-made when an item changes), requests are batched,
and the provider retries, times out and refuses malformed answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiclient import WS, api_client
from fastapi.testclient import TestClient

from fake_embeddings import FakeEmbeddings
from memhub.memory.embeddings import (
    BATCH,
    EmbeddingProvider,
    EmbeddingsUnavailable,
    fuse,
)

ITEMS = f"{WS}/items"
FACTS = [
    "Ivan drives an old red car to work.",
    "Ivan's puppy is called Biscuit.",
    "Ivan swims every morning in the sea.",
    "Ivan collects stamps from Peru.",
]


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as server:
        yield server


def client_for(data: Path, fake: FakeEmbeddings | None) -> Any:
    settings: dict[str, Any] = {}
    if fake is not None:
        settings = {"embeddings_url": fake.url, "embeddings_api_key": "sk-test"}
    return api_client(data, raise_server_exceptions=False, **settings)


def search(client: TestClient, query: str, **extra: Any) -> tuple[Any, list[str]]:
    response = client.post(f"{ITEMS}/search", json={"query": query, **extra})
    assert response.status_code == 200, response.text
    return response, [r["item"]["memory"] for r in response.json()["results"]]


def test_vectors_find_what_bm25_cannot(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "plain", None) as plain:
        plain.post(ITEMS, json={"items": [{"memory": f} for f in FACTS]})
        response, found = search(plain, "automobile")
        assert found == [] and response.json()["mode"] == "bm25"
    with client_for(tmp_path / "semantic", fake) as client:
        client.post(ITEMS, json={"items": [{"memory": f} for f in FACTS]})
        response, found = search(client, "automobile")
        assert response.json()["mode"] == "hybrid"
        assert found[0] == "Ivan drives an old red car to work."
        assert "x-memhub-warning" not in response.headers
        _, pets = search(client, "kitten", k=1)
        assert pets == ["Ivan's puppy is called Biscuit."]
        # a word both rankings agree on comes first; relativity is on the fused score
        response, found = search(client, "Ivan car", k=4)
        assert found[0] == "Ivan drives an old red car to work."
        rels = [r["relativity"] for r in response.json()["results"]]
        assert rels[0] == 1.0 and rels == sorted(rels, reverse=True)
        # filters hold for the vector side too
        _, filtered = search(client, "automobile", filter={"memory": {"contains": "stamps"}})
        assert filtered == ["Ivan collects stamps from Peru."]
        via_product = client.post(
            "/product/search", json={"query": "automobile", "user_id": "u", "relativity": 0}
        ).json()["data"]["text_mem"][0]["memories"]
        assert via_product[0]["memory"] == "Ivan drives an old red car to work."
    assert fake.bearer and all(b == "Bearer sk-test" for b in fake.bearer)


def test_an_outage_degrades_to_bm25_with_a_warning(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "d", fake) as client:
        client.post(ITEMS, json={"items": [{"memory": f} for f in FACTS]})
        fake.fail_with = 503
        response, found = search(client, "car")
        assert found == ["Ivan drives an old red car to work."]
        assert response.json()["mode"] == "bm25"
        assert "embeddings unavailable" in response.headers["x-memhub-warning"]
        product = client.post("/product/search", json={"query": "car", "user_id": "u"})
        assert product.status_code == 200 and "x-memhub-warning" in product.headers
        assert product.json()["data"]["text_mem"][0]["memories"]
        fake.fail_with = None
        response, _ = search(client, "automobile")
        assert response.json()["mode"] == "hybrid"


def test_vectors_are_derived_saved_and_remade(tmp_path: Path, fake: FakeEmbeddings) -> None:
    data = tmp_path / "d"
    with client_for(data, fake) as client:
        added = client.post(ITEMS, json={"items": [{"memory": f} for f in FACTS]}).json()
        search(client, "automobile")
        assert fake.texts_embedded == len(FACTS) + 1  # the items, then the query
        search(client, "puppy")
        assert fake.texts_embedded == len(FACTS) + 2  # only the query again
    assert list(data.rglob("*.vectors.npz"))
    with client_for(data, fake) as client:
        search(client, "sea")
        assert fake.texts_embedded == len(FACTS) + 3  # reloaded, not re-embedded
        item_id = added["items"][3]["id"]
        client.patch(f"{ITEMS}/{item_id}", json={"memory": "Ivan restores a vintage truck."})
        _, found = search(client, "automobile", k=2)
        assert fake.requests[-2] == ["Ivan restores a vintage truck."]  # only the changed one
        assert set(found) == {
            "Ivan drives an old red car to work.",
            "Ivan restores a vintage truck.",
        }
    for saved in data.rglob("*.vectors.npz"):
        saved.write_bytes(b"damaged")
    with client_for(data, fake) as client:
        before = fake.texts_embedded
        _, found = search(client, "automobile", k=1)
        assert found == ["Ivan drives an old red car to work."]
        assert fake.texts_embedded == before + len(FACTS) + 1  # re-embedded from the items


def test_requests_are_batched(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "d", fake) as client:
        many = [{"memory": f"Fact {i} about a car number {i}."} for i in range(150)]
        client.post(ITEMS, json={"items": many})
        search(client, "automobile")
    assert [len(r) for r in fake.requests] == [BATCH, BATCH, 150 - 2 * BATCH, 1]


def test_the_provider_retries_and_refuses_bad_answers() -> None:
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503)
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})

    provider = EmbeddingProvider("http://x/v1", "m", transport=httpx.MockTransport(flaky))
    assert provider.embed(["a"]) == [[1.0, 0.0]] and len(calls) == 3
    for answer in (
        httpx.Response(400, json={"error": "bad"}),
        httpx.Response(200, json={"data": []}),
        httpx.Response(200, json={"nope": 1}),
        httpx.Response(200, content=b"not json"),
    ):
        bad = EmbeddingProvider(
            "http://x/v1", "m", transport=httpx.MockTransport(lambda _r, a=answer: a)
        )
        with pytest.raises(EmbeddingsUnavailable):
            bad.embed(["a"])

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    stalled = EmbeddingProvider("http://x/v1", "m", transport=httpx.MockTransport(slow))
    with pytest.raises(EmbeddingsUnavailable, match="ReadTimeout"):
        stalled.embed(["a"])


def test_fusion_of_ranks() -> None:
    fused = fuse([["a", "b", "c"], ["c", "a"]])
    assert [i for i, _ in fused] == ["a", "c", "b"]
