"""Memory items: the list with its metadata, filtered by cube, tag and type or searched;
one item (its text, metadata and a link to its file's history); add; delete at a rev.

A thin client of :class:`memhub.memory.items.Items`, the service behind
``/v1/workspaces/{ws}/items``: adding a fact an item of the cube already states
updates that item (the page says so), and a delete names the rev the page showed,
so an item changed meanwhile is refused (412), never deleted unseen.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse, Response

from memhub.api.routes.common import MAX_INT64
from memhub.memory.item_file import MAX_TEXT, MEMORY_TYPES
from memhub.memory.item_filter import compile_filter
from memhub.memory.items import Draft, Items
from memhub.ui.deps import FormUi, Ui, UiDep

router = APIRouter(prefix="/w/{ws}", include_in_schema=False)
PER_PAGE = 50
Short = Annotated[str, Query(max_length=200)]


def _items(ui: Ui) -> Items:
    items: Items = ui.request.app.state.items
    return items


def _spec(tag: str, memory_type: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if tag:
        spec["tags"] = {"contains": tag}
    if memory_type:
        spec["memory_type"] = memory_type
    return spec


@router.get("/items")
def listing(
    ui: UiDep,
    ws: str,
    q: Annotated[str, Query(max_length=10_000)] = "",
    cube: Annotated[str, Query(max_length=64)] = "",
    tag: Short = "",
    type: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    deleted: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    workspace = ui.workspace(ws)
    items = _items(ui)
    cube, tag, memory_type = cube.strip(), tag.strip(), type.strip()
    where = compile_filter(_spec(tag, memory_type))
    everything, _total = items.list_items(workspace, limit=None)
    scores: dict[str, float] = {}
    if q.strip():
        hits = items.search(workspace, q, k=PER_PAGE, cube=cube or None, where=where)
        shown = [f.item for f in hits.found]
        scores = {f.item.id: round(f.score, 3) for f in hits.found}
        total, next_offset = len(shown), None
    else:
        shown, total = items.list_items(
            workspace, cube=cube or None, where=where, offset=offset, limit=PER_PAGE
        )
        end = offset + len(shown)
        next_offset = end if end < total else None
    return ui.render(
        "items.html",
        workspace,
        items=shown,
        scores=scores,
        total=total,
        offset=offset,
        next_offset=next_offset,
        q=q,
        cube=cube,
        tag=tag,
        memory_type=memory_type,
        cubes=sorted({i.cube_id for i in everything} | {workspace}),
        types=sorted({i.memory_type for i in everything} | set(MEMORY_TYPES)),
        deleted=deleted,
        max_text=MAX_TEXT,
    )


@router.get("/items/{item_id}")
def detail(ui: UiDep, ws: str, item_id: str, added: Short = "") -> Response:
    workspace = ui.workspace(ws)
    item = _items(ui).get(workspace, item_id)
    return ui.render("item.html", workspace, item=item, added=added)


def _tags(raw: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in raw.replace("\n", ",").split(",") if t.strip())


@router.post("/items")
def add(
    ui: FormUi,
    ws: str,
    memory: Annotated[str, Form(max_length=MAX_TEXT)],
    cube: Annotated[str, Form(max_length=64)] = "",
    memory_type: Annotated[str, Form(max_length=64)] = "LongTermMemory",
    key: Annotated[str, Form(max_length=200)] = "",
    tags: Annotated[str, Form(max_length=20_000)] = "",
    source: Annotated[str, Form(max_length=200)] = "",
    session_id: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    workspace = ui.workspace(ws, "write")
    draft = Draft(
        memory=memory.replace("\r\n", "\n"),
        cube_id=cube.strip() or workspace,
        memory_type=memory_type.strip(),
        key=key.strip() or None,
        tags=_tags(tags),
        source=source.strip() or None,
        session_id=session_id.strip() or None,
    )
    (result,) = _items(ui).add(workspace, [draft], author=ui.principal.name)
    target = f"/ui/w/{workspace}/items/{result.item.id}?added={result.action}"
    return RedirectResponse(target, status_code=303)


@router.post("/items/{item_id}/delete")
def delete(
    ui: FormUi, ws: str, item_id: str, rev: Annotated[int, Form(ge=1, le=MAX_INT64)]
) -> Response:
    """Delete the item if it is still at the rev the page showed (412 otherwise)."""
    workspace = ui.workspace(ws, "write")
    items = _items(ui)
    item = items.get(workspace, item_id)
    items.delete(workspace, item.id, if_rev=rev, author=ui.principal.name)
    return RedirectResponse(f"/ui/w/{workspace}/items?deleted={quote(item.id)}", status_code=303)
