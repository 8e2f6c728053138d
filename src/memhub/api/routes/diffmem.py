"""DiffMem's real server API (``src/diffmem/server.py``), over memhub's services.

``/memory/{user_id}/…`` puts the user (a workspace) in the path and answers in
DiffMem's shapes: the envelope ``{"status": "success", …, "metadata": {…,
"user_id", "timestamp"}}``, the context as a dict (``always_load_blocks``,
``recent_timeline``, …), search hits ``{"score", "snippet": {id, content,
strength, always_load, file_path}}``. Plus ``/server/users`` and
``/server/sync``. Nothing here is a second implementation: search is the
workspace index, sessions are :class:`~memhub.memory.sessions.Sessions`.

The seed README's routes (``/memory/search`` with ``user_id`` in the body)
never collide with these: they have two path segments, these three.
``/health`` is shared and keeps memhub's shape (``"status": "ok"``; DiffMem's
client does not read it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memhub.api.routes.common import PrincipalDep, StrictBody, access
from memhub.api.routes.memory import MAX_CONVERSATION, MemoryDep, Message
from memhub.api.routes.responses import COMMON, errors
from memhub.api.routes.sessions import SessionsDep, meta
from memhub.memory import diffmem_shapes as shapes
from memhub.memory.context import conversation_text
from memhub.memory.llm_extractor import answer
from memhub.memory.orchestrate import orchestrated_search
from memhub.memory.sessions import MAX_TRANSCRIPT_CHARS, Sessions

router = APIRouter(tags=["diffmem"])
UID = "/memory/{user_id}"


class ContextBody(BaseModel):
    conversation: list[Message] = Field(max_length=MAX_CONVERSATION)
    depth: Literal["basic", "wide", "deep", "temporal"] = "basic"


class SearchBody(StrictBody):
    query: str = Field(max_length=10_000)
    k: int = Field(default=5, ge=1, le=200)


class ProcessBody(BaseModel):
    memory_input: str = Field(max_length=MAX_TRANSCRIPT_CHARS)
    session_id: str = Field(min_length=1, max_length=128)
    session_date: str | None = Field(default=None, max_length=32)


class CommitBody(BaseModel):
    session_id: str = Field(min_length=1, max_length=128)


class OnboardBody(BaseModel):
    user_info: str = Field(min_length=1, max_length=MAX_TRANSCRIPT_CHARS)
    session_id: str | None = Field(default=None, max_length=128)


def _ok(user_id: str, extra_meta: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
    return {"status": "success", **body, "metadata": meta(user_id=user_id, **(extra_meta or {}))}


@router.post(UID + "/context", responses=errors(*COMMON))
async def context(
    user_id: str, body: ContextBody, memory: MemoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    """DiffMem's context dict: always-load blocks (the user entity first), the recent
    timeline, session metadata; complete entities (deep, temporal) and their change
    history (temporal)."""
    ws = access(principal, user_id, "read")
    conversation = [m.model_dump() for m in body.conversation]
    built = await run_in_threadpool(shapes.context, memory, ws, conversation, body.depth)
    return _ok(ws, {"depth": body.depth}, context=built)


@router.post(UID + "/search", responses=errors(*COMMON))
async def search(
    user_id: str, body: SearchBody, memory: MemoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The top ``k`` blocks as ``{"score", "snippet": {id, content, strength,
    always_load, file_path}}`` (only blocks that match; paths relative to the workspace)."""
    ws = access(principal, user_id, "read")

    def run() -> list[dict[str, Any]]:
        hits = memory.index.current(ws).search(body.query, k=body.k)[0]
        return [{"score": h.score, "snippet": shapes.snippet(h)} for h in hits]

    results = await run_in_threadpool(run)
    return _ok(ws, {"query": body.query, "k": body.k}, results=results)


