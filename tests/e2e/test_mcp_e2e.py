"""MCP against real processes: streamable HTTP at ``/mcp`` of one ``memhub serve``
(for the whole module) with real keys, and ``memhub mcp`` over stdio as a
subprocess (on a local data dir, and against the server)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ResourceUpdatedNotification

from conftest import MEMHUB, ServerProcess, child_env
from mcp import Client, StdioServerParameters
from mcp_agent import READ_TOOLS, agent_flow, call, error

pytestmark = pytest.mark.e2e

MARKER = "Plumbifrazzle"


@dataclass(frozen=True)
class Served:
    url: str
    admin_key: str
    home: Path

    def key(self, workspace: str, *scopes: str) -> str:
        response = httpx.post(
            f"{self.url}/admin/keys",
            json={"user_name": workspace, "scopes": list(scopes)},
            headers={"authorization": f"Bearer {self.admin_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["key"])


@pytest.fixture(scope="module")
def served(module_server: ServerProcess) -> Served:
    """The module's one ``memhub serve``."""
    return Served(module_server.base_url, module_server.key, module_server.home)


@contextlib.asynccontextmanager
async def over_http(served: Served, key: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{served.url}/mcp", http_client=http)) as c:
        yield c


def over_stdio(home: Path, *args: str, env: dict[str, str] | None = None, **options: Any) -> Client:
    params = StdioServerParameters(
        command=str(MEMHUB), args=["mcp", *args], env=child_env(home, env)
    )
    return Client(params, read_timeout_seconds=60, **options)


def test_streamable_http_flow(served: Served) -> None:
    key = served.key("mcp-flow", "read", "write")

    async def test() -> None:
        async with over_http(served, key) as client:
            await agent_flow(client)

    anyio.run(test)
    # the files are in the key's workspace, seen through the REST API
    found = httpx.get(
        f"{served.url}/v1/workspaces/mcp-flow/files/notes/twice.md",
        headers={"authorization": f"Bearer {served.admin_key}"},
    )
    assert found.status_code == 200 and found.text == "a b a\n"


def test_read_only_key_and_other_workspace(served: Served) -> None:
    writer = served.key("mcp-a", "read", "write")
    reader = served.key("mcp-a", "read")
    other = served.key("mcp-b", "read", "write")

    async def test() -> None:
        async with over_http(served, writer) as client:
            await call(client, "write_file", path="secret.md", content=f"The word is {MARKER}.")
        async with over_http(served, reader) as client:
            assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS
            assert "FORBIDDEN" in await error(client, "write_file", path="x.md", content="x")
            assert MARKER in (await call(client, "read_file", path="secret.md"))["content"]
        async with over_http(served, other) as client:
            for tool, arguments in (
                ("search_memory", {"query": "word"}),
                ("read_file", {"path": "secret.md"}),
                ("list_files", {}),
                ("recent_changes", {"since_rev": 0}),
                ("get_context", {"message": "the word", "depth": "deep"}),
            ):
                answer = await client.call_tool(tool, arguments)
                assert MARKER not in answer.model_dump_json(), tool
            with pytest.raises(Exception) as caught:
                await client.read_resource("memhub://mcp-a/secret.md")
            assert MARKER not in str(caught.value)

    anyio.run(test)


def test_stdio_on_a_local_data_dir(tmp_path: Path) -> None:
    async def test() -> None:
        async with over_stdio(tmp_path, "--data-dir", str(tmp_path / "data")) as client:
            await agent_flow(client)

    anyio.run(test)
    assert (tmp_path / "data" / "admin.key").exists()  # the embedded default's own key


def test_stdio_against_the_server(served: Served, tmp_path: Path) -> None:
    key = served.key("mcp-stdio", "read", "write")
    env = {"MEMHUB_SERVER": served.url, "MEMHUB_KEY": key, "MEMHUB_WORKSPACE": "mcp-stdio"}

    async def test() -> None:
        async with over_stdio(tmp_path, env=env) as client:
            written = await call(client, "write_file", path="from-stdio.md", content=MARKER)
            assert written["created"] is True

    anyio.run(test)
    found = httpx.get(
        f"{served.url}/v1/workspaces/mcp-stdio/files/from-stdio.md",
        headers={"authorization": f"Bearer {key}"},
    )
    assert found.status_code == 200 and found.text == MARKER


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
def test_stdio_notifies_subscribed_2025_clients(served: Served, tmp_path: Path) -> None:
    """``memhub mcp`` follows the server's change feed: a handshake-era client subscribed
    to a file gets notifications/resources/updated when anyone changes it."""
    key = served.key("mcp-sub", "read", "write")
    env = {"MEMHUB_SERVER": served.url, "MEMHUB_KEY": key, "MEMHUB_WORKSPACE": "mcp-sub"}
    uri = "memhub://mcp-sub/notes/watched.md"
    updates: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            arrived.set()

    def put(content: bytes) -> None:
        response = httpx.put(
            f"{served.url}/v1/workspaces/mcp-sub/files/notes/watched.md",
            content=content,
            headers={"authorization": f"Bearer {key}", "content-type": "text/plain"},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text

    put(b"first")  # before the server starts following: no event of its own

    async def test() -> None:
        async with over_stdio(
            tmp_path, env=env, mode="legacy", message_handler=on_message
        ) as client:
            listed = await client.list_resources()
            assert [r.uri for r in listed.resources] == [uri]
            await client.subscribe_resource(uri)
            await anyio.to_thread.run_sync(put, b"changed through the REST API")
            with anyio.fail_after(40):
                await arrived.wait()
            assert updates == [uri]
            text = (await client.read_resource(uri)).contents[0]
            assert getattr(text, "text", None) == "changed through the REST API"

    anyio.run(test)
