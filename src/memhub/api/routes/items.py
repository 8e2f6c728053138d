"""/v1 memory items: ``/v1/workspaces/{workspace}/items…``.

Create (one or many, deduplicated), get, update and delete (conditional on the
item's rev), list with paging and the MemOS filter grammar, search restricted to
items, and the history of one item. Items are files (``items/<cube>/<id>.md``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memhub.api.routes import responses
from memhub.api.routes.common import PrincipalDep, StrictBody, WorkspaceName, access
from memhub.errors import BadRequest
from memhub.memory.item_file import Item
from memhub.memory.item_filter import compile_filter
from memhub.memory.items import Draft, Items
from memhub.memory.service import MAX_K

router = APIRouter(prefix="/v1/workspaces/{workspace}/items", tags=["items"])


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return responses.errors(400, 401, 403, 404, *codes)


async def get_items(request: Request) -> Items:
    items: Items = request.app.state.items
    return items


ItemsDep = Annotated[Items, Depends(get_items)]


class ItemIn(StrictBody):
    memory: str = Field(min_length=1, max_length=100_000)
    cube_id: str | None = Field(default=None, max_length=64, description="default: the workspace")
    memory_type: str = Field(default="LongTermMemory", min_length=1, max_length=64)
    key: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=100)
    info: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=255)
    user_id: str | None = Field(default=None, max_length=255)


class CreateItems(StrictBody):
    items: list[ItemIn] = Field(min_length=1, max_length=1000)


class ItemOut(BaseModel):
    id: str
    cube_id: str
    memory: str
    memory_type: str
    key: str
    tags: list[str]
    info: dict[str, Any]
    source: str | None
    sources: list[dict[str, Any]]
    session_id: str | None
    user_id: str | None
    status: str
    created_at: str
    updated_at: str
    path: str
    rev: int


class AddedOut(ItemOut):
    action: str = Field(description="created, or updated when the same fact was already stored")


class AddedList(BaseModel):
    items: list[AddedOut]


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    offset: int
    next_offset: int | None


class ItemQuery(StrictBody):
    filter: dict[str, Any] | None = None
    cube_id: str | None = Field(default=None, max_length=64)
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class ItemUpdate(StrictBody):
    memory: str | None = Field(default=None, min_length=1, max_length=100_000)
    memory_type: str | None = Field(default=None, min_length=1, max_length=64)
    key: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=100)
    info: dict[str, Any] | None = None
    source: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=255)
    status: str | None = Field(default=None, min_length=1, max_length=32)
    if_rev: int | None = Field(
        default=None, ge=1, description="update only if the item is at this rev"
    )


class ItemSearch(StrictBody):
    query: str = Field(max_length=10_000)
    k: int = Field(default=10, ge=1, le=MAX_K)
    cube_id: str | None = Field(default=None, max_length=64)
    filter: dict[str, Any] | None = None
    relativity: float = Field(default=0.0, ge=0.0, le=1.0)


class SearchHit(BaseModel):
    item: ItemOut
    score: float
    relativity: float


class SearchResults(BaseModel):
    query: str
    mode: str = Field(description="bm25, or hybrid (BM25 and vectors fused)")
    results: list[SearchHit]


class Deleted(BaseModel):
    id: str
    deleted: bool
    rev: int


class Version(BaseModel):
    rev: int
    created_at: float
    deleted: bool
    author: str | None
    message: str | None
    item: ItemOut | None


class ItemHistory(BaseModel):
    id: str
    versions: list[Version]


def out(item: Item) -> dict[str, Any]:
    return item.to_dict()


def drafts_of(body: CreateItems, workspace: str) -> list[Draft]:
    return [
        Draft(
            memory=i.memory,
            cube_id=i.cube_id or workspace,
            memory_type=i.memory_type,
            key=i.key,
            tags=tuple(i.tags),
            info=i.info,
            source=i.source,
            session_id=i.session_id,
            user_id=i.user_id,
        )
        for i in body.items
    ]


@router.post("", responses=errors(412, 413))
async def create_items(
    workspace: WorkspaceName, body: CreateItems, items: ItemsDep, principal: PrincipalDep
) -> AddedList:
    """Add one or many items. The same fact twice (after normalisation) updates the first
    item (``action: updated``) instead of creating a second one."""
    ws = access(principal, workspace, "write")
    added = await run_in_threadpool(items.add, ws, drafts_of(body, ws), author=principal.name)
    return AddedList.model_validate({"items": [{**out(a.item), "action": a.action} for a in added]})


def _page(items: Items, ws: str, query: ItemQuery) -> ItemPage:
    where = compile_filter(query.filter)
    chosen, total = items.list_items(
        ws, cube=query.cube_id, where=where, offset=query.offset, limit=query.limit
    )
    end = query.offset + len(chosen)
    return ItemPage.model_validate(
        {
            "items": [out(i) for i in chosen],
            "total": total,
            "offset": query.offset,
            "next_offset": end if end < total else None,
        }
    )


@router.get("", responses=errors())
async def list_items(
    workspace: WorkspaceName,
    items: ItemsDep,
    principal: PrincipalDep,
    cube_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    filter: Annotated[str | None, Query(max_length=20_000, description="a JSON filter")] = None,
) -> ItemPage:
    """Items, newest first, with paging and an optional ``filter`` (JSON, MemOS grammar)."""
    ws = access(principal, workspace, "read")
    spec: dict[str, Any] | None = None
    if filter:
        try:
            spec = json.loads(filter)
        except ValueError as exc:
            raise BadRequest("filter must be JSON", context={"filter": filter[:200]}) from exc
        if not isinstance(spec, dict):
            raise BadRequest("filter must be a JSON object")
    query = ItemQuery(filter=spec, cube_id=cube_id, offset=offset, limit=limit)
    return await run_in_threadpool(_page, items, ws, query)


@router.post("/query", responses=errors())
async def query_items(
    workspace: WorkspaceName, body: ItemQuery, items: ItemsDep, principal: PrincipalDep
) -> ItemPage:
    """The same listing with the filter as a JSON body."""
    ws = access(principal, workspace, "read")
    return await run_in_threadpool(_page, items, ws, body)


@router.post("/search", responses=errors())
async def search_items(
    workspace: WorkspaceName,
    body: ItemSearch,
    response: Response,
    items: ItemsDep,
    principal: PrincipalDep,
) -> SearchResults:
    """Search items only: BM25, fused with vector ranks when an embedding provider is
    configured (``mode``: bm25 | hybrid); the filter grammar and a relativity floor
    (relativity = score / the best score). A provider outage gives BM25 results and an
    ``X-Memhub-Warning`` header."""
    ws = access(principal, workspace, "read")
    where = compile_filter(body.filter)
    hits = await run_in_threadpool(
        items.search,
        ws,
        body.query,
        k=body.k,
        cube=body.cube_id,
        where=where,
        relativity=body.relativity,
    )
    if hits.warning:
        response.headers["X-Memhub-Warning"] = hits.warning
    return SearchResults.model_validate(
        {
            "query": body.query,
            "mode": hits.mode,
            "results": [
                {"item": out(f.item), "score": round(f.score, 4), "relativity": f.relativity}
                for f in hits.found
            ],
        }
    )


@router.get("/{item_id}", responses=errors())
async def get_item(
    workspace: WorkspaceName, item_id: str, items: ItemsDep, principal: PrincipalDep
) -> ItemOut:
    """One item."""
    ws = access(principal, workspace, "read")
    return ItemOut.model_validate(out(await run_in_threadpool(items.get, ws, item_id)))


@router.patch("/{item_id}", responses=errors(412))
async def update_item(
    workspace: WorkspaceName,
    item_id: str,
    body: ItemUpdate,
    items: ItemsDep,
    principal: PrincipalDep,
) -> ItemOut:
    """Change an item's text or metadata; with ``if_rev``, only if it is still at that rev
    (412 otherwise)."""
    ws = access(principal, workspace, "write")
    changes = body.model_dump(exclude_unset=True, exclude={"if_rev"})
    changes = {k: v for k, v in changes.items() if v is not None}
    updated = await run_in_threadpool(
        items.update, ws, item_id, changes, if_rev=body.if_rev, author=principal.name
    )
    return ItemOut.model_validate(out(updated))


@router.delete("/{item_id}", responses=errors(412))
async def delete_item(
    workspace: WorkspaceName,
    item_id: str,
    items: ItemsDep,
    principal: PrincipalDep,
    if_rev: Annotated[int | None, Query(ge=1)] = None,
) -> Deleted:
    """Delete an item (a tombstone: its history stays); ``?if_rev=`` makes it conditional."""
    ws = access(principal, workspace, "write")
    item = await run_in_threadpool(items.get, ws, item_id)
    revision = await run_in_threadpool(
        items.delete, ws, item.id, if_rev=if_rev, author=principal.name
    )
    return Deleted(id=item.id, deleted=True, rev=revision.rev)


@router.get("/{item_id}/history", responses=errors())
async def item_history(
    workspace: WorkspaceName,
    item_id: str,
    items: ItemsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ItemHistory:
    """Every version of the item, newest first; deletions are versions with ``item: null``."""
    ws = access(principal, workspace, "read")
    versions = await run_in_threadpool(items.history, ws, item_id, limit=limit)
    return ItemHistory.model_validate({"id": item_id.lower(), "versions": versions})
