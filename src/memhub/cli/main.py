"""The ``memhub`` command: a lazy table of commands.

Start-up is a feature (``memhub --help`` and ``memhub version`` aim at 0.25 s,
see ``bench/cli.py``): this module imports typer and nothing else of memhub's.
Each command lives in its own module, imported only when that command runs or
shows its help; the root help is printed from the table below.

**Adding a command or a group is ONE line in ``COMMANDS``**::

    Entry("items", "memhub.cli.items:app", FILES, "Per-item operations."),  # a Typer sub-app
    Entry("put", "memhub.cli.files:put", FILES, "Write a file."),            # one function

``target`` is ``"module:attribute"``: a ``typer.Typer`` (a group), a plain
function (a command, its parameters declared with ``Annotated`` as usual) or a
ready click command.
``panel`` groups the root help; ``summary`` is the one line shown there (keep
it equal to the first line of the command's docstring). The root callback
builds the client's settings once (:class:`memhub.cli.common.CliState`);
commands read them with :func:`memhub.cli.common.state`.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from memhub import __version__

SERVER, FILES, MEMORY, SYNC, DB, KEYS, HOOKS, MAINTENANCE = (
    "Server",
    "Files",
    "Memory",
    "Sync",
    "Databases",
    "Keys",
    "Hooks",
    "Maintenance",
)


class Entry(NamedTuple):
    name: str
    target: str  # "module:attribute": a typer.Typer or a command function
    panel: str
    summary: str


COMMANDS: tuple[Entry, ...] = (
    Entry("serve", "memhub.cli.serve:serve", SERVER, "Run the memhub server."),
    Entry("login", "memhub.cli.sync:login", SERVER, "Check a server and key, then save them."),
    Entry("status", "memhub.cli.sync:status", SERVER, "The profile in use and the last syncs."),
    Entry("doctor", "memhub.cli.hooks:doctor", SERVER, "Check server, key, DBs and hooks."),
    Entry("put", "memhub.cli.files:put", FILES, "Write a file (conditional by default)."),
    Entry("get", "memhub.cli.files:get", FILES, "Print a file, or one of its revisions."),
    Entry("ls", "memhub.cli.files:ls", FILES, "List files under a prefix."),
    Entry("rm", "memhub.cli.files:rm", FILES, "Delete a file (conditional by default)."),
    Entry("history", "memhub.cli.files:history", FILES, "The revisions of a file."),
    Entry("diff", "memhub.cli.files:diff", FILES, "Unified diff between two revisions."),
    Entry("restore", "memhub.cli.files:restore", FILES, "Make an old revision current again."),
    Entry("search", "memhub.cli.memory:search", MEMORY, "Search memory."),
    Entry("context", "memhub.cli.memory:context", MEMORY, "The context an agent should load."),
    Entry("reindex", "memhub.cli.memory:reindex", MEMORY, "Rebuild a workspace's search index."),
    Entry("sync", "memhub.cli.sync:sync", SYNC, "Two-way folder sync."),
    Entry("push", "memhub.cli.sync:push", SYNC, "Send a folder's changes to the server."),
    Entry("pull", "memhub.cli.sync:pull", SYNC, "Bring the server's changes into a folder."),
    Entry("lease", "memhub.cli.lease:app", SYNC, "List leases; break one."),
    Entry("db", "memhub.cli.db:app", DB, "Push and pull live SQLite databases."),
    Entry("keys", "memhub.cli.keys:app", KEYS, "Create, list and revoke API keys."),
    Entry("hooks", "memhub.cli.hooks:app", HOOKS, "Install or remove the Claude Code hooks."),
    Entry("hook", "memhub.cli.hooks:hook", HOOKS, "Run one hook (Claude Code calls this)."),
    Entry("fsck", "memhub.cli.maintenance:fsck", MAINTENANCE, "Check the store."),
    Entry("gc", "memhub.cli.maintenance:gc", MAINTENANCE, "Collect unreferenced blobs."),
    Entry("version", "memhub.cli.main:VERSION", MAINTENANCE, "Print memhub's version."),
)
BY_NAME = {entry.name: entry for entry in COMMANDS}


def version() -> None:
    """Print memhub's version."""
    typer.echo(__version__)


# a plain click command: typer's parameter machinery (and pydantic) is not even imported
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
    """Commands come from ``COMMANDS``, imported on first use; the root help is plain text."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [entry.name for entry in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = BY_NAME.get(cmd_name)
        return load(entry) if entry else None

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(self.help or "")
        self.format_options(ctx, formatter)
        panels: dict[str, list[tuple[str, str]]] = {}
        for entry in COMMANDS:
            panels.setdefault(entry.panel, []).append((entry.name, entry.summary))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)
        formatter.write_paragraph()
        formatter.write_text("Run `memhub COMMAND --help` for a command's options.")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [rv for p in self.get_params(ctx) if (rv := p.get_help_record(ctx)) is not None]
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="memhub",
    cls=LazyGroup,
    help="memhub: a self-hosted memory hub for AI agents.",
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


def main() -> None:
    app()
