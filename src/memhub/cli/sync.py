"""``memhub login``, ``push``, ``pull``, ``sync`` and ``status``: folders between machines.

The Typer signatures of five commands (the same options each) make up most of its
420 lines; the sync itself is :mod:`memhub.sync.folder`.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memhub.cli.common import (
    JsonOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    client_settings,
    console,
    fail,
    fail_with,
    print_json,
    print_table,
    profile,
    remote,
)
from memhub.errors import Forbidden, MemhubError, Unauthorized

if TYPE_CHECKING:
    from memhub.sync.folder import Report

DirArgument = Annotated[
    Path, typer.Argument(help="The folder to sync (default: the current directory).")
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Remote folder in the workspace (default: the one this folder last synced "
        "with, else the root).",
        show_default=False,
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show the plan, change nothing.")]
MaxDeleteOption = Annotated[
    float,
    typer.Option("--max-delete", help="Abort when more than this % of the files would be deleted."),
]


def login(
    server: Annotated[str, typer.Option("--server", help="The memhub server URL.")],
    key: Annotated[str, typer.Option("--key", help="Your API key (mh_…).")],
    workspace: Annotated[str, typer.Option("--workspace", help="Workspace to use.")] = "default",
    json_output: JsonOption = False,
) -> None:
    """Check a server and key, then save them as your profile (mode 0600)."""
    from memhub.client.http import MemhubClient
    from memhub.client.profile import save_profile

    try:
        with MemhubClient(server, key, workspace) as client:
            client.health()
            info = client.workspace_info()
        path = save_profile(client_settings(), server, key, workspace)
    except MemhubError as exc:
        if json_output:
            print_json({"ok": False, **exc.to_dict()})
        fail(f"login failed: {exc}", 1)
    if json_output:
        print_json({"profile": str(path), "server": server, "workspace": info.name})
    else:
        console.print(f"logged in to {server} (workspace {info.name}); profile saved in {path}")


def _round(
    directory: Path,
    *,
    push: bool,
    pull: bool,
    prefix: str | None,
    dry_run: bool,
    max_delete: float,
    server: str | None,
    key: str | None,
    workspace: str | None,
    json_output: bool,
) -> Report:
    """One sync round with a progress bar on a terminal; memhub errors propagate."""
    from memhub.sync.folder import sync_folder

    chosen = profile(server, key, workspace)
    root = directory.expanduser().resolve()
    show = sys.stderr.isatty() and not json_output
    with _progress_bar(root, show) as progress, remote(chosen) as client:
        return sync_folder(
            root,
            client,
            client_settings().config_dir,
            prefix=prefix,
            push=push,
            pull=pull,
            dry_run=dry_run,
            max_delete=max_delete,
            progress=progress,
        )


@contextmanager
def _progress_bar(root: Path, show: bool) -> Iterator[Callable[[str, int], None]]:
    """The round's progress callback: a bar on a terminal, else nothing (and rich's
    progress module is not even imported: a hook or a script does not pay for it)."""
    if not show:
        yield lambda _what, _size: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[size]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"syncing {root.name or root}", total=None, size="")
        moved = 0

        def progress(what: str, size: int) -> None:
            nonlocal moved
            if what == "plan":
                bar.update(task, total=size)
                return
            moved += size
            bar.update(task, advance=1, size=f"{moved / 1048576:.1f} MiB")

        yield progress


def _run(directory: Path, **options: Any) -> Report:
    """One round as a command: a JSON result (also on failure) or a summary; exit 1 on
    errors."""
    json_output = bool(options["json_output"])
    try:
        report = _round(directory, **options)
    except MemhubError as exc:
        fail_with(exc, json_output)
    _print(report, json_output)
    if report.errors or report.blocked:
        raise typer.Exit(1)
    return report


def _print(report: Report, json_output: bool) -> None:
    from memhub.sync.folder import summarize

    if json_output:
        print_json({"ok": not report.errors and not report.blocked, **report.to_dict()})
        return
    if report.dry_run:
        for item in report.planned:
            console.print(f"would {item['action'].replace('_', ' ')}: {item['path']}")
        console.print(f"{len(report.planned)} changes planned (dry run)")
        if report.blocked:
            console.print(f"[red]refused:[/red] {report.blocked}")
        return
    for label, items in (
        ("uploaded", report.uploaded),
        ("downloaded", report.downloaded),
        ("deleted here", report.deleted_local),
        ("deleted on the server", report.deleted_remote),
    ):
        if items:
            console.print(f"{label} {len(items)}: {summarize(items)}")
    for conflict in report.conflicts:
        console.print(
            f"[yellow]conflict[/yellow] {conflict['path']}: both sides changed; yours is kept "
            f"as {conflict['copy']}"
        )
    for error in report.errors:
        console.print(f"[red]error[/red] {error['path']}: {error['error']}")
    if report.skipped:
        console.print(
            f"skipped {len(report.skipped)} (symlinks, invalid names, or changed "
            f"while syncing): {summarize(report.skipped)}"
        )
    if not report.changed and not report.errors:
        console.print("up to date")
    console.print(f"[dim]{report.seconds:.2f} s[/dim]")


def push(
    directory: DirArgument = Path("."),
    prefix: PrefixOption = None,
    dry_run: DryRunOption = False,
    max_delete: MaxDeleteOption = 50.0,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send local changes to the server (never changes local files)."""
    _run(
        directory,
        push=True,
        pull=False,
        prefix=prefix,
        dry_run=dry_run,
        max_delete=max_delete,
        server=server,
        key=key,
        workspace=workspace,
        json_output=json_output,
    )


