"""``memhub items add|ls|get|rm|search``: memory items from the command line.

Against a server when ``--server`` / ``MEMHUB_SERVER`` (or ``memhub login``) names
one, through ``/v1/workspaces/{ws}/items``; otherwise on the local data dir, through
the same items service the server runs (its catalog and index under
``<data dir>/index/cli``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape

from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    ServerOption,
    WorkspaceOption,
    console,
    fail,
    load_settings,
    open_local_store,
    print_json,
    profile,
    remote,
)
from memhub.errors import MemhubError

if TYPE_CHECKING:
    from memhub.client import MemhubClient

app = typer.Typer(help="Memory items: small facts kept as files (items/<cube>/<id>.md).")

FilterOption = Annotated[
    str | None, typer.Option("--filter", help='A JSON filter, e.g. \'{"tags": "travel"}\'.')
]


class Backend(Protocol):
    def add(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def query(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def get(self, item_id: str) -> dict[str, Any]: ...
    def delete(self, item_id: str, if_rev: int | None) -> dict[str, Any]: ...
    def search(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...


class Remote:
    def __init__(self, client: MemhubClient, workspace: str) -> None:
        self.client = client
        self.base = f"/v1/workspaces/{quote(workspace, safe='')}/items"

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, self.base + url, **kwargs).json()

    def add(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self._json("POST", "", json={"items": items})["items"])

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", "/query", json=body))

    def get(self, item_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/{quote(item_id, safe='')}"))

    def delete(self, item_id: str, if_rev: int | None) -> dict[str, Any]:
        params = {"if_rev": if_rev} if if_rev is not None else {}
        return dict(self._json("DELETE", f"/{quote(item_id, safe='')}", params=params))

    def search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._json("POST", "/search", json=body)["results"])


class Local:
    """The items service in this process (the route models validate the same input)."""

    def __init__(self, data_dir: Path | None, workspace: str) -> None:
        from memhub.memory.embeddings import from_settings as embeddings_from
        from memhub.memory.items import Items
        from memhub.memory.service import Memory

        settings = load_settings(data_dir)
        self.store = open_local_store(data_dir)
        embeddings = embeddings_from(settings)
        self.memory = Memory(self.store, settings.data_dir / "index" / "cli", embeddings=embeddings)
        self.items = Items(
            self.store, self.memory, settings.data_dir / "index" / "cli", embeddings=embeddings
        )
        self.workspace = workspace

    def close(self) -> None:
        self.items.close()
        self.memory.close()
        self.store.close()

    def add(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from memhub.api.routes.items import CreateItems, drafts_of

        body = CreateItems.model_validate({"items": items})
        added = self.items.add(self.workspace, drafts_of(body, self.workspace), author="cli")
        return [{**a.item.to_dict(), "action": a.action} for a in added]

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        from memhub.api.routes.items import ItemQuery, _page

        return _page(self.items, self.workspace, ItemQuery.model_validate(body)).model_dump()

    def get(self, item_id: str) -> dict[str, Any]:
        return self.items.get(self.workspace, item_id).to_dict()

    def delete(self, item_id: str, if_rev: int | None) -> dict[str, Any]:
        item = self.items.get(self.workspace, item_id)
        revision = self.items.delete(self.workspace, item.id, if_rev=if_rev, author="cli")
        return {"id": item.id, "deleted": True, "rev": revision.rev}

    def search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        from memhub.api.routes.items import ItemSearch
        from memhub.memory.item_filter import compile_filter

        query = ItemSearch.model_validate(body)
        hits = self.items.search(
            self.workspace, query.query, k=query.k, where=compile_filter(query.filter)
        )
        if hits.warning:
            console.print(f"[yellow]warning:[/yellow] {hits.warning}")
        return [
            {"item": f.item.to_dict(), "score": round(f.score, 4), "relativity": f.relativity}
            for f in hits.found
        ]


@contextmanager
def backend(server: str | None, workspace: str | None, data_dir: Path | None) -> Iterator[Backend]:
    chosen = profile(server, None, workspace)
    if chosen.explicit:
        with remote(chosen) as client:
            yield Remote(client, chosen.workspace)
        return
    local = Local(data_dir, chosen.workspace)
    try:
        yield local
    finally:
        local.close()


def _filter(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        fail(f"--filter is not JSON: {exc}")
    if not isinstance(spec, dict):
        fail("--filter must be a JSON object")
    return spec


def _show(items: list[dict[str, Any]]) -> None:
    out = Console(highlight=False)  # results go to stdout, messages to stderr
    for item in items:
        tags = f"  [{', '.join(item['tags'])}]" if item["tags"] else ""
        action = f"  ({item['action']})" if "action" in item else ""
        out.print(f"[bold]{item['id']}[/bold]{escape(tags)}{action}", soft_wrap=True)
        typer.echo(f"  {item['memory']}")


@app.command("add")
def add(
    texts: Annotated[list[str], typer.Argument(help="One item per argument; - reads lines.")],
    tags: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    memory_type: Annotated[str, typer.Option("--type", help="The memory type.")] = (
        "LongTermMemory"
    ),
    cube: Annotated[str | None, typer.Option("--cube", help="Cube (default: workspace).")] = None,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add items (the same fact twice updates the stored item)."""
    lines: list[str] = []
    for text in texts:
        lines += [t for t in sys.stdin.read().splitlines() if t.strip()] if text == "-" else [text]
    body = [
        {"memory": t, "tags": tags or [], "memory_type": memory_type, "cube_id": cube}
        for t in lines
    ]
    try:
        with backend(server, workspace, data_dir) as items:
            added = items.add(body)
    except (MemhubError, ValueError) as exc:
        fail(str(exc))
    print_json(added) if json_output else _show(added)


