"""Pure ASGI middleware: the request body limit and the security headers."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memhub.errors import InvalidPath, PayloadTooLarge


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once when Content-Length says so,
    otherwise as soon as the streamed body passes the limit (the route then
    fails before anything is committed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _reject(send, self.max_bytes)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(
                        f"the body is larger than the limit of {self.max_bytes} bytes",
                        context={"max_bytes": self.max_bytes},
                    )
            return message

        await self.app(scope, limited_receive, send)


class PathGuardMiddleware:
    """Refuse a request whose path holds a control character before routing: the
    router's patterns neither match a newline inside a path nor see one at its end
    (``$`` matches before a final newline), so ``a%0A`` would otherwise write ``a``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(
            ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope["path"]
        ):
            error = InvalidPath("path contains a NUL or control character")
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


async def _reject(send: Send, max_bytes: int) -> None:
    error = PayloadTooLarge(
        f"the body is larger than the limit of {max_bytes} bytes",
        context={"max_bytes": max_bytes},
        hint="raise MEMHUB_MAX_BODY_BYTES, or upload in chunks (POST /v1/…/chunks/missing)",
    )
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
