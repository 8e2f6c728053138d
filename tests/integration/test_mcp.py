"""The MCP server driven by the SDK's own client, in process.

In memory (``Client(server)``) over a :class:`FixedConnector` to the real app,
and over streamable HTTP to the app's own ``/mcp`` route (``httpx2`` over
ASGI, the lifespan running), with real keys: the full agent flow, errors an
agent can act on, a read-only key, and workspace isolation through every tool,
the file resource and the prompt.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from apiclient import build_app
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceUpdatedNotification
from starlette.requests import Request

from mcp import Client
from mcp_agent import READ_TOOLS, agent_flow, call, error
from memhub.errors import FileNotFound, Forbidden, Unauthorized, WorkspaceNotFound
from memhub.mcp import server as mcp_server
from memhub.mcp.connect import FixedConnector, index_dir
from memhub.mcp.server import build_server
from memhub.mcp.services import ServiceConnector, ServiceHub

A, B = "alpha", "beta"
MARKER_A = "Zorblaxquintessa"


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = build_app(tmp_path)
    for ws in (A, B):
        app.state.store.create_workspace(ws, exist_ok=True)
    keys = app.state.keys
    app.state.mcp_keys = {
        "a": keys.create(A, ["read", "write"])[0],
        "a_read": keys.create(A, ["read"])[0],
        "b": keys.create(B, ["read", "write"])[0],
        "admin": app.state.test_key,
    }
    return app


@asynccontextmanager
async def in_memory(
    app: FastAPI, key: str, workspace: str, **options: Any
) -> AsyncIterator[Client]:
    async with app.router.lifespan_context(app):
        hub = ServiceHub(app.state, app.state.keys.verify(key).principal(), workspace)
        async with Client(build_server(FixedConnector(hub), follow=hub), **options) as client:
            yield client


@asynccontextmanager
async def over_http(
    app: FastAPI, key: str | None, headers: dict[str, str] | None = None, mode: str = "auto"
) -> AsyncIterator[Client]:
    sent = {"authorization": f"Bearer {key}"} if key else {}
    async with app.router.lifespan_context(app):
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://testserver",
            headers={**sent, **(headers or {})},
        )
        async with (
            http,
            Client(
                streamable_http_client("http://testserver/mcp", http_client=http), mode=mode
            ) as c,
        ):
            yield c


@asynccontextmanager
async def from_outside(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client of ``app`` (its requests are not marked in-process), with the
    app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def test_flow_in_memory(app: FastAPI) -> None:
    async def test() -> None:
        async with in_memory(app, app.state.mcp_keys["a"], A) as client:
            await agent_flow(client)

    run(test)


def test_flow_over_http_mount(app: FastAPI) -> None:
    async def test() -> None:
        async with over_http(app, app.state.mcp_keys["a"]) as client:
            await agent_flow(client)
        # it all happened in A, the key's workspace
        assert app.state.store.list_files(A, prefix="notes/")
        assert not app.state.store.list_files(B, prefix="notes/")

    run(test)


def test_tool_schemas_are_described(app: FastAPI) -> None:
    async def test() -> None:
        async with in_memory(app, app.state.mcp_keys["a"], A) as client:
            tools = (await client.list_tools()).tools
        for t in tools:
            assert t.description and len(t.description) > 30, t.name
            assert t.output_schema is not None, t.name
            assert "$ref" not in json.dumps(t.output_schema), t.name  # inlined for clients
            assert t.annotations is not None
            assert t.annotations.read_only_hint is (t.name in READ_TOOLS), t.name
            for name, prop in t.input_schema.get("properties", {}).items():
                assert prop.get("description"), (t.name, name)

    run(test)


def test_errors_name_the_next_step(app: FastAPI) -> None:
    async def test() -> None:
        async with in_memory(app, app.state.mcp_keys["a"], A) as client:
            await call(client, "write_file", path="projects/memhub/plan.md", content="x")
            typo = await error(client, "read_file", path="projects/memhub/plna.md")
            assert "Did you mean: projects/memhub/plan.md" in typo
            bad = await error(client, "read_file", path="../etc/passwd")
            assert "INVALID_PATH" in bad and "Next step" in bad
            rev = await error(client, "diff_file", path="projects/memhub/plan.md", from_rev=999)
            assert "NOT_FOUND" in rev
            await call(client, "write_file", path="other.md", content="y")
            wrong = await error(
                client, "write_file", path="other.md", content="z", base_rev=1
            )  # rev 1 is plan.md's
            assert "not of other.md" in wrong
            app.state.store.put(A, "big.bin", b"x" * (4 * 1024 * 1024 + 1))
            big = await error(client, "read_file", path="big.bin")
            assert "PAYLOAD_TOO_LARGE" in big and "memhub pull" in big

    run(test)


def test_read_only_key_lists_and_runs_read_tools_only(app: FastAPI) -> None:
    async def test() -> None:
        async with over_http(app, app.state.mcp_keys["a_read"]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == READ_TOOLS
            text = await error(client, "write_file", path="notes/nope.md", content="x")
            assert "FORBIDDEN" in text and "write" in text
            for tool, arguments in (
                ("add_memory", {"text": "The sky is green."}),
                ("delete_memory", {"id": "0" * 32}),
                ("process_session", {"transcript": "Met Ana in Porto.", "session_id": "ro"}),
                ("commit_session", {"session_id": "ro"}),
                ("discard_session", {"session_id": "ro"}),
            ):
                assert "FORBIDDEN" in await error(client, tool, **arguments), tool
            assert (await call(client, "list_memories"))["memories"] == []
            assert (await call(client, "list_files"))["files"] == []
        with pytest.raises(FileNotFound):
            app.state.store.stat(A, "notes/nope.md")

    run(test)


def test_workspace_isolation_through_every_tool(app: FastAPI) -> None:
    store = app.state.store
    path = "vault/secret.md"  # the marker is in the content only: errors may echo a path
    store.put(A, path, f"# Vault\nThe word is {MARKER_A}.\n".encode(), message=MARKER_A)
    secret_rev = store.stat(A, path).rev

    async def test() -> None:
        async with over_http(app, app.state.mcp_keys["a"]) as client:
            item = await call(client, "add_memory", text=f"The vault word is {MARKER_A}.")
            staged = await call(
                client, "process_session", transcript=f"Priya said {MARKER_A} in Lisbon."
            )
        async with over_http(app, app.state.mcp_keys["b"]) as client:
            answers = [
                await client.call_tool("search_memory", {"query": "vault word"}),
                await client.call_tool("get_context", {"message": "vault word", "depth": "deep"}),
                await client.call_tool("read_file", {"path": path}),
                await client.call_tool("list_files", {}),
                await client.call_tool("file_history", {"path": path}),
                await client.call_tool("diff_file", {"path": path, "from_rev": secret_rev}),
                await client.call_tool("recent_changes", {"since_rev": 0}),
                await client.call_tool("restore_file", {"path": path, "rev": secret_rev}),
                await client.call_tool("delete_file", {"path": path, "base_rev": secret_rev}),
                await client.call_tool(
                    "edit_file", {"path": path, "old_text": "word", "new_text": "x"}
                ),
                await client.call_tool(
                    "write_file", {"path": "vault/x.md", "content": "x", "base_rev": secret_rev}
                ),
                await client.call_tool("list_memories", {}),
                await client.call_tool("search_memories", {"query": "vault word"}),
                await client.call_tool("delete_memory", {"id": item["memory"]["id"]}),
                await client.call_tool("commit_session", {"session_id": staged["session_id"]}),
                await client.call_tool("discard_session", {"session_id": staged["session_id"]}),
                await client.list_resources(),
            ]
            for answer in answers:
                assert MARKER_A not in answer.model_dump_json()
            with pytest.raises(Exception) as caught:
                await client.read_resource(f"memhub://{A}/{path}")
            assert MARKER_A not in str(caught.value)
            prompt = await client.get_prompt("load_memory_context", {"message": "vault word"})
            assert MARKER_A not in prompt.model_dump_json()
        # naming A's workspace with B's key is "no such workspace"
        async with over_http(app, app.state.mcp_keys["b"], {"x-memhub-workspace": A}) as client:
            text = await error(client, "search_memory", query=MARKER_A)
            assert "WORKSPACE_NOT_FOUND" in text and MARKER_A not in text
        # the same calls do reach A with A's key, and with an admin key naming A
        async with over_http(app, app.state.mcp_keys["a"]) as client:
            found = await call(client, "search_memory", query=MARKER_A, prefix="vault/")
            assert found["results"][0]["path"] == path
            resource = await client.read_resource(f"memhub://{A}/{path}")
            assert MARKER_A in resource.model_dump_json()
        headers = {"x-memhub-workspace": A}
        async with over_http(app, app.state.mcp_keys["admin"], headers) as client:
            assert (await call(client, "read_file", path=path))["rev"] == secret_rev
        assert store.stat(A, path).rev == secret_rev  # nothing B did touched it
        assert store.stat(A, item["memory"]["path"]).rev == item["memory"]["rev"]
        assert app.state.sessions.get(A, staged["session_id"]).status == "staged"

    run(test)


def test_mcp_is_authenticated_and_rate_limited(tmp_path: Path) -> None:
    app = build_app(tmp_path, rate_limit_enabled=True, rate_limit=3, rate_limit_scopes="")
    key = app.state.test_key
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    accept = {"accept": "application/json, text/event-stream"}

    async def test() -> None:
        async with from_outside(app) as http:
            anonymous = await http.post("/mcp", json=initialize, headers=accept)
            assert anonymous.status_code == 401
            assert anonymous.json()["error_code"] == "UNAUTHORIZED"
            forged = {**accept, "authorization": "Bearer mh_not_a_real_key_at_all_0000"}
            assert (await http.post("/mcp", json=initialize, headers=forged)).status_code == 401
            auth = {**accept, "authorization": f"Bearer {key}"}
            statuses = []
            for _ in range(4):
                response = await http.post("/mcp", json=initialize, headers=auth)
                statuses.append(response.status_code)
            assert statuses == [200, 200, 200, 429]
            assert response.json()["error_code"] == "RATE_LIMITED"
            assert "retry-after" in response.headers

    run(test)


def test_resource_subscription_follows_the_change_feed(app: FastAPI) -> None:
    """A client listening for a file's URI hears about its writes, and only its."""
    uri = f"memhub://{A}/notes/watched.md"

    async def test() -> None:
        async with in_memory(app, app.state.mcp_keys["a"], A) as client:
            async with client.listen(resource_subscriptions=[uri]) as events:
                await call(client, "write_file", path="notes/other.md", content="x")
                # a write by someone else, straight through the REST API
                app.state.store.put(A, "notes/watched.md", b"from elsewhere")
                with anyio.fail_after(20):
                    async for event in events:
                        assert getattr(event, "uri", None) == uri, event
                        break
            text = (await client.read_resource(uri)).contents[0]
            assert getattr(text, "text", None) == "from elsewhere"

    run(test)


