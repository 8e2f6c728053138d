"""A client of an ASGI app in this process: the REST requests of an MCP tool call.

A tool call on ``/mcp`` (or over stdio on the local data dir) makes its REST
requests to the app it runs in. They go through the whole app, exactly as a
request from outside does: the same middleware, admission (the caller's
credentials are verified again; the request is marked in-process, so it is not
counted against the rate limit twice), routes, validation and error rendering.
Only the HTTP client is left out: httpx over ``httpx.ASGITransport`` spent
more time building, merging and parsing URLs, headers and cookies than the
route took to answer a small read (see ``bench/mcp.py``). This client builds
the ASGI scope directly and returns an ordinary :class:`httpx.Response`, so
:class:`~memhub.mcp.hub.Hub` and the errors it raises are the same as over a
network.

The response body is collected whole, as ``httpx.ASGITransport`` does.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlencode

import anyio
import httpx
from starlette.types import ASGIApp, Message

from memhub.auth.admission import in_process

INTERNAL_HOST = "memhub.internal"


class AsgiClient:
    """The part of :class:`httpx.AsyncClient` the hub uses, over ``app`` in this process.

    Requests are marked in-process (:func:`memhub.auth.admission.in_process`): one
    tool call counts once against its key's rate limit, however many requests it
    makes. An exception the app raises reaches the caller, as with
    ``httpx.ASGITransport``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = in_process(app)
        self.base_url = httpx.URL(f"http://{INTERNAL_HOST}")

    async def __aenter__(self) -> AsgiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
    ) -> httpx.Response:
        sent = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        if json is not None:
            content = _json_body(json)
            sent.append((b"content-type", b"application/json"))
        body = content or b""
        if content is not None or method in ("POST", "PUT", "PATCH"):
            sent.append((b"content-length", str(len(body)).encode()))
        sent.append((b"host", INTERNAL_HOST.encode()))
        return await self._send(_scope(method, url, params, sent), body)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        yield await self.request(method, url, params=params, headers=headers)

    async def _send(self, scope: dict[str, Any], body: bytes) -> httpx.Response:
        exchange = _Exchange(body)
        await self.app(scope, exchange.receive, exchange.send)
        if exchange.status is None:
            raise httpx.RemoteProtocolError("the app ended without a response")
        return httpx.Response(
            exchange.status, headers=exchange.headers, content=b"".join(exchange.body)
        )


class _Exchange:
    """One request's ``receive`` and ``send``: the body once, then a disconnect only
    when the response is complete (a streaming response listens for one meanwhile)."""

    def __init__(self, body: bytes) -> None:
        self.request_body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = anyio.Event()

    async def receive(self) -> Message:
        if self.request_body is not None:
            body, self.request_body = self.request_body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete.set()


def _scope(
    method: str, url: str, params: Mapping[str, Any] | None, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    """The ASGI scope of a request for ``url`` (a path, percent-encoded, as the hub
    builds it): ``path`` decoded and ``raw_path`` as sent, as a server would give them."""
    raw_path, _, query = url.partition("?")
    if params:
        encoded = urlencode([(k, _primitive(v)) for k, v in params.items()], quote_via=quote)
        query = f"{query}&{encoded}" if query else encoded
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("ascii"),
        "root_path": "",
        "query_string": query.encode("ascii"),
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": (INTERNAL_HOST, 80),
        "extensions": {},
    }


def _primitive(value: Any) -> str:
    """A query value as httpx writes it (JSON-style booleans, None as empty)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _json_body(value: Any) -> bytes:
    """JSON as httpx sends it: compact, UTF-8, no NaN."""
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
