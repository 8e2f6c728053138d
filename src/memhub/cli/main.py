"""The ``memhub`` command."""

from __future__ import annotations

import typer

from memhub import __version__
from memhub.cli import db, hooks, keys, lease, maintenance, mcp, memory, serve, sync
from memhub.cli import git as git_cli
from memhub.cli.items import app as items_app

app = typer.Typer(
    name="memhub",
    help="memhub: a self-hosted memory hub for AI agents.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("fsck")(maintenance.fsck)
app.command("gc")(maintenance.gc)
app.command("search")(memory.search)
app.command("context")(memory.context)
app.command("reindex")(memory.reindex)
app.command("login")(sync.login)
app.command("push")(sync.push)
app.command("pull")(sync.pull)
app.command("sync")(sync.sync)
app.command("status")(sync.status)
app.command("doctor")(hooks.doctor)
app.command("hook")(hooks.hook)
app.add_typer(hooks.app, name="hooks")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(lease.app, name="lease")
app.add_typer(mcp.app, name="mcp")
app.add_typer(items_app, name="items")
app.add_typer(git_cli.app, name="git")


@app.command("version")
def version() -> None:
    """Print memhub's version."""
    typer.echo(__version__)


def main() -> None:
    app()