@router.post(UID + "/orchestrated-search", responses=errors(*COMMON, 502))
async def orchestrated(
    user_id: str,
    body: ContextBody,
    request: Request,
    memory: MemoryDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Planned queries fused by RRF: ``{"response", "snippets", "derived_query"}``;
    with an LLM, ``response`` is its answer from the snippets, else a summary line."""
    ws = access(principal, user_id, "read")
    provider = request.app.state.sessions.provider
    conversation = [m.model_dump() for m in body.conversation]
    found = await run_in_threadpool(
        lambda: orchestrated_search(memory, ws, conversation, k=10, provider=provider)
    )
    snippets = [shapes.snippet(h) for h in found.hits]
    if provider is not None:
        text = conversation_text(conversation)
        contents = [s["content"] for s in snippets]
        response = await run_in_threadpool(answer, provider, text, contents)
    else:
        response = f"{len(snippets)} memories found for {len(found.queries)} queries (offline)."
    results = {"response": response, "snippets": snippets, "derived_query": found.queries}
    return _ok(ws, {"planner": found.planner}, results=results)


@router.get(UID + "/user-entity", responses=errors(*COMMON))
async def user_entity(user_id: str, memory: MemoryDep, principal: PrincipalDep) -> dict[str, Any]:
    """The user entity ``<user_id>.md`` whole (404 when the user is not onboarded)."""
    ws = access(principal, user_id, "read")
    entity = await run_in_threadpool(shapes.user_entity, memory.store, ws, True)
    return _ok(ws, entity=entity)


@router.get(UID + "/recent-timeline", responses=errors(*COMMON))
async def recent_timeline(
    user_id: str,
    memory: MemoryDep,
    principal: PrincipalDep,
    days_back: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> dict[str, Any]:
    """Timeline files written in the last ``days_back`` days, newest first."""
    ws = access(principal, user_id, "read")
    items = await run_in_threadpool(shapes.recent_timeline, memory.store, ws, days_back, 50)
    return _ok(ws, {"days_back": days_back}, timeline=items)


def _process(sessions: Sessions, ws: str, body: ProcessBody, author: str, commit: bool) -> None:
    sessions.process(ws, body.session_id, body.memory_input, body.session_date, author=author)
    if commit:
        sessions.commit(ws, body.session_id, author=author)


@router.post(UID + "/process-session", responses=errors(*COMMON, 409, 502))
async def process_session(
    user_id: str, body: ProcessBody, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Stage the edits a transcript proposes (read them at ``GET /v1/…/sessions/{id}``)."""
    ws = access(principal, user_id, "write")
    await run_in_threadpool(_process, sessions, ws, body, principal.name, False)
    return _ok(ws, session_id=body.session_id, message="Session processed and staged for commit")


@router.post(UID + "/commit-session", responses=errors(*COMMON, 409))
async def commit_session(
    user_id: str, body: CommitBody, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Commit a staged session: all or nothing, 409 on a concurrent edit."""
    ws = access(principal, user_id, "write")
    await run_in_threadpool(lambda: sessions.commit(ws, body.session_id, author=principal.name))
    return _ok(ws, session_id=body.session_id, message="Session committed")


@router.post(UID + "/process-and-commit", responses=errors(*COMMON, 409, 502))
async def process_and_commit(
    user_id: str, body: ProcessBody, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Process then commit in one call."""
    ws = access(principal, user_id, "write")
    await run_in_threadpool(_process, sessions, ws, body, principal.name, True)
    return _ok(ws, session_id=body.session_id, message="Session processed and committed")


@router.post(UID + "/rebuild-index", responses=errors(*COMMON))
async def rebuild_index(user_id: str, memory: MemoryDep, principal: PrincipalDep) -> dict[str, Any]:
    """Rebuild the workspace's search index from the store."""
    ws = access(principal, user_id, "write")
    await run_in_threadpool(memory.rebuild, ws)
    return _ok(ws, message="Index rebuilt successfully")


@router.get(UID + "/status", responses=errors(*COMMON))
async def status(user_id: str, memory: MemoryDep, principal: PrincipalDep) -> dict[str, Any]:
    """Files, index statistics and whether the user is onboarded."""
    ws = access(principal, user_id, "read")
    return _ok(ws, repo_status=await run_in_threadpool(shapes.repo_status, memory, ws))


@router.get(UID + "/validate", responses=errors(*COMMON))
async def validate(
    user_id: str, request: Request, memory: MemoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Whether the user's memory has DiffMem's layout; issues and warnings."""
    ws = access(principal, user_id, "read")
    llm = request.app.state.sessions.provider is not None
    found = await run_in_threadpool(shapes.validation, memory.store, ws, llm)
    return _ok(ws, validation=found)


@router.get(UID + "/onboard-status", responses=errors(*COMMON))
async def onboard_status(
    user_id: str, memory: MemoryDep, principal: PrincipalDep
) -> dict[str, Any]:
    """``onboarded``: the user entity ``<user_id>.md`` exists."""
    ws = access(principal, user_id, "read")
    entity = await run_in_threadpool(shapes.user_entity, memory.store, ws, False)
    onboarded = entity is not None
    message = "User is onboarded" if onboarded else "User is not onboarded"
    return {
        "status": "success",
        "user_id": ws,
        "onboarded": onboarded,
        "message": message,
        "timestamp": meta()["timestamp"],
    }


@router.post(UID + "/onboard", responses=errors(*COMMON, 409, 502))
async def onboard(
    user_id: str,
    body: OnboardBody,
    memory: MemoryDep,
    sessions: SessionsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Create the user entity from ``user_info`` and commit it with the entities the
    text names (as a session); an onboarded user gets DiffMem's ``status: error``."""
    ws = access(principal, user_id, "write")

    def run() -> dict[str, Any] | None:
        if shapes.user_entity(memory.store, ws, False) is not None:
            return None
        session_id = body.session_id or f"onboard-{meta()['timestamp'][:10]}"
        sessions.process(ws, session_id, body.user_info, None, author=principal.name)
        staged = sessions.commit(ws, session_id, author=principal.name)
        return {"session_id": session_id, "files": [e.path for e in staged.edits]}

    result = await run_in_threadpool(run)
    if result is None:
        return {"status": "error", "message": f"User {ws} is already onboarded"}
    return _ok(ws, message=f"User {ws} onboarded successfully", result=result)


@router.get("/server/users", tags=["diffmem"], responses=errors(401, 429, 503))
async def server_users(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The workspaces the key can read (DiffMem: the folders under ``users/``)."""
    store = request.app.state.store
    names = [w["name"] for w in await run_in_threadpool(store.list_workspaces)]
    users = [n for n in names if principal.reaches(n)]
    return {
        "status": "success",
        "users": users,
        "count": len(users),
        "timestamp": meta()["timestamp"],
    }


@router.post("/server/sync", tags=["diffmem"], responses=errors(401, 429, 503))
async def server_sync(principal: PrincipalDep) -> dict[str, Any]:
    """Nothing to do: every memhub write is committed as it happens (200, DiffMem's shape)."""
    del principal
    return {
        "status": "success",
        "message": "Nothing to sync: memhub commits every write as it happens",
        "timestamp": meta()["timestamp"],
    }
