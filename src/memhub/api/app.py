"""The composition root of the server: settings in, a ready FastAPI app out."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from memhub import __version__
from memhub.api.context import get_principal
from memhub.api.errors import install_error_handlers
from memhub.api.metrics import Metrics, MetricsMiddleware
from memhub.api.middleware import (
    BodyLimitMiddleware,
    CatchAllMiddleware,
    PathGuardMiddleware,
    SecurityHeadersMiddleware,
)
from memhub.api.notify import ChangeNotifier
from memhub.api.openapi import install_openapi
from memhub.api.preconditions import refuse_unsupported_preconditions
from memhub.api.routes import admin, auth, memory, seed, v1_batch, v1_files, v1_leases, v1_sync
from memhub.api.routes import diffmem as diffmem_routes
from memhub.api.routes import repos as repo_routes
from memhub.api.routes import sessions as session_routes
from memhub.api.routes.common import reject_unknown_query
from memhub.api.routes.items import router as items_router
from memhub.api.routes.product import router as product_router
from memhub.api.routes.proxy_v2 import router as proxy_v2_router
from memhub.api.routes.v1_chunk_batch import router as chunk_batch_router
from memhub.auth.admission import (
    AdmissionMiddleware,
    AdmissionPolicy,
    parse_networks,
    parse_scope_limits,
)
from memhub.auth.authenticator import Authenticator
from memhub.auth.keys import KeyStore
from memhub.auth.local import load_or_create_jwt_secret
from memhub.auth.ratelimit import FailoverLimiter, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from memhub.auth.tokens import TokenCodec
from memhub.config import Settings
from memhub.errors import Forbidden
from memhub.mcp.http import mount_mcp
from memhub.memory.blocks import offload
from memhub.memory.embeddings import from_settings as embeddings_from
from memhub.memory.items import Items
from memhub.memory.llm_extractor import item_extractor
from memhub.memory.service import Memory
from memhub.store import Store, open_store
from memhub.ui import build_ui

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


def index_dir(settings: Settings) -> Path:
    """Each server process keeps its own search index (it follows the change log)."""
    if settings.index_dir is not None:
        return settings.index_dir
    node = settings.node_id or f"{socket.gethostname()}-{settings.port}"
    return settings.data_dir / "index" / node


def build_limiter(settings: Settings, metrics: Metrics) -> RateLimiter:
    local = MemoryRateLimiter()
    if not settings.redis_url:
        return local
    return FailoverLimiter(
        RedisRateLimiter(settings.redis_url),
        local,
        refuse=settings.rate_limit_on_redis_failure == "refuse",
        on_failure=metrics.redis_failures.inc,
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
    store.add_corruption_listener(lambda _sha: metrics.corrupt_chunks.inc())
    keys = KeyStore(store.meta, cache_seconds=settings.key_cache_seconds)
    tokens = TokenCodec(
        settings.jwt_secret or load_or_create_jwt_secret(settings.data_dir),
        ttl_seconds=settings.jwt_ttl_seconds,
    )
    authenticator = Authenticator(
        keys,
        tokens,
        master_key_hash=settings.master_key_hash,
        internal_secret=settings.internal_service_secret,
        default_workspace=settings.default_workspace,
    )
    limiter = build_limiter(settings, metrics)
    embeddings = embeddings_from(settings)  # one client for block and item vectors, or None
    mem = Memory(store, index_dir(settings), embeddings=embeddings)
    items = Items(store, mem, index_dir(settings), embeddings=embeddings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        async with mcp.run(_app):
            yield
        await limiter.close()
        await ui.sessions.store.close()
        items.close()
        app.state.sessions.close()
        mem.close()
        offload.shutdown()
        if owns_store:
            store.close()

    app = FastAPI(
        title="memhub",
        version=__version__,
        description="A self-hosted memory hub for AI agents: versioned files, sync, "
        "search and context.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_openapi
        redoc_url=None,
        dependencies=[Depends(refuse_unsupported_preconditions), Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.notifier = notifier
    app.state.default_workspace = settings.default_workspace
    app.state.keys = keys
    app.state.tokens = tokens
    app.state.memory = mem
    app.state.items = items

    install_error_handlers(app)
    for module in (seed, v1_files, v1_sync, v1_batch, v1_leases, memory, admin, auth):
        app.include_router(module.router)
    app.include_router(items_router)
    app.include_router(product_router)
    app.include_router(chunk_batch_router)

    app.state.sessions = session_routes.build_sessions(settings, store, metrics)
    ui = build_ui(app, authenticator, settings.ui_session_seconds, settings.redis_url)
    app.mount("/ui", ui.app)  # the web UI: its own pages, hidden from the OpenAPI document
    mcp = mount_mcp(app)  # POST /mcp: streamable HTTP, behind the same admission
    app.state.llm = app.state.sessions.provider  # ChatProvider | None, for other features
    if app.state.llm is not None:  # MemOS add with mode "fine": facts by the same LLM
        items.extractor = item_extractor(app.state.llm)
    for mine in (session_routes, diffmem_routes, repo_routes):  # issue 12
        app.include_router(mine.router)
    app.include_router(proxy_v2_router)  # last: /{namespace}/blob/{path} matches widely

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics (text format)."""
        if not settings.metrics_public and not (await get_principal(request)).is_admin:
            raise Forbidden("metrics need an admin key (MEMHUB_METRICS_PUBLIC=false)")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    public = {"/auth/github"} | ({"/metrics"} if settings.metrics_public else set())
    install_openapi(app, public_paths=frozenset(public))

    policy = AdmissionPolicy(
        limit=settings.rate_limit,
        window=settings.rate_window_seconds,
        enabled=settings.rate_limit_enabled,
        scope_limits=parse_scope_limits(settings.rate_limit_scopes),
        trusted_proxies=parse_networks(settings.trusted_proxies),
        public_paths=frozenset({"/metrics"} if settings.metrics_public else ()),
    )
    # added innermost first: the request passes SecurityHeaders → CORS → Metrics →
    # Admission → PathGuard → BodyLimit → the route (admission first, so that every
    # answer but the exempt routes' counts against a window and carries its headers)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_json_bytes=settings.max_json_bytes,
    )
    app.add_middleware(PathGuardMiddleware)
    app.add_middleware(
        AdmissionMiddleware,
        authenticator=authenticator,
        limiter=limiter,
        policy=policy,
        on_reject=lambda reason: metrics.rejections.labels(reason).inc(),
        sessions=ui.sessions,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    origins = [o.strip() for o in (settings.cors_origins or "").split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "ETag",
                "X-Memhub-Rev",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
            ],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CatchAllMiddleware)
    return app
