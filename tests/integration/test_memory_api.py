"""Search and context over HTTP (DiffMem's /memory routes and the /v1 routes) and from
the CLI (``memhub search``, ``context``, ``reindex`` on a local data dir).

The app is the real one over SQLite and a local blob directory (``apiclient``);
errors are the JSON body memhub renders for every failure, and bad input is a
4xx, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client, assert_error
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from memhub.cli.main import app as cli_app
from memhub.store import open_store

RULES_MD = """# Репозиторий

## ВАЖНО: миграции

Схему базы меняем только миграциями.

## Сборка

Сборка идёт в контейнере, кэш зависимостей общий.
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path / "data", raise_server_exceptions=False) as client:
        yield client


def put(client: TestClient, workspace: str, path: str, text: str) -> None:
    response = client.put(f"/v1/workspaces/{workspace}/files/{path}", content=text.encode())
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def alice(client: TestClient) -> str:
    """A workspace besides the admin key's own, with a few notes."""
    assert client.post("/v1/workspaces", json={"name": "alice"}).status_code == 201
    put(client, "alice", "CLAUDE.md", RULES_MD)
    put(client, "alice", "notes/garden.md", "# Garden\n\n## Tomatoes\n\nRepot the seedlings.\n")
    put(client, "alice", "notes/kitchen.md", "# Kitchen\n\n## Soup\n\nTomato soup recipe.\n")
    return "alice"


def key_for(client: TestClient, workspace: str, scopes: list[str]) -> dict[str, str]:
    app: Any = client.app
    key = app.state.keys.create(workspace, scopes)[0]
    return {"authorization": f"Bearer {key}"}


# --- DiffMem's routes ------------------------------------------------------------------------


def test_seed_search_in_the_workspace_user_id_names(client: TestClient, alice: str) -> None:
    response = client.post("/memory/search", json={"query": "tomatoes", "k": 1, "user_id": alice})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert len(body["results"]) == 1
    hit = body["results"][0]
    assert hit["path"] == "notes/garden.md" and hit["heading"] == ["Garden", "Tomatoes"]
    assert {"line_start", "line_end", "rev", "score", "snippet"} <= hit.keys()
    assert "**Tomatoes**" in hit["snippet"]
    assert body["metadata"]["user_id"] == alice and body["metadata"]["k"] == 1
    assert body["metadata"]["total"] == 2

    # without user_id: the key's own workspace, which has none of it
    own = client.post("/memory/search", json={"query": "tomatoes"}).json()
    assert own["results"] == [] and own["metadata"]["user_id"] == "default"


def test_seed_routes_keep_to_the_keys_workspace(client: TestClient, alice: str) -> None:
    assert client.post("/v1/workspaces", json={"name": "bob"}).status_code == 201
    bob_reader = key_for(client, "bob", ["read"])
    for route, body in [
        ("/memory/search", {"query": "tomato", "user_id": alice}),
        ("/memory/context", {"conversation": [], "user_id": alice}),
        ("/memory/orchestrated-search", {"conversation": [], "user_id": alice}),
        ("/memory/rebuild-index", {"user_id": alice}),
    ]:
        response = client.post(route, json=body, headers=bob_reader)
        assert_error(response, 404, "WORKSPACE_NOT_FOUND")
    own = client.post("/memory/search", json={"query": "tomato"}, headers=bob_reader)
    assert own.status_code == 200 and own.json()["metadata"]["user_id"] == "bob"
    # rebuilding an index is a write
    rebuild = client.post("/memory/rebuild-index", json={}, headers=bob_reader)
    assert_error(rebuild, 403)


