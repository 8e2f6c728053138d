"""Pure ASGI middleware: the request body limit and the security headers."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memhub.errors import InvalidPath, PayloadTooLarge

log = logging.getLogger("memhub.api")


class BodyLimitMiddleware:
    """Refuse bodies over their limit: at once when Content-Length says so, otherwise as
    soon as the streamed body passes it. File bodies (``PUT``: the raw-body routes,
    streamed to the store in bounded memory) may reach ``max_bytes``; every other body
    (JSON, parsed whole into about three times its size) only ``max_json_bytes``.

    A body that passes its limit while streaming is answered 413 by this middleware
    whatever the route made of the failed read (FastAPI's JSON parsing would say 400
    "error parsing the body"), and nothing the route sent is passed on."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = min(max_json_bytes or max_bytes, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes if scope["method"] == "PUT" else self.max_json_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _reject(send, limit)
                    return
                break
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _too_large(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the route's answer to a body cut short: replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge:
            if not too_large or started:
                raise
        if too_large and not started:
            await _reject(send, limit)


def _path_error(scope: Scope) -> InvalidPath | None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope["path"]):
        return InvalidPath("path contains a NUL or control character")
    raw = scope.get("raw_path")
    if raw:
        try:
            unquote_to_bytes(raw.split(b"?", 1)[0]).decode("utf-8")
        except UnicodeDecodeError:
            # the server would decode it with U+FFFD for each bad byte, so different
            # byte strings would alias one path
            return InvalidPath("path is not valid UTF-8 once percent-decoded")
    return None


class PathGuardMiddleware:
    """Refuse a request whose path holds a control character or is not UTF-8, before
    routing: the router's patterns neither match a newline inside a path nor see one at
    its end (``$`` matches before a final newline), so ``a%0A`` would otherwise write
    ``a``; and ``%C0%AE`` would be read as U+FFFD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = _path_error(scope) if scope["type"] == "http" else None
        if error is not None:
            body = json.dumps(error.to_dict()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than the limit of {max_bytes} bytes",
        context={"max_bytes": max_bytes},
        hint="raise MEMHUB_MAX_BODY_BYTES (files) or MEMHUB_MAX_JSON_BYTES (JSON bodies), "
        "or upload in chunks (POST /v1/…/chunks/missing)",
    )


async def _reject(send: Send, max_bytes: int) -> None:
    error = _too_large(max_bytes)
    body = json.dumps(error.to_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeadersMiddleware:
    """nosniff, frame deny and a referrer policy on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CatchAllMiddleware:
    """The last resort: an unexpected exception becomes a JSON 500 here, instead of
    reaching Starlette's ServerErrorMiddleware, which answers and then re-raises, so
    uvicorn closes the keep-alive connection after every 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise  # half a response is out: only closing the connection can tell
            log.exception("unexpected error")
            body = json.dumps(
                {"detail": "Internal server error", "error_code": "INTERNAL_ERROR", "context": None}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *SECURITY_HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
