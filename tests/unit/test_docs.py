"""The README documents every command, setting, route and MCP tool a user meets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from memhub.api import create_app
from memhub.cli.main import app as cli_app
from memhub.client.settings import ClientSettings
from memhub.config import Settings
from memhub.mcp.registry import load_tools

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"MEMHUB_{name.upper()}" in README, f"MEMHUB_{name.upper()} is not in README.md"


def test_every_client_setting_is_documented() -> None:
    for name, field in ClientSettings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None)
        env = str(aliases[0]) if aliases else f"MEMHUB_{name.upper()}"
        assert env in README, f"{env} is not in README.md"


def _commands(group: Any, ctx: Any, prefix: str) -> list[tuple[str, Any]]:
    """Every command, with its full name, sub-commands of groups included."""
    found: list[tuple[str, Any]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        full = f"{prefix} {name}"
        found.append((full, command))
        if hasattr(command, "list_commands"):
            found += _commands(command, ctx, full)
    return found


def test_every_command_and_flag_is_documented() -> None:
    group = typer.main.get_command(cli_app)
    ctx = typer.Context(group)
    commands = _commands(group, ctx, "memhub")
    assert len(commands) > 30, "the command list is suspiciously short"
    for full, command in commands:
        assert f"`{full}" in README, f"`{full}` is not in README.md"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in README, f"`{full} {opt}` is not in README.md"


def _readme_form(path: str) -> str:
    # {path:path} is written {path} in the README, {workspace} {ws}, {namespace} {ns}
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
    return path.replace("{workspace}", "{ws}").replace("{namespace}", "{ns}")


def test_every_route_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    paths = app.openapi()["paths"]
    operations = [(m.upper(), p) for p, ops in paths.items() for m in ops]
    assert len(operations) > 40, "the route list is suspiciously short"
    for method, path in operations:
        path = _readme_form(path)
        documented = f"{method} {path}" in README or (
            method in ("GET", "HEAD") and f"`GET`/`HEAD {path}" in README
        )
        assert documented, f"{method} {path} is not in README.md"
    app.state.store.close()


def test_every_mcp_tool_is_documented() -> None:
    for name in load_tools():
        assert f"| `{name}(" in README, f"MCP tool {name} is not in README's tool table"
