"""What every command shares: settings from flags and environment, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from memhub.config import Settings
from memhub.errors import MemhubError
from memhub.store import Store, open_store
from memhub.sync.profile import Profile, load_profile

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the embedded default keeps its database and blobs "
        "(default: MEMHUB_DATA_DIR or the user data dir).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="memhub server URL (default: MEMHUB_SERVER or `memhub login`)."),
]
KeyOption = Annotated[
    str | None, typer.Option("--key", help="API key (default: MEMHUB_KEY or `memhub login`).")
]
WorkspaceOption = Annotated[
    str | None,
    typer.Option("--workspace", help="Workspace (default: MEMHUB_WORKSPACE, login, or default)."),
]

console = Console(stderr=True)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser().resolve()
    try:
        return Settings(**values)
    except Exception as exc:  # pydantic's ValidationError: a bad MEMHUB_* value
        fail(f"invalid settings: {exc}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def open_local_store(data_dir: Path | None) -> Store:
    """The store the settings name, opened in this process (for admin commands)."""
    settings = load_settings(data_dir)
    try:
        return open_store(
            settings.resolved_database_url,
            settings.resolved_blob_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        )
    except MemhubError as exc:
        fail(str(exc))


def profile(
    server: str | None = None, key: str | None = None, workspace: str | None = None
) -> Profile:
    """The server, key and workspace a client command uses (flags > env > login)."""
    try:
        return load_profile(server, key, workspace)
    except MemhubError as exc:
        fail(str(exc))
