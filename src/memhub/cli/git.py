"""``memhub git import|export|mirror``: the git bridge on the local data dir.

They open the store the settings name (``--data-dir``, ``MEMHUB_DATABASE_URL``,
``MEMHUB_BLOB_URL``), as ``memhub fsck`` does; a running server sees the imported
revisions through the change log (its index catches up on the next search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    console,
    fail,
    load_settings,
    open_local_store,
    print_json,
)
from memhub.errors import MemhubError

app = typer.Typer(help="Import a git repository's history, export or mirror a workspace.")

BranchOption = Annotated[str | None, typer.Option("--branch", "-b", help="The git branch.")]
WorkspaceArg = Annotated[
    str | None, typer.Option("--workspace", "-w", help="The memhub workspace.")
]


@app.command("import")
def import_(
    repo: Annotated[str, typer.Argument(help="A repository path or URL (https://, git://, ssh).")],
    workspace: WorkspaceArg = None,
    branch: BranchOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every commit of a branch as revisions with its author, time and message. Without
    --branch, DiffMem's ``user/<id>`` branches go to workspaces ``<id>``; commits already
    imported are skipped."""
    from memhub.gitbridge.importer import import_repo

    store = open_local_store(data_dir)
    try:
        reports = import_repo(store, repo, workspace=workspace, branch=branch)
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json([r.to_dict() for r in reports])
        return
    for r in reports:
        console.print(
            f"{r.branch} → {r.workspace}: {r.commits} commits, {r.revisions} revisions "
            f"({r.skipped_commits} commits skipped, {r.skipped_entries} links skipped)"
        )


@app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="The git repository to write (created).")],
    workspace: WorkspaceArg = None,
    branch: Annotated[str, typer.Option("--branch", "-b", help="The git branch.")] = "main",
    bare: Annotated[bool, typer.Option("--bare", help="A bare repository.")] = False,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """A workspace with its history as git commits (run again: only what is new)."""
    from memhub.gitbridge.exporter import export_workspace

    ws = workspace or load_settings(data_dir).default_workspace
    store = open_local_store(data_dir)
    try:
        report = export_workspace(store, ws, directory, branch=branch, bare=bare)
    except MemhubError as exc:
        fail(str(exc))
    finally:
        store.close()
    if json_output:
        print_json(report.to_dict())
        return
    console.print(
        f"{ws} → {directory} ({branch}): {report.commits} commits, {report.revisions} revisions"
    )


@app.command("mirror")
def mirror(
    remote: Annotated[str, typer.Argument(help="A repository path or URL to push to.")],
    workspace: WorkspaceArg = None,
    branch: Annotated[str, typer.Option("--branch", "-b", help="The git branch.")] = "main",
    interval: Annotated[float, typer.Option(help="Seconds between change-feed polls.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Push new revisions as commits as they happen (until interrupted)."""
    from memhub.gitbridge.mirror import mirror as run_mirror

    settings = load_settings(data_dir)
    ws = workspace or settings.default_workspace
    store = open_local_store(data_dir)

    def said(report: object) -> None:
        from memhub.gitbridge.exporter import ExportReport

        if isinstance(report, ExportReport) and report.commits:
            console.print(f"{report.commits} commits → {remote} ({branch}) up to rev {report.rev}")

    try:
        run_mirror(
            store,
            ws,
            remote,
            branch=branch,
            cache_dir=settings.data_dir / "git-mirror",
            interval=interval,
            rounds=1 if once else None,
            on_round=said,
        )
    except MemhubError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
