"""One request straight into an ASGI app, with no HTTP client in between.

Starlette's TestClient normalises what it sends: it resolves ``..``, percent-decodes
the path a second time, sets its own headers and always claims the loopback
address. Tests of what a server receives from a hostile or unusual client (raw
header bytes, a peer address, a Content-Length the body never matches) go through
:func:`asgi_call` instead: the scope is exactly what a server would hand over after
decoding the request line once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import anyio

Headers = Sequence[tuple[bytes, bytes]]
LOOPBACK = ("127.0.0.1", 50000)


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class BodyRead(AssertionError):
    """The app read a body that the test said must not be read."""


def asgi_call(
    app: Any,
    method: str,
    path: str,
    headers: Headers = (),
    *,
    body: bytes | None = b"",
    client: tuple[str, int] = LOOPBACK,
    raw_path: bytes | None = None,
) -> RawResponse:
    """Send one request to ``app`` and collect its answer.

    ``headers`` go out exactly as given, after a ``host`` header (no Content-Length
    or Authorization is added). ``body=None`` sends the head only: reading the body
    fails the test with :class:`BodyRead`. ``raw_path`` defaults to ``path`` in
    UTF-8 (lone surrogates kept as their bytes).
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": client,
        "server": ("testserver", 80),
    }
    status = 0
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if body is None:
            raise BodyRead(f"{method} {path}: the app read the body it should have refused")
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()  # the client is still there; nothing more comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message["headers"]
            )
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    anyio.run(app, scope, receive, send)
    return RawResponse(status, response_headers, b"".join(chunks))
