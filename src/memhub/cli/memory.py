"""``memhub search``, ``memhub context`` and ``memhub reindex``.

One code path, local or remote: each command asks :func:`memhub.cli.common.connect`
for a client, which talks HTTP to a configured server (``--server``,
``MEMHUB_SERVER`` or ``memhub login``) or to the API in this process over the
local data dir (its index under ``<data dir>/index/cli`` follows the change
log like a server's). Validation, auth and output are the same either way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    ServerOption,
    WorkspaceOption,
    connect,
    console,
    fail,
    fail_with,
    print_json,
    profile,
)
from memhub.errors import MemhubError

DEPTHS = ("basic", "wide", "deep", "temporal")


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
    chosen = profile(server, None, workspace, data_dir)
    try:
        with connect(chosen, data_dir=data_dir) as client:
            filters = {"path_prefix": prefix} if prefix else {}
            found = client.search(query, k=k, **filters)
    except MemhubError as exc:
        fail_with(exc, json_output)
    if json_output:
        print_json(found.model_dump(mode="json"))
        return
    if not found.results:
        console.print("no results")
    from rich.console import Console
    from rich.markup import escape

    out = Console(highlight=False, soft_wrap=True)  # results go to stdout, messages to stderr
    for hit in found.results:
        heading = escape(" / ".join(hit.heading))
        out.print(
            f"[bold]{escape(hit.path)}[/bold]:{hit.line_start}-{hit.line_end}  "
            f"[dim]{heading}  rev {hit.rev}  score {hit.score}[/dim]",
            soft_wrap=True,
        )
        typer.echo(f"  {hit.snippet}")


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
    chosen = profile(server, None, workspace, data_dir)
    try:
        with connect(chosen, data_dir=data_dir) as client:
            result = client.context(conversation, depth=depth, max_tokens=max_tokens)
    except MemhubError as exc:
        fail_with(exc, json_output)
    if json_output:
        print_json(result.model_dump(mode="json"))
    elif result.markdown.strip():
        typer.echo(result.markdown)
    else:
        console.print(
            f"nothing in workspace {chosen.workspace} matches "
            + ("this conversation" if conversation else "(give a message to look for)")
        )


def reindex(
    server: ServerOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rebuild the search index of a workspace from the store."""
    chosen = profile(server, None, workspace, data_dir)
    try:
        with connect(chosen, data_dir=data_dir) as client:
            stats = client.rebuild_index()
    except MemhubError as exc:
        fail_with(exc, json_output)
    if json_output:
        print_json(stats.model_dump(mode="json"))
    else:
        console.print(f"indexed {stats.blocks} blocks of {stats.files} files at rev {stats.rev}")
