"""``memhub search``, ``memhub context`` and ``memhub reindex``.

They work against a server when ``--server`` / ``MEMHUB_SERVER`` is set (with
``MEMHUB_KEY``), otherwise directly on the local data dir (the index then
lives under ``<data dir>/index/cli`` and follows the change log like a
server's).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
)
from memhub.client import MemhubClient
from memhub.errors import MemhubError
from memhub.memory.context import DEPTHS

if TYPE_CHECKING:
    from memhub.memory.service import Memory


def _remote(server: str | None, workspace: str | None) -> tuple[MemhubClient | None, str]:
    """A client when a server is named (flag, env or login), else None: the local data dir."""
    chosen = profile(server, None, workspace)
    return (chosen.client() if chosen.explicit else None), chosen.workspace


@contextmanager
def _local(data_dir: Path | None) -> Iterator[Memory]:
    """The memory layer over the local data dir (its own index under index/cli)."""
    from memhub.memory.service import Memory  # heavy (tantivy, stemmers): only when used

    settings = load_settings(data_dir)
    store = open_local_store(data_dir)
    memory = Memory(store, settings.data_dir / "index" / "cli")
    try:
        yield memory
    finally:
        memory.close()
        store.close()


def search(
    query: Annotated[str, typer.Argument(help="What to look for (any language).")],
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 10,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only paths under this.")] = None,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Search memory: the best blocks with path, heading, lines and a highlighted snippet."""
    client, ws = _remote(server, workspace)
    try:
        if client is not None:
            with client:
                filters = {"path_prefix": prefix} if prefix else {}
                found = client.search(query, k=k, **filters)
        else:
            from memhub.memory.index import SearchFilters

            with _local(data_dir) as memory:
                found = memory.search(ws, query, k=k, filters=SearchFilters(path_prefix=prefix))
    except MemhubError as exc:
        fail(str(exc))
    if json_output:
        print_json(found)
        return
    if not found["results"]:
        console.print("no results")
    out = Console(highlight=False)  # results go to stdout, messages to stderr
    for hit in found["results"]:
        heading = escape(" / ".join(hit["heading"]))
        out.print(
            f"[bold]{escape(hit['path'])}[/bold]:{hit['line_start']}-{hit['line_end']}  "
            f"[dim]{heading}  rev {hit['rev']}  score {hit['score']}[/dim]",
            soft_wrap=True,
        )
        typer.echo(f"  {hit['snippet']}")


def context(
    message: Annotated[
        str | None, typer.Argument(help="The conversation's latest message (or - for stdin).")
    ] = None,
    depth: Annotated[str, typer.Option("--depth", help="basic | wide | deep | temporal")] = "basic",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Token budget.")] = 8000,
    conversation_file: Annotated[
        Path | None,
        typer.Option("--conversation", help="A JSON file: [{role, content}, …]."),
    ] = None,
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the memory context an agent should load for a conversation (markdown)."""
    if depth not in DEPTHS:
        fail(f"--depth must be one of {', '.join(DEPTHS)}")
    conversation: list[dict[str, Any]] = []
    if conversation_file is not None:
        try:
            conversation = json.loads(conversation_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"cannot read {conversation_file}: {exc}")
    if message == "-":
        message = sys.stdin.read()
    if message:
        conversation.append({"role": "user", "content": message})
    client, ws = _remote(server, workspace)
    try:
        if client is not None:
            with client:
                result = client.context(conversation, depth=depth, max_tokens=max_tokens)
        else:
            with _local(data_dir) as memory:
                result = memory.context(
                    ws, conversation, depth=depth, max_tokens=max_tokens
                ).to_dict()
    except MemhubError as exc:
        fail(str(exc))
    if json_output:
        print_json(result)
    else:
        typer.echo(result["markdown"])


def reindex(
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rebuild the search index of a workspace from the store."""
    client, ws = _remote(server, workspace)
    try:
        if client is not None:
            with client:
                stats = client.rebuild_index()
        else:
            with _local(data_dir) as memory:
                stats = memory.rebuild(ws)
    except MemhubError as exc:
        fail(str(exc))
    if json_output:
        print_json(stats)
    else:
        files = stats.get("files", "?")
        console.print(f"indexed {stats['blocks']} blocks of {files} files at rev {stats['rev']}")