def pull(
    directory: DirArgument = Path("."),
    prefix: PrefixOption = None,
    dry_run: DryRunOption = False,
    max_delete: MaxDeleteOption = 50.0,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Bring the server's changes into the folder (never changes the server)."""
    _run(
        directory,
        push=False,
        pull=True,
        prefix=prefix,
        dry_run=dry_run,
        max_delete=max_delete,
        server=server,
        key=key,
        workspace=workspace,
        json_output=json_output,
    )


def sync(
    directory: DirArgument = Path("."),
    prefix: PrefixOption = None,
    dry_run: DryRunOption = False,
    max_delete: MaxDeleteOption = 50.0,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep syncing: on local edits and server changes.")
    ] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Two-way sync: changes travel both ways, conflicts keep both versions."""
    options: dict[str, Any] = {
        "push": True,
        "pull": True,
        "prefix": prefix,
        "dry_run": dry_run,
        "max_delete": max_delete,
        "server": server,
        "key": key,
        "workspace": workspace,
        "json_output": json_output,
    }
    if not watch:
        _run(directory, **options)
        return
    _watch(directory, options)


FATAL = (Unauthorized, Forbidden)  # retrying cannot help: stop watching and say why


def _watch(directory: Path, options: dict[str, Any]) -> None:
    """Sync now, then again whenever the folder or the server changes; stop on an auth
    error (a refused key is not retried forever)."""
    import watchfiles

    root = directory.expanduser().resolve()
    trigger = threading.Event()
    stop = threading.Event()
    fatal: list[MemhubError] = []

    def local_changes() -> None:
        for changes in watchfiles.watch(root, stop_event=stop, debounce=500, rust_timeout=1000):
            if any(".memhub" not in Path(p).parts and ".memhub-tmp-" not in p for _c, p in changes):
                trigger.set()

    chosen = profile(options["server"], options["key"], options["workspace"])
    listener = remote(chosen, timeout=90)  # built here: the settings live in this thread

    def remote_changes() -> None:
        try:
            with listener as client:
                since = client.changes(0, limit=1).head_rev
                while not stop.is_set():
                    try:
                        page = client.changes(since, limit=1, wait=25)
                    except FATAL:
                        raise
                    except MemhubError:
                        stop.wait(5)
                        continue
                    if page.changes:
                        trigger.set()
                    since = page.head_rev
        except FATAL as exc:
            fatal.append(exc)
            trigger.set()
        except MemhubError:
            return  # the rounds report a server that cannot be reached

    for target in (local_changes, remote_changes):  # both before the first round
        threading.Thread(target=target, daemon=True).start()
    console.print(f"watching {root} (Ctrl-C to stop)")
    interrupted = threading.Event()

    def on_interrupt(_signum: int, _frame: object) -> None:
        # the first Ctrl-C lets a round in progress finish (its files and its state
        # file agree); a second one stops at once
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        stop.set()
        trigger.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        while not interrupted.is_set():
            try:
                report = _round(directory, **options)
                _print(report, bool(options["json_output"]))
            except FATAL as exc:
                fatal.append(exc)
            except MemhubError as exc:  # a failed round is reported; keep watching
                console.print(f"[red]error:[/red] {exc}")
            if fatal:
                stop.set()
                fail_with(fatal[0], bool(options["json_output"]))
            trigger.wait()
            if fatal or interrupted.is_set():
                continue
            time.sleep(0.3)  # let a burst of edits settle
            trigger.clear()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous)


def status(
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """The profile in use, and the last sync of each folder and database."""
    from memhub.sync.state_files import load_databases, load_folders

    chosen = profile(server, key, workspace)
    config_dir = client_settings().config_dir
    folders = load_folders(config_dir)
    databases = load_databases(config_dir)
    if json_output:
        print_json(
            {
                "profile": chosen.redacted(),
                "host": socket.gethostname(),
                "folders": {path: entry.model_dump() for path, entry in folders.items()},
                "databases": databases,
            }
        )
        return
    from rich.table import Table

    info = chosen.redacted()
    typer.echo(f"server     {info['server']}  workspace {info['workspace']}")
    typer.echo(f"key        {info['key'] or '(none)'} (from {info['key_source']})")
    if not folders:
        typer.echo("folders    none synced yet (memhub sync DIR)")
    else:
        table = Table("folder", "workspace/prefix", "last sync", "changed", "errors")
        for path, entry in folders.items():
            table.add_row(
                path,
                f"{entry.workspace}/{entry.prefix}",
                _when(entry.last_sync),
                str(entry.changed),
                str(entry.errors),
            )
        print_table(table)
    if not databases:
        typer.echo("databases  none synced yet (memhub db push FILE)")
        return
    table = Table("database", "file", "rev", "size", "last", "when")
    for row in databases:
        table.add_row(
            row["name"],
            row["file"],
            str(row["rev"]),
            f"{row['size']:,}" if isinstance(row["size"], int) else "-",
            row["direction"],
            _when(row["synced_at"]),
        )
    print_table(table)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
