"""Connectors: how a tool call reaches memhub's HTTP API.

- :class:`FixedConnector`: one hub for the whole process (``memhub mcp`` over
  stdio): a remote server with the profile's key, or the local data dir through
  an in-process app (:func:`local_connector`).
- :class:`ForwardingConnector`: ``/mcp`` inside the server. Each request's
  credentials are forwarded to the same app in this process, so
  the REST routes authorise every tool call exactly as they authorise REST
  calls; the workspace is the key's own, or ``X-Memhub-Workspace``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from memhub.mcp.asgi import AsgiClient
from memhub.mcp.hub import HttpClient, Hub

if TYPE_CHECKING:
    from memhub.client.profile import Profile
    from memhub.config import Settings

FORWARDED = ("authorization", "x-api-key", "x-internal-service")
WORKSPACE_HEADER = "x-memhub-workspace"


@dataclass(frozen=True, slots=True)
class FixedConnector:
    fixed: Hub

    def hub(self, _request: Any) -> Hub:
        return self.fixed

    def scopes(self, _request: Any) -> frozenset[str] | None:
        return None


@dataclass(frozen=True, slots=True)
class ForwardingConnector:
    http: HttpClient
    default_workspace: str

    def hub(self, request: Any) -> Hub:
        if request is None:  # not over HTTP: nothing to forward, the API will say 401
            return Hub(self.http, self.default_workspace)
        headers = {k: v for k in FORWARDED if (v := request.headers.get(k)) is not None}
        principal = request.scope.get("state", {}).get("principal")
        home = getattr(principal, "workspace", None) or self.default_workspace
        workspace = request.headers.get(WORKSPACE_HEADER) or home
        return Hub(self.http, workspace, headers)

    def scopes(self, request: Any) -> frozenset[str] | None:
        principal = request.scope.get("state", {}).get("principal") if request else None
        return frozenset(principal.scopes) if principal is not None else frozenset()


def asgi_client(app: Any) -> AsgiClient:
    """A client of ``app`` in this process. Its requests are marked in-process (see
    :func:`memhub.auth.admission.in_process`): one tool call on ``/mcp`` counts once
    against its key's rate limit, however many REST requests it makes."""
    return AsgiClient(app)


def remote_connector(profile: Profile, timeout: float = 60.0) -> FixedConnector:
    headers = {"authorization": f"Bearer {profile.key}"} if profile.key else {}
    http = httpx.AsyncClient(base_url=profile.server, timeout=timeout)
    return FixedConnector(Hub(http, profile.workspace, headers))


@contextmanager
def index_dir(data_dir: Path) -> Iterator[Path]:
    """The search index of a local ``memhub mcp``: ``<data dir>/index/mcp`` for the first
    such process (an OS lock, released when the process dies, says which), a private
    one (removed at exit) for each other one at the same time: a tantivy index has
    one writer."""
    base = data_dir / "index"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "mcp.lock").open("a") as lock:
        if _try_lock(lock.fileno()):
            yield base / "mcp"
            return
        private = Path(tempfile.mkdtemp(prefix="mcp-", dir=base))
        try:
            yield private
        finally:
            shutil.rmtree(private, ignore_errors=True)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: every process gets its own index
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@asynccontextmanager
async def local_connector(settings: Settings, workspace: str) -> AsyncIterator[FixedConnector]:
    """The local data dir through an in-process app (its lifespan runs here), with the
    embedded default's admin key. Rate limits are off: this is one user's own store."""
    from memhub.api.app import create_app
    from memhub.auth.local import ensure_local_admin_key

    with ExitStack() as stack:
        index = settings.index_dir or stack.enter_context(index_dir(settings.data_dir))
        settings = settings.model_copy(update={"rate_limit_enabled": False, "index_dir": index})
        app = create_app(settings)
        path, _created = ensure_local_admin_key(
            settings.data_dir, app.state.keys, settings.default_workspace
        )
        key = path.read_text(encoding="utf-8").strip()
        async with app.router.lifespan_context(app), asgi_client(app) as http:
            yield FixedConnector(Hub(http, workspace, {"authorization": f"Bearer {key}"}))
