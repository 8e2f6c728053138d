"""``memhub put|get|ls|rm|history|diff|restore``: one file at a time, from the shell.

Every write is conditional by default, so a command never overwrites a change
it did not see: ``put`` creates (``If-None-Match: *``) unless given the hash it
replaces (``--if-match``); ``rm`` and ``restore`` act on the head they read
(``If-Match``). ``--force`` drops the condition. Each command has ``--json``
(one JSON object on stdout, also on failure). Without a configured server the
commands work on the local data dir in-process (:func:`memhub.cli.common.connect`).
"""

from __future__ import annotations

import base64
import difflib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memhub.cli.common import (
    DataDirOption,
    JsonOption,
    KeyOption,
    ServerOption,
    WorkspaceOption,
    connect,
    console,
    fail,
    fail_with,
    print_json,
    print_table,
    profile,
)
from memhub.errors import MemhubError, PreconditionFailed

if TYPE_CHECKING:
    from memhub.client import MemhubClient

PathArgument = Annotated[str, typer.Argument(help="The file's path in the workspace.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Write whatever the server has now (no precondition).")
]
IfMatchOption = Annotated[
    str | None,
    typer.Option("--if-match", help="Only if the current content has this sha256 (or md5)."),
]
RevOption = Annotated[int | None, typer.Option("--rev", help="A revision number.", min=1)]


def _client(
    server: str | None, key: str | None, workspace: str | None, data_dir: Path | None
) -> MemhubClient:
    return connect(profile(server, key, workspace, data_dir), data_dir=data_dir)


@contextmanager
def _session(
    server: str | None,
    key: str | None,
    workspace: str | None,
    data_dir: Path | None,
    json_output: bool,
) -> Iterator[MemhubClient]:
    """The client of one command; a memhub error ends the command (as JSON with --json)."""
    try:
        with _client(server, key, workspace, data_dir) as client:
            yield client
    except MemhubError as exc:
        fail_with(exc, json_output)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _head_sha(client: MemhubClient, path: str) -> str | None:
    """The sha256 of the path's live head (None when it is absent or deleted)."""
    revisions = client.history(path, limit=1).revisions
    return revisions[0].sha256 if revisions and not revisions[0].deleted else None


