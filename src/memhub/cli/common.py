"""What every command shares: the client settings, options, output helpers.

The root callback (:mod:`memhub.cli.main`) puts one :class:`CliState` in the
click context; :func:`state` finds it from anywhere in a command. Its
:class:`ClientSettings` is built on first use (``--help`` never reads the
environment), once per process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer._click.globals import get_current_context

from memhub.cli.state import CliState
from memhub.errors import MemhubError

if TYPE_CHECKING:
    from memhub.client import MemhubClient, RetryPolicy
    from memhub.client.profile import Profile
    from memhub.client.settings import ClientSettings
    from memhub.config import Settings
    from memhub.store import Store

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

# messages go to stderr and are never wrapped (a pipe is not 80 columns wide)
console = Console(stderr=True, soft_wrap=True)


def state() -> CliState:
    """The root callback's state (a fresh one when a command runs outside the app)."""
    ctx = get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is None:
        return CliState()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def client_settings(data_dir: Path | None = None) -> ClientSettings:
    from pydantic import ValidationError

    try:
        settings = state().settings
    except ValidationError as exc:
        fail(f"invalid MEMHUB_* setting: {exc}")
    if data_dir is not None:
        return settings.model_copy(update={"data_dir": data_dir.expanduser().resolve()})
    return settings


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """The server's settings (serve, keys, fsck, gc work on the store directly)."""
    from pydantic import ValidationError

    from memhub.config import Settings

    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser().resolve()
    try:
        return Settings(**values)
    except ValidationError as exc:
        fail(f"invalid settings: {exc}")


def print_table(table: Any) -> None:
    """A rich table on stdout: never cut (ids must be copyable), however narrow the pipe."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=1000)
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "ignore"
    out.print(table)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def fail_with(exc: MemhubError, json_output: bool = False, code: int = 1) -> NoReturn:
    """Report a memhub error: a JSON result on stdout with --json, the message on stderr."""
    if json_output:
        print_json({"ok": False, **exc.to_dict()})
    fail(str(exc), code)


def open_local_store(data_dir: Path | None) -> Store:
    """The store the server settings name, opened as the server opens it (admin commands)."""
    from memhub.api.app import build_store

    settings = load_settings(data_dir)
    try:
        return build_store(settings)
    except MemhubError as exc:
        fail(str(exc))


def profile(
    server: str | None = None,
    key: str | None = None,
    workspace: str | None = None,
    data_dir: Path | None = None,
) -> Profile:
    """The server, key and workspace a client command uses (flags > env > login)."""
    from memhub.client.profile import load_profile

    try:
        return load_profile(client_settings(data_dir), server, key, workspace)
    except MemhubError as exc:
        fail(str(exc))


def connect(
    chosen: Profile,
    *,
    data_dir: Path | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    local: bool | None = None,
) -> MemhubClient:
    """The client for a profile: over HTTP, or in-process when no server is configured."""
    from memhub.client import connect as connect_client

    try:
        return connect_client(
            client_settings(data_dir), chosen, timeout=timeout, retry=retry, local=local
        )
    except MemhubError as exc:
        fail(str(exc), 1)


def remote(chosen: Profile, **kwargs: Any) -> MemhubClient:
    """A client that needs a real server (sync, db, leases): the default one when unnamed."""
    return connect(chosen, local=False, **kwargs)
