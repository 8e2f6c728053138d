"""Who is asking, and for which workspace: the request context every route gets.

Authentication fills in :class:`Principal`; until keys exist, a server bound to
loopback serves one local principal with every scope. Routes never look at
headers for identity themselves: they take a :class:`RequestContext` (seed
routes) or call :func:`workspace_for` (routes that name a workspace).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from memhub.errors import Forbidden
from memhub.store import Store

SCOPES = ("read", "write", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    workspace: str | None  # None: every workspace (an admin or the local principal)
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    key_id: str | None = None

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    workspace: str


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_principal(request: Request) -> Principal:
    principal: Principal = request.app.state.principal_resolver(request)
    return principal


def get_context(request: Request) -> RequestContext:
    """The context of a route that works on the caller's own workspace."""
    principal = get_principal(request)
    workspace = principal.workspace or request.app.state.default_workspace
    return RequestContext(principal, workspace)


def authorize(principal: Principal, workspace: str, scope: str) -> None:
    if principal.workspace is not None and principal.workspace != workspace:
        raise Forbidden("this key cannot reach that workspace", context={"workspace": workspace})
    if not principal.can(scope):
        raise Forbidden(f"this key lacks the {scope!r} scope", context={"scope": scope})


def local_principal(_request: Request) -> Principal:
    """The embedded default on loopback: one local user with every scope."""
    return Principal(name="local", workspace=None)
