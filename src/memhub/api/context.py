"""Who is asking, and for which workspace: the request context every route gets.

:class:`memhub.auth.admission.AdmissionMiddleware` authenticates the request
and leaves its :class:`Principal` in the ASGI scope; routes take it from
there (:func:`get_principal`) and never read credentials themselves.

A key that names another workspace gets 404 ``WORKSPACE_NOT_FOUND``, exactly
as for a workspace that does not exist, so a key cannot even learn which
workspaces exist. A missing scope on its own workspace is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from memhub.auth.principal import Principal
from memhub.errors import Forbidden, Unauthorized, WorkspaceNotFound
from memhub.store import Store

# The dependencies are ``async`` although they do no I/O: FastAPI runs plain ``def``
# dependencies in the thread pool, a hand-off per dependency per request.

__all__ = ["Principal", "RequestContext", "authorize", "get_context", "get_principal", "get_store"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    workspace: str


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized(
            "this route needs an API key or a token",
            headers={"www-authenticate": 'Bearer realm="memhub"'},
        )
    return principal


async def get_context(request: Request) -> RequestContext:
    """The context of a route that works on the caller's own workspace."""
    principal = await get_principal(request)
    workspace = principal.workspace or request.app.state.default_workspace
    return RequestContext(principal, workspace)


def authorize(principal: Principal, workspace: str, scope: str) -> None:
    if not principal.reaches(workspace):
        raise WorkspaceNotFound(
            f"workspace {workspace!r} does not exist", context={"workspace": workspace}
        )
    if not principal.can(scope):
        raise Forbidden(f"this key lacks the {scope!r} scope", context={"scope": scope})
