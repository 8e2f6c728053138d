"""MemOS's ``/product/*`` API in process: shapes, envelopes, identity fields, filters,
``mode: fine`` with an extractor (a fake LLM), and the OpenAPI example of an add.

The wire-level round trip against a real ``memhub serve`` (MemOS's own router tests)
is ``tests/e2e/test_product_e2e.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import api_client
from fastapi.testclient import TestClient

from memhub.memory.items import Items


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path / "data", raise_server_exceptions=False) as client:
        assert client.post("/v1/workspaces", json={"name": "alice"}).status_code == 201
        yield client


def ok(response: Any, message: str) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200 and body["message"] == message, body
    return body["data"]


def add(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ok(
        client.post("/product/add", json=body), "Memory added successfully"
    )
    return data


def test_add_forms_of_messages(client: TestClient) -> None:
    as_string = add(client, writable_cube_ids=["alice"], messages="I live in Lisbon.")
    assert [(d["memory"], d["memory_type"], d["cube_id"]) for d in as_string] == [
        ("I live in Lisbon.", "LongTermMemory", "alice")
    ]
    listed = add(
        client,
        user_id="alice",
        mem_cube_id="alice",
        messages=[
            {"role": "user", "content": "My dog is Rex.", "chat_time": "2026-01-02T10:00:00"},
            {"role": "assistant", "content": "Nice dog."},
            {"role": "user", "content": [{"type": "text", "text": "I work at a bakery."}]},
        ],
        memory_content="I was born in 1990.",
        custom_tags=["profile"],
        info={"app": "chat"},
        source="web",
        session_id="s1",
    )
    assert [d["memory"] for d in listed] == [
        "My dog is Rex.",
        "I work at a bakery.",
        "I was born in 1990.",
    ]
    item = ok(
        client.get(f"/product/get_memory/{listed[0]['memory_id']}"), "Memory retrieved successfully"
    )
    meta = item["metadata"]
    assert item["ref_id"] == f"[{item['id'].split('-')[0]}]"
    assert meta["tags"] == ["profile"]
    assert meta["info"] == {"app": "chat", "source": "web"}
    assert meta["user_id"] == "alice" and meta["session_id"] == "s1"
    assert meta["embedding"] == [] and meta["status"] == "activated"
    assert {"role": "user", "content": "My dog is Rex.", "chat_time": "2026-01-02T10:00:00",
            "type": "chat"} in meta["sources"]  # fmt: skip
    assert meta["key"] == "My dog is Rex." and meta["id"] == item["id"]
    # the same fact again: no second memory
    again = add(client, writable_cube_ids=["alice"], memory_content="my dog is rex")
    assert again[0]["memory_id"] == listed[0]["memory_id"] and again[0]["action"] == "updated"
    feedback = client.post(
        "/product/add",
        json={"writable_cube_ids": ["alice"], "messages": "x y", "is_feedback": True},
    )
    assert ok(feedback, "Memory feedback successfully")


def test_add_to_several_cubes_and_the_fallback_cube(client: TestClient) -> None:
    both = add(client, writable_cube_ids=["alice", "default"], messages="Shared fact.")
    assert sorted(d["cube_id"] for d in both) == ["alice", "default"]
    # no cube: the user_id when it names a workspace the key reaches, else the key's own
    assert add(client, user_id="alice", messages="Fact A.")[0]["cube_id"] == "alice"
    assert add(client, user_id="nobody-here", messages="Fact B.")[0]["cube_id"] == "default"
    assert add(client, messages="Fact C.")[0]["cube_id"] == "default"


def test_search_shape_relativity_and_filter(client: TestClient) -> None:
    add(
        client,
        writable_cube_ids=["alice"],
        messages="Alice visited Lisbon in May.",
        custom_tags=["trip"],
    )
    add(
        client,
        writable_cube_ids=["alice"],
        messages="Alice thinks Lisbon is hilly and Lisbon is sunny.",
    )
    add(client, writable_cube_ids=["alice"], messages="Alice plays the piano.")
    body = {"query": "Lisbon", "user_id": "alice", "readable_cube_ids": ["alice", "default"]}
    data = ok(client.post("/product/search", json=body), "Search completed successfully")
    assert set(data) >= {"text_mem", "pref_mem", "tool_mem", "skill_mem", "act_mem", "para_mem"}
    assert [g["cube_id"] for g in data["text_mem"]] == ["alice", "default"]
    alice, default = data["text_mem"]
    assert default["memories"] == [] and default["total_nodes"] == 0
    assert alice["total_nodes"] == len(alice["memories"]) == 2
    rels = [m["metadata"]["relativity"] for m in alice["memories"]]
    assert rels[0] == 1.0 and rels == sorted(rels, reverse=True)
    assert all("Lisbon" in m["memory"] for m in alice["memories"])
    one = ok(
        client.post("/product/search", json={**body, "top_k": 1}), "Search completed successfully"
    )
    assert len(one["text_mem"][0]["memories"]) == 1
    strict = ok(
        client.post("/product/search", json={**body, "relativity": 1.0}),
        "Search completed successfully",
    )
    assert len(strict["text_mem"][0]["memories"]) == 1
    tagged = ok(
        client.post(
            "/product/search",
            json={**body, "relativity": 0, "filter": {"and": [{"tags": {"contains": "trip"}}]}},
        ),
        "Search completed successfully",
    )
    assert [m["memory"] for m in tagged["text_mem"][0]["memories"]] == [
        "Alice visited Lisbon in May."
    ]


def test_get_all_get_memory_and_by_ids(client: TestClient) -> None:
    added = add(client, writable_cube_ids=["alice"], messages=[
        {"role": "user", "content": f"Numbered fact {i}."} for i in range(5)
    ])  # fmt: skip
    all_ = ok(
        client.post("/product/get_all", json={"user_id": "u", "memory_type": "text_mem",
                                               "mem_cube_ids": ["alice"]}),
        "Memories retrieved successfully",
    )  # fmt: skip
    [cube] = all_
    assert cube["cube_id"] == "alice"
    assert len(cube["memories"][0]["nodes"]) == 5
    assert cube["memories"][0]["edges"] == []
    assert cube["memory_statistics"] == {"LongTermMemory": 5}
    sub = ok(
        client.post(
            "/product/get_all",
            json={
                "user_id": "u",
                "memory_type": "text_mem",
                "mem_cube_ids": ["alice"],
                "search_query": "fact 3",
            },
        ),
        "Memories retrieved successfully",
    )
    assert "Numbered fact 3." in [n["memory"] for n in sub[0]["memories"][0]["nodes"]]
    act = client.post("/product/get_all", json={"user_id": "u", "memory_type": "act_mem"})
    assert ok(act, "Memories retrieved successfully") == []
    page = ok(
        client.post(
            "/product/get_memory", json={"mem_cube_id": "alice", "page": 2, "page_size": 2}
        ),
        "Memories retrieved successfully",
    )
    assert page["text_mem"][0]["total_nodes"] == 5
    assert [m["memory"] for m in page["text_mem"][0]["memories"]] == [
        "Numbered fact 2.",
        "Numbered fact 1.",
    ]
    assert page["pref_mem"][0]["memories"] == []
    filtered = ok(
        client.post(
            "/product/get_memory",
            json={"mem_cube_id": "alice", "filter": {"memory": {"contains": "fact 4"}}},
        ),
        "Memories retrieved successfully",
    )
    assert filtered["text_mem"][0]["total_nodes"] == 1
    ids = [a["memory_id"] for a in added[:2]] + ["00000000-0000-0000-0000-000000000000", "junk"]
    by_ids = ok(
        client.post("/product/get_memory_by_ids", json=ids), "Memories retrieved successfully"
    )
    assert [m["id"] for m in by_ids["memories"]] == ids[:2]
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/product/get_memory/{missing}").json() == {
        "code": 200,
        "message": f"Memory with ID {missing} not found",
        "data": None,
    }


def test_delete_memory(client: TestClient) -> None:
    added = add(client, writable_cube_ids=["alice"], messages=[
        {"role": "user", "content": t} for t in ("Keep me.", "Drop me.", "Drop me too, please.")
    ])  # fmt: skip
    empty = client.post("/product/delete_memory", json={"writable_cube_ids": ["alice"]})
    assert empty.status_code == 200
    assert empty.json()["data"]["status"] == "failure"
    assert empty.json()["message"].startswith("filter cannot be empty")
    by_id = client.post(
        "/product/delete_memory",
        json={"writable_cube_ids": ["alice"], "memory_ids": [added[1]["memory_id"]]},
    )
    assert ok(by_id, "Memories deleted successfully") == {"status": "success", "deleted": 1}
    by_filter = client.post(
        "/product/delete_memory",
        json={"writable_cube_ids": ["alice"], "filter": {"memory": {"contains": "too"}}},
    )
    assert ok(by_filter, "Memories deleted successfully")["deleted"] == 1
    left = ok(client.post("/product/get_memory", json={"mem_cube_id": "alice"}),
              "Memories retrieved successfully")  # fmt: skip
    assert [m["memory"] for m in left["text_mem"][0]["memories"]] == ["Keep me."]


def test_envelopes_of_errors(client: TestClient) -> None:
    missing = client.post("/product/search", json={"user_id": "u"})
    assert missing.status_code == 422
    body = missing.json()
    assert body["code"] == 422 and body["data"] is None
    assert body["message"] == (
        "Parameter validation error on POST /product/search: "
        "[body -> query] Field required (type: missing)"
    )
    assert body["detail"][0]["loc"] == ["body", "query"]
    assert client.post("/product/get_all", json={"memory_type": "text_mem"}).status_code == 422
    bad = client.post(
        "/product/search", json={"query": "x", "user_id": "u", "filter": {"bogus": 1}}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == 400 and "bogus" in bad.json()["message"]
    assert bad.json()["data"] is None
    unknown = client.post("/product/search", json={"query": "x", "user_id": "u",
                                                   "readable_cube_ids": ["nope"]})  # fmt: skip
    assert unknown.status_code == 404
    assert unknown.json()["code"] == 404 and unknown.json()["error_code"] == "WORKSPACE_NOT_FOUND"
    empty = client.post("/product/add", json={"writable_cube_ids": ["alice"], "messages": "   "})
    assert ok(empty, "Memory added successfully") == []
    bad_messages = client.post("/product/add", json={"messages": [{"role": 1, "content": "x"}]})
    assert bad_messages.status_code == 400 and bad_messages.json()["code"] == 400
    for route in ("chat/complete", "suggestions", "feedback", "scheduler/status", "create_cube"):
        assert client.post(f"/product/{route}", json={}).status_code == 404


def test_exist_mem_cube_id_and_a_workspace_key(client: TestClient) -> None:
    assert (
        ok(client.post("/product/exist_mem_cube_id", json={"mem_cube_id": "alice"}), "Successfully")
        is True
    )
    assert (
        ok(client.post("/product/exist_mem_cube_id", json={"mem_cube_id": "zed"}), "Successfully")
        is False
    )
    app: Any = client.app
    key = app.state.keys.create("alice", ["read", "write"])[0]
    h = {"authorization": f"Bearer {key}"}
    own = client.post("/product/exist_mem_cube_id", json={"mem_cube_id": "alice"}, headers=h)
    other = client.post("/product/exist_mem_cube_id", json={"mem_cube_id": "default"}, headers=h)
    assert own.json()["data"] is True and other.json()["data"] is False
    # user_id never widens access: a default-cube memory stays out of reach
    [mine] = add(client, writable_cube_ids=["default"], messages="Admin secret fact.")
    refused = client.post(
        "/product/search",
        json={"query": "secret", "user_id": "default", "readable_cube_ids": ["default"]},
        headers=h,
    )
    assert refused.status_code == 404 and refused.json()["error_code"] == "WORKSPACE_NOT_FOUND"
    fallback = client.post(
        "/product/search", json={"query": "secret", "user_id": "default"}, headers=h
    )
    assert [g["cube_id"] for g in fallback.json()["data"]["text_mem"]] == ["alice"]
    by_id = client.get(f"/product/get_memory/{mine['memory_id']}", headers=h).json()
    assert by_id["data"] is None
    read_only = {"authorization": f"Bearer {app.state.keys.create('alice', ['read'])[0]}"}
    no_write = client.post("/product/add", json={"messages": "x"}, headers=read_only)
    assert no_write.status_code == 403 and no_write.json()["code"] == 403


def fake_llm(messages: list[dict[str, str]]) -> list[str]:
    """A stand-in for an LLM extractor: one fact per sentence of the user's messages."""
    out = []
    for m in messages:
        if m["role"] == "user":
            out += [s.strip() + "." for s in m["content"].split(".") if s.strip()]
    return out


