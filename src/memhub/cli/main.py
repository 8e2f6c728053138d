"""The ``memhub`` command: a table of commands, imported lazily.

Start-up is a feature (``memhub --help`` and ``memhub version`` aim at 0.25 s,
see ``bench/cli.py``): this module imports nothing but :mod:`memhub`'s version.
``memhub``, ``memhub -h/--help`` and ``memhub version`` are answered from the
table below without even importing typer, and ``memhub hook EVENT`` runs in
:mod:`memhub.sync.hook_steps` without it; everything else goes to the Typer
app in :mod:`memhub.cli.app`, which imports a command's module only when that
command runs or shows its help.

**Adding a command or a group is ONE line in ``COMMANDS``**::

    Entry("items", "memhub.cli.items:app", FILES, "Per-item operations."),  # a Typer sub-app
    Entry("put", "memhub.cli.files:put", FILES, "Write a file."),            # one function

``target`` is ``"module:attribute"``: a ``typer.Typer`` (a group), a plain
function (a command, its parameters declared with ``Annotated`` as usual) or a
ready click command. ``panel`` groups the root help; ``summary`` is its one
line there (keep it close to the first line of the command's docstring).
``tests/unit/test_docs.py`` then asks the README to document the command and
each of its flags. The root callback builds the client's settings once
(:class:`memhub.cli.state.CliState`); commands read them through
:func:`memhub.cli.common.client_settings`.
"""

from __future__ import annotations

import sys
from typing import Any

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
HELP = "memhub: a self-hosted memory hub for AI agents."


class Entry:
    """One command of the table (a plain class: no ``typing`` import at start-up)."""

    __slots__ = ("name", "panel", "summary", "target")

    def __init__(self, name: str, target: str, panel: str, summary: str) -> None:
        self.name, self.target, self.panel, self.summary = name, target, panel, summary


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
    Entry("items", "memhub.cli.items:app", MEMORY, "Memory items: add, list, get, remove, search."),
    Entry("mcp", "memhub.cli.mcp:app", MEMORY, "The MCP server for agents; install it in apps."),
    Entry("git", "memhub.cli.git:app", SYNC, "Import, export or mirror a git repository."),
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
    Entry("version", "memhub.cli.app:VERSION", MAINTENANCE, "Print memhub's version."),
)
BY_NAME = {entry.name: entry for entry in COMMANDS}


def root_help() -> str:
    """The root help, grouped by panel, straight from the table."""
    lines = ["Usage: memhub [OPTIONS] COMMAND [ARGS]...", "", f"  {HELP}", "", "Options:"]
    lines += ["  -h, --help  Show this message and exit."]
    panels: dict[str, list[Entry]] = {}
    for entry in COMMANDS:
        panels.setdefault(entry.panel, []).append(entry)
    for panel, entries in panels.items():
        width = max(len(e.name) for e in entries) + 2
        lines += ["", f"{panel}:"]
        lines += [f"  {e.name:<{width}}{e.summary}" for e in entries]
    lines += ["", "Run `memhub COMMAND -h` for a command's options."]
    return "\n".join(lines) + "\n"


def __getattr__(name: str) -> Any:
    """``memhub.cli.main.app``: the Typer app, built on first use."""
    if name == "app":
        from memhub.cli.app import app

        return app
    raise AttributeError(name)


# Optional imports the command never uses: httpcore imports trio (about 60 ms) whenever it
# is installed, only to tell trio from asyncio, and httpx imports its own command-line
# tool (click, pygments) whenever click is installed. ``None`` in ``sys.modules`` makes
# such an import fail fast, as if the package were absent (as it is in a runtime-only
# install): httpcore then serves asyncio only, and ``httpx.main`` is a stub.
UNUSED_OPTIONAL_IMPORTS = ("trio", "httpx._main")


def main() -> None:
    for name in UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    args = sys.argv[1:]
    if args in ([], ["-h"], ["--help"]):
        sys.stdout.write(root_help())
        return
    if args in (["version"], ["--version"]):
        sys.stdout.write(__version__ + "\n")
        return
    if len(args) == 2 and args[0] == "hook" and not args[1].startswith("-"):
        # what Claude Code runs, and waits for: around Typer (memhub.sync.hook_steps)
        from memhub.sync.hook_steps import main as run_hook

        sys.exit(run_hook(args[1]))
    from memhub.cli.app import app

    app()