def test_handshake_era_clients_over_http(app: FastAPI) -> None:
    """Clients on the 2025 protocol (initialize handshake) use /mcp the same way."""

    async def test() -> None:
        async with over_http(app, app.state.mcp_keys["a"], mode="legacy") as client:
            assert client.protocol_version.startswith("2025")
            await call(client, "write_file", path="notes/legacy.md", content="old school")
            assert "Did you mean" not in await error(client, "read_file", path="zzz.md")
            resource = await client.read_resource(f"memhub://{A}/notes/legacy.md")
            assert "old school" in resource.model_dump_json()

    run(test)


def test_concurrent_local_servers_get_their_own_index(tmp_path: Path) -> None:
    """A tantivy index has one writer: a second local ``memhub mcp`` on the same data dir
    (Claude Code and Cursor at once) gets a private index, removed when it exits."""
    with index_dir(tmp_path) as first, index_dir(tmp_path) as second:
        assert first == tmp_path / "index" / "mcp"
        assert second != first and second.parent == tmp_path / "index" and second.is_dir()
    assert not second.exists()
    with index_dir(tmp_path) as again:
        assert again == first  # the lock went with its holder


def test_memory_items_through_tools(app: FastAPI) -> None:
    """add (a duplicate updates) → list with a cursor → search → conditional delete."""

    async def test() -> None:
        async with in_memory(app, app.state.mcp_keys["a"], A) as client:
            first = await call(
                client, "add_memory", text="Priya prefers green tea.", tags=["people"]
            )
            assert first["action"] == "created"
            memory = first["memory"]
            assert memory["text"] == "Priya prefers green tea." and memory["tags"] == ["people"]
            again = await call(client, "add_memory", text="Priya prefers  green tea.")
            assert again["action"] == "updated" and again["memory"]["id"] == memory["id"]
            current_rev = again["memory"]["rev"]
            assert current_rev > memory["rev"]
            other = await call(
                client, "add_memory", text="The build server is in Oslo.", cube="infra"
            )
            assert other["memory"]["cube"] == "infra"

            page = await call(client, "list_memories", limit=1)
            assert page["total"] == 2 and len(page["memories"]) == 1
            rest = await call(client, "list_memories", limit=1, cursor=page["next_cursor"])
            seen = {page["memories"][0]["id"], rest["memories"][0]["id"]}
            assert seen == {memory["id"], other["memory"]["id"]} and rest["next_cursor"] is None
            infra = await call(client, "list_memories", cube="infra")
            assert [m["id"] for m in infra["memories"]] == [other["memory"]["id"]]

            found = await call(client, "search_memories", query="green tea")
            assert found["results"][0]["memory"]["id"] == memory["id"]
            assert found["results"][0]["relativity"] == 1.0
            assert not (await call(client, "search_memories", query="green tea", cube="infra"))[
                "results"
            ]

            stale = await error(client, "delete_memory", id=memory["id"], base_rev=memory["rev"])
            assert "PRECONDITION_FAILED" in stale and f"rev {current_rev}" in stale
            deleted = await call(client, "delete_memory", id=memory["id"], base_rev=current_rev)
            assert deleted["deleted"] is True
            for bad in ("..", "a/b", "x?y=1", ""):  # never another route
                assert "validation error" in await error(client, "delete_memory", id=bad)
            assert "validation error" in await error(client, "add_memory", text="x", cube="../etc")
            missing = await error(client, "delete_memory", id="f" * 32)
            assert "NOT_FOUND" in missing and "list_memories" in missing
            assert (await call(client, "list_memories"))["total"] == 1
            # the memory's file keeps its history
            history = await call(client, "file_history", path=memory["path"])
            assert [r["deleted"] for r in history["revisions"]] == [True, False, False]
        assert app.state.store.list_files(A, prefix="items/infra/")

    run(test)


