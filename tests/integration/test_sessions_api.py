"""Sessions over HTTP: process → staged diff → commit, conflicts, discard, bad input.

The app is the real one (SQLite, local blobs) in-process; the extractor is the
offline one (no LLM configured).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client, assert_error
from fastapi.testclient import TestClient

TRANSCRIPT = (
    "Had coffee with mom today. We talked about her garden and the tomatoes she grows.\n"
    "Yesterday I ran the Riverside Marathon with Priya in 3 hours 41 minutes.\n"
    "Priya moved to Lisbon last month for a job at Feedzai.\n"
    "Thanks!"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path / "data", raise_server_exceptions=False) as client:
        yield client


def process(client: TestClient, session_id: str, text: str = TRANSCRIPT, **extra: Any) -> Any:
    body = {"memory_input": text, "session_id": session_id, "session_date": "2024-01-15"}
    return client.post("/memory/process-session", json={**body, **extra})


def read(client: TestClient, path: str) -> str:
    response = client.get(f"{WS}/files/{path}")
    assert response.status_code == 200, (path, response.text)
    return response.text


def search_paths(client: TestClient, query: str) -> list[str]:
    response = client.post("/memory/search", json={"query": query, "k": 10})
    assert response.status_code == 200, response.text
    return [r["path"] for r in response.json()["results"]]


def test_process_stages_a_diff_then_commit_makes_revisions(client: TestClient) -> None:
    response = process(client, "s-001")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Session processed and staged for commit"
    paths = {f["path"]: f["action"] for f in body["session"]["files"]}
    assert paths == {
        "sessions/s-001.md": "create",
        "memories/people/mom.md": "create",
        "memories/people/priya.md": "create",
        "memories/events/riverside-marathon.md": "create",
        "memories/contexts/lisbon.md": "create",
        "memories/contexts/feedzai.md": "create",
        "timeline/2024-01.md": "create",
        "default.md": "create",
    }
    # staged, not written: nothing in the store, nothing found
    assert client.get(f"{WS}/files/memories/people/priya.md").status_code == 404
    assert "memories/people/priya.md" not in search_paths(client, "Lisbon Feedzai")

    staged = client.get(f"{WS}/sessions/s-001").json()
    assert staged["status"] == "staged"
    diff = next(f["diff"] for f in staged["files"] if f["path"] == "memories/people/priya.md")
    assert diff.startswith("--- /dev/null\n+++ b/memories/people/priya.md")
    assert "+- 2023-12: Priya moved to Lisbon last month (2023-12) for a job at Feedzai." in diff
    assert "+- 2024-01-14: Yesterday (2024-01-14) I ran the Riverside Marathon" in diff

    response = client.post("/memory/commit-session", json={"session_id": "s-001"})
    assert response.status_code == 200, response.text
    revs = response.json()["session"]["revs"]
    assert len(revs) == 8 and revs == sorted(revs)
    history = client.get(f"{WS}/history/memories/people/priya.md").json()
    newest = history["revisions"][0] if "revisions" in history else history[0]
    assert newest["session_id"] == "s-001"

    priya = read(client, "memories/people/priya.md")
    assert priya.startswith("# Priya\n")
    assert "/START\n### 2024-01-15 — session s-001 [Strength: Medium]\n" in priya
    assert "/END" in priya
    assert "memories/people/priya.md" in search_paths(client, "Lisbon Feedzai job")
    context = client.post(
        "/memory/context",
        json={"conversation": [{"role": "user", "content": "Priya Lisbon"}], "depth": "wide"},
    ).json()
    assert "Feedzai" in context["context"]
    user = read(client, "default.md")
    assert "[ALWAYS_LOAD]" in user and "Mentioned: " in user and "Priya" in user


def test_a_concurrent_edit_fails_the_commit_and_loses_nothing(client: TestClient) -> None:
    assert (
        client.put(f"{WS}/files/memories/people/priya.md", content=b"# Priya\n").status_code == 201
    )
    assert process(client, "s-002").status_code == 200
    # someone edits a staged file between process and commit
    edited = b"# Priya\n\nPriya's own notes, written meanwhile.\n"
    assert client.put(f"{WS}/files/memories/people/priya.md", content=edited).status_code == 200
    head_before = client.get(f"{WS}/changes?since=0").json()
    response = client.post("/memory/commit-session", json={"session_id": "s-002"})
    body = assert_error(response, 409, "SESSION_CONFLICT")
    assert body["context"]["path"] == "memories/people/priya.md"
    # nothing written: the concurrent edit is the head, no other file appeared
    assert read(client, "memories/people/priya.md") == edited.decode()
    assert client.get(f"{WS}/files/sessions/s-002.md").status_code == 404
    assert client.get(f"{WS}/changes?since=0").json() == head_before
    # the staged edits are still there; discard, process again, commit
    assert client.get(f"{WS}/sessions/s-002").json()["status"] == "staged"
    assert client.delete(f"{WS}/sessions/s-002").status_code == 204
    assert client.get(f"{WS}/sessions/s-002").status_code == 404
    assert process(client, "s-002").status_code == 200
    assert client.post("/memory/commit-session", json={"session_id": "s-002"}).status_code == 200
    merged = read(client, "memories/people/priya.md")
    assert "Priya's own notes, written meanwhile." in merged and "Feedzai" in merged


def test_known_entities_and_aliases_are_updated_in_their_timeline(client: TestClient) -> None:
    entity = (
        "# Alexandra Petrova\n\n**Aliases:** Sasha, Sash\n\n/START\n## Core [ALWAYS_LOAD]\n"
        "My sister.\n/END\n\n## Timeline\n\n## Notes\n\nLikes tea.\n"
    )
    assert client.put(f"{WS}/files/memories/people/alexandra.md", content=entity).status_code == 201
    text = "Sasha called me last Friday about her new apartment in Porto."
    response = client.post(
        "/memory/process-and-commit",
        json={"memory_input": text, "session_id": "s-3", "session_date": "2024-03-13"},
    )
    assert response.status_code == 200, response.text
    updated = read(client, "memories/people/alexandra.md")
    timeline, notes = updated.split("## Timeline", 1)[1].split("## Notes", 1)
    assert "- 2024-03-08: Sasha called me last Friday (2024-03-08)" in timeline
    assert "Likes tea." in notes
    assert client.get(f"{WS}/files/memories/people/sasha.md").status_code == 404


def test_v1_sessions_list_commit_and_user_id(client: TestClient) -> None:
    created = client.post(
        f"{WS}/sessions",
        json={"memory_input": "Met Tomasz at the Krakow office.", "session_id": "v1-a"},
    )
    assert created.status_code == 201, created.text
    assert all("diff" in f for f in created.json()["files"])
    listed = client.get(f"{WS}/sessions", params={"status": "staged"}).json()["sessions"]
    assert [s["session_id"] for s in listed] == ["v1-a"]
    committed = client.post(f"{WS}/sessions/v1-a/commit")
    assert committed.status_code == 200 and committed.json()["status"] == "committed"
    assert client.get(f"{WS}/sessions", params={"status": "staged"}).json()["sessions"] == []
    # user_id names the workspace; a workspace the key cannot reach is 404
    assert_error(process(client, "x", user_id="nobody-here"), 404, "WORKSPACE_NOT_FOUND")


def test_bad_input_is_4xx_and_writes_nothing(client: TestClient) -> None:
    assert_error(process(client, "../escape"), 400)
    assert_error(process(client, "a b"), 400)
    assert_error(process(client, "ok-1", session_date="15/01/2024"), 400)
    assert_error(process(client, "ok-2", text="   "), 400)
    assert_error(client.post("/memory/process-session", json={"session_id": "x"}), 422)
    assert_error(
        client.post("/memory/commit-session", json={"session_id": "nope"}), 404, "SESSION_NOT_FOUND"
    )
    assert client.get(f"{WS}/changes?since=0").json()["changes"] == []
    assert process(client, "once").status_code == 200
    assert client.post("/memory/commit-session", json={"session_id": "once"}).status_code == 200
    assert_error(client.post("/memory/commit-session", json={"session_id": "once"}), 409)
    assert_error(process(client, "once"), 409, "SESSION_CONFLICT")
    assert_error(client.delete(f"{WS}/sessions/once"), 409)


def test_orchestrated_search_plans_queries_and_fuses(client: TestClient) -> None:
    assert (
        client.post(
            "/memory/process-and-commit",
            json={"memory_input": TRANSCRIPT, "session_id": "o-1", "session_date": "2024-01-15"},
        ).status_code
        == 200
    )
    conversation = [
        {"role": "user", "content": "How is Priya doing?"},
        {"role": "assistant", "content": "Tell me more."},
        {"role": "user", "content": "Where does she work now?"},
    ]
    response = client.post("/memory/orchestrated-search", json={"conversation": conversation})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"]["orchestrator"] == "offline"
    assert body["metadata"]["fusion"] == "rrf"
    assert "Priya" in body["metadata"]["queries"]
    assert len(body["metadata"]["queries"]) >= 3
    assert any(r["path"] == "memories/people/priya.md" for r in body["results"][:5])


BAD_BODIES = [
    b"",
    b"null",
    b"[]",
    b'{"memory_input": 5, "session_id": []}',
    b'{"memory_input": "x", "session_id": "' + b"a" * 300 + b'"}',
    b'{"memory_input": "x", "session_id": "ok", "session_date": "2024-13-45"}',
    b'{"memory_input": "x", "session_id": "ok/../x", "user_id": "../etc"}',
    b'{"conversation": "no", "depth": "abyss", "query": {}, "k": -1}',
    b'{"user_info": "", "session_id": "\\u0000"}',
    b"\xff\xfe not json",
]
POSTS = [
    "/memory/process-session",
    "/memory/commit-session",
    "/memory/process-and-commit",
    f"{WS}/sessions",
    "/memory/default/context",
    "/memory/default/search",
    "/memory/default/orchestrated-search",
    "/memory/default/process-session",
    "/memory/default/commit-session",
    "/memory/default/onboard",
    "/repos/setup",
]


@pytest.mark.parametrize("url", POSTS)
def test_hostile_bodies_are_4xx(client: TestClient, url: str) -> None:
    for body in BAD_BODIES:
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (url, body, response.status_code, response.text)
        assert {"detail", "error_code"} <= response.json().keys()


@pytest.mark.parametrize("user", ["..", "a b", "x" * 200, "%2e%2e", "UPPER/lower"])
def test_hostile_user_ids_are_4xx(client: TestClient, user: str) -> None:
    for method, suffix in [("GET", "status"), ("GET", "user-entity"), ("POST", "rebuild-index")]:
        response = client.request(method, f"/memory/{user}/{suffix}")
        assert 400 <= response.status_code < 500, (user, suffix, response.text)
    assert client.get(f"{WS}/sessions/..%2F..").status_code in (400, 404)
    assert client.get(f"/repos/status/{user}").status_code in (400, 404)


def test_a_large_transcript_is_processed(client: TestClient) -> None:
    lines = [
        f"[D{i}:1] Speaker{i % 7}: I visited Town{i % 50} with Friend{i % 90} today."
        for i in range(5_000)
    ]
    text = "\n".join(lines)
    assert 250_000 < len(text) < 1_000_000
    response = client.post(
        f"{WS}/sessions", json={"memory_input": text, "session_id": "big", "commit": True}
    )
    assert response.status_code == 201, response.text[:300]
    assert response.json()["summary"]["facts"] == 5_000
