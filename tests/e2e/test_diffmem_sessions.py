"""DiffMem against a real ``memhub serve`` (one server for the module).

1. The seed's session flow: a transcript processed, the staged diff read back,
   committed; the new facts come back from ``/memory/search`` and
   ``/memory/context``; an edit between process and commit gives 409 and loses
   nothing.
2. DiffMem's own client (``examples/server_client.py`` at Growth-Kinetics/DiffMem
   217aede): its 14 calls, restated with the same paths and bodies (plus the key
   header memhub requires), in the order of its ``demo_workflow`` and then the rest;
   every one succeeds and answers in DiffMem's shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from conftest import ServerProcess

pytestmark = pytest.mark.e2e


class DiffMemClient:
    """DiffMem's ``DiffMemClient``, call for call (sync httpx, plus the key header)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60.0)

    def _ok(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def get_context(self, user_id: str, conversation: list[dict[str, str]], depth: str) -> Any:
        body = {"conversation": conversation, "depth": depth}
        return self._ok(self.http.post(f"/memory/{user_id}/context", json=body))

    def search_memory(self, user_id: str, query: str, k: int = 5) -> Any:
        return self._ok(self.http.post(f"/memory/{user_id}/search", json={"query": query, "k": k}))

    def orchestrated_search(self, user_id: str, conversation: list[dict[str, str]]) -> Any:
        body = {"conversation": conversation}
        return self._ok(self.http.post(f"/memory/{user_id}/orchestrated-search", json=body))

    def get_user_entity(self, user_id: str) -> Any:
        return self._ok(self.http.get(f"/memory/{user_id}/user-entity"))

    def get_recent_timeline(self, user_id: str, days_back: int = 30) -> Any:
        params = {"days_back": days_back}
        return self._ok(self.http.get(f"/memory/{user_id}/recent-timeline", params=params))

    def process_session(
        self, user_id: str, memory_input: str, session_id: str, session_date: str | None = None
    ) -> Any:
        body = {
            "memory_input": memory_input,
            "session_id": session_id,
            "session_date": session_date,
        }
        return self._ok(self.http.post(f"/memory/{user_id}/process-session", json=body))

    def commit_session(self, user_id: str, session_id: str) -> Any:
        body = {"session_id": session_id}
        return self._ok(self.http.post(f"/memory/{user_id}/commit-session", json=body))

    def process_and_commit_session(
        self, user_id: str, memory_input: str, session_id: str, session_date: str | None = None
    ) -> Any:
        body = {
            "memory_input": memory_input,
            "session_id": session_id,
            "session_date": session_date,
        }
        return self._ok(self.http.post(f"/memory/{user_id}/process-and-commit", json=body))

    def rebuild_index(self, user_id: str) -> Any:
        return self._ok(self.http.post(f"/memory/{user_id}/rebuild-index"))

    def get_status(self, user_id: str) -> Any:
        return self._ok(self.http.get(f"/memory/{user_id}/status"))

    def validate_setup(self, user_id: str) -> Any:
        return self._ok(self.http.get(f"/memory/{user_id}/validate"))

    def manual_sync(self) -> Any:
        return self._ok(self.http.post("/server/sync"))

    def list_users(self) -> Any:
        return self._ok(self.http.get("/server/users"))

    def health_check(self) -> Any:
        return self._ok(self.http.get("/health"))


def test_seed_session_flow_process_diff_commit_conflict(module_server: ServerProcess) -> None:
    with module_server.client() as c:
        transcript = (
            "Lunch with Marguerite at Café Lumen yesterday. Marguerite is training for the "
            "Lakeside Triathlon next month and swims 3 km every morning."
        )
        body = {"memory_input": transcript, "session_id": "e2e-1", "session_date": "2024-05-20"}
        staged = c.post("/memory/process-session", json=body)
        assert staged.status_code == 200, staged.text
        diff = c.get("/v1/workspaces/default/sessions/e2e-1").json()
        by_path = {f["path"]: f for f in diff["files"]}
        assert "memories/people/marguerite.md" in by_path
        assert (
            "+- 2024-05-19: Lunch with Marguerite at Café Lumen yesterday (2024-05-19)."
            in (by_path["memories/people/marguerite.md"]["diff"])
        )
        assert "timeline/2024-05.md" in by_path
        found = c.post("/memory/search", json={"query": "Lakeside Triathlon"}).json()["results"]
        assert found == []  # staged is not committed
        committed = c.post("/memory/commit-session", json={"session_id": "e2e-1"})
        assert committed.status_code == 200, committed.text
        found = c.post("/memory/search", json={"query": "Lakeside Triathlon swims"}).json()
        assert "memories/people/marguerite.md" in [r["path"] for r in found["results"]]
        ctx = c.post(
            "/memory/context",
            json={
                "conversation": [{"role": "user", "content": "How is Marguerite's training?"}],
                "depth": "wide",
            },
        ).json()
        assert "swims 3 km every morning" in ctx["context"]

        # an edit between process and commit: 409, and nothing is lost
        body = {"memory_input": "Marguerite won her age group.", "session_id": "e2e-2"}
        assert c.post("/memory/process-session", json=body).status_code == 200
        path = "/v1/workspaces/default/files/memories/people/marguerite.md"
        mine = c.get(path).text + "\nA note I wrote by hand.\n"
        assert c.put(path, content=mine.encode()).status_code == 200
        conflict = c.post("/memory/commit-session", json={"session_id": "e2e-2"})
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["error_code"] == "SESSION_CONFLICT"
        assert c.get(path).text == mine
        assert c.get("/v1/workspaces/default/files/sessions/e2e-2.md").status_code == 404


def test_diffmem_client_flow(module_server: ServerProcess) -> None:
    with module_server.client() as admin:
        assert admin.post("/v1/workspaces", json={"name": "alex"}).status_code in (200, 201)
        onboard = admin.post(
            "/memory/alex/onboard",
            json={"user_info": "I am Alex, a runner in Boston. My coach is Dana."},
        ).json()
        assert onboard["status"] == "success", onboard
    client = DiffMemClient(module_server.base_url, module_server.auth)
    try:
        run_client_flow(client, "alex")
    finally:
        client.http.close()


def run_client_flow(client: DiffMemClient, user: str) -> None:

    # demo_workflow(), step by step
    health = client.health_check()
    assert health["status"]
    users = client.list_users()
    assert user in users["users"] and users["count"] == len(users["users"])
    validation = client.validate_setup(user)
    assert validation["validation"]["valid"], validation
    status = client.get_status(user)
    assert status["repo_status"]["memory_files_count"] >= 1
    assert status["repo_status"]["onboarded"] is True
    conversation = [
        {"role": "user", "content": "How am I doing with my health goals?"},
        {"role": "assistant", "content": "Let me check your memories..."},
    ]
    context = client.get_context(user, conversation, depth="basic")
    blocks = context["context"]["always_load_blocks"]
    assert blocks[0]["type"] == "complete_user_entity" and blocks[0]["file_path"] == "alex.md"
    assert context["metadata"]["depth"] == "basic" and context["metadata"]["user_id"] == user
    search = client.search_memory(user, "Boston runner coach", k=3)
    assert 1 <= len(search["results"]) <= 3
    hit = search["results"][0]
    assert set(hit["snippet"]) == {"id", "content", "strength", "always_load", "file_path"}
    assert isinstance(hit["score"], float)
    new_memory = """
        Had a great workout today. Went for a 5-mile run and felt energetic.
        Also meal prepped for the week which should help with nutrition goals.
        Feeling optimistic about my health journey.
        """
    session_id = f"demo-session-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    processed = client.process_and_commit_session(user, new_memory, session_id)
    assert processed["message"] and processed["session_id"] == session_id
    assert client.rebuild_index(user)["message"] == "Index rebuilt successfully"
    assert client.manual_sync()["message"]

    # the other calls
    staged = client.process_session(user, "Dana moved our long run to Sunday.", "s-2", "2024-06-03")
    assert staged["message"] == "Session processed and staged for commit"
    assert client.commit_session(user, "s-2")["session_id"] == "s-2"
    entity = client.get_user_entity(user)["entity"]
    assert entity["type"] == "complete_user_entity" and "5-mile run" in entity["content"]
    timeline = client.get_recent_timeline(user, days_back=30)["timeline"]
    assert timeline and all(t["type"] == "recent_timeline" for t in timeline)
    orchestrated = client.orchestrated_search(
        user, [{"role": "user", "content": "When is my long run with Dana?"}]
    )
    results = orchestrated["results"]
    assert set(results) == {"response", "snippets", "derived_query"}
    assert any("Sunday" in s["content"] for s in results["snippets"])
    for depth in ("wide", "deep", "temporal"):
        ctx = client.get_context(user, [{"role": "user", "content": "Dana long run"}], depth)
        assert ctx["context"]["session_metadata"]["depth"] == depth
    assert "complete_entities" in ctx["context"] and "temporal_evolution" in ctx["context"]
    dana = [e for e in ctx["context"]["complete_entities"] if e["entity_name"] == "Dana"]
    assert dana and dana[0]["subdir"] == "people"
