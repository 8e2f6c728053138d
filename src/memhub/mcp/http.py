"""``/mcp``: streamable HTTP inside ``memhub serve``.

The route sits behind the app's middleware like every other route, so the
admission middleware authenticates and rate-limits each MCP request before it
gets here. The MCP server runs stateless with JSON responses: every POST is
self-contained, so any node behind a load balancer can answer it. Its tools
call the app's services in this process as the principal admission authenticated
(:class:`~memhub.mcp.services.ServiceConnector`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from memhub.errors import StorageUnavailable
from memhub.mcp.exchange import handshake_era, serve_in_place
from memhub.mcp.registry import Connector
from memhub.mcp.server import build_server

PATH = "/mcp"


class McpEndpoint:
    """The ASGI endpoint of ``/mcp``. :meth:`run` (in the app's lifespan) makes it ready;
    the MCP server itself is built on the first request (about 0.1 s of schema
    building that an app which never serves MCP, e.g. in most tests, does not pay)."""

    def __init__(self) -> None:
        self._started: _Started | None = None
        self._serving: _Serving | None = None

    @asynccontextmanager
    async def run(self, app: Any) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            self._started = _Started(app, tasks, anyio.Lock())
            try:
                yield
            finally:
                self._started = self._serving = None
                tasks.cancel_scope.cancel()

    async def _ready(self, started: _Started) -> _Serving:
        async with started.lock:
            if self._serving is None:
                # imported here: the services import the routes, whose package imports
                # the app, which imports this module
                from memhub.mcp.services import ServiceConnector

                state = started.app.state
                connector = ServiceConnector(state, state.default_workspace)
                server = build_server(connector)
                # DNS-rebinding protection guards servers that trust the network; /mcp
                # trusts nothing but a key in the Authorization header, which a page
                # in a browser cannot send on another origin's behalf
                server.streamable_http_app(
                    stateless_http=True,
                    json_response=True,
                    transport_security=TransportSecuritySettings(
                        enable_dns_rebinding_protection=False
                    ),
                )
                await started.tasks.start(_serve, server.session_manager)
                self._serving = _Serving(server.session_manager, connector)
            return self._serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self._started
        if started is None:
            error = StorageUnavailable("the MCP endpoint is not running (the app is not started)")
            body = json.dumps(error.to_dict()).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        serving = self._serving or await self._ready(started)
        if handshake_era(scope):
            # one plain request is served in place; anything else goes to the SDK
            served = await serve_in_place(
                serving.manager.app, serving.connector, scope, receive, send
            )
            if served is None:
                return
            receive = served
        await serving.manager.handle_request(scope, receive, send)


@dataclass(frozen=True, slots=True)
class _Serving:
    """The SDK's session manager (whose lifespan yields ``connector``: the lifespan
    state of the server's handlers)."""

    manager: StreamableHTTPSessionManager
    connector: Connector


@dataclass(frozen=True, slots=True)
class _Started:
    app: Any
    tasks: TaskGroup
    lock: anyio.Lock


async def _serve(
    manager: StreamableHTTPSessionManager,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with manager.run():
        task_status.started()
        await anyio.sleep_forever()


def mount_mcp(app: Any) -> McpEndpoint:
    """Add ``POST /mcp`` to ``app`` (hidden from the OpenAPI schema); run the returned
    endpoint in the app's lifespan. It is the first route: the router tries routes in
    order, and trying every included router's routes first cost each MCP request more
    CPU than the REST route its tool then calls."""
    endpoint = McpEndpoint()
    app.router.routes.insert(
        0, Route(PATH, endpoint=endpoint, methods=["POST"], include_in_schema=False)
    )
    return endpoint
