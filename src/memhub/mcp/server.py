"""The MCP server: the registered tools, file resources and the context prompt.

:func:`build_server` takes a :class:`~memhub.mcp.registry.Connector` (how a
request reaches memhub) and returns an ``MCPServer`` whose lifespan hands the
connector to every tool. The same server runs over stdio (``memhub mcp``),
in memory (tests) and over streamable HTTP (``/mcp`` inside ``memhub serve``).

Resources: every file is ``memhub://<workspace>/<path>`` (the template reads
any of them); ``resources/list`` names the workspace's files, a page of
:data:`RESOURCE_PAGE` at a time (the cursor is the last path of a page). A
server that follows the change feed (``memhub mcp``) tells subscribers when a
file changes: on ``subscriptions/listen`` streams (2026 protocol) and, for
2025-era clients, as ``notifications/resources/updated`` for each URI its one
client called ``resources/subscribe`` for.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import anyio
from anyio.abc import TaskStatus
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    EmptyResult,
    ListResourcesResult,
    PaginatedRequestParams,
    Resource,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)
from pydantic import Field

from memhub import __version__
from memhub.errors import MemhubError
from memhub.mcp.follow import follow_changes, head_rev, resource_uri
from memhub.mcp.hub import Hub
from memhub.mcp.registry import (
    Connector,
    connector_of,
    explain,
    inline_refs,
    load_tools,
    tool_annotations,
)

INSTRUCTIONS = """\
memhub is this agent's long-term memory: versioned files (markdown notes, instructions),
full-text search and context assembly. Start a session with get_context (or recent_changes
to catch up). Before changing a file, read_file it and pass its rev as base_rev to
write_file / edit_file: writes are conditional, and a conflict returns the current rev and
content to merge. Every change is kept in file_history; restore_file brings any rev back."""

RESOURCE_URI = "memhub://{workspace}/{+path}"
RESOURCE_PAGE = 500

log = logging.getLogger("memhub.mcp")


def build_server(connector: Connector, *, follow: Hub | None = None) -> MCPServer[Connector]:
    """``follow``: the hub whose change feed drives resource subscriptions (a server
    with one caller); None serves no ``subscriptions/listen`` (``/mcp``)."""
    bus = InMemorySubscriptionBus()
    legacy = _LegacySubscriptions(follow.workspace) if follow is not None else None

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Connector]) -> AsyncIterator[Connector]:
        async with anyio.create_task_group() as tasks:
            if follow is not None and legacy is not None:
                await tasks.start(legacy.deliver, bus)
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
        # published before anything reads it (the SDK caches a tool's schema on first read)
        registered = server._tool_manager.get_tool(spec.name)
        if registered is not None and registered.fn_metadata.output_schema is not None:
            registered.fn_metadata.output_schema = inline_refs(registered.fn_metadata.output_schema)
    server.middleware.append(_ScopeFilter(connector, {n for n, s in tools.items() if s.write}))
    _add_resources(server)
    # the SDK's MCPServer lists only static resources and serves no resources/subscribe:
    # both are registered on its low-level server
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/list", PaginatedRequestParams, _FileList(connector))
    if legacy is not None:
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, legacy.add)
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, legacy.remove
        )
    return server


def _mcp_error(exc: MemhubError) -> MCPError:
    return MCPError(INVALID_PARAMS if exc.status < 500 else INTERNAL_ERROR, explain(exc))


class _FileList:
    """``resources/list``: the caller's workspace's files, :data:`RESOURCE_PAGE` a page."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams
    ) -> ListResourcesResult:
        try:
            h = self.connector.hub(ctx.request)
            listing = await h.list_files("", RESOURCE_PAGE, params.cursor or None)
        except MemhubError as exc:
            raise _mcp_error(exc) from exc
        return ListResourcesResult(
            resources=[
                Resource(
                    uri=resource_uri(h.workspace, f["path"]),
                    name=f["path"],
                    mime_type=mimetypes.guess_type(f["path"])[0] or "text/plain",
                    size=f["size"],
                )
                for f in listing["files"]
            ],
            next_cursor=listing["next_after"],
        )


class _LegacySubscriptions:
    """``resources/subscribe`` for 2025-era clients: a server that follows a feed has one
    client (stdio, or one in-memory client), and each URI it subscribed to gets
    ``notifications/resources/updated`` when the change feed reports it. The notification
    goes on the connection the subscribing request came in on: its
    :class:`~mcp.server.session.ServerSession` sends on the connection's own channel,
    not the request's, so it outlives the request."""

    def __init__(self, workspace: str) -> None:
        self.prefix = resource_uri(workspace, "")
        self.subscribers: dict[str, ServerSession] = {}

    async def add(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        if not params.uri.startswith(self.prefix) or params.uri == self.prefix:
            raise MCPError(
                INVALID_PARAMS,
                f"this server follows the files of {self.prefix}<path>; {params.uri} is not one",
            )
        self.subscribers[params.uri] = ctx.session
        return EmptyResult()

    async def remove(
        self, _ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        self.subscribers.pop(params.uri, None)
        return EmptyResult()

    async def deliver(
        self, bus: SubscriptionBus, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Send each updated URI to its subscriber, until cancelled. The bus's listeners
        are synchronous: an update waits in a bounded queue (when it is full, an update is
        dropped with a warning: a client re-reads what it cares about)."""
        send, receive = anyio.create_memory_object_stream[str](1000)

        def listen(event: ServerEvent) -> None:
            if isinstance(event, ResourceUpdated) and event.uri in self.subscribers:
                try:
                    send.send_nowait(event.uri)
                except anyio.WouldBlock:
                    log.warning("resource update of %s dropped: subscribers are behind", event.uri)

        unsubscribe = bus.subscribe(listen)
        try:
            task_status.started()
            async with receive:
                async for uri in receive:
                    session = self.subscribers.get(uri)
                    if session is None:
                        continue
                    try:
                        await session.send_resource_updated(uri)
                    except Exception:  # the client has gone: forget its subscription
                        log.info("dropping the subscriber of %s", uri, exc_info=True)
                        if self.subscribers.get(uri) is session:
                            del self.subscribers[uri]
        finally:
            unsubscribe()
            send.close()


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
        try:
            h = connector_of(ctx).hub(ctx.request_context.request).at(workspace)
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
        try:
            h = connector_of(ctx).hub(ctx.request_context.request)
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
