"""``memhub serve``: the server on the embedded default (or what MEMHUB_* names)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from memhub.cli.common import DataDirOption, console, fail, load_settings
from memhub.errors import MemhubError


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
) -> None:
    """Run the memhub server."""
    import uvicorn

    from memhub.api.app import create_app

    settings = load_settings(data_dir, host=host, port=port, log_level=log_level)
    if not is_loopback(settings.host):
        fail(
            f"refusing to bind {settings.host}: this server has no authentication configured, "
            "so it only listens on loopback (127.0.0.1). Put it behind an authenticating "
            "proxy bound to loopback, or bind 127.0.0.1."
        )
    try:
        app = create_app(settings)
    except MemhubError as exc:
        fail(str(exc))
    console.print(
        f"memhub serving on [bold]http://{settings.host}:{settings.port}[/bold]  "
        f"(database {settings.resolved_database_url}, blobs {settings.resolved_blob_url})"
    )
    console.print(f"API docs: http://{settings.host}:{settings.port}/docs")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        timeout_graceful_shutdown=5,
    )
