"""``memhub mcp`` (the stdio MCP server), ``memhub mcp install`` and ``uninstall``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memhub.cli.common import (
    DataDirOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    console,
    fail,
    load_settings,
    profile,
)
from memhub.errors import MemhubError

app = typer.Typer(
    help="The MCP server for agents: stdio here, streamable HTTP at /mcp of `memhub serve`.",
    invoke_without_command=True,
)

ClaudeOption = Annotated[bool, typer.Option("--claude", help="Claude Code.")]
CursorOption = Annotated[bool, typer.Option("--cursor", help="Cursor.")]
DesktopOption = Annotated[bool, typer.Option("--claude-desktop", help="Claude Desktop.")]
ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope", help="user (your config) or project (.mcp.json / .cursor/mcp.json here)."
    ),
]
ProjectOption = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The project for --scope project (default: here)."),
]
NameOption = Annotated[str, typer.Option("--name", help="The entry's name in mcpServers.")]


@app.callback()
def mcp(
    ctx: typer.Context,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the MCP server over stdio: against the server of the profile / MEMHUB_SERVER
    when one is configured, else on the local data dir."""
    if ctx.invoked_subcommand is not None:
        return
    import anyio

    from memhub.mcp.connect import local_connector, remote_connector
    from memhub.mcp.server import build_server

    chosen = profile(server, key, workspace)

    async def run() -> None:
        connecting = (
            remote_connector(chosen)
            if chosen.explicit
            else local_connector(load_settings(data_dir), chosen.workspace)
        )
        async with connecting as connector:
            await build_server(connector, follow=connector.fixed).run_stdio_async()

    try:
        anyio.run(run)
    except MemhubError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


def _apps(claude: bool, cursor: bool, desktop: bool) -> list[str]:
    flags = (("claude", claude), ("cursor", cursor), ("claude-desktop", desktop))
    chosen = [name for name, on in flags if on]
    if not chosen:
        fail("name at least one app: --claude, --cursor or --claude-desktop")
    return chosen


def _scope(scope: str) -> str:
    if scope not in ("user", "project"):
        fail("--scope must be user or project")
    return scope


@app.command("install")
def install(
    claude: ClaudeOption = False,
    cursor: CursorOption = False,
    claude_desktop: DesktopOption = False,
    scope: ScopeOption = "user",
    project_dir: ProjectOption = None,
    http: Annotated[
        bool,
        typer.Option("--http", help="Register <server>/mcp over HTTP instead of a stdio command."),
    ] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    name: NameOption = "memhub",
) -> None:
    """Register memhub's MCP server with Claude Code, Cursor or Claude Desktop, idempotently,
    keeping every other setting."""
    from memhub.mcp import install as installer

    if http:
        chosen = profile(server, key, workspace)
        target = installer.Target(
            workspace=workspace, url=f"{chosen.server}/mcp", key=key or chosen.key
        )
    else:
        target = installer.Target(server=server, workspace=workspace)
    for app_name in _apps(claude, cursor, claude_desktop):
        try:
            path, changed = installer.install(
                app_name,  # type: ignore[arg-type]
                target,
                scope=_scope(scope),  # type: ignore[arg-type]
                project=project_dir,
                name=name,
            )
        except MemhubError as exc:
            fail(str(exc))
        console.print(f"{app_name}: {'registered in' if changed else 'already in'} {path}")


@app.command("uninstall")
def uninstall(
    claude: ClaudeOption = False,
    cursor: CursorOption = False,
    claude_desktop: DesktopOption = False,
    scope: ScopeOption = "user",
    project_dir: ProjectOption = None,
    name: NameOption = "memhub",
) -> None:
    """Remove memhub's entry (and nothing else) from the apps' MCP settings."""
    from memhub.mcp import install as installer

    for app_name in _apps(claude, cursor, claude_desktop):
        try:
            path, changed = installer.uninstall(
                app_name,  # type: ignore[arg-type]
                scope=_scope(scope),  # type: ignore[arg-type]
                project=project_dir,
                name=name,
            )
        except MemhubError as exc:
            fail(str(exc))
        console.print(f"{app_name}: {'removed from' if changed else 'was not in'} {path}")
