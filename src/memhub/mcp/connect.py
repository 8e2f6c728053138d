"""Connectors: which hub a tool call gets.

- :class:`FixedConnector`: one hub for the whole process (``memhub mcp`` over
  stdio): a remote server's REST API with the profile's key
  (:func:`remote_connector`), or the local data dir's services in this process
  as the local admin key's principal (:func:`local_connector`).

``/mcp`` inside the server gets its hub per request from
:class:`~memhub.mcp.services.ServiceConnector`. The services are imported only
by what uses them: a remote ``memhub mcp`` does not load the server.
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

from memhub.errors import Unauthorized
from memhub.mcp.hub import Hub
from memhub.mcp.rest import RestHub

if TYPE_CHECKING:
    from memhub.client.profile import Profile
    from memhub.config import Settings


@dataclass(frozen=True, slots=True)
class FixedConnector:
    fixed: Hub

    def hub(self, _request: Any) -> Hub:
        return self.fixed

    def scopes(self, _request: Any) -> frozenset[str] | None:
        return None


@asynccontextmanager
async def remote_connector(
    profile: Profile, timeout: float = 60.0
) -> AsyncIterator[FixedConnector]:
    """A remote server's REST API with the profile's key (its HTTP client open meanwhile)."""
    headers = {"authorization": f"Bearer {profile.key}"} if profile.key else {}
    async with httpx.AsyncClient(base_url=profile.server, timeout=timeout) as http:
        yield FixedConnector(RestHub(http, profile.workspace, headers))


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
    """The local data dir's services in this process (the app's lifespan runs here, for
    the index and the change notifier), as the principal of the embedded default's admin
    key: the user who owns the data dir, as every other client command on it."""
    from memhub.api.app import create_app
    from memhub.auth.local import ensure_local_admin_key
    from memhub.mcp.services import ServiceHub

    with ExitStack() as stack:
        index = settings.index_dir or stack.enter_context(index_dir(settings.data_dir))
        settings = settings.model_copy(update={"index_dir": index})
        app = create_app(settings)
        keys = app.state.keys
        path, _created = ensure_local_admin_key(settings.data_dir, keys, settings.default_workspace)
        record = keys.verify(path.read_text(encoding="utf-8").strip())
        if record is None:  # pragma: no cover - verify with I/O answers or raises
            raise Unauthorized("the local admin key is not usable")
        async with app.router.lifespan_context(app):
            yield FixedConnector(ServiceHub(app.state, record.principal(), workspace))