def test_mode_fine_uses_the_extractor_when_there_is_one(client: TestClient) -> None:
    text = "I moved to Porto. I have two cats"
    fast = add(client, writable_cube_ids=["alice"], messages=text, async_mode="sync", mode="fine")
    assert [d["memory"] for d in fast] == [text]  # no LLM: fine behaves like fast
    app: Any = client.app
    items: Items = app.state.items
    items.extractor = fake_llm
    fine = add(client, writable_cube_ids=["alice"], messages=text, async_mode="sync", mode="fine")
    assert [d["memory"] for d in fine] == ["I moved to Porto.", "I have two cats."]
    queued = add(client, writable_cube_ids=["alice"], messages="One. Two", mode="fine")
    assert [d["memory"] for d in queued] == ["One. Two"]  # async: the fast extraction now


def test_openapi_example_of_the_add_request(client: TestClient) -> None:
    """MemOS's test_product_models: the add request's schema carries a model-level example
    whose messages are a non-empty [{role, content}] list, with user_id and writable_cube_ids."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]["APIADDRequest"]
    example = schema["example"]
    assert isinstance(example["messages"], list) and example["messages"]
    assert all({"role", "content"} <= m.keys() for m in example["messages"])
    assert "user_id" in example and "writable_cube_ids" in example
    assert add(client, **{**example, "writable_cube_ids": ["alice"]})


@pytest.mark.parametrize(
    "field", ["top_k", "pref_top_k", "tool_mem_top_k", "skill_mem_top_k", "relativity"]
)
@pytest.mark.parametrize("value", [False, True, "5"])
def test_numbers_of_a_search_are_numbers(client: TestClient, field: str, value: Any) -> None:
    """MemOS's clients send JSON numbers; ``false`` is not 0 and ``"5"`` is not 5 (422 in
    MemOS's envelope), while an integral ``10.0`` is the integer 10."""
    body = {"query": "x", "user_id": "alice", field: value}
    refused = client.post("/product/search", json=body)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert answer["code"] == 422 and answer["data"] is None
    assert answer["detail"][0]["loc"] == ["body", field]
    assert f"[body -> {field}]" in answer["message"]
    fine = {"query": "x", "user_id": "alice", "top_k": 10.0, "relativity": 1}
    ok(client.post("/product/search", json=fine), "Search completed successfully")


def test_page_numbers_of_get_memory_are_numbers(client: TestClient) -> None:
    for value in (False, "1"):
        response = client.post("/product/get_memory", json={"mem_cube_id": "alice", "page": value})
        assert response.status_code == 422 and response.json()["code"] == 422
