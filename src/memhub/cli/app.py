"""The Typer app behind ``memhub``: its commands come from the table in
:mod:`memhub.cli.main`, each imported when it runs or shows its help."""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from memhub import __version__
from memhub.cli.main import BY_NAME, COMMANDS, HELP, Entry, root_help


def version() -> None:
    """Print memhub's version."""
    typer.echo(__version__)


# a plain click command: typer's parameter machinery is not needed for it
VERSION = TyperCommand(name="version", callback=version, help="Print memhub's version.")


def load(entry: Entry) -> click.Command:
    """Import one entry's module and turn its target into a click command."""
    module, _, attribute = entry.target.partition(":")
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, click.Command):
        command = target
    elif isinstance(target, typer.Typer):
        target.rich_markup_mode = None  # plain help: no boxes, flags without "<bool>"
        command = typer.main.get_group(target)  # a group, without completion options
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(entry.name)(target)
        command = typer.main.get_command(single)
    command.name = entry.name
    return command


class LazyGroup(TyperGroup):
    """Commands come from ``COMMANDS``, imported on first use; the root help is the table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [entry.name for entry in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = BY_NAME.get(cmd_name)
        return load(entry) if entry else None

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(root_help())


app = typer.Typer(
    name="memhub",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@app.callback()
def root(ctx: typer.Context) -> None:
    """memhub: a self-hosted memory hub for AI agents."""
    from memhub.cli.state import CliState  # tiny: no settings are read until a command asks

    ctx.obj = CliState()
