"""``memhub lease list|release``: see who holds which lease; break a stuck one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from memhub.cli.common import (
    JsonOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    console,
    fail_with,
    print_json,
    print_table,
    profile,
    remote,
)
from memhub.errors import MemhubError

app = typer.Typer(help="List leases; break one whoever holds it.", no_args_is_help=True)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_leases(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show released and expired leases.")
    ] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Leases held in the workspace: holder, fencing token, time left (--all: every lease)."""
    chosen = profile(server, key, workspace)
    try:
        with remote(chosen) as client:
            leases = client.leases()
    except MemhubError as exc:
        fail_with(exc, json_output)
    if not show_all:
        leases = [lease for lease in leases if lease.active]
    if json_output:
        print_json({"workspace": chosen.workspace, "leases": [x.model_dump() for x in leases]})
        return
    if not leases:
        console.print("no lease is held" if not show_all else "no leases")
        return
    table = Table("name", "holder", "token", "acquired", "expires", "left (s)")
    for lease in leases:
        table.add_row(
            lease.name,
            lease.holder or "-",
            str(lease.token),
            _when(lease.acquired_at) if lease.active else "-",
            _when(lease.expires_at) if lease.active else "-",
            str(int(lease.ttl_remaining)),
        )
    print_table(table)


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
        with remote(chosen) as client:
            lease = client.force_release(name)
    except MemhubError as exc:
        fail_with(exc, json_output)
    if json_output:
        print_json(lease.model_dump())
    else:
        console.print(f"released {lease.name} (token {lease.token})")
