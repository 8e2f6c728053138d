"""The API in this process: the same routes, auth and errors as a server, no socket.

When no server is configured, the CLI (and ``memhub mcp``) talk to
``create_app(...)`` on the local data dir through :class:`ASGIBridge`, a sync
``httpx`` transport that runs the app on an event loop in a helper thread
(``httpx.ASGITransport`` underneath, and the app's lifespan around it). This
module imports the server lazily: only when a command actually runs locally.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal


class ASGIBridge(httpx.BaseTransport):
    """A sync httpx transport over an ASGI app (bodies are read whole, both ways)."""

    def __init__(self, app: Any) -> None:
        from anyio.from_thread import start_blocking_portal

        self._stack = ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self._transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        lifespan: AbstractContextManager[Any] = self._portal.wrap_async_context_manager(
            app.router.lifespan_context(app)
        )
        self._stack.enter_context(lifespan)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> httpx.Response:
            response = await self._transport.handle_async_request(inner)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._portal.call(call)

    def close(self) -> None:
        self._stack.close()


def local_app(data_dir: Path) -> tuple[Any, str, ExitStack]:
    """The app over the data dir's store, the local admin key, and what closes both.

    The in-process app has no rate limit (its caller owns the data) and keeps
    its search index under ``<data dir>/index/cli``.
    """
    from memhub.api.app import build_store, create_app
    from memhub.auth.keys import KeyStore
    from memhub.auth.local import ensure_local_admin_key
    from memhub.config import Settings
    from memhub.core.protocol import read_local_admin_key

    settings = Settings(data_dir=data_dir, node_id="cli", rate_limit_enabled=False)
    stack = ExitStack()
    store = build_store(settings)
    stack.callback(store.close)
    try:
        keys = KeyStore(store.meta)
        store.create_workspace(settings.default_workspace, exist_ok=True)
        ensure_local_admin_key(settings.data_dir, keys, settings.default_workspace)
        key = read_local_admin_key(settings.data_dir)
        assert key is not None  # ensure_local_admin_key just wrote it
        app = create_app(settings, store=store)
    except BaseException:
        stack.close()
        raise
    return app, key, stack
