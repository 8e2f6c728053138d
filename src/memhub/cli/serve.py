"""``memhub serve``: the server on the embedded default (or what MEMHUB_* names)."""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memhub.auth.keys import KeyStore
from memhub.auth.local import ensure_local_admin_key
from memhub.auth.tokens import is_strong_secret
from memhub.cli.common import DataDirOption, console, fail, load_settings
from memhub.config import Settings
from memhub.errors import MemhubError


def hardened_uvicorn() -> dict[str, Any]:
    """uvicorn options memhub always sets:

    - no proxy_headers: uvicorn would otherwise believe X-Forwarded-For from loopback
      (its forwarded_allow_ips default), so a local caller could rotate its rate-limit
      address; only MEMHUB_TRUSTED_PROXIES (auth/admission.py) makes a forwarded
      address count;
    - the httptools parser with the request head capped in size and time
      (api/http_protocol.py; httptools alone has no cap: a 50 MB header was read whole).
    """
    from memhub.api.http_protocol import CappedHttpToolsProtocol

    return {"proxy_headers": False, "forwarded_allow_ips": "", "http": CappedHttpToolsProtocol}


if TYPE_CHECKING:
    from fastapi import FastAPI


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def check_port_free(host: str, port: int) -> None:
    """Fail before printing "serving on …" when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            fail(
                f"cannot listen on {host}:{port}: "
                + (
                    "the port is in use (another memhub serve?). Stop that process or pick "
                    "another port: memhub serve --port N"
                    if in_use
                    else f"{exc.strerror}. Check --host (MEMHUB_HOST)."
                )
            )


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on, 1-65535 (default 8000).", min=1, max=65535),
    ] = None,
    data_dir: DataDirOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="critical | error | warning | info | debug | trace (default info)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes over the one store (default 1).")
    ] = 1,
) -> None:
    """Run the memhub server."""
    settings = load_settings(data_dir, host=host, port=port, log_level=log_level)
    if settings.log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}")
    if not 1 <= settings.port <= 65535:
        fail(f"the port must be between 1 and 65535, not {settings.port} (MEMHUB_PORT, --port)")
    import uvicorn

    from memhub.api.app import build_store, create_app

    loopback = is_loopback(settings.host)
    if not loopback and not is_strong_secret(settings.jwt_secret):
        fail(
            f"refusing to bind {settings.host}: MEMHUB_JWT_SECRET is missing or weak. Off "
            "loopback the server signs tokens with a secret you set: at least 32 random "
            'characters (python -c "import secrets; print(secrets.token_urlsafe(48))").'
        )
    check_port_free(settings.host, settings.port)
    try:
        store = build_store(settings)
    except MemhubError as exc:
        fail(str(exc))
    keys = KeyStore(store.meta)
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
    try:
        app = create_app(settings, store=store)
    except MemhubError as exc:
        store.close()
        fail(str(exc))
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
        **hardened_uvicorn(),
    )
    store.close()


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
        **hardened_uvicorn(),
    )