@app.command("ls")
def ls(
    filter_: FilterOption = None,
    cube: Annotated[str | None, typer.Option("--cube", help="Only this cube.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many.")] = 100,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many.")] = 0,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """List items, newest first, optionally filtered."""
    body = {"filter": _filter(filter_), "cube_id": cube, "limit": limit, "offset": offset}
    try:
        with backend(server, workspace, data_dir) as items:
            page = items.query(body)
    except (MemhubError, ValueError) as exc:
        fail(str(exc))
    if json_output:
        print_json(page)
        return
    _show(page["items"])
    console.print(f"{len(page['items'])} of {page['total']} item(s)")


@app.command("get")
def get(
    item_id: Annotated[str, typer.Argument(help="The item's id.")],
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one item."""
    try:
        with backend(server, workspace, data_dir) as items:
            item = items.get(item_id)
    except MemhubError as exc:
        fail(str(exc))
    print_json(item) if json_output else _show([item])


@app.command("rm")
def rm(
    item_ids: Annotated[list[str], typer.Argument(help="Item ids.")],
    if_rev: Annotated[int | None, typer.Option("--if-rev", help="Only at this rev.")] = None,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete items (tombstones: their history stays)."""
    done = []
    try:
        with backend(server, workspace, data_dir) as items:
            for item_id in item_ids:
                done.append(items.delete(item_id, if_rev))
    except MemhubError as exc:
        fail(str(exc))
    if json_output:
        print_json(done)
    else:
        for d in done:
            console.print(f"deleted {d['id']} (rev {d['rev']})")


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 10,
    filter_: FilterOption = None,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Search items only (BM25), optionally filtered."""
    body = {"query": query, "k": k, "filter": _filter(filter_)}
    try:
        with backend(server, workspace, data_dir) as items:
            found = items.search(body)
    except (MemhubError, ValueError) as exc:
        fail(str(exc))
    if json_output:
        print_json(found)
        return
    if not found:
        console.print("no results")
    _show([f["item"] for f in found])