def test_seed_context(client: TestClient, alice: str) -> None:
    conversation = [
        {"role": "user", "content": "Как собирается проект?"},
        {"role": "assistant", "content": "Посмотрю."},
        {"role": "user", "content": "И где кэш зависимостей при сборке?"},
    ]
    response = client.post(
        "/memory/context",
        json={"conversation": conversation, "depth": "wide", "user_id": alice, "max_tokens": 500},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["metadata"]["depth"] == "wide" and body["metadata"]["max_tokens"] == 500
    sections = {(s["section"], tuple(s["heading"])) for s in body["sources"]}
    assert ("Rules", ("Репозиторий", "ВАЖНО: миграции")) in sections
    assert ("Relevant memories", ("Репозиторий", "Сборка")) in sections
    assert "кэш зависимостей" in body["context"]
    assert body["tokens"] == sum(s["tokens"] for s in body["sources"]) <= 500


def test_seed_orchestrated_search_uses_the_conversation(client: TestClient, alice: str) -> None:
    conversation = [
        {"role": "user", "content": "something about the kitchen"},
        {"role": "user", "content": "what soup can I make?"},
    ]
    response = client.post(
        "/memory/orchestrated-search", json={"conversation": conversation, "user_id": alice}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["results"][0]["path"] == "notes/kitchen.md"
    assert body["metadata"]["orchestrator"] == "offline"
    assert body["metadata"]["query"].startswith("what soup can I make?")


def test_seed_rebuild_index(client: TestClient, alice: str) -> None:
    response = client.post("/memory/rebuild-index", json={"user_id": alice})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["stats"]["files"] == 3
    assert body["stats"]["blocks"] == 4  # two CLAUDE.md sections, one per note
    assert body["stats"]["rev"] == client.get(f"/v1/workspaces/{alice}").json()["head_rev"]
    # no body: the caller's own workspace
    own = client.post("/memory/rebuild-index")
    assert own.status_code == 200 and own.json()["metadata"]["user_id"] == "default"
    search = client.post("/memory/search", json={"query": "soup", "user_id": alice}).json()
    assert [h["path"] for h in search["results"]] == ["notes/kitchen.md"]


# --- /v1 ---------------------------------------------------------------------------------------


def test_v1_search_post_and_get(client: TestClient) -> None:
    for i in range(7):
        put(client, "default", f"logs/{i}.md", f"## Day {i}\n\nthe harbour crane {i}\n")
    put(client, "default", "other/x.md", "## X\n\nharbour master\n")

    first = client.post(f"{WS}/search", json={"query": "harbour", "k": 3})
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 8 and page["offset"] == 0 and page["next_offset"] == 3
    seen = [h["path"] for h in page["results"]]
    while page["next_offset"] is not None:
        page = client.post(
            f"{WS}/search", json={"query": "harbour", "k": 3, "offset": page["next_offset"]}
        ).json()
        seen += [h["path"] for h in page["results"]]
    assert len(seen) == len(set(seen)) == 8

    filtered = client.post(
        f"{WS}/search", json={"query": "harbour", "path_prefix": "logs/", "k": 50}
    ).json()
    assert filtered["total"] == 7
    assert all(h["path"].startswith("logs/") for h in filtered["results"])

    got = client.get(f"{WS}/search", params={"q": "harbour", "k": 2, "offset": 6, "prefix": "logs"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["total"] == 7 and len(body["results"]) == 1 and body["next_offset"] is None

    dated = client.post(
        f"{WS}/search", json={"query": "harbour", "since": "2000-01-01", "until": 4102444800}
    )
    assert dated.status_code == 200 and dated.json()["total"] == 8
    future = client.post(f"{WS}/search", json={"query": "harbour", "since": "2100-01-01T00:00Z"})
    assert future.json()["total"] == 0


def test_v1_context_and_index_routes(client: TestClient, alice: str) -> None:
    status = client.get(f"/v1/workspaces/{alice}/index")
    assert status.status_code == 200 and status.json()["blocks"] == 4
    rebuilt = client.post(f"/v1/workspaces/{alice}/index/rebuild")
    assert rebuilt.status_code == 200 and rebuilt.json()["files"] == 3

    response = client.post(
        f"/v1/workspaces/{alice}/context",
        json={"conversation": [{"content": "миграции схемы"}], "depth": "basic", "max_tokens": 60},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokens"] <= 60 and body["depth"] == "basic"
    assert body["tokens"] == sum(s["tokens"] for s in body["sources"])
    assert [s["section"] for s in body["sources"]] == ["Rules"]
    assert body["markdown"].startswith("## Rules")
    tiny = client.post(f"/v1/workspaces/{alice}/context", json={"max_tokens": 1}).json()
    assert tiny["sources"] == [] and tiny["skipped"] >= 1 and tiny["markdown"] == ""


BAD_SEARCHES: list[tuple[str, Any]] = [
    ("k zero", {"query": "x", "k": 0}),
    ("k too big", {"query": "x", "k": 100_000}),
    ("k not a number", {"query": "x", "k": "ten"}),
    ("negative offset", {"query": "x", "offset": -1}),
    ("query too long", {"query": "x" * 10_001}),
    ("query not a string", {"query": {"$ne": 1}}),
    ("file kinds not a list", {"query": "x", "file_kinds": 7}),
    ("since not a date", {"query": "x", "since": "last tuesday"}),
    ("until not a date", {"query": "x", "until": [2024]}),
    ("path prefix escapes", {"query": "x", "path_prefix": "../secrets"}),
    ("path prefix with NUL", {"query": "x", "path_prefix": "a\x00b"}),
    ("body is a list", ["x"]),
]


@pytest.mark.parametrize(("name", "body"), BAD_SEARCHES, ids=[n for n, _ in BAD_SEARCHES])
def test_v1_search_rejects_bad_input_with_json_4xx(
    client: TestClient, name: str, body: Any
) -> None:
    response = client.post(f"{WS}/search", json=body)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    assert_error(response, response.status_code)


@pytest.mark.parametrize(
    "params",
    [{"k": "abc"}, {"k": 0}, {"offset": -5}, {"q": "x" * 10_001}, {"prefix": "a/../b"}],
)
def test_v1_search_get_rejects_bad_input_with_json_4xx(
    client: TestClient, params: dict[str, Any]
) -> None:
    response = client.get(f"{WS}/search", params=params)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


BAD_CONTEXTS: list[tuple[str, Any]] = [
    ("unknown depth", {"depth": "everything"}),
    ("zero budget", {"max_tokens": 0}),
    ("budget not a number", {"max_tokens": "lots"}),
    ("conversation not a list", {"conversation": "hello"}),
    ("message not an object", {"conversation": ["hello"]}),
    ("too many messages", {"conversation": [{"content": "hi"}] * 201}),
    ("message too long", {"conversation": [{"content": "x" * 100_001}]}),
]


@pytest.mark.parametrize(("name", "body"), BAD_CONTEXTS, ids=[n for n, _ in BAD_CONTEXTS])
def test_context_rejects_bad_input_with_json_4xx(client: TestClient, name: str, body: Any) -> None:
    for route in (f"{WS}/context", "/memory/context"):
        payload = dict(body)
        payload.setdefault("conversation", [])
        response = client.post(route, json=payload)
        assert 400 <= response.status_code < 500, (route, name, response.text)
        assert_error(response, response.status_code)


def test_seed_search_rejects_bad_input(client: TestClient) -> None:
    for body in ({}, {"query": "x", "k": 0}, {"query": "x", "user_id": "no such ws!"}):
        response = client.post("/memory/search", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert_error(response, response.status_code)
    not_json = client.post(
        "/memory/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(not_json, 422)


def test_a_match_longer_than_the_snippet_is_shown_whole(client: TestClient) -> None:
    token = "x" * 120 + "z" * 130  # one word, longer than a snippet
    put(client, "default", "notes/blob.md", f"## Blob\n\nbefore {token} after\n")
    for response in (
        client.post(f"{WS}/search", json={"query": token}),
        client.get(f"{WS}/search", params={"q": token}),
        client.post("/memory/search", json={"query": token}),
    ):
        assert response.status_code == 200, response.text
        assert f"**{token}**" in response.json()["results"][0]["snippet"]


def test_unknown_workspace_is_404(client: TestClient) -> None:
    for response in (
        client.post("/v1/workspaces/nope/search", json={"query": "x"}),
        client.get("/v1/workspaces/nope/search", params={"q": "x"}),
        client.post("/v1/workspaces/nope/context", json={}),
        client.get("/v1/workspaces/nope/index"),
        client.post("/memory/search", json={"query": "x", "user_id": "nope"}),
    ):
        assert_error(response, 404, "WORKSPACE_NOT_FOUND")


# --- the CLI on a local data dir ------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, cli_env: Path) -> Path:
    data = tmp_path / "cli-data"
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'memhub.db'}", (data / "blobs").as_uri())
    try:
        for workspace in ("default", "work"):
            store.create_workspace(workspace)
        store.put("default", "CLAUDE.md", RULES_MD.encode())
        store.put("default", "notes/boat.md", b"# Boat\n\n## Engine\n\nThe outboard engine.\n")
        store.put("work", "notes/desk.md", b"# Desk\n\n## Chair\n\nA standing desk.\n")
    finally:
        store.close()
    return data


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli_app, list(args))
    return result


def test_cli_search(data_dir: Path) -> None:
    result = run("search", "engines", "--data-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [h["path"] for h in found["results"]] == ["notes/boat.md"]

    result = run("search", "engine", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # results on stdout: a pipe gets them all
    assert lines[0].startswith("notes/boat.md:3-5  Boat / Engine  rev 2")
    assert "**engine**" in lines[1]

    # paths and headings are printed as they are, never read as markup
    store = open_store(f"sqlite:///{data_dir / 'memhub.db'}", (data_dir / "blobs").as_uri())
    try:
        store.put("default", "notes/[/draft].md", b"# [v2] [bold]\n\nkayak engine\n")
    finally:
        store.close()
    result = run("search", "kayak", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("notes/[/draft].md:1-3  [v2] [bold]  rev 3")

    other = run("search", "desk", "--workspace", "work", "--data-dir", str(data_dir), "--json")
    assert [h["path"] for h in json.loads(other.stdout)["results"]] == ["notes/desk.md"]
    none = run("search", "desk", "--prefix", "notes/", "--data-dir", str(data_dir), "--json")
    assert json.loads(none.stdout)["results"] == []
    assert (data_dir / "index" / "cli" / "default").is_dir()

    missing = run("search", "x", "--workspace", "nope", "--data-dir", str(data_dir))
    assert missing.exit_code == 1 and "nope" in missing.output  # 1: the operation failed


def test_cli_context(data_dir: Path, tmp_path: Path) -> None:
    result = run("context", "как собрать?", "--depth", "wide", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("## Rules")
    assert "миграциями" in result.stdout

    conversation = tmp_path / "conversation.json"
    conversation.write_text(json.dumps([{"role": "user", "content": "the outboard engine"}]))
    result = CliRunner().invoke(
        cli_app,
        ["context", "-", "--conversation", str(conversation), "--depth", "wide", "--json",
         "--max-tokens", "200", "--data-dir", str(data_dir)],
        input="and its fuel?",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["tokens"] <= 200 and body["depth"] == "wide"
    assert any(s["path"] == "notes/boat.md" for s in body["sources"])

    bad = run("context", "x", "--depth", "everything", "--data-dir", str(data_dir))
    assert bad.exit_code == 2 and "--depth" in bad.output


def test_cli_reindex(data_dir: Path) -> None:
    result = run("reindex", "--data-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"files": 2, "blocks": 3, "rev": 2, "problems": []}
    result = run("reindex", "--workspace", "work", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "indexed 1 blocks of 1 files at rev 1" in result.output
