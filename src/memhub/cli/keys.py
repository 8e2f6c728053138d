"""``memhub keys create|list|revoke``: API keys, straight in the metadata database
(works without a running server: this is how a deployment is bootstrapped)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from memhub.auth.keys import KeyStore
from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    console,
    fail,
    open_local_store,
    print_json,
    print_table,
)
from memhub.errors import MemhubError
from memhub.store import Store

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _open(data_dir: DataDirOption) -> Store:
    return open_local_store(data_dir)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M")


@app.command("create")
def create(
    workspace: Annotated[str, typer.Option("--workspace", help="The workspace the key opens.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: read, write, admin.")
    ] = "read,write",
    admin: Annotated[bool, typer.Option("--admin", help="Add the admin scope.")] = False,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expire after N days.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note on what the key is for.")] = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a key and print it (it is shown only this once)."""
    store = _open(data_dir)
    try:
        store.create_workspace(workspace, exist_ok=True)
        scope_list = [s for s in scopes.split(",") if s.strip()] + (["admin"] if admin else [])
        key, record = KeyStore(store.meta).create(
            workspace,
            scope_list,
            description=description,
            created_by="memhub keys create",
            expires_in_days=expires_in_days,
        )
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json({"key": key, **record.to_dict()})
        return
    console.print(
        f"created key [bold]{record.id}[/bold] for workspace {record.workspace} "
        f"({', '.join(sorted(record.scopes))}); store it now, it is not shown again:"
    )
    typer.echo(key)


@app.command("list")
def list_keys(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Only this workspace.")
    ] = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """List keys (ids, prefixes, scopes, dates; never the keys)."""
    store = _open(data_dir)
    try:
        records = KeyStore(store.meta).list(workspace)
    finally:
        store.close()
    if json_output:
        print_json([r.to_dict() for r in records])
        return
    table = Table("id", "prefix", "workspace", "scopes", "created", "expires", "last used", "state")
    now = datetime.now(UTC).timestamp()
    for r in records:
        state = "revoked" if r.revoked else ("expired" if not r.usable(now) else "active")
        table.add_row(
            r.id,
            r.prefix,
            r.workspace,
            ",".join(sorted(r.scopes)),
            _when(r.created_at),
            _when(r.expires_at),
            _when(r.last_used_at),
            state,
        )
    print_table(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[
        str, typer.Argument(help="The key's id, or any unique start of it (`memhub keys list`).")
    ],
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Revoke a key: refused from now on (other server nodes within a few seconds)."""
    store = _open(data_dir)
    try:
        keys = KeyStore(store.meta)
        matches = [r for r in keys.list() if r.id.startswith(key_id.strip())] if key_id else []
        if not matches:
            fail(f"no API key id starts with {key_id!r} (see `memhub keys list`)", 1)
        if len(matches) > 1:
            ids = ", ".join(r.id for r in matches)
            fail(f"{key_id!r} is the start of {len(matches)} key ids ({ids}): give more of it", 1)
        if matches[0].revoked:
            if json_output:
                print_json({"ok": False, "already_revoked": True, **matches[0].to_dict()})
            fail(f"key {matches[0].id} was already revoked", 1)
        record = keys.revoke(matches[0].id)
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json(record.to_dict())
    else:
        console.print(f"revoked key {record.id} ({record.prefix}…, workspace {record.workspace})")
