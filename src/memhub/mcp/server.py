"""The MCP server: the registered tools, file resources and the context prompt.

:func:`build_server` takes a :class:`~memhub.mcp.registry.Connector` (how a
request reaches memhub) and returns an ``MCPServer`` whose lifespan hands the
connector to every tool. The same server runs over stdio (``memhub mcp``),
in memory (tests) and over streamable HTTP (``/mcp`` inside ``memhub serve``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any, Literal

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.subscriptions import InMemorySubscriptionBus
from pydantic import Field

from memhub import __version__
from memhub.errors import MemhubError
from memhub.mcp.follow import follow_changes, head_rev
from memhub.mcp.hub import Hub
from memhub.mcp.registry import Connector, connector_of, explain, load_tools, tool_annotations

INSTRUCTIONS = """\
memhub is this agent's long-term memory: versioned files (markdown notes, instructions),
full-text search and context assembly. Start a session with get_context (or recent_changes
to catch up). Before changing a file, read_file it and pass its rev as base_rev to
write_file / edit_file: writes are conditional, and a conflict returns the current rev and
content to merge. Every change is kept in file_history; restore_file brings any rev back."""

RESOURCE_URI = "memhub://{workspace}/{+path}"


def build_server(connector: Connector, *, follow: Hub | None = None) -> MCPServer[Connector]:
    """``follow``: the hub whose change feed drives resource subscriptions (a server
    with one caller); None serves no ``subscriptions/listen`` (``/mcp``)."""
    bus = InMemorySubscriptionBus()

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Connector]) -> AsyncIterator[Connector]:
        async with anyio.create_task_group() as tasks:
            if follow is not None:
                tasks.start_soon(follow_changes, follow, bus, await head_rev(follow))
            try:
                yield connector
            finally:
                tasks.cancel_scope.cancel()

    server: MCPServer[Connector] = MCPServer(
        "memhub",
        title="memhub",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=lifespan,
        log_level="WARNING",
        subscriptions=bus if follow is not None else False,
    )
    tools = load_tools()
    for spec in tools.values():
        server.add_tool(
            spec.fn,
            name=spec.name,
            title=spec.title,
            annotations=tool_annotations(spec),
            structured_output=True,
        )
    server.middleware.append(_ScopeFilter(connector, {n for n, s in tools.items() if s.write}))
    _add_resources(server)
    return server


class _ScopeFilter:
    """``tools/list`` for a key without the write scope lists the read tools only."""

    def __init__(self, connector: Connector, write_tools: set[str]) -> None:
        self.connector = connector
        self.write_tools = write_tools

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        scopes = self.connector.scopes(ctx.request)
        if scopes is None or {"write", "admin"} & scopes:
            return result
        tools = [t for t in result.get("tools", []) if t.get("name") not in self.write_tools]
        return {**result, "tools": tools}


def _add_resources(server: MCPServer[Connector]) -> None:
    @server.resource(
        RESOURCE_URI,
        name="memhub file",
        description="A file of memory, newest revision: memhub://<workspace>/<path>.",
        mime_type="text/plain",
    )
    async def memory_file(workspace: str, path: str, ctx: Context) -> str:
        h = replace(connector_of(ctx).hub(ctx.request_context.request), workspace=workspace)
        try:
            found = await h.read(path)
        except MemhubError as exc:
            raise ResourceError(explain(exc)) from exc
        return found.data.decode("utf-8", errors="replace")

    @server.prompt(
        name="load_memory_context",
        title="Load memory context",
        description="Start a conversation with the memory memhub holds about its topic.",
    )
    async def load_memory_context(
        ctx: Context,
        message: Annotated[str, Field(description="What the conversation is about.")],
        depth: Annotated[
            Literal["basic", "wide", "deep", "temporal"], Field(description="How much to load.")
        ] = "wide",
    ) -> list[UserMessage]:
        h = connector_of(ctx).hub(ctx.request_context.request)
        try:
            result = await h.context(
                {"conversation": [{"role": "user", "content": message}], "depth": depth}
            )
        except MemhubError as exc:
            raise ValueError(explain(exc)) from exc
        return [
            UserMessage(
                "Here is what memhub remembers that is relevant to this conversation:\n\n"
                + result.markdown
            ),
            UserMessage(message),
        ]
