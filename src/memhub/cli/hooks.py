"""``memhub hooks install|uninstall``, ``memhub hook EVENT`` and ``memhub doctor``."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from memhub.cli.common import (
    JsonOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    client_settings,
    connect,
    console,
    fail,
    print_json,
    profile,
)
from memhub.errors import MemhubError

app = typer.Typer(
    help="Claude Code hooks: pull and load memory at session start, push at stop.",
    no_args_is_help=True,
)
SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="Claude Code settings file (default: $CLAUDE_CONFIG_DIR or ~/.claude, settings.json).",
    ),
]


def _hook_env() -> dict[str, str]:
    """What the installed command must carry so the hook finds this config and data."""
    from memhub.client.settings import default_config_dir, default_data_dir

    settings = client_settings()
    env: dict[str, str] = {}
    if settings.config_dir.resolve() != default_config_dir().resolve():
        env["MEMHUB_CONFIG_DIR"] = str(settings.config_dir.resolve())
    if settings.data_dir.resolve() != default_data_dir().resolve():
        env["MEMHUB_DATA_DIR"] = str(settings.data_dir.resolve())
    return env


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
    """Add the SessionStart (pull, then print the context) and Stop (push) hooks,
    idempotently, keeping every other setting."""
    from pydantic import ValidationError

    from memhub.sync import hooks as claude_hooks

    if not claude:
        fail("name the agent to install into: --claude")
    config_dir = client_settings().config_dir
    try:
        config = claude_hooks.HookConfig.load(config_dir)
    except MemhubError as exc:
        fail(str(exc))
    for item in folder or []:
        directory, _, prefix = item.partition(":")
        folder_path = str(Path(directory).expanduser().resolve())
        kept = [f for f in config.folders if f.path != folder_path]
        config.folders = [*kept, claude_hooks.FolderEntry(path=folder_path, prefix=prefix)]
    for item in db or []:
        file, _, name = item.partition(":")
        resolved = Path(file).expanduser().resolve()
        kept_dbs = [d for d in config.databases if d.file != str(resolved)]
        entry = claude_hooks.DatabaseEntry(file=str(resolved), name=name or resolved.stem)
        config.databases = [*kept_dbs, entry]
    try:
        config = claude_hooks.HookConfig.model_validate(
            {**config.model_dump(), "depth": depth, "max_tokens": max_tokens}
        )
    except ValidationError as exc:
        fail(f"--depth or --max-tokens: {exc.errors()[0]['msg']}")
    try:
        path, changed = claude_hooks.install(
            settings or client_settings().claude_settings_path, _hook_env()
        )
    except MemhubError as exc:
        fail(str(exc))
    saved = config.save(config_dir)
    if json_output:
        print_json({"settings": str(path), "changed": changed, "config": str(saved)})
    else:
        verb = "installed" if changed else "already installed"
        console.print(f"hooks {verb} in {path}; what they sync: {saved}")


@app.command("uninstall")
def uninstall(settings: SettingsOption = None, json_output: JsonOption = False) -> None:
    """Remove memhub's hooks (and nothing else) from the Claude Code settings."""
    from memhub.sync import hooks as claude_hooks

    try:
        path, changed = claude_hooks.uninstall(settings or client_settings().claude_settings_path)
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
    from memhub.sync import hook_steps

    raise typer.Exit(hook_steps.main(event, client_settings(), out=sys.stdout, err=sys.stderr))


def run_cli_step(args: list[str]) -> tuple[int, str, str]:
    """One ``memhub ARGS`` in this process, its output captured (a hook pays for one
    interpreter start, not one per step)."""
    from typer._click.exceptions import ClickException

    from memhub.cli.app import app as root

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = root(args, prog_name="memhub", standalone_mode=False)
        except typer.Exit as exc:
            code = exc.exit_code
        except ClickException as exc:
            exc.show(err)
            code = exc.exit_code
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


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
    Exit code 0: all OK (INFO is informational), 1: something DEGRADED, 2: something FAILED."""
    from memhub.client import NO_RETRY
    from memhub.sync import doctor as doctor_checks
    from memhub.sync import hooks as claude_hooks

    chosen = profile(server, key, workspace)
    config_dir = client_settings().config_dir
    try:
        configured = [Path(d.file) for d in claude_hooks.HookConfig.load(config_dir).databases]
    except MemhubError:
        configured = []  # the hooks check reports the malformed file
    with connect(chosen, timeout=10, retry=NO_RETRY, local=False) as client:
        checks = doctor_checks.run_checks(
            client,
            chosen,
            databases=[*(db or []), *configured],
            settings=settings or client_settings().claude_settings_path,
            config_dir=config_dir,
        )
    code = doctor_checks.exit_code(checks)
    if json_output:
        print_json({"checks": [c.to_dict() for c in checks], "exit_code": code})
    else:
        colours = {"OK": "green", "INFO": "cyan", "DEGRADED": "yellow", "FAIL": "red"}
        for check in checks:
            colour = colours[check.status]
            console.print(
                f"[{colour}]{check.status:8}[/{colour}] {check.name:10} {check.detail}",
                highlight=False,
            )
    raise typer.Exit(code)
