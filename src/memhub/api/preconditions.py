"""No write ignores a precondition it does not understand.

A client that sends ``If-Match-Version`` (the memory proxy's later protocol) to
the seed's ``PUT /blob/{path}``, or ``If-Match`` to a route that has no such
check, believes its write is conditional; silently writing anyway could lose an
update. So a write (POST, PUT, PATCH, DELETE) that carries a precondition
header its route does not declare is refused with 400
``UNSUPPORTED_PRECONDITION`` before the route runs (an app-wide dependency:
after routing, the matched route is known; before the route reads the body).

Precondition headers: every ``If-*`` header (RFC 9110's conditional requests and
``If-Match-Version``) and ``Content-MD5`` (the seed's precondition). What a
route supports is read from its declared header parameters, so a route that
gains a header parameter supports it with no change here. Writes without any
such header (nearly all) pay one scan of their header names; reads nothing.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

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


async def refuse_unsupported_preconditions(request: Request) -> None:
    """An app-wide dependency: runs after routing, before the route's own code, on every
    route; refuses a write whose precondition headers the matched route does not declare."""
    if request.method not in WRITE_METHODS:
        return
    sent = {name for name in request.headers if is_precondition(name.lower())}
    if not sent:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    supported = declared_headers(route.dependant)  # a few nodes; only with such a header
    unsupported = sorted(h.lower() for h in sent if h.lower() not in supported)
    if unsupported:
        raise UnsupportedPrecondition(
            f"{request.method} {request.url.path} does not support the precondition "
            f"header(s) {', '.join(unsupported)}; the write was not made",
            context={"headers": unsupported, "method": request.method},
            hint="use the precondition headers this route documents (see the README)",
        )
