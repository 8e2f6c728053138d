"""One 2025-era (handshake) JSON-RPC request on stateless ``/mcp``, served in place.

The SDK serves a handshake-era POST on a stateless server by building a whole
session for it: a transport with memory streams, a message router task, a
JSON-RPC dispatcher and a serving task, all torn down after the one response.
A stateless POST in JSON-response mode is one request in, one response out,
and nothing of it outlives the POST, so :func:`serve_single` hands the request
straight to the server's registered handlers with the SDK's single-request
driver (:func:`mcp.server.runner.serve_one`, the one its 2026 entry uses), on
a born-ready connection at the header's protocol version, as the SDK's
stateless path does. Handlers, middleware (the scope filter, OpenTelemetry),
parameter validation and results are the SDK's; only the plumbing is gone.

What :func:`single_request` does not recognise as such a POST (a notification,
a response, a batch, a body that does not parse, a missing or wrong
``Accept`` or ``Content-Type``, a body over the SDK's limit) goes to the SDK's
own transport, which answers it as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("memhub.mcp")


def handshake_era(scope: Scope) -> bool:
    """A POST the SDK routes to its handshake-era transport: no protocol version
    header, or one of the handshake versions."""
    if scope["method"] != "POST":
        return False
    header = MCP_PROTOCOL_VERSION_HEADER.encode("ascii")
    version = next((v.decode("latin-1") for k, v in scope["headers"] if k == header), None)
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


async def serve_in_place(
    server: Server[Any], lifespan_state: Any, scope: Scope, receive: Receive, send: Send
) -> Receive | None:
    """Answer the POST if it carries one plain request, and return None; otherwise
    return the ``receive`` to hand the SDK's transport (it gives the body again)."""
    body, messages = await read_body(receive)
    receive = replay(messages, receive)
    request = Request(scope, receive)
    message = single_request(request, body) if body is not None else None
    if message is None:
        return receive
    await serve_single(server, lifespan_state, request, message, send)
    return None


async def read_body(
    receive: Receive, limit: int = DEFAULT_MAX_REQUEST_BODY_SIZE
) -> tuple[bytes | None, list[Message]]:
    """The whole request body (None once it passes ``limit``, or if the client left),
    and the messages read, for :func:`replay`."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        size += len(message.get("body", b""))
        if size > limit:
            return None, messages
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages), messages


def replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` again first: for an app that must read a
    body already read."""
    pending = list(reversed(messages))

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again


def single_request(request: Request, body: bytes) -> JSONRPCRequest | None:
    """The JSON-RPC request this POST carries, when it is one the SDK's stateless
    JSON-response transport would dispatch as is; None for anything else."""
    has_json, _has_sse = check_accept_headers(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not has_json or content_type != "application/json":
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, dict) or "id" not in decoded:
        return None
    try:
        return JSONRPCRequest.model_validate(decoded, by_name=False)
    except ValidationError:
        return None


async def serve_single(
    server: Server[Any],
    lifespan_state: Any,
    request: Request,
    message: JSONRPCRequest,
    send: Send,
) -> None:
    """Answer ``message`` with one JSON-RPC response (HTTP 200, as the SDK's JSON
    mode answers results and errors alike)."""
    version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER, DEFAULT_NEGOTIATED_VERSION)
    context = _Exchange(
        transport=TransportContext(kind="streamable-http", can_send_request=False),
        request_id=message.id,
        message_metadata=ServerMessageMetadata(request_context=request),
    )
    connection = Connection.from_envelope(version, None, None)
    reply: JSONRPCResponse | JSONRPCError
    try:
        result = await serve_one(
            server,
            context,
            message.method,
            message.params,
            connection=connection,
            lifespan_state=lifespan_state,
        )
    except Exception as exc:
        reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=_error_data(exc))
    else:
        reply = JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)
    body = reply.model_dump_json(by_alias=True, exclude_unset=True).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_data(exc: Exception) -> ErrorData:
    """The SDK dispatcher's mapping for a handshake-era connection: MCP and
    validation errors as they are, anything else as code 0 with its message."""
    error = handler_exception_to_error_data(exc)
    if error is not None:
        return error
    log.exception("MCP handler raised")
    return ErrorData(code=0, message=str(exc))


@dataclass
class _Exchange:
    """The dispatch context of one request answered by one JSON body: no back-channel
    (the SDK's stateless transport has none either), and nowhere to put a notification
    or progress (its JSON mode drops them too)."""

    transport: TransportContext
    request_id: RequestId
    message_metadata: MessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> None:
        return None

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        return None
