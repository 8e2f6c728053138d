"""MemOS's own router tests (``tests/api/test_server_router.py``, v2.0.31) restated
over HTTP against one real ``memhub serve`` for the module, plus the add → search →
get_all → get_memory → delete round trip and cube isolation with two keys.

Upstream runs these in process with the handlers mocked; here every assertion holds
over the wire, on the real store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import ServerProcess

pytestmark = pytest.mark.e2e


@dataclass
class Server:
    base_url: str
    key: str


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> Server:
    """The module's one ``memhub serve``."""
    return Server(module_server.base_url, module_server.key)


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, timeout=30, headers={"authorization": f"Bearer {server.key}"}
    ) as client:
        for cube in ("cube-a", "cube-b"):
            assert client.post("/v1/workspaces", json={"name": cube}).status_code == 201
        yield client


def key_client(server: Server, admin: httpx.Client, cube: str) -> httpx.Client:
    made = admin.post("/admin/keys", json={"user_name": cube, "scopes": ["read", "write"]})
    assert made.status_code == 200, made.text
    return httpx.Client(
        base_url=server.base_url, timeout=30, headers={"X-API-Key": made.json()["key"]}
    )


def envelope(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"code", "message", "data"} <= body.keys()
    assert body["code"] == 200
    return body


# -- test_server_router.py, over the wire ------------------------------------------------


def test_search_valid_input_output(admin: httpx.Client) -> None:
    body = envelope(
        admin.post(
            "/product/search",
            json={"query": "test query", "user_id": "test_user", "mem_cube_id": "cube-a",
                  "top_k": 10},
        )
    )  # fmt: skip
    assert isinstance(body["data"], dict)


