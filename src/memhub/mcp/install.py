"""Register memhub's MCP server with Claude Code, Cursor and Claude Desktop.

Each app reads a JSON file with an ``mcpServers`` object; :func:`install` sets
one entry in it (``memhub`` by default) and keeps everything else, and
:func:`uninstall` removes exactly that entry. Both are idempotent and leave a
one-time ``.memhub-backup`` copy of a file they change.

==============  =========  ==================================================
app             scope      file
==============  =========  ==================================================
Claude Code     user       ``$CLAUDE_CONFIG_DIR/.claude.json`` or ``~/.claude.json``
Claude Code     project    ``<project>/.mcp.json``
Cursor          user       ``~/.cursor/mcp.json``
Cursor          project    ``<project>/.cursor/mcp.json``
Claude Desktop  user       ``claude_desktop_config.json`` in Claude's config dir
==============  =========  ==================================================

The stdio entry runs ``python -m memhub mcp`` with this interpreter, so it
finds its key in the profile or the environment (never in the app's file).
The HTTP entry names ``<server>/mcp`` and an ``Authorization`` header; in a
project file (often committed) the header refers to ``${MEMHUB_KEY}`` instead
of holding the key.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from memhub.core.jsonfile import read_json_object, write_json_object
from memhub.errors import BadRequest

App = Literal["claude", "cursor", "claude-desktop"]
Scope = Literal["user", "project"]
APPS: tuple[App, ...] = ("claude", "cursor", "claude-desktop")
DEFAULT_NAME = "memhub"


def claude_desktop_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Claude"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "Claude"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "Claude"


def config_path(app: App, scope: Scope = "user", project: Path | None = None) -> Path:
    """The file ``app`` reads its MCP servers from."""
    root = (project or Path.cwd()).resolve()
    if app == "claude":
        if scope == "project":
            return root / ".mcp.json"
        base = os.environ.get("CLAUDE_CONFIG_DIR")
        return Path(base) / ".claude.json" if base else Path.home() / ".claude.json"
    if app == "cursor":
        return (root if scope == "project" else Path.home()) / ".cursor" / "mcp.json"
    if scope == "project":
        raise BadRequest("Claude Desktop has no project scope; use --scope user")
    return claude_desktop_dir() / "claude_desktop_config.json"


@dataclass(frozen=True, slots=True)
class Target:
    """What the entry runs: the stdio command (``url`` None) or the HTTP endpoint."""

    server: str | None = None  # --server for the stdio command
    workspace: str | None = None
    url: str | None = None  # <server>/mcp for HTTP
    key: str | None = None


def entry(app: App, target: Target, scope: Scope) -> dict[str, Any]:
    if target.url is None:
        args = ["-m", "memhub", "mcp"]
        if target.server:
            args += ["--server", target.server]
        if target.workspace:
            args += ["--workspace", target.workspace]
        stdio: dict[str, Any] = {"command": sys.executable, "args": args, "env": {}}
        return {"type": "stdio", **stdio} if app == "claude" else stdio
    if app == "claude-desktop":
        raise BadRequest(
            "Claude Desktop starts local (stdio) servers only; install without --http "
            "(the stdio server reaches a remote memhub through MEMHUB_SERVER or --server)"
        )
    key = "${MEMHUB_KEY}" if scope == "project" else target.key
    if app == "cursor" and scope == "project":
        key = "${env:MEMHUB_KEY}"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if target.workspace:
        headers["X-Memhub-Workspace"] = target.workspace
    http: dict[str, Any] = {"url": target.url, "headers": headers}
    return {"type": "http", **http} if app == "claude" else http


def _servers(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    servers = config.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise BadRequest(f"'mcpServers' in {path} is not an object; not touching it")
    return servers


def install(
    app: App,
    target: Target,
    *,
    scope: Scope = "user",
    project: Path | None = None,
    name: str = DEFAULT_NAME,
) -> tuple[Path, bool]:
    """Set the ``name`` entry; returns (the file, whether it changed)."""
    path = config_path(app, scope, project)
    config = read_json_object(path)
    servers = _servers(path, config)
    wanted = entry(app, target, scope)
    if servers.get(name) == wanted:
        return path, False
    servers[name] = wanted
    write_json_object(path, config, private=target.url is not None and scope == "user")
    return path, True


def uninstall(
    app: App, *, scope: Scope = "user", project: Path | None = None, name: str = DEFAULT_NAME
) -> tuple[Path, bool]:
    path = config_path(app, scope, project)
    config = read_json_object(path)
    servers = config.get("mcpServers")
    if not isinstance(servers, dict) or name not in servers:
        return path, False
    del servers[name]
    write_json_object(path, config)
    return path, True
