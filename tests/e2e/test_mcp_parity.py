"""Every MCP tool through both hubs: the in-process services (``/mcp`` and a local
``memhub mcp``) and the REST API of a real ``memhub serve`` (a remote ``memhub mcp``).

The same agent session runs twice on the same data, once per hub, from a fresh
store each: the same keys (read-write, read-only, another workspace's), the same
calls in the same order. Every answer an agent sees (structured results, tool
error texts, resources) must be equal, once what differs by nature is set aside
(times, the key's name in ``author``, random item ids). The session covers the
errors an agent acts on: a conflict with the current rev and content, a missing
file with close matches, a read-only key refused a write tool, a key refused
another workspace, bad paths, a body over the REST API's limits, and a bad date.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp_types import CallToolResult

from conftest import ServerFactory
from mcp import Client
from memhub.api.app import create_app
from memhub.config import Settings
from memhub.mcp.connect import FixedConnector
from memhub.mcp.rest import RestHub
from memhub.mcp.server import build_server
from memhub.mcp.services import ServiceHub

pytestmark = pytest.mark.e2e

A, B = "parity-a", "parity-b"
ROLES = {"writer": (A, ["read", "write"]), "reader": (A, ["read"]), "other": (B, ["read", "write"])}
Connect = Callable[[str, str], AbstractAsyncContextManager[Client]]

VOLATILE = {"created_at", "updated_at", "author", "timestamp"}
ID = re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")


class Ids:
    """Random ids, named by order of first appearance: ``<id 1>``, ``<id 2>``…"""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        return ID.sub(lambda m: self.names.setdefault(m[0], f"<id {len(self.names) + 1}>"), text)


def normal(value: Any, ids: Ids) -> Any:
    if isinstance(value, dict):
        return {k: "<v>" if k in VOLATILE else normal(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v, ids) for v in value]
    return ids(value) if isinstance(value, str) else value


async def session(connect: Connect) -> list[tuple[str, Any]]:
    """The agent session; each answer is ("ok", structured) or ("error", text)."""
    ids = Ids()
    seen: list[tuple[str, Any]] = []

    async def run(client: Client, tool: str, **arguments: Any) -> Any:
        result = await client.call_tool(tool, arguments)
        assert isinstance(result, CallToolResult)
        if result.is_error:
            text = result.content[0].text  # type: ignore[union-attr]
            seen.append((tool, ("error", ids(text))))
            return None
        seen.append((tool, ("ok", normal(result.structured_content, ids))))
        return result.structured_content

    long_query = "word " * 2001
    async with connect("writer", A) as c:
        await run(c, "write_file", path="notes/garden.md", content="# Garden\nTomatoes need sun.\n")
        await run(c, "write_file", path="notes/garden.md", content="blind")  # exists
        await run(
            c, "write_file", path="notes/garden.md", content="# Garden\nSun, water.\n", base_rev=1
        )
        await run(c, "write_file", path="notes/garden.md", content="stale", base_rev=1)
        await run(c, "write_file", path="notes/other.md", content="x", base_rev=1)  # not its rev
        await run(
            c, "write_file", path="notes/long.md", content="".join(f"line {i}\n" for i in range(40))
        )
        await run(c, "read_file", path="notes/garden.md")
        await run(c, "read_file", path="notes/garden.md", rev=1)
        await run(c, "read_file", path="notes/long.md", line_start=3, line_end=5)
        await run(c, "read_file", path="notes/gardn.md")  # close matches
        await run(c, "read_file", path="nowhere/else.md")
        await run(c, "read_file", path="notes/garden.md", rev=99)
        for bad in ("../etc/passwd", "/abs.md", "a//b.md", "notes/", "a\x00b.md", "a\\b.md"):
            await run(c, "read_file", path=bad)
            await run(c, "write_file", path=bad, content="x")
        await run(c, "edit_file", path="notes/garden.md", old_text="water", new_text="Quokkaberry")
        await run(c, "edit_file", path="notes/garden.md", old_text="cactus", new_text="x")
        await run(c, "edit_file", path="notes/garden.md", old_text="un", new_text="x", base_rev=1)
        await run(c, "list_files", prefix="notes/")
        await run(c, "list_files", prefix="../x")
        await run(c, "file_history", path="notes/garden.md")
        await run(c, "diff_file", path="notes/garden.md", from_rev=1)
        await run(c, "diff_file", path="notes/garden.md", from_rev=999)
        await run(c, "recent_changes", since_rev=0)
        await run(c, "recent_changes", limit=2)
        await run(c, "search_memory", query="Quokkaberry")
        await run(c, "search_memory", query="tomatoes", prefix="notes/", file_kind="markdown")
        await run(c, "search_memory", query="sun", since="not a date")
        await run(c, "search_memory", query=long_query)  # over the REST body's limit
        await run(c, "get_context", message="what about Quokkaberry?", depth="deep")
        await run(c, "get_context", message=long_query * 10)
        await run(c, "delete_file", path="notes/garden.md", base_rev=1)  # conflict
        history = await run(c, "file_history", path="notes/garden.md")
        head = history["revisions"][0]["rev"]
        await run(c, "delete_file", path="notes/garden.md", base_rev=head)
        await run(c, "read_file", path="notes/garden.md")  # deleted
        await run(c, "write_file", path="notes/garden.md", content="again", base_rev=head)
        await run(c, "restore_file", path="notes/garden.md", rev=2)
        await run(c, "restore_file", path="notes/garden.md", rev=999)
        added = await run(c, "add_memory", text="Priya prefers green tea.", tags=["people"])
        await run(c, "add_memory", text="Priya prefers  green tea.")  # the same fact: updated
        await run(c, "add_memory", text="The build server is in Oslo.", cube="infra")
        await run(c, "list_memories", limit=1)
        await run(c, "list_memories", cube="infra")
        await run(c, "search_memories", query="green tea")
        memory = added["memory"]
        await run(c, "delete_memory", id=memory["id"], base_rev=memory["rev"])  # stale
        await run(c, "delete_memory", id="f" * 32)
        await run(c, "delete_memory", id=memory["id"])
        await run(c, "process_session", transcript="Met Tomasz in Krakow.", session_id="s-1")
        await run(c, "commit_session", session_id="s-1")
        await run(c, "commit_session", session_id="s-1")  # already committed
        await run(c, "discard_session", session_id="s-unknown")
        await run(c, "process_session", transcript="Lunch with Ana.", session_id="s-2")
        await run(c, "discard_session", session_id="s-2")
        listed = (await c.list_resources()).model_dump()
        seen.append(("resources/list", ("ok", normal(listed, ids))))
        text = (await c.read_resource(f"memhub://{A}/notes/long.md")).model_dump()
        seen.append(("resources/read", ("ok", normal(text, ids))))
    async with connect("reader", A) as c:
        await run(c, "read_file", path="notes/garden.md")
        await run(c, "write_file", path="notes/ro.md", content="x")
        await run(c, "edit_file", path="notes/garden.md", old_text="Sun", new_text="x")
        await run(c, "delete_file", path="notes/garden.md", base_rev=1)
        await run(c, "restore_file", path="notes/garden.md", rev=1)
        await run(c, "add_memory", text="The sky is green.")
        await run(c, "process_session", transcript="Met Ana.", session_id="ro")
        await run(c, "list_memories")
    async with connect("other", A) as c:  # B's key, pointed at A
        for tool, arguments in (
            ("read_file", {"path": "notes/garden.md"}),
            ("write_file", {"path": "notes/b.md", "content": "x"}),
            ("search_memory", {"query": "Quokkaberry"}),
            ("get_context", {"message": "Quokkaberry"}),
            ("list_files", {}),
            ("file_history", {"path": "notes/garden.md"}),
            ("recent_changes", {"since_rev": 0}),
            ("list_memories", {}),
            ("search_memories", {"query": "green tea"}),
            ("add_memory", {"text": "x"}),
        ):
            await run(c, tool, **arguments)
    async with connect("other", B) as c:  # B's own workspace: none of A's files
        await run(c, "read_file", path="notes/garden.md")
        await run(c, "search_memory", query="Quokkaberry")
    return seen


@asynccontextmanager
async def mcp_client(hub: Any) -> AsyncIterator[Client]:
    async with Client(build_server(FixedConnector(hub))) as client:
        yield client


def test_every_tool_answers_alike_through_both_hubs(
    memhub_server: ServerFactory, tmp_path: Path
) -> None:
    server = memhub_server()
    admin = {"authorization": f"Bearer {server.key}"}
    for workspace in (A, B):
        created = httpx.post(
            f"{server.base_url}/v1/workspaces", json={"name": workspace}, headers=admin
        )
        assert created.status_code == 201, created.text
    remote_keys = {}
    for role, (workspace, scopes) in ROLES.items():
        response = httpx.post(
            f"{server.base_url}/admin/keys",
            json={"user_name": workspace, "scopes": scopes},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        remote_keys[role] = response.json()["key"]

    app = create_app(Settings(data_dir=tmp_path / "in-process", rate_limit_enabled=False))
    keys = app.state.keys
    for workspace in (A, B):
        app.state.store.create_workspace(workspace)
    principals = {
        role: keys.verify(keys.create(workspace, scopes)[0]).principal()
        for role, (workspace, scopes) in ROLES.items()
    }

    async def test() -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:

            def remote(role: str, workspace: str) -> AbstractAsyncContextManager[Client]:
                auth = {"authorization": f"Bearer {remote_keys[role]}"}
                return mcp_client(RestHub(http, workspace, auth))

            over_rest = await session(remote)
        async with app.router.lifespan_context(app):

            def local(role: str, workspace: str) -> AbstractAsyncContextManager[Client]:
                return mcp_client(ServiceHub(app.state, principals[role], workspace))

            in_process = await session(local)
        return over_rest, in_process

    over_rest, in_process = anyio.run(test)
    assert len(over_rest) == len(in_process)
    for rest_answer, local_answer in zip(over_rest, in_process, strict=True):
        assert local_answer == rest_answer
    # the session did meet the errors it is about, and succeeded where it should
    texts = " ".join(str(answer) for _tool, answer in in_process)
    for expected in (
        "CONFLICT",
        "current rev is",
        "Did you mean: notes/garden.md",
        "INVALID_PATH",
        "FORBIDDEN",
        "WORKSPACE_NOT_FOUND",
        "VALIDATION_ERROR",
        "since must be an ISO date",
        "REVISION_NOT_FOUND",
        "SESSION_CONFLICT",
        "SESSION_NOT_FOUND",
        "EDIT_FAILED",
        "Quokkaberry",
    ):
        assert expected in texts, expected
    assert sum(1 for _tool, (kind, _v) in in_process if kind == "ok") > 30
