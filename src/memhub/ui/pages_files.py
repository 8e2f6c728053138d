"""Files: the tree, a file (rendered and raw, at any revision), edit with a conditional
save, new file, upload, rename, delete, restore.

Every write goes through :class:`memhub.store.Store` with a precondition, like the
API's ``If-Match``: a save is based on the sha256 the editor loaded, so a
concurrent change is a conflict (both versions shown, nothing lost), never a
silent overwrite.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from memhub.api.routes.common import MAX_INT64
from memhub.core.paths import normalize_path, normalize_prefix
from memhub.errors import BadRequest, FileNotFound, PreconditionFailed
from memhub.store import Precondition, Revision
from memhub.ui.deps import FormUi, UiDep
from memhub.ui.render import (
    MAX_RENDER_BYTES,
    decode,
    is_markdown,
    parents,
    render_markdown,
    unified_diff,
)
from memhub.ui.tree import PAGE, Tree

router = APIRouter(prefix="/w/{ws}", include_in_schema=False)
MAX_TEXT = 10 * 1024**2  # the edit form's limit (the body limit still applies)
Rev = Annotated[int | None, Query(ge=1, le=MAX_INT64)]


def _to(ws: str, kind: str, path: str, query: str = "") -> RedirectResponse:
    return RedirectResponse(f"/ui/w/{ws}/{kind}/{quote(path)}{query}", status_code=303)


def _precondition(base: str) -> Precondition:
    base = base.strip().lower()
    if base == "new":
        return Precondition(exists=False)
    if len(base) == 64 and all(c in "0123456789abcdef" for c in base):
        return Precondition(sha256=base)
    raise BadRequest("the form's base version is not a sha256", context={"base": base})


@router.get("/files/{prefix:path}")
def tree(
    ui: UiDep,
    ws: str,
    prefix: str = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    deleted: bool = False,
) -> Response:
    workspace = ui.workspace(ws)
    prefix = normalize_prefix(prefix) if prefix.strip("/") else ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    tree: Tree = ui.request.app.state.tree
    listing = tree.directory(workspace, prefix)
    start = (page - 1) * PAGE
    return ui.render(
        "files.html",
        workspace,
        prefix=prefix,
        crumbs=[(n, p) for n, p in parents(prefix + "x")],
        listing=listing,
        entries=listing.entries[start : start + PAGE],
        page=page,
        pages=max(1, -(-len(listing.entries) // PAGE)),
        deleted=tree.deleted(workspace, prefix) if deleted else None,
    )


@router.get("/file/{path:path}")
def view(ui: UiDep, ws: str, path: str, rev: Rev = None) -> Response:
    workspace = ui.workspace(ws)
    store = ui.request.app.state.store
    revision, refs = store.read_plan(workspace, path, rev)
    text = None
    if revision.size <= MAX_RENDER_BYTES:
        text = decode(store.read_content(refs))
    rendered = render_markdown(text) if text is not None and is_markdown(path, "") else None
    head = store.stat(workspace, revision.path, include_deleted=True)
    return ui.render(
        "file.html",
        workspace,
        file=revision,
        head=head,
        crumbs=parents(revision.path),
        text=text,
        rendered=rendered,
        too_large=revision.size > MAX_RENDER_BYTES,
    )


@router.get("/raw/{path:path}")
def raw(ui: UiDep, ws: str, path: str, rev: Rev = None) -> Response:
    """The bytes as a download: never rendered by the browser in our origin."""
    workspace = ui.workspace(ws)
    store = ui.request.app.state.store
    revision, data = store.read_bytes(workspace, path, rev)
    name = revision.path.rsplit("/", 1)[-1]
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "content-security-policy": "sandbox; default-src 'none'",
            "etag": f'"{revision.sha256}"',
        },
    )


@router.get("/edit/{path:path}")
def edit(ui: UiDep, ws: str, path: str) -> Response:
    workspace = ui.workspace(ws, "write")
    revision, data = ui.request.app.state.store.read_bytes(workspace, path)
    text = decode(data)
    if text is None:
        raise BadRequest("only UTF-8 text files can be edited in the browser; upload instead")
    return ui.render("edit.html", workspace, file=revision, text=text, base=revision.sha256)


@router.get("/new")
def new_form(ui: UiDep, ws: str, dir: str = "") -> Response:
    workspace = ui.workspace(ws, "write")
    return ui.render("edit.html", workspace, file=None, text="", base="new", dir=dir)


@router.post("/save")
def save(
    ui: FormUi,
    ws: str,
    path: Annotated[str, Form(max_length=1024)],
    content: Annotated[str, Form(max_length=MAX_TEXT)],
    base: Annotated[str, Form(max_length=64)],
    message: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    workspace = ui.workspace(ws, "write")
    store = ui.request.app.state.store
    path = normalize_path(path)
    data = content.replace("\r\n", "\n").encode("utf-8")
    try:
        store.put(
            workspace,
            path,
            data,
            precondition=_precondition(base),
            content_type="text/markdown" if is_markdown(path, "") else "text/plain",
            author=ui.principal.name,
            message=message or None,
        )
    except PreconditionFailed:
        return _conflict(ui, workspace, path, content, message)
    return _to(workspace, "file", path)


def _conflict(ui: FormUi, workspace: str, path: str, mine: str, message: str) -> HTMLResponse:
    """Both versions side by side: the server's as it is now, and the user's unsaved
    text in an editor based on the server's version (saving it keeps theirs in
    history). Nothing is lost."""
    store = ui.request.app.state.store
    current: Revision | None
    try:
        current, data = store.read_bytes(workspace, path)
        theirs = decode(data) or ""
    except FileNotFound:
        current, theirs = None, ""
    return ui.render(
        "conflict.html",
        workspace,
        status=409,
        file_path=path,
        current=current,
        theirs=theirs,
        mine=mine.replace("\r\n", "\n"),
        message=message,
        base=current.sha256 if current else "new",
        diff=unified_diff(theirs, mine.replace("\r\n", "\n")),
    )


@router.post("/upload")
async def upload(
    ui: FormUi,
    ws: str,
    file: Annotated[UploadFile, File()],
    dir: Annotated[str, Form(max_length=1024)] = "",
    overwrite: Annotated[bool, Form()] = False,
) -> Response:
    from starlette.concurrency import run_in_threadpool

    workspace = ui.workspace(ws, "write")
    name = (file.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise BadRequest("choose a file to upload")
    path = normalize_path(f"{normalize_prefix(dir).rstrip('/')}/{name}".lstrip("/"))
    store = ui.request.app.state.store
    settings = ui.request.app.state.settings
    await run_in_threadpool(
        lambda: store.put(
            workspace,
            path,
            file.file,
            precondition=Precondition() if overwrite else Precondition(exists=False),
            content_type=file.content_type or None,
            author=ui.principal.name,
            message=f"upload of {name}",
            max_bytes=settings.max_body_bytes,
        )
    )
    return _to(workspace, "file", path)


@router.post("/rename/{path:path}")
def rename(
    ui: FormUi,
    ws: str,
    path: str,
    new_path: Annotated[str, Form(max_length=1024)],
    base: Annotated[str, Form(max_length=64)],
) -> Response:
    """Copy to the new path (create only), then delete the old one if it still has the
    content that was copied: two conditional writes, so a race loses nothing."""
    workspace = ui.workspace(ws, "write")
    store = ui.request.app.state.store
    old = normalize_path(path)
    target = normalize_path(new_path)
    if target == old:
        raise BadRequest("the new path is the same as the old one")
    revision, data = store.read_bytes(workspace, old)
    if revision.sha256 != base.strip().lower():
        raise PreconditionFailed(f"{old} changed since the page was loaded; reload it")
    store.put(
        workspace,
        target,
        data,
        precondition=Precondition(exists=False),
        content_type=revision.content_type,
        author=ui.principal.name,
        message=f"rename from {old}",
    )
    store.delete(
        workspace,
        old,
        precondition=Precondition(sha256=revision.sha256),
        author=ui.principal.name,
        message=f"rename to {target}",
    )
    return _to(workspace, "file", target)


@router.post("/delete/{path:path}")
def delete(ui: FormUi, ws: str, path: str, base: Annotated[str, Form(max_length=64)]) -> Response:
    workspace = ui.workspace(ws, "write")
    revision = ui.request.app.state.store.delete(
        workspace,
        path,
        precondition=_precondition(base),
        author=ui.principal.name,
        message="deleted in the web UI",
    )
    return _to(workspace, "history", revision.path)


@router.post("/restore/{path:path}")
def restore(
    ui: FormUi, ws: str, path: str, rev: Annotated[int, Form(ge=1, le=MAX_INT64)]
) -> Response:
    workspace = ui.workspace(ws, "write")
    result = ui.request.app.state.store.restore(
        workspace, path, rev, author=ui.principal.name, message=f"restore of rev {rev} (web UI)"
    )
    return _to(workspace, "file", result.revision.path)
