"""File tools: read, write and edit (always conditional), list, history, diff,
delete, restore and the change feed."""

from __future__ import annotations

import base64
import difflib
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from memhub.errors import FileNotFound, PreconditionFailed
from memhub.mcp.hub import FileContent, Hub
from memhub.mcp.registry import hub, tool

MAX_CONFLICT_CHARS = 50_000

Path = Annotated[str, Field(description="A path in the workspace, e.g. notes/projects.md.")]
BaseRev = Annotated[
    int | None,
    Field(
        ge=1,
        description="The rev you read (from read_file). The write happens only if the file "
        "still has that content; leave it out only to create a new file.",
    ),
]


class FileResult(BaseModel):
    path: str
    rev: int
    sha256: str
    content_type: str
    content: str = Field(description="The text (or base64 when encoding is base64).")
    encoding: str = Field(description="utf-8, or base64 for binary content.")
    total_lines: int
    line_start: int
    line_end: int


class WriteResult(BaseModel):
    path: str
    rev: int = Field(description="The new revision: pass it as base_rev to change the file again.")
    sha256: str
    created: bool


class RevisionInfo(BaseModel):
    rev: int
    path: str
    sha256: str
    size: int
    created_at: float
    author: str | None = None
    session_id: str | None = None
    message: str | None = None
    deleted: bool = False


def text_of(found: FileContent) -> tuple[str, str]:
    try:
        return found.data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(found.data).decode("ascii"), "base64"


async def conflict(h: Hub, path: str, what: str) -> ToolError:
    """The error of a refused conditional write: the current rev and content, and what to do.
    ``what`` says what happened to the file: "changed since rev 3", "already exists"."""
    try:
        current = await h.read(path)
    except FileNotFound:
        return ToolError(
            f"CONFLICT: {path} was deleted; nothing was written. "
            "Next step: call write_file without base_rev to create it again."
        )
    text, _ = text_of(current)
    cut = " (cut)" if len(text) > MAX_CONFLICT_CHARS else ""
    return ToolError(
        f"CONFLICT: {path} {what}; its current rev is {current.rev}. "
        f"Nothing was written. Next step: merge your change into the current content below "
        f"and call again with base_rev={current.rev}.\n"
        f"--- current content of {path} (rev {current.rev}){cut} ---\n{text[:MAX_CONFLICT_CHARS]}"
    )


async def base_sha(h: Hub, path: str, base_rev: int) -> str:
    revision = await h.revision(base_rev)
    if revision["path"] != path:
        raise ToolError(
            f"BAD_REQUEST: rev {base_rev} is a revision of {revision['path']}, not of {path}. "
            f"Next step: call file_history(path={path!r}) for this file's revisions."
        )
    return str(revision["sha256"])


async def put(h: Hub, path: str, data: bytes, base_rev: int | None, message: str | None) -> Any:
    try:
        if base_rev is None:
            return await h.write(path, data, if_none_match=True, message=message)
        sha = await base_sha(h, path, base_rev)
        return await h.write(path, data, if_match=sha, message=message)
    except PreconditionFailed as exc:
        what = "already exists" if base_rev is None else f"changed since rev {base_rev}"
        raise await conflict(h, path, what) from exc


def written(result: dict[str, Any]) -> WriteResult:
    return WriteResult(
        path=result["path"], rev=result["rev"], sha256=result["sha256"], created=result["created"]
    )


@tool(title="Read a file")
async def read_file(
    ctx: Context,
    path: Path,
    rev: Annotated[
        int | None, Field(ge=1, description="An older revision; default: the newest.")
    ] = None,
    line_start: Annotated[
        int | None, Field(ge=1, description="First line to return (1-based).")
    ] = None,
    line_end: Annotated[
        int | None, Field(ge=1, description="Last line to return (inclusive).")
    ] = None,
) -> FileResult:
    """Read a file of memory: its content, rev (pass it as base_rev to write or edit the file),
    sha256 and content type. Give line_start/line_end to read part of a long file."""
    found = await hub(ctx).read(path, rev)
    text, encoding = text_of(found)
    lines = text.splitlines(keepends=True) if encoding == "utf-8" else [text]
    first = line_start or 1
    last = min(line_end or len(lines), len(lines))
    if encoding == "utf-8" and (line_start or line_end):
        text = "".join(lines[first - 1 : last])
    return FileResult(
        path=path,
        rev=found.rev,
        sha256=found.sha256,
        content_type=found.content_type,
        content=text,
        encoding=encoding,
        total_lines=len(lines),
        line_start=first,
        line_end=last,
    )


@tool(title="Write a file", write=True)
async def write_file(
    ctx: Context,
    path: Path,
    content: Annotated[str, Field(description="The whole new content of the file.")],
    base_rev: BaseRev = None,
    message: Annotated[str | None, Field(description="Why: kept with the revision.")] = None,
) -> WriteResult:
    """Create a file (no base_rev) or replace it, conditional on base_rev: nothing is ever
    overwritten blindly. On a conflict the error carries the current rev and content; merge
    and call again with that rev."""
    return written(await put(hub(ctx), path, content.encode("utf-8"), base_rev, message))


