"""``memhub hooks install|uninstall``, ``memhub hook EVENT`` and ``memhub doctor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
from memhub.sync import doctor as doctor_checks
from memhub.sync import hooks as claude_hooks

app = typer.Typer(help="Claude Code hooks: pull and load memory at session start, push at stop.")
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings", help="Claude Code settings file (default: ~/.claude/settings.json)."
    ),
]


@app.command("install")
def install(
    claude: Annotated[bool, typer.Option("--claude", help="Install into Claude Code.")] = False,
    folder: Annotated[
        list[str] | None,
        typer.Option("--folder", help="A folder to pull/push, DIR or DIR:PREFIX (repeatable)."),
    ] = None,
    db: Annotated[
        list[str] | None,
        typer.Option("--db", help="A SQLite DB to pull/push, FILE or FILE:NAME (repeatable)."),
    ] = None,
    depth: Annotated[
        str, typer.Option("--depth", help="Context depth at session start.")
    ] = "basic",
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Context budget.")] = 4000,
    settings: SettingsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add the SessionStart (pull, then print the context) and Stop (push) hooks, idempotently,
    keeping every other setting."""
    if not claude:
        fail("name the agent to install into: --claude")
    config = claude_hooks.HookConfig.load()
    for item in folder or []:
        directory, _, prefix = item.partition(":")
        entry = {"path": str(Path(directory).expanduser().resolve()), "prefix": prefix}
        config.folders = [f for f in config.folders if f["path"] != entry["path"]] + [entry]
    for item in db or []:
        file, _, name = item.partition(":")
        resolved = Path(file).expanduser().resolve()
        entry = {"file": str(resolved), "name": name or resolved.stem}
        config.databases = [d for d in config.databases if d["file"] != entry["file"]] + [entry]
    config.depth, config.max_tokens = depth, max_tokens
    try:
        path, changed = claude_hooks.install(settings)
    except MemhubError as exc:
        fail(str(exc))
    saved = config.save()
    if json_output:
        print_json({"settings": str(path), "changed": changed, "config": str(saved)})
    else:
        verb = "installed" if changed else "already installed"
        console.print(f"hooks {verb} in {path}; what they sync: {saved}")


@app.command("uninstall")
def uninstall(settings: SettingsOption = None, json_output: JsonOption = False) -> None:
    """Remove memhub's hooks (and nothing else) from the Claude Code settings."""
    try:
        path, changed = claude_hooks.uninstall(settings)
    except MemhubError as exc:
        fail(str(exc))
    if json_output:
        print_json({"settings": str(path), "changed": changed})
    else:
        console.print(f"hooks {'removed from' if changed else 'were not in'} {path}")


def hook(
    event: Annotated[str, typer.Argument(help="session-start | stop (run by Claude Code)")],
) -> None:
    """Run one hook (Claude Code calls this). Never fails the agent: errors are warnings."""
    raise typer.Exit(claude_hooks.run_hook(event))


def doctor(
    db: Annotated[
        list[Path] | None, typer.Option("--db", help="A local SQLite DB to check (repeatable).")
    ] = None,
    settings: SettingsOption = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check server, key, workspace, clock skew, leases, local DBs and hooks.
    Exit code 0: all OK, 1: something DEGRADED, 2: something FAILED."""
    chosen = profile(server, key, workspace)
    databases = list(db or []) + [Path(d["file"]) for d in claude_hooks.HookConfig.load().databases]
    checks = doctor_checks.run_checks(chosen, databases=databases, settings=settings)
    code = doctor_checks.exit_code(checks)
    if json_output:
        print_json({"checks": [c.to_dict() for c in checks], "exit_code": code})
    else:
        colours = {"OK": "green", "DEGRADED": "yellow", "FAIL": "red"}
        for check in checks:
            colour = colours[check.status]
            console.print(f"[{colour}]{check.status:8}[/{colour}] {check.name:10} {check.detail}")
    raise typer.Exit(code)
