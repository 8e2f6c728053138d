"""``memhub login``, ``push``, ``pull``, ``sync`` and ``status``: folders between machines."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
from memhub.client import MemhubClient
from memhub.errors import MemhubError
from memhub.store.blobs.local import write_durably
from memhub.sync.folder import FolderSync, Report, summarize
from memhub.sync.profile import config_dir, save_profile

DirArgument = Annotated[
    Path, typer.Argument(help="The folder to sync (default: the current directory).")
]
PrefixOption = Annotated[
    str, typer.Option("--prefix", help="Remote folder in the workspace (default: its root).")
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
    try:
        with MemhubClient(server, key, workspace) as client:
            client.health()
            info = client.workspace_info()
        path = save_profile(server, key, workspace)
    except MemhubError as exc:
        fail(f"login failed: {exc}")
    if json_output:
        print_json({"profile": str(path), "server": server, "workspace": info["name"]})
    else:
        console.print(f"logged in to {server} (workspace {info['name']}); profile saved in {path}")


def _folders_file() -> Path:
    return config_dir() / "folders.json"


def _remember(root: Path, server: str, workspace: str, prefix: str, report: Report) -> None:
    path = _folders_file()
    try:
        folders = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        folders = {}
    folders[str(root)] = {
        "server": server,
        "workspace": workspace,
        "prefix": prefix,
        "last_sync": time.time(),
        "changed": report.changed,
        "errors": len(report.errors),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(folders, indent=1).encode())


def _run(
    directory: Path,
    *,
    push: bool,
    pull: bool,
    prefix: str,
    dry_run: bool,
    max_delete: float,
    server: str | None,
    key: str | None,
    workspace: str | None,
    json_output: bool,
) -> Report:
    chosen = profile(server, key, workspace)
    root = directory.expanduser().resolve()
    show = sys.stderr.isatty() and not json_output
    with (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[size]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not show,
        ) as bar,
        chosen.client() as client,
    ):
        task = bar.add_task(f"syncing {root.name or root}", total=None, size="")
        moved = 0

        def progress(what: str, size: int) -> None:
            nonlocal moved
            if what == "plan":
                bar.update(task, total=size)
                return
            moved += size
            bar.update(task, advance=1, size=f"{moved / 1048576:.1f} MiB")

        engine = FolderSync(root, client, prefix=prefix, progress=progress)
        try:
            report = engine.run(push=push, pull=pull, dry_run=dry_run, max_delete=max_delete)
        except MemhubError as exc:
            fail(str(exc), 1)
    if not dry_run:
        _remember(root, chosen.server, chosen.workspace, engine.prefix, report)
    _print(report, json_output)
    if report.errors:
        raise typer.Exit(1)
    return report


def _print(report: Report, json_output: bool) -> None:
    if json_output:
        print_json(report.to_dict())
        return
    if report.dry_run:
        for item in report.planned:
            console.print(f"would {item['action'].replace('_', ' ')}: {item['path']}")
        console.print(f"{len(report.planned)} changes planned (dry run)")
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
    prefix: PrefixOption = "",
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
    prefix: PrefixOption = "",
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
    prefix: PrefixOption = "",
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


def _watch(directory: Path, options: dict[str, Any]) -> None:
    """Sync now, then again whenever the folder or the server changes."""
    import watchfiles

    root = directory.expanduser().resolve()
    trigger = threading.Event()
    stop = threading.Event()

    def local_changes() -> None:
        for changes in watchfiles.watch(root, stop_event=stop, debounce=500, rust_timeout=1000):
            if any(".memhub" not in Path(p).parts and ".memhub-tmp-" not in p for _c, p in changes):
                trigger.set()

    def remote_changes() -> None:
        chosen = profile(options["server"], options["key"], options["workspace"])
        with chosen.client(timeout=90) as client:
            since = client.changes(0, limit=1)["head_rev"]
            while not stop.is_set():
                try:
                    page = client.changes(since, limit=1, wait=25)
                except MemhubError:
                    time.sleep(5)
                    continue
                if page["changes"]:
                    trigger.set()
                since = page["head_rev"]

    for target in (local_changes, remote_changes):
        threading.Thread(target=target, daemon=True).start()
    console.print(f"watching {root} (Ctrl-C to stop)")
    try:
        while True:
            try:
                _run(directory, **options)
            except typer.Exit as exc:  # a failed round is reported; keep watching
                if exc.exit_code not in (0, 1):
                    raise
            trigger.wait()
            time.sleep(0.3)  # let a burst of edits settle
            trigger.clear()
    except KeyboardInterrupt:
        stop.set()


def status(
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """The profile in use, and the last sync of each folder and database."""
    chosen = profile(server, key, workspace)
    try:
        folders = json.loads(_folders_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        folders = {}
    try:
        databases = json.loads((config_dir() / "dbsync.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        databases = {}
    result = {
        "profile": chosen.redacted(),
        "host": socket.gethostname(),
        "folders": folders,
        "databases": databases,
    }
    if json_output:
        print_json(result)
        return
    info = chosen.redacted()
    console.print(f"server    {info['server']}  workspace {info['workspace']}")
    console.print(f"key       {info['key'] or '(none)'} (from {info['key_source']})")
    if not folders:
        console.print("folders   none synced yet (memhub sync DIR)")
    for path, entry in folders.items():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.get("last_sync", 0)))
        console.print(
            f"folder    {path} → {entry.get('workspace')}/{entry.get('prefix') or ''} "
            f"last sync {when}"
        )
    for name, entry in databases.items():
        console.print(f"database  {name}: {json.dumps(entry)[:160]}")