@tool(title="Edit a file", write=True)
async def edit_file(
    ctx: Context,
    path: Path,
    old_text: Annotated[str, Field(description="Exact text to replace; must occur once.")],
    new_text: Annotated[str, Field(description="The replacement text.")],
    base_rev: Annotated[
        int | None,
        Field(ge=1, description="The rev you read; default: the newest, as read by this call."),
    ] = None,
    message: Annotated[str | None, Field(description="Why: kept with the revision.")] = None,
) -> WriteResult:
    """Replace one exact occurrence of old_text with new_text. Fails clearly when old_text is
    absent or occurs more than once; conditional on base_rev like write_file."""
    h = hub(ctx)
    found = await h.read(path, base_rev)
    if found.rev != base_rev and base_rev is not None:
        raise ToolError(f"BAD_REQUEST: rev {base_rev} is not a revision of {path}")
    text, encoding = text_of(found)
    if encoding != "utf-8":
        raise ToolError(f"BAD_REQUEST: {path} is binary; edit_file works on text files")
    count = text.count(old_text) if old_text else 0
    if count != 1:
        reason = "does not occur" if count == 0 else f"occurs {count} times"
        step = (
            "read_file to copy the exact text (whitespace matters)"
            if count == 0
            else "include more surrounding text so that old_text occurs exactly once"
        )
        raise ToolError(
            f"EDIT_FAILED: old_text {reason} in {path} (rev {found.rev}); nothing was written. "
            f"Next step: {step}."
        )
    new = text.replace(old_text, new_text, 1)
    try:
        result = await h.write(path, new.encode("utf-8"), if_match=found.sha256, message=message)
    except PreconditionFailed as exc:
        raise await conflict(h, path, f"changed since rev {found.rev}") from exc
    return written(result)


class Listing(BaseModel):
    files: list[RevisionInfo]
    next_after: str | None = Field(description="More files follow this path when set.")


@tool(title="List files")
async def list_files(
    ctx: Context,
    prefix: Annotated[str, Field(description="Only paths starting with this.")] = "",
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many.")] = 200,
) -> Listing:
    """The files of the workspace (newest revision of each), in path order."""
    listing = await hub(ctx).list_files(prefix, limit)
    return Listing(
        files=[RevisionInfo.model_validate(f) for f in listing["files"]],
        next_after=listing["next_after"],
    )


class History(BaseModel):
    path: str
    revisions: list[RevisionInfo] = Field(description="Newest first.")


@tool(title="File history")
async def file_history(
    ctx: Context,
    path: Path,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many revisions.")] = 20,
) -> History:
    """Every revision of a file, newest first: rev, author, time, message, session id."""
    revisions = await hub(ctx).history(path, limit)
    return History(path=path, revisions=[RevisionInfo.model_validate(r) for r in revisions])


class Diff(BaseModel):
    path: str
    from_rev: int
    to_rev: int
    diff: str = Field(description="A unified diff; empty when the contents are equal.")


async def _text_at(h: Hub, path: str, rev: int) -> str:
    found = await h.read(path, rev)
    if found.rev != rev:
        raise ToolError(f"BAD_REQUEST: rev {rev} is not a revision of {path}")
    return found.data.decode("utf-8", errors="replace")


@tool(title="Diff two revisions")
async def diff_file(
    ctx: Context,
    path: Path,
    from_rev: Annotated[int, Field(ge=1, description="The older revision.")],
    to_rev: Annotated[
        int | None, Field(ge=1, description="The newer one; default: newest.")
    ] = None,
) -> Diff:
    """A unified diff of a file between two of its revisions."""
    h = hub(ctx)
    if to_rev is None:
        to_rev = (await h.read(path)).rev
    old, new = await _text_at(h, path, from_rev), await _text_at(h, path, to_rev)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        f"{path}@{from_rev}",
        f"{path}@{to_rev}",
    )
    return Diff(path=path, from_rev=from_rev, to_rev=to_rev, diff="".join(lines))


@tool(title="Delete a file", write=True, destructive=True)
async def delete_file(
    ctx: Context,
    path: Path,
    base_rev: Annotated[int, Field(ge=1, description="The rev you read (from read_file).")],
) -> RevisionInfo:
    """Delete a file if it still has the content of base_rev. History is kept: restore_file
    brings any revision back."""
    h = hub(ctx)
    sha = await base_sha(h, path, base_rev)
    try:
        return RevisionInfo.model_validate(await h.delete(path, if_match=sha))
    except PreconditionFailed as exc:
        raise await conflict(h, path, f"changed since rev {base_rev}") from exc


@tool(title="Restore a revision", write=True)
async def restore_file(
    ctx: Context,
    path: Path,
    rev: Annotated[int, Field(ge=1, description="The revision whose content comes back.")],
) -> RevisionInfo:
    """Write a new revision of the file with the content of an older one."""
    return RevisionInfo.model_validate(await hub(ctx).restore(path, rev))


class Changes(BaseModel):
    changes: list[RevisionInfo] = Field(description="Oldest first.")
    head_rev: int = Field(description="The workspace's newest rev.")
    next_since_rev: int = Field(description="Pass as since_rev to continue.")
    has_more: bool


@tool(title="Recent changes")
async def recent_changes(
    ctx: Context,
    since_rev: Annotated[
        int | None, Field(ge=0, description="Changes after this rev; default: the latest.")
    ] = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many.")] = 50,
) -> Changes:
    """What changed in the workspace: paths, revs, authors, session ids, messages. Call it at
    the start of a session to catch up."""
    h = hub(ctx)
    if since_rev is None:
        head = int((await h.changes(0, 1))["head_rev"])
        since_rev = max(0, head - limit)
    page = await h.changes(since_rev, limit)
    return Changes(
        changes=[RevisionInfo.model_validate(r) for r in page["changes"]],
        head_rev=page["head_rev"],
        next_since_rev=page["next_since"],
        has_more=page["has_more"],
    )
