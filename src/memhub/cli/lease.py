"""``memhub lease list|release``: see who holds which lease; break a stuck one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from memhub.cli.common import (
    JsonOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    console,
    fail,
    print_json,
    profile,
)
from memhub.errors import MemhubError

app = typer.Typer(help="List leases; break one whoever holds it.", no_args_is_help=True)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_leases(
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Leases of the workspace: holder, fencing token, time left."""
    chosen = profile(server, key, workspace)
    try:
        with chosen.client() as client:
            leases: list[dict[str, Any]] = client.leases()
    except MemhubError as exc:
        fail(str(exc), code=1)
    if json_output:
        print_json({"workspace": chosen.workspace, "leases": leases})
        return
    if not leases:
        console.print("no leases")
        return
    table = Table("name", "holder", "token", "acquired", "expires", "left (s)")
    for lease in leases:
        table.add_row(
            lease["name"],
            lease["holder"] or "-",
            str(lease["token"]),
            _when(lease["acquired_at"]) if lease["active"] else "-",
            _when(lease["expires_at"]) if lease["active"] else "-",
            str(int(lease["ttl_remaining"])),
        )
    console.print(table)


@app.command("release")
def release(
    name: Annotated[str, typer.Argument(help="The lease, e.g. db:NAME.")],
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Break a lease whoever holds it (its next holder still gets a higher token)."""
    chosen = profile(server, key, workspace)
    try:
        with chosen.client() as client:
            lease = client.force_release(name)
    except MemhubError as exc:
        fail(str(exc), code=1)
    if json_output:
        print_json(lease)
    else:
        console.print(f"released {lease['name']} (token {lease['token']})")
