"""History and diffs: a file's revisions, a diff between any two, the live change feed.

The change feed page polls ``changes/feed?since=REV`` with htmx every few
seconds; the fragment it gets back holds only the changes after ``since`` (a
range scan of the change log), and the next poll's cursor.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from memhub.api.routes.common import MAX_INT64
from memhub.core.paths import normalize_path
from memhub.errors import BadRequest, FileNotFound, RevisionNotFound
from memhub.store import Revision
from memhub.ui.deps import UiDep
from memhub.ui.render import MAX_RENDER_BYTES, decode, parents, side_by_side, unified_diff

router = APIRouter(prefix="/w/{ws}", include_in_schema=False)
FEED_PAGE = 50
HISTORY_PAGE = 100
RevQ = Annotated[int | None, Query(ge=1, le=MAX_INT64)]


@router.get("/history/{path:path}")
def history(ui: UiDep, ws: str, path: str, before: RevQ = None) -> Response:
    workspace = ui.workspace(ws)
    store = ui.request.app.state.store
    path = normalize_path(path)
    items = store.history(workspace, path, limit=HISTORY_PAGE, before=before)
    if not items and before is None:
        raise FileNotFound(f"File not found: {path}", context={"path": path})
    return ui.render(
        "history.html",
        workspace,
        file_path=path,
        crumbs=parents(path),
        revisions=items,
        next_before=items[-1].rev if len(items) == HISTORY_PAGE else None,
    )


def _text_of(ui: UiDep, workspace: str, path: str, rev: int) -> tuple[Revision, str]:
    store = ui.request.app.state.store
    revision = store.revision(workspace, rev)
    if revision.path != path:
        raise RevisionNotFound(f"rev {rev} is not a revision of {path!r}")
    if revision.deleted:
        return revision, ""
    if revision.size > MAX_RENDER_BYTES:
        raise BadRequest(f"rev {rev} is too large to diff in the browser")
    _found, data = store.read_bytes(workspace, path, rev)
    text = decode(data)
    if text is None:
        raise BadRequest(f"rev {rev} is not UTF-8 text; download it instead")
    return revision, text


@router.get("/diff/{path:path}")
def diff(
    ui: UiDep,
    ws: str,
    path: str,
    a: Annotated[int, Query(ge=1, le=MAX_INT64)],
    b: Annotated[int, Query(ge=1, le=MAX_INT64)],
    mode: Literal["unified", "split"] = "unified",
) -> Response:
    workspace = ui.workspace(ws)
    path = normalize_path(path)
    old, old_text = _text_of(ui, workspace, path, a)
    new, new_text = _text_of(ui, workspace, path, b)
    return ui.render(
        "diff.html",
        workspace,
        file_path=path,
        crumbs=parents(path),
        old=old,
        new=new,
        mode=mode,
        lines=unified_diff(old_text, new_text) if mode == "unified" else [],
        rows=side_by_side(old_text, new_text) if mode == "split" else [],
    )


@router.get("/changes")
def changes(ui: UiDep, ws: str) -> Response:
    workspace = ui.workspace(ws)
    store = ui.request.app.state.store
    head = store.head_rev(workspace)
    page = store.changes(workspace, max(0, head - FEED_PAGE), limit=FEED_PAGE)
    return ui.render(
        "changes.html",
        workspace,
        changes=list(reversed(page.changes)),
        since=page.next_since,
    )


@router.get("/changes/feed")
def feed(ui: UiDep, ws: str, since: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0) -> Response:
    """The htmx fragment: changes after ``since``, newest first, and the next poll."""
    workspace = ui.workspace(ws)
    page = ui.request.app.state.store.changes(workspace, since, limit=FEED_PAGE)
    return ui.render(
        "changes_feed.html",
        workspace,
        changes=list(reversed(page.changes)),
        since=page.next_since,
    )