TRANSCRIPT = (
    "Yesterday I ran the Riverside Marathon with Priya in 3 hours 41 minutes.\n"
    "Priya moved to Lisbon last month for a job at Feedzai.\n"
)


def test_sessions_through_tools(app: FastAPI) -> None:
    """process (staged: a diff, nothing written) → commit; discard; commit=true at once."""
    store = app.state.store

    async def test() -> None:
        async with over_http(app, app.state.mcp_keys["a"]) as client:
            staged = await call(
                client,
                "process_session",
                transcript=TRANSCRIPT,
                session_id="run-1",
                session_date="2024-01-15",
            )
            assert staged["status"] == "staged" and staged["revs"] == []
            assert staged["session_date"] == "2024-01-15" and staged["summary"]["facts"] >= 1
            assert "Priya" in " ".join(staged["summary"]["entities"])
            paths = [e["path"] for e in staged["edits"]]
            assert paths and all(e["diff"] for e in staged["edits"])
            assert any("Lisbon" in e["diff"] for e in staged["edits"])
            for path in paths:  # staged edits are not memory yet
                with pytest.raises(FileNotFound):
                    store.stat(A, path)

            committed = await call(client, "commit_session", session_id="run-1")
            assert committed["status"] == "committed" and len(committed["revs"]) == len(paths)
            assert all(store.stat(A, p).session_id == "run-1" for p in paths)
            again = await error(client, "commit_session", session_id="run-1")
            assert "SESSION_CONFLICT" in again and "already committed" in again

            other = await call(client, "process_session", transcript="Met Tomasz in Krakow.")
            assert other["session_id"].startswith("mcp-") and other["status"] == "staged"
            gone = await call(client, "discard_session", session_id=other["session_id"])
            assert gone == {"session_id": other["session_id"], "discarded": True}
            unknown = await error(client, "commit_session", session_id=other["session_id"])
            assert "SESSION_NOT_FOUND" in unknown and "process_session" in unknown

            at_once = await call(
                client,
                "process_session",
                transcript="Had dinner with Wojciech at the Gdansk harbour.",
                session_id="run-2",
                commit=True,
            )
            assert at_once["status"] == "committed" and at_once["revs"]
            assert all(e["diff"] for e in at_once["edits"])
            bad = await error(client, "process_session", transcript="x", session_id="../etc")
            assert "session_id" in bad
            assert store.list_files(B) == []

    run(test)


