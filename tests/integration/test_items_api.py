"""Memory items over /v1 (``/v1/workspaces/{ws}/items…``): files with front matter,
deduplication, conditional updates, tombstones and history, listing with the MemOS
filter grammar, search restricted to items, and the derived catalog's rebuild.

The app is the real one over SQLite and a local blob directory (``apiclient``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from apiclient import WS, api_client, assert_error
from fastapi.testclient import TestClient

ITEMS = f"{WS}/items"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path / "data", raise_server_exceptions=False) as client:
        yield client


def add(client: TestClient, *items: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(ITEMS, json={"items": list(items)})
    assert response.status_code == 200, response.text
    added: list[dict[str, Any]] = response.json()["items"]
    return added


def listed(client: TestClient, flt: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    response = client.post(f"{ITEMS}/query", json={"filter": flt, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_an_item_is_a_markdown_file_with_front_matter(client: TestClient) -> None:
    [item] = add(
        client,
        {"memory": "Alice moved to Lisbon in March.", "tags": ["travel"], "info": {"a": 1}},
    )
    assert item["action"] == "created"
    assert item["path"] == f"items/default/{item['id']}.md"
    assert item["key"] == "Alice moved to Lisbon in March."
    raw = client.get(f"{WS}/files/{item['path']}")
    assert raw.status_code == 200
    text = raw.text
    assert text.startswith("---\n")
    front, body = text[4:].split("---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["id"] == item["id"]
    assert meta["tags"] == ["travel"]
    assert meta["info"] == {"a": 1}
    assert meta["memory_type"] == "LongTermMemory"
    assert body == "Alice moved to Lisbon in March.\n"
    assert client.get(f"{ITEMS}/{item['id']}").json()["memory"] == item["memory"]


def test_the_same_fact_twice_updates_the_first_item(client: TestClient) -> None:
    [first] = add(client, {"memory": "Bob likes green tea.", "tags": ["food"]})
    [again] = add(client, {"memory": "  bob LIKES green   tea ", "tags": ["drinks"]})
    assert again["action"] == "updated"
    assert again["id"] == first["id"]
    assert again["memory"] == "Bob likes green tea."  # the first wording stays
    assert again["tags"] == ["food", "drinks"]
    assert again["rev"] > first["rev"]
    assert listed(client)["total"] == 1
    # within one batch too; another cube is another item
    batch = add(
        client, {"memory": "Carol runs."}, {"memory": "carol runs!"}, {"memory": "Carol runs.",
        "cube_id": "other"}
    )  # fmt: skip
    assert [b["action"] for b in batch] == ["created", "updated", "created"]
    assert batch[0]["id"] == batch[1]["id"] != batch[2]["id"]


def test_update_is_conditional_on_rev(client: TestClient) -> None:
    [item] = add(client, {"memory": "The meeting is on Monday."})
    stale = item["rev"]
    changed = client.patch(
        f"{ITEMS}/{item['id']}", json={"memory": "The meeting is on Tuesday.", "if_rev": stale}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["memory"] == "The meeting is on Tuesday."
    assert changed.json()["key"] == "The meeting is on Tuesday."
    assert_error(
        client.patch(f"{ITEMS}/{item['id']}", json={"tags": ["x"], "if_rev": stale}),
        412,
        "PRECONDITION_FAILED",
    )
    assert client.get(f"{ITEMS}/{item['id']}").json()["tags"] == []
    assert_error(client.delete(f"{ITEMS}/{item['id']}", params={"if_rev": stale}), 412)


def test_delete_leaves_a_tombstone_and_the_history(client: TestClient) -> None:
    [item] = add(client, {"memory": "Dave's cat is called Miso."})
    client.patch(f"{ITEMS}/{item['id']}", json={"tags": ["pets"]})
    gone = client.delete(f"{ITEMS}/{item['id']}")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert_error(client.get(f"{ITEMS}/{item['id']}"), 404, "NOT_FOUND")
    assert_error(client.delete(f"{ITEMS}/{item['id']}"), 404)
    history = client.get(f"{ITEMS}/{item['id']}/history").json()["versions"]
    assert [v["deleted"] for v in history] == [True, False, False]
    assert history[1]["item"]["tags"] == ["pets"]
    assert history[2]["item"]["tags"] == []
    assert listed(client)["total"] == 0
    # the same fact again comes back at the same id, after the tombstone
    [back] = add(client, {"memory": "Dave's cat is called Miso."})
    assert back["id"] == item["id"] and back["action"] == "created"


def test_list_paging_and_filters(client: TestClient) -> None:
    for i in range(7):
        add(
            client,
            {
                "memory": f"Fact number {i} about things.",
                "tags": ["even"] if i % 2 == 0 else ["odd"],
                "info": {"n": i, "project": "memhub" if i < 3 else "other"},
                "memory_type": "UserMemory" if i == 6 else "LongTermMemory",
                "session_id": f"s{i % 3}",
            },
        )
    first = listed(client, limit=3)
    assert first["total"] == 7 and len(first["items"]) == 3 and first["next_offset"] == 3
    rest = listed(client, offset=3, limit=10)
    assert rest["next_offset"] is None
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert len(set(ids)) == 7
    assert first["items"][0]["memory"] == "Fact number 6 about things."  # newest first

    def memories(flt: dict[str, Any]) -> set[int]:
        return {int(i["memory"].split()[2]) for i in listed(client, flt)["items"]}

    assert memories({"tags": {"contains": "even"}}) == {0, 2, 4, 6}
    assert memories({"info.project": "memhub"}) == {0, 1, 2}
    assert memories({"info.n": {"gte": 2, "lt": 5}}) == {2, 3, 4}
    assert memories({"memory_type": {"in": ["UserMemory"]}}) == {6}
    assert memories({"and": [{"tags": "odd"}, {"session_id": "s1"}]}) == {1}
    assert memories({"or": [{"info.n": 0}, {"and": [{"info.n": {"gt": 4}}, {"tags": "odd"}]}]}) == {
        0,
        5,
    }
    assert memories({"created_at": {"gt": "2000-01-01"}}) == set(range(7))
    assert memories({"created_at": {"lt": "2000-01-01T00:00:00Z"}}) == set()
    assert memories({"memory": {"contains": "NUMBER 3"}}) == {3}
    # the same filter as a JSON query parameter
    got = client.get(ITEMS, params={"filter": json.dumps({"info.n": 4}), "limit": 5})
    assert got.status_code == 200 and [i["info"]["n"] for i in got.json()["items"]] == [4]


@pytest.mark.parametrize(
    "flt",
    [
        {"nope": 1},
        {"tags": {"regex": "x"}},
        {"and": []},
        {"and": "x"},
        {"created_at": {"gt": "not a date"}},
        {"tags": {"in": "x"}},
        {"tags": {}},
    ],
)
def test_bad_filters_are_400(client: TestClient, flt: dict[str, Any]) -> None:
    assert_error(client.post(f"{ITEMS}/query", json={"filter": flt}), 400, "BAD_REQUEST")


def test_bad_input_is_4xx(client: TestClient) -> None:
    assert_error(client.post(ITEMS, json={"items": [{"memory": "   "}]}), 400)
    assert_error(client.post(ITEMS, json={"items": []}), 422)
    assert_error(client.post(ITEMS, json={"items": [{"memory": "x", "cube_id": "../up"}]}), 400)
    assert_error(client.get(f"{ITEMS}/not-a-uuid"), 400)
    assert_error(client.get(ITEMS, params={"filter": "{not json"}), 400)
    assert_error(client.get(ITEMS, params={"filter": "[1]"}), 400)
    assert_error(client.get("/v1/workspaces/nowhere/items"), 404, "WORKSPACE_NOT_FOUND")
    assert listed(client)["total"] == 0


def test_search_is_restricted_to_items(client: TestClient) -> None:
    client.put(f"{WS}/files/notes/lisbon.md", content=b"# Lisbon\n\nLisbon trams are yellow.\n")
    add(
        client,
        {"memory": "Erin visited Lisbon twice.", "tags": ["travel"]},
        {"memory": "Erin's favourite city is Porto, not Lisbon.", "tags": ["opinion"]},
        {"memory": "Erin plays chess."},
    )
    found = client.post(f"{ITEMS}/search", json={"query": "Lisbon"}).json()["results"]
    assert {f["item"]["memory"] for f in found} == {
        "Erin visited Lisbon twice.",
        "Erin's favourite city is Porto, not Lisbon.",
    }
    assert found[0]["relativity"] == 1.0
    assert all(0 < f["relativity"] <= 1 for f in found)
    tagged = client.post(
        f"{ITEMS}/search", json={"query": "Lisbon", "filter": {"tags": {"contains": "travel"}}}
    ).json()["results"]
    assert [f["item"]["memory"] for f in tagged] == ["Erin visited Lisbon twice."]
    # the general search still finds the note and the items
    paths = {
        r["path"] for r in client.post(f"{WS}/search", json={"query": "Lisbon"}).json()["results"]
    }
    assert "notes/lisbon.md" in paths


def test_the_catalog_is_derived_and_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with api_client(data) as client:
        added = add(client, *({"memory": f"Stored fact {i}."} for i in range(5)))
        client.delete(f"{ITEMS}/{added[0]['id']}")
        before = listed(client)
    snapshots = list(data.rglob("items/default.json"))
    assert snapshots, "the catalog leaves a snapshot under the index dir on shutdown"
    with api_client(data) as client:  # from the snapshot
        assert listed(client) == before
    for snapshot in snapshots:
        snapshot.unlink()
    with api_client(data) as client:  # from the store alone
        assert listed(client) == before
        assert listed(client)["total"] == 4
    for snapshot in snapshots:  # a damaged snapshot is rebuilt, not trusted
        snapshot.write_text("{not json")
    shutil.rmtree(data / "index", ignore_errors=True)
    with api_client(data) as client:
        assert listed(client) == before


def test_a_hand_edited_item_file_is_followed(client: TestClient) -> None:
    [item] = add(client, {"memory": "Frank drinks coffee."})
    path = item["path"]
    text = client.get(f"{WS}/files/{path}").text.replace(
        "Frank drinks coffee.", "Frank drinks tea."
    )
    assert client.put(f"{WS}/files/{path}", content=text.encode()).status_code == 200
    assert client.get(f"{ITEMS}/{item['id']}").json()["memory"] == "Frank drinks tea."
    # a file under items/ that is not an item is not listed, and breaks nothing
    client.put(f"{WS}/files/items/default/{item['id']}.md", content=b"no front matter")
    assert listed(client)["total"] == 0
    client.put(f"{WS}/files/items/README.md", content=b"# not an item")
    assert listed(client)["total"] == 0


def test_odd_values_never_reach_a_500(client: TestClient) -> None:
    raw = b'{"items": [{"memory": "NaN fact", "info": {"x": NaN}}]}'
    nan = client.post(ITEMS, content=raw, headers={"content-type": "application/json"})
    assert nan.status_code in (400, 422), nan.text
    [item] = add(client, {"memory": "Ivy likes plums."})
    patched = client.patch(
        f"{ITEMS}/{item['id']}",
        content=b'{"info": {"score": Infinity}}',
        headers={"content-type": "application/json"},
    )
    assert patched.status_code in (400, 422), patched.text
    bad_time = client.post(
        f"{ITEMS}/query",
        content=b'{"filter": {"created_at": {"gt": NaN}}}',
        headers={"content-type": "application/json"},
    )
    assert bad_time.status_code in (400, 422), bad_time.text
    # a hand-edited file whose YAML holds a date and a non-string key stays readable
    text = client.get(f"{WS}/files/{item['path']}").text
    text = text.replace("info: {}\n", "info:\n  when: 2026-01-02\n  7: seven\n")
    assert client.put(f"{WS}/files/{item['path']}", content=text.encode()).status_code == 200
    got = client.get(f"{ITEMS}/{item['id']}")
    assert got.status_code == 200, got.text
    assert got.json()["info"] == {"when": "2026-01-02", "7": "seven"}
    found = client.post("/product/get_memory", json={"mem_cube_id": "default"})
    assert found.status_code == 200


@pytest.mark.parametrize(
    ("route", "field"),
    [("query", "offset"), ("query", "limit"), ("search", "k"), ("search", "relativity")],
)
@pytest.mark.parametrize("value", [False, True, "1"])
def test_numbers_of_a_query_or_search_are_numbers(
    client: TestClient, route: str, field: str, value: Any
) -> None:
    """``false`` is not 0 and ``"1"`` is not 1: what the document says is an integer or a
    number must be one (422), as Schemathesis' negative cases check."""
    add(client, {"memory": "One fact to find."})
    body: dict[str, Any] = {"query": "fact"} if route == "search" else {}
    response = client.post(f"{ITEMS}/{route}", json={**body, field: value})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["context"]["errors"][0]["loc"] == ["body", field]
    assert client.post(f"{ITEMS}/{route}", json={**body, field: 1}).status_code == 200


def test_if_rev_of_an_update_is_a_number(client: TestClient) -> None:
    [item] = add(client, {"memory": "A fact to change."})
    patched = client.patch(f"{ITEMS}/{item['id']}", json={"memory": "Changed.", "if_rev": True})
    assert_error(patched, 422, "VALIDATION_ERROR")
    assert client.get(f"{ITEMS}/{item['id']}").json()["memory"] == "A fact to change."
