"""No write ignores a precondition it does not understand.

A client that sends ``If-Match-Version`` (the memory proxy's later protocol) to
the seed's ``PUT /blob/{path}``, or ``If-Match`` to a route that has no such
check, believes its write is conditional; silently writing anyway could lose an
update. So a write (POST, PUT, PATCH, DELETE) that carries a precondition
header its route does not declare is refused with 400
``UNSUPPORTED_PRECONDITION`` before the route runs.

Precondition headers: every ``If-*`` header (RFC 9110's conditional requests and
``If-Match-Version``) and ``Content-MD5`` (the seed's precondition). What a
route supports is read from its declared header parameters, so a route that
gains a header parameter supports it with no change here. Requests without any
such header (nearly all) pay one scan of their header names.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from memhub.errors import UnsupportedPrecondition

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_precondition(name: str) -> bool:
    """A lower-case header name that states a precondition of a write."""
    return name.startswith("if-") or name == "content-md5"


def declared_headers(dependant: Dependant) -> frozenset[str]:
    """Lower-case names of the headers a route (and its dependencies) declares."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        for field in current.header_params:
            names.add(str(field.alias or field.name).replace("_", "-").lower())
        stack.extend(current.dependencies)
    return frozenset(names)


class PreconditionGuardMiddleware:
    """Refuse writes that carry a precondition header their route does not declare."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._supported: dict[int, frozenset[str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS:
            sent = {
                name.decode("latin-1").lower()
                for name, _ in scope["headers"]
                if is_precondition(name.decode("latin-1").lower())
            }
            supported = self._route_headers(scope) if sent else None
            if supported is not None:
                unsupported = sorted(sent - supported)
                if unsupported:
                    await _refuse(send, scope, unsupported)
                    return
        await self.app(scope, receive, send)

    def _route_headers(self, scope: Scope) -> frozenset[str] | None:
        """The headers the matched route declares; None when no API route matches
        (not ours to judge: the router answers 404 or 405)."""
        route = _match(scope)
        if route is None or not isinstance(route, APIRoute):
            return None
        key = id(route)
        if key not in self._supported:
            self._supported[key] = declared_headers(route.dependant)
        return self._supported[key]


def _match(scope: Scope) -> BaseRoute | None:
    app: Any = scope.get("app")
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route  # type: ignore[no-any-return]
    return None


async def _refuse(send: Send, scope: Scope, headers: list[str]) -> None:
    error = UnsupportedPrecondition(
        f"{scope['method']} {scope['path']} does not support the precondition header(s) "
        f"{', '.join(headers)}; the write was not made",
        context={"headers": headers, "method": scope["method"]},
        hint="use the precondition headers this route documents (see the README)",
    )
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