def put(
    path: PathArgument,
    source: Annotated[
        str, typer.Argument(help="A local file, or - for stdin (the default).")
    ] = "-",
    if_match: IfMatchOption = None,
    force: ForceOption = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="A note.")] = None,
    content_type: Annotated[
        str | None, typer.Option("--content-type", help="Stored with the revision.")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a file (conditional by default: creates only, unless --if-match or --force)."""
    if force and if_match:
        fail("--force and --if-match contradict each other")
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    try:
        with _client(server, key, workspace, data_dir) as client:
            written = client.put(
                path,
                data,
                if_match=if_match,
                if_none_match=not force and if_match is None,
                content_type=content_type,
                message=message,
            )
    except PreconditionFailed as exc:
        exc.hint = (
            "the content changed since that hash; `memhub get` it again"
            if if_match
            else f"{path} exists: pass --if-match SHA256 (see `memhub history {path}`) to "
            "replace that version, or --force to replace whatever is there"
        )
        fail_with(exc, json_output)
    except MemhubError as exc:
        fail_with(exc, json_output)
    if json_output:
        print_json({"ok": True, **written.model_dump()})
    else:
        verb = "created" if written.created else "updated"
        console.print(f"{verb} {written.path}: rev {written.rev}, {written.size:,} bytes")


def get(
    path: PathArgument,
    rev: RevOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a file, or one of its revisions (--rev)."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        headers, data = client.get(path, rev=rev)
    if json_output:
        try:
            content, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            content, encoding = base64.b64encode(data).decode(), "base64"
        print_json(
            {
                "ok": True,
                "path": path,
                "rev": int(headers.get("x-memhub-rev", 0)),
                "sha256": headers.get("etag", "").strip('"'),
                "size": len(data),
                "encoding": encoding,
                "content": content,
            }
        )
    elif output is not None:
        from memhub.core.durable import write_durably

        write_durably(output, data)
        console.print(f"wrote {len(data):,} bytes to {output}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def ls(
    prefix: Annotated[str, typer.Argument(help="Only paths under this (e.g. notes/).")] = "",
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted files.")] = False,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """List files under a prefix: path, rev, size, when."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        files = list(client.list_files(prefix=prefix, include_deleted=deleted))
    if json_output:
        print_json({"ok": True, "files": [f.model_dump() for f in files]})
        return
    if not files:
        console.print(f"no files under {prefix!r}" if prefix else "no files")
        return
    from rich.table import Table

    table = Table("path", "rev", "size", "modified", "sha256", box=None)
    for f in files:
        name = f"{f.path} (deleted)" if f.deleted else f.path
        table.add_row(name, str(f.rev), f"{f.size:,}", _when(f.created_at), f.sha256[:12])
    print_table(table)


def rm(
    path: PathArgument,
    if_match: IfMatchOption = None,
    force: ForceOption = False,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a file (conditional by default: the version it reads first, or --if-match)."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        condition = if_match or (None if force else _head_sha(client, path))
        if condition is None and not force:
            fail_with(_absent(path), json_output)
        tomb = client.delete(path, if_match=condition)
    if json_output:
        print_json({"ok": True, **tomb.model_dump()})
    else:
        console.print(f"deleted {tomb.path} (rev {tomb.rev}; `memhub restore` brings it back)")


def _absent(path: str) -> MemhubError:
    from memhub.errors import FileNotFound

    return FileNotFound(f"{path} does not exist (or is deleted)", hint="see `memhub ls`")


def history(
    path: PathArgument,
    limit: Annotated[int, typer.Option("--limit", help="How many revisions.", min=1)] = 50,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """The revisions of a file, newest first."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        page = client.history(path, limit=limit)
    if json_output:
        print_json({"ok": True, **page.model_dump()})
        return
    if not page.revisions:
        console.print(f"{path} has no history")
        return
    from rich.table import Table

    table = Table("rev", "when", "size", "sha256", "author", "message", box=None)
    for r in page.revisions:
        size = "deleted" if r.deleted else f"{r.size:,}"
        table.add_row(
            str(r.rev), _when(r.created_at), size, r.sha256[:12], r.author or "", r.message or ""
        )
    print_table(table)


def diff(
    path: PathArgument,
    rev1: Annotated[
        int | None, typer.Argument(help="From this revision (default: the one before REV2).")
    ] = None,
    rev2: Annotated[
        int | None, typer.Argument(help="To this revision (default: the head).")
    ] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Unified diff between two revisions (colour on a terminal)."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        old, new = _pair(client, path, rev1, rev2)
        texts = [_text(client, path, rev) for rev in (old, new)]
    a, b = texts
    if a is None or b is None:
        lines = [f"Binary revisions {old} and {new} of {path} differ\n"] if a != b else []
    else:
        lines = list(
            difflib.unified_diff(
                a.splitlines(keepends=True),
                b.splitlines(keepends=True),
                fromfile=f"{path}@{old}" if old else "/dev/null",
                tofile=f"{path}@{new}",
            )
        )
    if json_output:
        print_json({"ok": True, "path": path, "from": old, "to": new, "diff": "".join(lines)})
        return
    _print_diff(lines)


def _pair(client: MemhubClient, path: str, rev1: int | None, rev2: int | None) -> tuple[int, int]:
    """(from, to): explicit revisions, or the head and the revision before it (0: none)."""
    if rev1 is not None and rev2 is not None:
        return rev1, rev2
    revisions = client.history(path, limit=1000).revisions
    if not revisions:
        raise _absent(path)
    new = rev2 if rev2 is not None else revisions[0].rev
    if rev1 is not None:
        return rev1, new
    older = [r.rev for r in revisions if r.rev < new]
    return (older[0] if older else 0), new


def _text(client: MemhubClient, path: str, rev: int) -> str | None:
    """A revision's text ('' for none or a tombstone), or None when it is not UTF-8."""
    if rev == 0:
        return ""
    from memhub.errors import FileNotFound

    try:
        _headers, data = client.get(path, rev=rev)
    except FileNotFound:
        return ""  # a tombstone: the file did not exist at that revision
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _print_diff(lines: list[str]) -> None:
    colour = sys.stdout.isatty()
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in lines:
        text = line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        fg = styles.get(line[:1]) if colour and not line.startswith(("+++", "---")) else None
        typer.echo(typer.style(text, fg=fg) if fg else text, nl=False)


def restore(
    path: PathArgument,
    rev: Annotated[int, typer.Option("--rev", help="The revision to bring back.", min=1)],
    force: ForceOption = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="A note.")] = None,
    server: ServerOption = None,
    key: KeyOption = None,
    workspace: WorkspaceOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Make an old revision current again (a new revision; conditional on the head read)."""
    with _session(server, key, workspace, data_dir, json_output) as client:
        head = None if force else _head_sha(client, path)
        written = client.restore(
            path,
            rev,
            if_match=head,
            if_none_match=not force and head is None,  # deleted: only while still deleted
            message=message,
        )
    result: dict[str, Any] = {"ok": True, "restored_from": rev, **written.model_dump()}
    if json_output:
        print_json(result)
    else:
        console.print(f"restored {written.path} from rev {rev}: now rev {written.rev}")
