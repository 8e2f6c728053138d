"""The OpenAI-compatible provider against a fake OpenAI server on loopback (real HTTP):
JSON validation, retries with backoff, timeouts, token accounting in /metrics, and the
LLM extractor and query planner behind the session and orchestrated-search routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiclient import WS, api_client

from fake_openai import FakeOpenAI, running
from memhub.errors import LLMUnavailable
from memhub.memory.llm import ChatProvider, LLMConfig

SCHEMA = {
    "type": "object",
    "required": ["queries"],
    "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
}
PLAN = [{"role": "user", "content": "Plan up to 5 queries:\n\nuser: Where is Oslo?"}]


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    with running(server) as url:
        yield server, url


def provider(url: str, **kw: float) -> tuple[ChatProvider, list[float], list[tuple[str, int, int]]]:
    waits: list[float] = []
    usage: list[tuple[str, int, int]] = []
    config = LLMConfig(base_url=url, model="fake-1", api_key="sk-test", **kw)  # type: ignore[arg-type]
    made = ChatProvider(
        config, sleep=waits.append, on_usage=lambda m, p, c: usage.append((m, p, c))
    )
    return made, waits, usage


def test_valid_answer_usage_and_key(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    llm, waits, usage = provider(url)
    with llm:
        answer = llm.complete_json(PLAN, SCHEMA)
    assert answer == {"queries": ["Where", "Oslo", "user: Where is Oslo?"]}
    sent = server.requests[-1]
    assert sent["headers"]["authorization"] == "Bearer sk-test"
    assert sent["body"]["model"] == "fake-1"
    assert sent["body"]["response_format"] == {"type": "json_object"}
    assert '"required": ["queries"]' in sent["body"]["messages"][0]["content"]
    assert waits == [] and usage and usage[0][0] == "fake-1" and usage[0][1] > 0


def test_retries_with_backoff_then_succeeds(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    llm, waits, _ = provider(url, backoff=0.5, max_retries=4)
    server.script("500", "429", "invalid-json", "bad-schema", "fenced")
    with llm:
        assert llm.complete_json(PLAN, SCHEMA)["queries"]  # the fenced answer is accepted
    llm2, waits2, _ = provider(url, backoff=0.5, max_retries=5)
    server.script("500", "429", "invalid-json", "bad-schema")
    with llm2:
        assert llm2.complete_json(PLAN, SCHEMA)["queries"]
    assert waits2 == [0.5, 1.0]  # backoff on 500 and 429; invalid answers retry at once
    assert waits == [0.5, 1.0]


def test_gives_up_as_llm_unavailable(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    llm, waits, _ = provider(url, max_retries=2)
    server.script("500", "500", "500")
    with llm:
        with pytest.raises(LLMUnavailable) as failed:
            llm.complete_json(PLAN, SCHEMA)
        assert failed.value.status == 502 and "3 attempts" in failed.value.detail
        assert waits == [0.5, 1.0, 2.0]
        server.script("400")
        with pytest.raises(LLMUnavailable, match="refused"):
            llm.complete_json(PLAN, SCHEMA)  # a 4xx is not retried
    assert not server.scripted and waits == [0.5, 1.0, 2.0]


def test_timeout_is_retried(fake: tuple[FakeOpenAI, str]) -> None:
    server, url = fake
    server.slow_seconds = 1.0
    llm, waits, _ = provider(url, timeout=0.2, max_retries=1)
    server.script("slow")
    with llm:
        assert llm.complete_json(PLAN, SCHEMA)["queries"]
    assert waits == [0.5]


def test_sessions_and_orchestration_use_the_llm(
    fake: tuple[FakeOpenAI, str], tmp_path: Path
) -> None:
    server, url = fake
    settings = {"llm_base_url": url, "llm_model": "fake-1", "llm_api_key": "sk-test"}
    settings |= {"llm_backoff_seconds": 0.01}
    with api_client(tmp_path / "data", raise_server_exceptions=False, **settings) as client:
        body = {
            "memory_input": "I met Ingrid yesterday. Ingrid runs a bakery in Oslo.",
            "session_id": "llm-1",
            "session_date": "2024-02-10",
        }
        staged = client.post(f"{WS}/sessions", json={**body, "commit": True})
        assert staged.status_code == 201, staged.text
        assert staged.json()["extractor"] == "llm:fake-1"
        ingrid = client.get(f"{WS}/files/memories/people/ingrid.md").text
        assert "- 2024-02-09: I met Ingrid on 2024-02-09." in ingrid
        assert "Ingrid runs a bakery in Oslo." in ingrid
        found = client.post(
            "/memory/orchestrated-search",
            json={"conversation": [{"role": "user", "content": "What does Ingrid do?"}]},
        ).json()
        assert found["metadata"]["orchestrator"] == "llm:fake-1"
        assert "Ingrid" in found["metadata"]["queries"]
        assert found["results"][0]["path"] == "memories/people/ingrid.md"
        real = client.post(
            "/memory/default/orchestrated-search",
            json={"conversation": [{"role": "user", "content": "What does Ingrid do?"}]},
        ).json()["results"]
        assert real["response"].startswith("From memory: [1] ")
        assert "Ingrid" in real["response"] and "Ingrid" in real["derived_query"]
        metrics = client.get("/metrics").text
        assert 'memhub_llm_tokens_total{kind="prompt",model="fake-1"}' in metrics
        assert 'memhub_llm_requests_total{outcome="ok"} 4.0' in metrics
        server.script("500", "500", "500", "500")
        failed = client.post("/memory/process-session", json={**body, "session_id": "llm-2"})
        assert failed.status_code == 502 and failed.json()["error_code"] == "LLM_UNAVAILABLE"
        assert client.get(f"{WS}/sessions/llm-2").status_code == 404


def test_memos_add_in_fine_mode_stores_the_llms_facts(
    fake: tuple[FakeOpenAI, str], tmp_path: Path
) -> None:
    """MemOS ``mode: fine`` with an LLM configured: one item per extracted fact (the fake
    answers one fact per sentence), through the same provider as sessions."""
    _, url = fake
    settings = {"llm_base_url": url, "llm_model": "fake-1", "llm_api_key": "sk-test"}
    with api_client(tmp_path / "data", raise_server_exceptions=False, **settings) as client:
        body = {
            "user_id": "default",
            "writable_cube_ids": ["default"],
            "messages": [{"role": "user", "content": "Ingrid moved to Oslo. Bob keeps bees."}],
            "mode": "fine",
            "async_mode": "sync",
        }
        added = client.post("/product/add", json=body)
        assert added.status_code == 200, added.text
        memories = sorted(d["memory"] for d in added.json()["data"])
        assert len(memories) == 2, memories
        assert "Oslo" in memories[0] + memories[1] and "bees" in memories[0] + memories[1]
        fast = client.post("/product/add", json={**body, "mode": "fast"}).json()["data"]
        assert [d["memory"] for d in fast] == ["Ingrid moved to Oslo. Bob keeps bees."]
