"""``memhub fsck`` and ``memhub gc``: check and collect the store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    console,
    fail,
    open_local_store,
    print_json,
)
from memhub.errors import MemhubError
from memhub.store import Store
from memhub.store.maintenance import Retention
from memhub.store.maintenance import fsck as run_fsck
from memhub.store.maintenance import gc as run_gc


def _open(data_dir: DataDirOption) -> Store:
    return open_local_store(data_dir)


def fsck(
    data_dir: DataDirOption = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Re-hash every chunk (slower).")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Check that every revision's chunks exist and hash right; list orphan blobs.
    Exits 1 when the store is damaged."""
    store = _open(data_dir)
    try:
        with Progress(
            TextColumn("checking revisions"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=json_output,
        ) as progress:
            task = progress.add_task("fsck", total=None)
            report = run_fsck(
                store, verify_hashes=verify, progress=lambda n: progress.advance(task, n)
            )
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json(report.to_dict())
    else:
        console.print(
            f"{report.revisions_checked} revisions, {report.chunks_checked} chunks checked"
        )
        for sha in report.missing_chunks:
            console.print(f"[red]missing chunk[/red] {sha}")
        for sha in report.corrupt_chunks:
            console.print(f"[red]corrupt chunk[/red] {sha}")
        for broken in report.broken_revisions:
            console.print(
                f"[red]damaged content[/red] {broken['sha256']} in {broken['workspace']} "
                f"(first rev {broken['first_rev']}, {broken['revisions']} revisions): "
                f"{broken['problem']}"
            )
        for key in report.orphan_blobs:
            console.print(f"[yellow]orphan blob[/yellow] {key} (memhub gc removes it)")
        console.print(
            "[green]store is clean[/green]" if report.ok else "[red]store is damaged[/red]"
        )
    raise typer.Exit(0 if report.ok else 1)


def gc(
    data_dir: DataDirOption = None,
    keep_days: Annotated[
        float | None, typer.Option(help="Keep every revision younger than this many days.")
    ] = None,
    keep_revisions: Annotated[
        int | None, typer.Option(help="Keep this many newest revisions of each path.")
    ] = None,
    grace_hours: Annotated[
        float, typer.Option(help="Leave unreferenced chunks and blobs younger than this alone.")
    ] = 24.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, delete nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete unreferenced blobs; with --keep-days/--keep-revisions, purge old revisions
    first (a path's newest revision is always kept)."""
    if keep_revisions is not None and keep_revisions < 1:
        fail("--keep-revisions must be at least 1")
    if keep_days is not None and keep_days < 0:
        fail("--keep-days must not be negative")
    store = _open(data_dir)
    try:
        report = run_gc(
            store,
            retention=Retention(keep_days=keep_days, keep_revisions=keep_revisions),
            grace_seconds=grace_hours * 3600,
            dry_run=dry_run,
        )
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb}: {report.revisions_purged} revisions, {report.contents_deleted} contents, "
        f"{report.chunks_deleted} chunk rows, {report.blobs_deleted} blobs "
        f"({report.bytes_freed} bytes)"
    )