def test_resources_list_every_file_in_pages(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_server, "RESOURCE_PAGE", 2)
    store = app.state.store
    for path in ("a.md", "notes/b.md", "notes/c.txt"):
        store.put(A, path, b"x" * len(path))
    store.put(B, "secret.md", f"{MARKER_A}".encode())

    async def listed(client: Client) -> list[Any]:
        resources, cursor = [], None
        while True:
            page = await client.list_resources(cursor=cursor)
            resources.extend(page.resources)
            cursor = page.next_cursor
            if cursor is None:
                return resources

    async def test() -> None:
        for transport in (over_http, in_memory):
            key = app.state.mcp_keys["a"]
            async with (
                over_http(app, key) if transport is over_http else in_memory(app, key, A)
            ) as client:
                resources = await listed(client)
                assert [r.uri for r in resources] == [
                    f"memhub://{A}/a.md",
                    f"memhub://{A}/notes/b.md",
                    f"memhub://{A}/notes/c.txt",
                ]
                assert [r.size for r in resources] == [4, 10, 11]
                assert resources[0].mime_type == "text/markdown"
                text = (await client.read_resource(resources[1].uri)).contents[0]
                assert getattr(text, "text", None) == "x" * 10
        async with over_http(app, app.state.mcp_keys["b"]) as client:
            assert [r.uri for r in await listed(client)] == [f"memhub://{B}/secret.md"]

    run(test)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_resources_subscribe_for_2025_clients(app: FastAPI) -> None:
    """A handshake-era client subscribes to a file and gets notifications/resources/updated
    when it changes (through a tool or by anyone else), and only for that file."""
    uri = f"memhub://{A}/notes/watched.md"
    updates: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            arrived.set()

    async def test() -> None:
        nonlocal arrived
        async with in_memory(
            app, app.state.mcp_keys["a"], A, mode="legacy", message_handler=on_message
        ) as client:
            assert client.protocol_version.startswith("2025")
            capabilities = client.server_capabilities
            assert capabilities.resources is not None and capabilities.resources.subscribe
            await client.subscribe_resource(uri)
            with pytest.raises(Exception, match="follows the files of"):
                await client.subscribe_resource(f"memhub://{B}/notes/watched.md")
            await call(client, "write_file", path="notes/other.md", content="x")
            await call(client, "write_file", path="notes/watched.md", content="by the agent")
            with anyio.fail_after(20):
                await arrived.wait()
            assert updates == [uri]
            arrived = anyio.Event()
            app.state.store.put(A, "notes/watched.md", b"from elsewhere")
            with anyio.fail_after(20):
                await arrived.wait()
            assert updates == [uri, uri]
            # after unsubscribing, a change is not heard (the feed is in rev order: the
            # change of a file subscribed to later comes after it)
            await client.unsubscribe_resource(uri)
            last = f"memhub://{A}/notes/last.md"
            await client.subscribe_resource(last)
            arrived = anyio.Event()
            app.state.store.put(A, "notes/watched.md", b"unheard")
            await call(client, "write_file", path="notes/last.md", content="x")
            with anyio.fail_after(20):
                await arrived.wait()
            assert updates == [uri, uri, last]

    run(test)


