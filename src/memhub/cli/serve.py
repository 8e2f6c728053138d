"""``memhub serve``: the server on the embedded default (or what MEMHUB_* names)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated

import typer

from memhub.auth.keys import KeyStore
from memhub.auth.local import ensure_local_admin_key
from memhub.auth.tokens import is_strong_secret
from memhub.cli.common import DataDirOption, console, fail, load_settings
from memhub.config import Settings
from memhub.errors import MemhubError

if TYPE_CHECKING:
    from fastapi import FastAPI


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    data_dir: DataDirOption = None,
    log_level: Annotated[str | None, typer.Option(help="debug | info | warning | error")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes over the one store (default 1).")
    ] = 1,
) -> None:
    """Run the memhub server."""
    import uvicorn

    from memhub.api.app import create_app

    settings = load_settings(data_dir, host=host, port=port, log_level=log_level)
    loopback = is_loopback(settings.host)
    if not loopback and not is_strong_secret(settings.jwt_secret):
        fail(
            f"refusing to bind {settings.host}: MEMHUB_JWT_SECRET is missing or weak. Off "
            "loopback the server signs tokens with a secret you set: at least 32 random "
            'characters (python -c "import secrets; print(secrets.token_urlsafe(48))").'
        )
    try:
        app = create_app(settings)
    except MemhubError as exc:
        fail(str(exc))
    keys: KeyStore = app.state.keys
    if loopback:
        path, created = ensure_local_admin_key(settings.data_dir, keys, settings.default_workspace)
        note = "created a local admin key" if created else "local admin key"
        console.print(f"{note}: [bold]cat {path}[/bold] (send it as Authorization: Bearer …)")
    elif not settings.master_key_hash and keys.count_usable() == 0:
        fail(
            f"refusing to bind {settings.host}: no way to authenticate is configured. Create a "
            "key first (memhub keys create --workspace NAME --admin) or set "
            "MEMHUB_MASTER_KEY_HASH."
        )
    console.print(
        f"memhub serving on [bold]http://{settings.host}:{settings.port}[/bold]  "
        f"(database {settings.resolved_database_url}, blobs {settings.resolved_blob_url})"
    )
    console.print(f"API docs: http://{settings.host}:{settings.port}/docs")
    if workers > 1:
        serve_workers(app, settings, workers, data_dir is not None)
        return
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        timeout_graceful_shutdown=5,
    )


def serve_workers(app: FastAPI, settings: Settings, workers: int, data_dir_given: bool) -> None:
    """``--workers N``: the app built here did the one-time work (migrations, the local
    admin key); each worker process builds its own (memhub.api.workers)."""
    import os

    import uvicorn

    from memhub.api.workers import settings_env

    app.state.memory.close()
    app.state.store.close()
    fields = ("host", "port", "log_level") + (("data_dir",) if data_dir_given else ())
    os.environ.update(settings_env(settings, fields))
    console.print(f"{workers} worker processes")
    uvicorn.run(
        "memhub.api.workers:worker_app",
        factory=True,
        workers=workers,
        # a worker busy starting (imports, the index) or under load answers late;
        # uvicorn's default of 5 s would restart healthy workers on a loaded machine
        timeout_worker_healthcheck=60,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        timeout_graceful_shutdown=5,
    )
