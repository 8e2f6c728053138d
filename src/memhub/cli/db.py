"""``memhub db push|pull``: live SQLite databases between machines, through a server.

The work is in :mod:`memhub.sync.dbsync` (push) and :mod:`memhub.sync.dbpull`
(pull); this module parses options, shows a progress bar on a terminal and
prints the summary (``--json``: one JSON object on stdout, also on failure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

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
    profile,
    remote,
)
from memhub.client.retry import RetryPolicy
from memhub.errors import MemhubError
from memhub.sync.dbpull import (
    DEFAULT_BACKUP_DAYS,
    DEFAULT_KEEP_BACKUPS,
    PullOptions,
    default_backup_dir,
    pull,
)
from memhub.sync.dbstate import DEFAULT_TTL, SyncState, default_holder
from memhub.sync.dbsync import NullReporter, Reporter, push

app = typer.Typer(
    help="Push and pull live SQLite databases (chunked, leased, conditional).",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path, typer.Argument(help="The local SQLite database.", dir_okay=False, show_default=False)
]
NameOption = Annotated[
    str | None,
    typer.Option("--name", help="Name on the server: dbs/NAME.sqlite (default: the file's stem)."),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace the other side even when both changed since the last sync.",
    ),
]


class RichReporter:
    """A progress line on stderr per phase; a bar with speed when bytes move."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _run(json_output: bool, work: Any) -> dict[str, Any]:
    """Run ``work(reporter)``; on a memhub error print it (as JSON too) and exit 1."""
    try:
        if json_output or not console.is_terminal:
            result: dict[str, Any] = work(NullReporter())
        else:
            with _progress() as progress:
                result = work(RichReporter(progress))
    except MemhubError as exc:
        fail_with(exc, json_output)
    return result


def _retry() -> RetryPolicy:
    """Retries that say why they wait (above the progress bar, or on stderr)."""

    def waiting(seconds: float, reason: str) -> None:
        _say(f"{reason}; retrying in {seconds:.1f} s")

    return RetryPolicy(attempts=client_settings().retries, on_wait=waiting)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _warn(result: dict[str, Any]) -> None:
    for warning in result.get("warnings", []):
        _say(f"warning: {warning}")


@app.command("push")
def push_command(
    file: FileArgument,
    name: NameOption = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size",
            help="Chunk size in bytes, rounded to a multiple of the page size (default: 64 KiB, "
            "doubled until the DB fits in 512 chunks).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Take the lease over from another host.")
    ] = False,
    overwrite: OverwriteOption = False,
    ttl: Annotated[
        float, typer.Option("--ttl", help="Lease time to live in seconds (renewed while pushing).")
    ] = DEFAULT_TTL,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Snapshot a database (even while it is written) and upload the chunks the server lacks."""
    chosen = profile(server, key, workspace)
    settings = client_settings()

    def work(reporter: Reporter) -> dict[str, Any]:
        with remote(chosen, retry=_retry()) as client:
            return push(
                client,
                file,
                name=name,
                chunk_size=chunk_size,
                force=force,
                overwrite=overwrite,
                ttl=ttl,
                holder=default_holder(settings.host_id),
                state=SyncState(settings.config_dir / SyncState.FILE),
                reporter=reporter,
            )

    result = _run(json_output, work)
    _warn(result)
    if json_output:
        print_json({"ok": True, **result})
    elif result["skipped"]:
        _say(f"{result['path']}: nothing to push ({result['reason']}, rev {result['rev']})")
    else:
        _say(
            f"{result['path']}: rev {result['rev']}, sent {result['chunks_sent']} of "
            f"{result['chunks_total']} chunks ({result['bytes_sent']:,} of {result['size']:,} "
            f"bytes) in {result['duration_s']} s"
        )


@app.command("pull")
def pull_command(
    file: FileArgument,
    name: NameOption = None,
    overwrite: OverwriteOption = False,
    keep_backups: Annotated[
        int, typer.Option("--keep-backups", help="How many backups of the local DB to keep.")
    ] = DEFAULT_KEEP_BACKUPS,
    backup_days: Annotated[
        float, typer.Option("--backup-days", help="Delete backups older than this many days.")
    ] = DEFAULT_BACKUP_DAYS,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir",
            help="Where backups go (default: <MEMHUB_DATA_DIR or user data dir>/backups/NAME).",
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Shell command run before replacing (failure aborts)."),
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Shell command run after replacing.")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download the server's copy, check it, back up the local DB and replace it atomically."""
    chosen = profile(server, key, workspace)
    settings = client_settings()
    backups = backup_dir or default_backup_dir(
        settings.data_dir, name or file.expanduser().resolve().stem
    )
    options = PullOptions(overwrite, keep_backups, backup_days, backups, before, after)

    def work(reporter: Reporter) -> dict[str, Any]:
        with remote(chosen, retry=_retry()) as client:
            return pull(
                client,
                file,
                name=name,
                options=options,
                state=SyncState(settings.config_dir / SyncState.FILE),
                reporter=reporter,
            )

    result = _run(json_output, work)
    _warn(result)
    after_failed = bool(result.get("after") and result["after"]["exit_code"] != 0)
    if json_output:
        print_json({"ok": not after_failed, **result})
    elif result["skipped"]:
        _say(f"{result['file']}: nothing to pull ({result['reason']}, rev {result['rev']})")
    else:
        backup = f"; backup {result['backup']}" if result["backup"] else ""
        _say(
            f"{result['file']}: now rev {result['rev']} ({result['size']:,} bytes "
            f"in {result['duration_s']} s){backup}"
        )
    if after_failed:
        fail(f"--after failed with exit code {result['after']['exit_code']}", code=1)
