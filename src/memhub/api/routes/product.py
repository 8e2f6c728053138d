"""MemOS's ``/product/*`` API (v2.0.31) over memhub's memory items.

A cube is a workspace. ``user_id`` says who is calling and is recorded on the
items; it never widens access: a cube is authorised like any workspace (a key
reaches its own, admin and master keys reach all; any other cube is 404
``WORKSPACE_NOT_FOUND``). Where MemOS falls back on ``user_id`` as the cube,
memhub uses it only when the key reaches such a workspace, and otherwise the
key's own workspace. The contract: ``../shared/specs/memos-product-api.md``.

All of MemOS's routes are here (about 400 lines) so they can be read against
the spec in one place; the request and answer models are in
:mod:`memhub.api.product_models`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from memhub.api.product_models import (
    ERRORS,
    MAX_IDS,
    AddResponse,
    APIADDRequest,
    APIGetAllRequest,
    APISearchRequest,
    ByIdsResponse,
    DeleteMemoryRequest,
    DeleteResponse,
    ExistCubeRequest,
    ExistResponse,
    GetAllResponse,
    GetMemoryRequest,
    GetMemoryResponse,
    MemOSRoute,
    OneMemoryResponse,
    SearchResponse,
)
from memhub.api.routes.common import PrincipalDep, access
from memhub.auth.principal import Principal
from memhub.errors import BadRequest, Forbidden, InvalidPath, WorkspaceNotFound
from memhub.memory.item_file import Item
from memhub.memory.item_filter import compile_filter
from memhub.memory.items import Draft, Items
from memhub.store import Store

WARNING_HEADER = "X-Memhub-Warning"  # e.g. the embedding provider is down: BM25 only

router = APIRouter(prefix="/product", tags=["memos"], route_class=MemOSRoute, responses=ERRORS)


async def get_items(request: Request) -> Items:
    items: Items = request.app.state.items
    return items


ItemsDep = Annotated[Items, Depends(get_items)]


def memory_item(item: Item, relativity: float | None = None) -> dict[str, Any]:
    """``TextualMemoryItem.model_dump()`` as ``format_memory_item`` shapes it."""
    ref_id = f"[{item.id.split('-')[0]}]"
    metadata: dict[str, Any] = {
        "user_id": item.user_id,
        "session_id": item.session_id,
        "status": item.status,
        "type": "fact",
        "key": item.key,
        "confidence": 0.99,
        "source": item.source or "conversation",
        "tags": list(item.tags),
        "visibility": "private",
        "memory_type": item.memory_type,
        "sources": [dict(s) for s in item.sources],
        "embedding": [],
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "usage": [],
        "background": "",
        "info": item.info,
        "file_ids": [],
        "cube_id": item.cube_id,
        "ref_id": ref_id,
        "id": item.id,
        "memory": item.memory,
    }
    if relativity is not None:
        metadata["relativity"] = relativity
    return {"id": item.id, "memory": item.memory, "ref_id": ref_id, "metadata": metadata}


def home(request: Request, principal: Principal) -> str:
    return principal.workspace or str(request.app.state.default_workspace)


def fallback_cube(request: Request, principal: Principal, user_id: str | None) -> str:
    """MemOS's default cube is the ``user_id``; memhub takes it only when the key reaches
    a workspace of that name (so the answer never tells which workspaces exist)."""
    store: Store = request.app.state.store
    if user_id and principal.reaches(user_id):
        try:
            store.workspace_id(user_id)
            return user_id
        except (WorkspaceNotFound, InvalidPath):
            pass
    return home(request, principal)


def cubes(principal: Principal, names: list[str], scope: str) -> list[str]:
    return list(dict.fromkeys(access(principal, n, scope) for n in names))


def user_messages(body: APIADDRequest) -> list[dict[str, Any]]:
    """The messages of an add, as ``{role, content, chat_time}`` (``memory_content`` is
    appended as a user message, as MemOS does)."""
    raw: list[dict[str, Any]] = []
    if isinstance(body.messages, str):
        raw.append({"role": "user", "content": body.messages})
    elif body.messages:
        raw.extend(body.messages)
    if body.memory_content:
        raw.append({"role": "user", "content": body.memory_content})
    out = []
    for i, message in enumerate(raw):
        role = message.get("role", "user")
        content = message.get("content", "")
        if isinstance(content, list):  # multimodal parts: their text
            content = "\n".join(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text")
            )
        if not isinstance(role, str) or not isinstance(content, str):
            raise BadRequest(f"messages[{i}] needs a string role and content")
        chat_time = message.get("chat_time")
        out.append({"role": role, "content": content, "chat_time": chat_time})
    return out


Source = dict[str, Any]


def facts(
    items: Items, body: APIADDRequest, messages: list[dict[str, Any]]
) -> list[tuple[str, tuple[Source, ...]]]:
    """The facts to store and the messages each comes from. Fast: each user message is
    one fact. Fine with an extractor (sync only): its facts, from the whole exchange."""
    chat = [{"type": "chat", **m} for m in messages]
    if body.mode == "fine" and body.async_mode == "sync" and items.extractor is not None:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return [(f, tuple(chat[-20:])) for f in items.extractor(plain) if f.strip()]
    return [
        (m["content"], (source,))
        for m, source in zip(messages, chat, strict=True)
        if m["role"] == "user" and m["content"].strip()
    ]


@router.post("/add")
async def add(
    body: APIADDRequest, request: Request, items: ItemsDep, principal: PrincipalDep
) -> AddResponse:
    """Add memories to every writable cube. Without an LLM each user message (or
    ``memory_content``) becomes one ``LongTermMemory`` item; the same fact twice updates
    the stored item."""
    names = body.writable_cube_ids or ([body.mem_cube_id] if body.mem_cube_id else [])
    targets = cubes(principal, names or [fallback_cube(request, principal, body.user_id)], "write")
    messages = user_messages(body)
    info = dict(body.info or {})
    if body.source:
        info["source"] = body.source
    found = await run_in_threadpool(facts, items, body, messages)
    data = []
    for cube in targets:
        drafts = [
            Draft(
                memory=text,
                cube_id=cube,
                tags=tuple(body.custom_tags or ()),
                info=info,
                source="conversation",
                sources=sources,
                session_id=body.session_id,
                user_id=body.user_id,
            )
            for text, sources in found
        ]
        added = await run_in_threadpool(items.add, cube, drafts, author=principal.name)
        data += [
            {
                "memory": a.item.memory,
                "memory_id": a.item.id,
                "memory_type": a.item.memory_type,
                "cube_id": cube,
                "action": a.action,
            }
            for a in added
        ]
    message = "Memory feedback successfully" if body.is_feedback else "Memory added successfully"
    return AddResponse.model_validate({"code": 200, "message": message, "data": data})


def _empty_groups(names: list[str]) -> list[dict[str, Any]]:
    return [{"cube_id": n, "memories": [], "total_nodes": 0} for n in names]


@router.post("/search")
async def search(
    body: APISearchRequest,
    request: Request,
    response: Response,
    items: ItemsDep,
    principal: PrincipalDep,
) -> SearchResponse:
    """BM25 over the readable cubes' items; ``relativity`` = score / the best score of the
    cube, and items below it are dropped (0 turns it off). Preference, tool and skill
    memories are empty lists."""
    names = body.readable_cube_ids or ([body.mem_cube_id] if body.mem_cube_id else [])
    targets = cubes(principal, names or [fallback_cube(request, principal, body.user_id)], "read")
    where = compile_filter(body.filter)
    groups = []
    for cube in targets:
        hits = await run_in_threadpool(
            items.search, cube, body.query, k=body.top_k, where=where, relativity=body.relativity
        )
        if hits.warning:
            response.headers[WARNING_HEADER] = hits.warning
        memories = [memory_item(f.item, f.relativity) for f in hits.found]
        groups.append({"cube_id": cube, "memories": memories, "total_nodes": len(memories)})
    data = {
        "text_mem": groups,
        "pref_mem": _empty_groups(targets),
        "tool_mem": _empty_groups(targets),
        "skill_mem": _empty_groups(targets),
        "act_mem": [],
        "para_mem": [],
        "pref_string": "",
        "pref_note": "",
    }
    return SearchResponse.model_validate(
        {"code": 200, "message": "Search completed successfully", "data": data}
    )


@router.post("/get_all")
async def get_all(
    body: APIGetAllRequest, request: Request, items: ItemsDep, principal: PrincipalDep
) -> GetAllResponse:
    """All text memories of a cube as one subgraph (``search_query``: the matching ones).
    ``act_mem`` and ``para_mem`` are empty."""
    name = body.mem_cube_ids[0] if body.mem_cube_ids else None
    cube = access(principal, name or fallback_cube(request, principal, body.user_id), "read")
    if body.memory_type not in ("text_mem",):
        return GetAllResponse.model_validate(
            {"code": 200, "message": "Memories retrieved successfully", "data": []}
        )
    if body.search_query:
        hits = await run_in_threadpool(items.search, cube, body.search_query, k=200)
        chosen = [f.item for f in hits.found]
    else:
        chosen, _total = await run_in_threadpool(items.list_items, cube, limit=None)
    stats: dict[str, int] = {}
    for item in chosen:
        stats[item.memory_type] = stats.get(item.memory_type, 0) + 1
    graph = {
        "nodes": [memory_item(i) for i in chosen],
        "edges": [],
        "tree_structure": {},
    }
    data = [{"cube_id": cube, "memories": [graph], "memory_statistics": stats}]
    return GetAllResponse.model_validate(
        {"code": 200, "message": "Memories retrieved successfully", "data": data}
    )


@router.post("/get_memory")
async def get_memory(
    body: GetMemoryRequest, items: ItemsDep, principal: PrincipalDep
) -> GetMemoryResponse:
    """A cube's text memories, newest first, a page at a time (``page`` is 1-based; no
    ``page_size``: all of them), with the filter grammar."""
    cube = access(principal, body.mem_cube_id, "read")
    where = compile_filter(body.filter)
    size = body.page_size
    offset = ((body.page or 1) - 1) * size if size else 0
    chosen, total = await run_in_threadpool(
        items.list_items, cube, where=where, offset=offset, limit=size
    )
    data = {
        "text_mem": [
            {"cube_id": cube, "memories": [memory_item(i) for i in chosen], "total_nodes": total}
        ],
        "pref_mem": _empty_groups([cube]) if body.include_preference else [],
        "tool_mem": _empty_groups([cube]) if body.include_tool_memory else [],
        "skill_mem": _empty_groups([cube]) if body.include_skill_memory else [],
    }
    return GetMemoryResponse.model_validate(
        {"code": 200, "message": "Memories retrieved successfully", "data": data}
    )


def reachable(request: Request, principal: Principal) -> list[str]:
    """The workspaces whose items an id lookup may return."""
    if not principal.can("read"):
        raise Forbidden("this key lacks the 'read' scope", context={"scope": "read"})
    if principal.workspace is not None and not principal.is_admin:
        return [principal.workspace]
    store: Store = request.app.state.store
    return [w["name"] for w in store.list_workspaces() if principal.reaches(w["name"])]


def lookup(items: Items, workspaces: list[str], ids: list[str]) -> list[Item]:
    found: list[Item] = []
    for item_id in dict.fromkeys(ids):
        for ws in workspaces:
            item = items.find(ws, item_id)
            if item is not None:
                found.append(item)
                break
    return found


@router.get("/get_memory/{memory_id}")
async def get_memory_by_id(
    memory_id: str, request: Request, items: ItemsDep, principal: PrincipalDep
) -> OneMemoryResponse:
    """One memory by id, from the cubes the key reaches; absent: HTTP 200, ``data: null``."""
    found = await run_in_threadpool(lookup, items, reachable(request, principal), [memory_id])
    if not found:
        return OneMemoryResponse.model_validate(
            {"code": 200, "message": f"Memory with ID {memory_id} not found", "data": None}
        )
    return OneMemoryResponse.model_validate(
        {"code": 200, "message": "Memory retrieved successfully", "data": memory_item(found[0])}
    )


@router.post("/get_memory_by_ids")
async def get_memory_by_ids(
    request: Request,
    items: ItemsDep,
    principal: PrincipalDep,
    ids: Annotated[list[str], Body(max_length=MAX_IDS)],
) -> ByIdsResponse:
    """The memories of these ids (a bare JSON list) that the key reaches."""
    found = await run_in_threadpool(lookup, items, reachable(request, principal), ids)
    data = {"memories": [memory_item(i) for i in found]}
    return ByIdsResponse.model_validate(
        {"code": 200, "message": "Memories retrieved successfully", "data": data}
    )


@router.post("/delete_memory")
async def delete_memory(
    body: DeleteMemoryRequest, request: Request, items: ItemsDep, principal: PrincipalDep
) -> DeleteResponse:
    """Delete by ``memory_ids`` and/or ``filter`` in the writable cubes (tombstones: the
    history stays). ``file_ids`` match nothing (memhub items have no source files)."""
    if not (body.memory_ids or body.file_ids or body.filter):
        return DeleteResponse.model_validate(
            {
                "code": 200,
                "message": "filter cannot be empty: give memory_ids, file_ids or filter",
                "data": {"status": "failure", "deleted": 0},
            }
        )
    names = body.writable_cube_ids or [fallback_cube(request, principal, body.user_id)]
    targets = cubes(principal, names, "write")
    where = compile_filter(body.filter)
    deleted = await run_in_threadpool(
        _delete, items, targets, body.memory_ids or [], where, principal.name
    )
    return DeleteResponse.model_validate(
        {
            "code": 200,
            "message": "Memories deleted successfully",
            "data": {"status": "success", "deleted": deleted},
        }
    )


def _delete(items: Items, targets: list[str], ids: list[str], where: Any, author: str) -> int:
    count = 0
    for cube in targets:
        chosen = {i.id for i in lookup(items, [cube], ids)}
        if where is not None:
            chosen |= {i.id for i in items.list_items(cube, where=where, limit=None)[0]}
        for item_id in chosen:
            items.delete(cube, item_id, author=author)
            count += 1
    return count


@router.post("/exist_mem_cube_id")
async def exist_mem_cube_id(
    body: ExistCubeRequest, request: Request, principal: PrincipalDep
) -> ExistResponse:
    """Whether the cube exists and this key reaches it (an unreachable cube is ``false``,
    as a missing one)."""
    store: Store = request.app.state.store
    exists = principal.reaches(body.mem_cube_id)
    if exists:
        try:
            store.workspace_id(body.mem_cube_id)
        except (WorkspaceNotFound, InvalidPath):
            exists = False
    return ExistResponse.model_validate({"code": 200, "message": "Successfully", "data": exists})
