"""The composition root of the server: settings in, a ready FastAPI app out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from memhub import __version__
from memhub.api.context import get_principal, local_principal
from memhub.api.errors import install_error_handlers
from memhub.api.metrics import Metrics, MetricsMiddleware
from memhub.api.middleware import BodyLimitMiddleware, PathGuardMiddleware
from memhub.api.notify import ChangeNotifier
from memhub.api.routes import seed, v1_batch, v1_files, v1_leases, v1_sync
from memhub.config import Settings
from memhub.errors import Forbidden
from memhub.store import Store, open_store

log = logging.getLogger("memhub")


def build_store(settings: Settings) -> Store:
    return open_store(
        settings.resolved_database_url,
        settings.resolved_blob_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        chunk_size=settings.chunk_size,
        max_chunk_bytes=settings.max_chunk_bytes,
    )


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the app. ``store`` overrides the one the settings name (tests, embedding)."""
    settings = settings or Settings()
    owns_store = store is None
    store = store or build_store(settings)
    store.create_workspace(settings.default_workspace, exist_ok=True)
    notifier = ChangeNotifier()
    store.add_listener(notifier.notify)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        yield
        if owns_store:
            store.close()

    app = FastAPI(
        title="memhub",
        version=__version__,
        description="A self-hosted memory hub for AI agents: versioned files, sync, "
        "search and context.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.notifier = notifier
    app.state.default_workspace = settings.default_workspace
    app.state.principal_resolver = local_principal

    install_error_handlers(app)
    app.include_router(seed.router)
    app.include_router(v1_files.router)
    app.include_router(v1_sync.router)
    app.include_router(v1_batch.router)
    app.include_router(v1_leases.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        if not settings.metrics_public:
            principal = get_principal(request)
            if not principal.can("admin"):
                raise Forbidden("metrics need an admin key (MEMHUB_METRICS_PUBLIC=false)")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(PathGuardMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