def test_a_tool_call_counts_once_against_the_rate_limit(tmp_path: Path) -> None:
    """One tools/call on /mcp is one request against its key's window, however many
    operations the tool runs inside; no header, query or body exempts a request."""
    app = build_app(tmp_path, rate_limit_enabled=True, rate_limit=4, rate_limit_scopes="")
    key = app.state.test_key
    headers = {
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {key}",
        "mcp-protocol-version": "2025-06-18",
    }

    def tool_call(n: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = {"name": name, "arguments": arguments}
        return {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}

    async def test() -> None:
        async with from_outside(app) as http:
            # each of these runs two or more operations inside: a head lookup and a
            # page of changes; a read of a missing file and listings for close matches
            calls = [
                tool_call(1, "write_file", {"path": "notes/a.md", "content": "a"}),
                tool_call(2, "recent_changes", {}),
                tool_call(3, "read_file", {"path": "notes/b.md"}),
            ]
            remaining = []
            for body in calls:
                response = await http.post("/mcp", json=body, headers=headers)
                assert response.status_code == 200, response.text
                assert "error" not in response.json(), response.text
                remaining.append(int(response.headers["x-ratelimit-remaining"]))
            assert remaining == [3, 2, 1]
            read = (await http.post("/mcp", json=calls[2], headers=headers)).json()
            assert "Did you mean: notes/a.md" in read["result"]["content"][0]["text"]
            # an outside request cannot claim to be internal: it is counted (and
            # refused: the window is used up)
            forged = {
                **headers,
                "memhub.inner_request": "true",
                "x-memhub-inner-request": "true",
                "x-internal-service": "true",
            }
            response = await http.get(
                "/v1/workspaces/default/files",
                params={"memhub.inner_request": "true"},
                headers=forged,
            )
            assert response.status_code == 429
            assert (await http.post("/mcp", json=calls[1], headers=forged)).status_code == 429

    run(test)


def test_service_connector_takes_the_principal_admission_left(app: FastAPI) -> None:
    """``/mcp``'s hub is the caller's: no principal in the request is refused (never a
    default), and X-Memhub-Workspace names a workspace the services still check."""
    connector = ServiceConnector(app.state, app.state.default_workspace)

    def request(principal: Any, headers: dict[str, str] | None = None) -> Request:
        raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        state = {"principal": principal} if principal is not None else {}
        return Request({"type": "http", "method": "POST", "headers": raw, "state": state})

    with pytest.raises(Unauthorized):
        connector.hub(request(None))
    with pytest.raises(Unauthorized):
        connector.hub(None)
    assert connector.scopes(request(None)) == frozenset()
    reader = app.state.keys.verify(app.state.mcp_keys["a_read"]).principal()
    assert connector.hub(request(reader)).workspace == A
    assert connector.scopes(request(reader)) == frozenset({"read"})
    elsewhere = connector.hub(request(reader, {"x-memhub-workspace": B}))
    assert elsewhere.workspace == B

    async def test() -> None:
        async with app.router.lifespan_context(app):
            with pytest.raises(WorkspaceNotFound):
                await elsewhere.list_files("", 10)
            with pytest.raises(Forbidden):
                await connector.hub(request(reader)).write("notes/x.md", b"x")
        with pytest.raises(FileNotFound):
            app.state.store.stat(A, "notes/x.md")

    run(test)