def test_search_invalid_input_missing_query(admin: httpx.Client) -> None:
    response = admin.post("/product/search", json={"user_id": "test_user"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422 and body["data"] is None
    assert body["message"].startswith("Parameter validation error on POST /product/search: ")
    assert "[body -> query] Field required (type: missing)" in body["message"]


def test_search_response_format(admin: httpx.Client) -> None:
    body = envelope(
        admin.post("/product/search", json={"query": "q", "user_id": "u", "mem_cube_id": "cube-a"})
    )
    assert body["message"] == "Search completed successfully"
    assert "text_mem" in body["data"]


def test_add_valid_input_output(admin: httpx.Client) -> None:
    body = envelope(
        admin.post(
            "/product/add",
            json={"mem_cube_id": "cube-a", "user_id": "test_user",
                  "memory_content": "test memory content"},
        )
    )  # fmt: skip
    assert isinstance(body["data"], list)


def test_add_response_format_without_user_id(admin: httpx.Client) -> None:
    body = envelope(
        admin.post("/product/add", json={"mem_cube_id": "cube-a", "memory_content": "no user id"})
    )
    assert body["message"] == "Memory added successfully"
    assert isinstance(body["data"], list)


def test_get_all_valid_input_output(admin: httpx.Client) -> None:
    body = envelope(
        admin.post("/product/get_all", json={"user_id": "cube-a", "memory_type": "text_mem"})
    )
    assert isinstance(body["data"], list)
    assert body["message"] == "Memories retrieved successfully"


def test_get_all_with_search_query(admin: httpx.Client) -> None:
    body = envelope(
        admin.post(
            "/product/get_all",
            json={"user_id": "cube-a", "memory_type": "text_mem", "search_query": "memory"},
        )
    )
    assert isinstance(body["data"], list)


def test_get_all_invalid_input_missing_user_id(admin: httpx.Client) -> None:
    response = admin.post("/product/get_all", json={"memory_type": "text_mem"})
    assert response.status_code == 422
    assert response.json()["code"] == 422


# -- the round trip and isolation --------------------------------------------------------


def test_add_search_get_all_get_memory_delete_round_trip(admin: httpx.Client) -> None:
    added = envelope(
        admin.post(
            "/product/add",
            json={
                "user_id": "alice",
                "writable_cube_ids": ["cube-a"],
                "messages": [
                    {"role": "user", "content": "Alice's sister lives in Kyoto."},
                    {"role": "assistant", "content": "Kyoto is lovely."},
                ],
                "async_mode": "sync",
                "custom_tags": ["family"],
            },
        )
    )["data"]
    assert [(a["memory"], a["cube_id"], a["memory_type"]) for a in added] == [
        ("Alice's sister lives in Kyoto.", "cube-a", "LongTermMemory")
    ]
    memory_id = added[0]["memory_id"]
    found = envelope(
        admin.post(
            "/product/search",
            json={"query": "where does the sister live Kyoto", "user_id": "alice",
                  "readable_cube_ids": ["cube-a"]},
        )
    )["data"]["text_mem"]  # fmt: skip
    assert found[0]["cube_id"] == "cube-a"
    assert found[0]["memories"][0]["id"] == memory_id
    assert found[0]["memories"][0]["metadata"]["tags"] == ["family"]
    every = envelope(
        admin.post(
            "/product/get_all",
            json={"user_id": "alice", "memory_type": "text_mem", "mem_cube_ids": ["cube-a"]},
        )
    )["data"]
    assert memory_id in [n["id"] for n in every[0]["memories"][0]["nodes"]]
    one = envelope(admin.get(f"/product/get_memory/{memory_id}"))
    assert one["message"] == "Memory retrieved successfully"
    assert one["data"]["memory"] == "Alice's sister lives in Kyoto."
    gone = envelope(
        admin.post(
            "/product/delete_memory",
            json={"writable_cube_ids": ["cube-a"], "memory_ids": [memory_id]},
        )
    )
    assert gone["data"]["status"] == "success"
    absent = envelope(admin.get(f"/product/get_memory/{memory_id}"))
    assert absent == {
        "code": 200,
        "message": f"Memory with ID {memory_id} not found",
        "data": None,
    }
    # the item is a file: its history outlives the delete
    history = admin.get(f"/v1/workspaces/cube-a/items/{memory_id}/history").json()["versions"]
    assert [v["deleted"] for v in history] == [True, False]


def test_cube_isolation_with_two_keys(server: Server, admin: httpx.Client) -> None:
    with key_client(server, admin, "cube-a") as a, key_client(server, admin, "cube-b") as b:
        for client, cube, text in (
            (a, "cube-a", "Marker Quokkadrome lives in A."),
            (b, "cube-b", "Marker Wallabyte lives in B."),
        ):
            envelope(
                client.post("/product/add", json={"writable_cube_ids": [cube], "messages": text})
            )
        for client, mine, theirs in ((a, "cube-a", "cube-b"), (b, "cube-b", "cube-a")):
            for route, body in (
                ("search", {"query": "marker", "user_id": theirs, "readable_cube_ids": [theirs]}),
                ("add", {"writable_cube_ids": [theirs], "messages": "intrusion"}),
                ("get_memory", {"mem_cube_id": theirs}),
                ("get_all", {"user_id": "x", "memory_type": "text_mem", "mem_cube_ids": [theirs]}),
                ("delete_memory", {"writable_cube_ids": [theirs], "filter": {"id": {"ne": ""}}}),
            ):
                refused = client.post(f"/product/{route}", json=body)
                assert refused.status_code == 404, (route, refused.text)
                assert refused.json()["error_code"] == "WORKSPACE_NOT_FOUND"
                assert refused.json()["code"] == 404
            # user_id naming the other cube does not widen access: the key's own cube
            own = envelope(
                client.post("/product/search", json={"query": "marker", "user_id": theirs})
            )
            [group] = own["data"]["text_mem"]
            assert group["cube_id"] == mine
            texts = [m["memory"] for m in group["memories"]]
            assert texts and all(mine[-1].upper() + "." in t for t in texts), texts
        a_items = envelope(a.post("/product/get_memory", json={"mem_cube_id": "cube-a"}))
        a_ids = [m["id"] for m in a_items["data"]["text_mem"][0]["memories"]]
        seen_by_b = envelope(b.post("/product/get_memory_by_ids", json=a_ids))
        assert seen_by_b["data"]["memories"] == []
        assert envelope(b.get(f"/product/get_memory/{a_ids[0]}"))["data"] is None
        assert (
            envelope(b.post("/product/exist_mem_cube_id", json={"mem_cube_id": "cube-a"}))["data"]
            is False
        )
        # nothing was written or deleted across: A still has its marker
        assert "Quokkadrome" in a.post("/product/get_memory", json={"mem_cube_id": "cube-a"}).text


def test_no_key_is_401(server: Server) -> None:
    response = httpx.post(
        f"{server.base_url}/product/search", json={"query": "q", "user_id": "u"}, timeout=10
    )
    assert response.status_code == 401


def test_listed_items_are_the_item_files(admin: httpx.Client) -> None:
    """The catalog is derived: the items listed over /v1 are the item files in the store."""
    listed = admin.get("/v1/workspaces/cube-a/items", params={"limit": 1000}).json()
    files = admin.get("/v1/workspaces/cube-a/files", params={"prefix": "items/"}).json()
    paths = {f["path"] for f in files["files"]}
    assert {i["path"] for i in listed["items"]} == paths


def test_items_cli_against_the_server(server: Server, admin: httpx.Client, memhub_cli: Any) -> None:
    env = {"MEMHUB_SERVER": server.base_url, "MEMHUB_KEY": server.key}
    ws = ["--workspace", "cube-b", "--json"]
    added = memhub_cli("items", "add", "Hana grows basil.", "--tag", "garden", *ws, env=env)
    assert added.returncode == 0, added.stderr
    [item] = json.loads(added.stdout)
    assert item["cube_id"] == "cube-b" and item["action"] == "created"
    found = memhub_cli("items", "search", "basil", *ws, env=env)
    assert [f["item"]["id"] for f in json.loads(found.stdout)] == [item["id"]]
    listed = memhub_cli("items", "ls", "--filter", '{"tags": "garden"}', *ws, env=env)
    assert [i["id"] for i in json.loads(listed.stdout)["items"]] == [item["id"]]
    # what the CLI wrote is what MemOS's API reads
    via_product = admin.get(f"/product/get_memory/{item['id']}").json()["data"]
    assert via_product["memory"] == "Hana grows basil."
    removed = memhub_cli("items", "rm", item["id"], *ws, env=env)
    assert removed.returncode == 0, removed.stderr
    missing = memhub_cli("items", "get", item["id"], "--workspace", "cube-b", env=env)
    assert missing.returncode == 2 and "no memory item" in missing.stderr
