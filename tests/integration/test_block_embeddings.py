"""Semantic search over ordinary file blocks against the fake OpenAI-compatible embeddings
server (``tests/fake_embeddings.py``): ``/v1/.../search`` and context fuse BM25 with the
block vectors, filters hold on the vector side, an outage answers BM25 with a warning
header (never a 500), and the vectors follow the index (only changed files are embedded
again, deleted ones are gone, a restart reloads them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client
from fastapi.testclient import TestClient

from fake_embeddings import FakeEmbeddings

NOTES = {
    "notes/commute.md": "# Commute\n\nIvan drives an old red car to work every day.\n",
    "notes/home.md": "# Home\n\nIvan's puppy is called Biscuit.\n",
    "journal/summer.md": "# Summer\n\nIvan swims every morning at the beach.\n",
    "notes/stamps.md": "# Hobbies\n\nIvan collects stamps from Peru.\n",
}


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as server:
        yield server


def client_for(data: Path, fake: FakeEmbeddings | None) -> Any:
    settings: dict[str, Any] = {}
    if fake is not None:
        settings = {"embeddings_url": fake.url}
    return api_client(data, raise_server_exceptions=False, **settings)


def write_notes(client: TestClient) -> None:
    for path, text in NOTES.items():
        assert client.put(f"{WS}/files/{path}", content=text.encode()).status_code in (200, 201)


def search(client: TestClient, query: str, **extra: Any) -> tuple[Any, list[str]]:
    response = client.post(f"{WS}/search", json={"query": query, **extra})
    assert response.status_code == 200, response.text
    return response, [r["path"] for r in response.json()["results"]]


def test_block_vectors_find_what_bm25_cannot(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "plain", None) as plain:
        write_notes(plain)
        response, found = search(plain, "automobile")
        assert found == [] and response.json()["mode"] == "bm25"
    assert not list((tmp_path / "plain").rglob("vectors.npz"))  # nothing made without one
    with client_for(tmp_path / "semantic", fake) as client:
        write_notes(client)
        response, found = search(client, "automobile")
        assert response.json()["mode"] == "hybrid"
        assert "x-memhub-warning" not in response.headers
        assert found[0] == "notes/commute.md"
        assert response.json()["results"][0]["line_start"] >= 1
        _, found = search(client, "kitten", k=1)
        assert found == ["notes/home.md"]
        # filters hold for the vector side: the ocean note is under journal/
        _, found = search(client, "ocean", path_prefix="notes/")
        assert "journal/summer.md" not in found
        _, found = search(client, "ocean", path_prefix="journal/", k=1)
        assert found == ["journal/summer.md"]
        # the GET form and the seed route fuse too
        by_url = client.get(f"{WS}/search", params={"q": "automobile", "k": 1}).json()
        assert [r["path"] for r in by_url["results"]] == ["notes/commute.md"]
        seed = client.post("/memory/search", json={"query": "automobile", "k": 1}).json()
        assert [r["path"] for r in seed["results"]] == ["notes/commute.md"]
        # context assembly uses the same fused search
        ctx = client.post(
            f"{WS}/context",
            json={"conversation": [{"role": "user", "content": "automobile"}], "depth": "wide"},
        )
        assert ctx.status_code == 200 and "x-memhub-warning" not in ctx.headers
        assert "old red car" in ctx.json()["markdown"]


def test_an_outage_degrades_to_bm25_with_a_warning(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "d", fake) as client:
        write_notes(client)
        fake.fail_with = 503
        response, found = search(client, "car")
        assert found == ["notes/commute.md"]
        assert response.json()["mode"] == "bm25"
        assert "embeddings unavailable" in response.headers["x-memhub-warning"]
        _, found = search(client, "automobile")
        assert found == []  # BM25 alone cannot see it
        ctx = client.post(
            f"{WS}/context",
            json={"conversation": [{"role": "user", "content": "car"}], "depth": "wide"},
        )
        assert ctx.status_code == 200 and "x-memhub-warning" in ctx.headers
        assert "old red car" in ctx.json()["markdown"]
        seed = client.post("/memory/search", json={"query": "car"})
        assert seed.status_code == 200 and "x-memhub-warning" in seed.headers
        fake.fail_with = None
        response, found = search(client, "automobile")
        assert response.json()["mode"] == "hybrid" and found[0] == "notes/commute.md"


def test_block_vectors_follow_the_index(tmp_path: Path, fake: FakeEmbeddings) -> None:
    data = tmp_path / "d"
    with client_for(data, fake) as client:
        write_notes(client)
        search(client, "automobile")
        embedded = fake.texts_embedded
        assert embedded >= len(NOTES) + 1  # every block, then the query
        search(client, "puppy")
        assert fake.texts_embedded == embedded + 1  # only the query again
        client.put(f"{WS}/files/notes/stamps.md", content=b"# Hobbies\n\nIvan fixes a truck.\n")
        _, found = search(client, "automobile", k=2)
        assert fake.requests[-2] == ["# Hobbies\n\nIvan fixes a truck."]  # only the changed block
        assert set(found) == {"notes/commute.md", "notes/stamps.md"}
        client.delete(f"{WS}/files/notes/commute.md")
        _, found = search(client, "automobile")
        assert "notes/commute.md" not in found and found[0] == "notes/stamps.md"
        before = fake.texts_embedded
    assert list(data.rglob("vectors.npz"))
    with client_for(data, fake) as client:
        _, found = search(client, "automobile")
        assert found[0] == "notes/stamps.md"
        assert fake.texts_embedded == before + 1  # reloaded, not re-embedded


def test_block_embeddings_are_batched(tmp_path: Path, fake: FakeEmbeddings) -> None:
    with client_for(tmp_path / "d", fake) as client:
        for i in range(3):
            body = "\n\n".join(f"## Part {j}\n\nA car numbered {i}-{j}." for j in range(50))
            client.put(f"{WS}/files/notes/n{i}.md", content=f"# Note {i}\n\n{body}\n".encode())
        search(client, "automobile")
    sizes = [len(r) for r in fake.requests]
    assert sizes[-1] == 1 and sum(sizes[:-1]) >= 150 and max(sizes) <= 64
