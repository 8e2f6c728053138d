"""The MCP server driven by the SDK's own client, in process.

In memory (``Client(server)``) over a :class:`FixedConnector` to the real app,
and over streamable HTTP to the app's own ``/mcp`` route (``httpx2`` over
ASGI, the lifespan running), with real keys: the full agent flow, errors an
agent can act on, a read-only key, and workspace isolation through every tool,
the file resource and the prompt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from apiclient import build_app
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client

from mcp import Client
from mcp_agent import READ_TOOLS, agent_flow, call, error
from memhub.errors import FileNotFound
from memhub.mcp.connect import FixedConnector, asgi_client, index_dir
from memhub.mcp.hub import Hub
from memhub.mcp.server import build_server

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
async def in_memory(app: FastAPI, key: str, workspace: str) -> AsyncIterator[Client]:
    async with app.router.lifespan_context(app), asgi_client(app) as http:
        hub = Hub(http, workspace, {"authorization": f"Bearer {key}"})
        async with Client(build_server(FixedConnector(hub), follow=hub)) as client:
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
            found = await call(client, "search_memory", query=MARKER_A)
            assert found["results"][0]["path"] == path
            resource = await client.read_resource(f"memhub://{A}/{path}")
            assert MARKER_A in resource.model_dump_json()
        headers = {"x-memhub-workspace": A}
        async with over_http(app, app.state.mcp_keys["admin"], headers) as client:
            assert (await call(client, "read_file", path=path))["rev"] == secret_rev
        assert store.stat(A, path).rev == secret_rev  # nothing B did touched it

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
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as http,
        ):
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
