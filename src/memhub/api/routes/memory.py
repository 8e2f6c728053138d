"""Search and context: DiffMem's routes (seed 002, ``user_id`` names the workspace)
and the /v1 routes with filters, paging and a token budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from memhub.api.context import get_principal
from memhub.api.routes.common import PrincipalDep, StrictBody, access
from memhub.auth.principal import Principal
from memhub.core.models import ContextResult, IndexRebuild, SearchPage
from memhub.errors import BadRequest
from memhub.memory.documents import SearchFilters
from memhub.memory.service import MAX_K, Memory

router = APIRouter(tags=["memory"])

DepthName = Literal["basic", "wide", "deep", "temporal"]
MAX_CONVERSATION = 200


async def get_memory(request: Request) -> Memory:
    memory: Memory = request.app.state.memory
    return memory


MemoryDep = Annotated[Memory, Depends(get_memory)]


class Message(StrictBody):
    role: str = Field(default="user", max_length=64)
    content: str = Field(default="", max_length=100_000)


class SeedContextRequest(StrictBody):
    conversation: list[Message] = Field(max_length=MAX_CONVERSATION)
    depth: DepthName = "basic"
    user_id: str | None = Field(default=None, max_length=64)
    max_tokens: int = Field(default=8000, ge=1, le=1_000_000)


class SeedSearchRequest(StrictBody):
    query: str = Field(max_length=10_000)
    k: int = Field(default=5, ge=1, le=MAX_K)
    user_id: str | None = Field(default=None, max_length=64)


class SeedUserRequest(StrictBody):
    user_id: str | None = Field(default=None, max_length=64)


def _workspace(request: Request, principal: Principal, user_id: str | None, scope: str) -> str:
    name = user_id or principal.workspace or request.app.state.default_workspace
    return access(principal, name, scope)


def _warn(response: Response, warning: str | None) -> None:
    """The embedding provider failed and the answer is BM25's: say so in a header."""
    if warning:
        response.headers["X-Memhub-Warning"] = warning


def _meta(**values: Any) -> dict[str, Any]:
    return {**values, "timestamp": datetime.now(UTC).isoformat()}


def _conversation(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.model_dump() for m in messages]


@router.post("/memory/search")
def seed_search(
    body: SeedSearchRequest,
    request: Request,
    response: Response,
    memory: MemoryDep,
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    """Search the memory of ``user_id`` (a workspace): top ``k`` blocks with path,
    heading trail, line range, rev, score and a highlighted snippet."""
    workspace = _workspace(request, principal, body.user_id, "read")
    found = memory.search(workspace, body.query, k=body.k)
    _warn(response, found.get("warning"))
    return {
        "status": "success",
        "results": found["results"],
        "metadata": _meta(query=body.query, k=body.k, user_id=workspace, total=found["total"]),
    }


@router.post("/memory/orchestrated-search")
def seed_orchestrated_search(
    body: SeedContextRequest,
    request: Request,
    response: Response,
    memory: MemoryDep,
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    """Plan several queries from the conversation (the LLM when configured, else the
    last messages and the names in them), search each, fuse with reciprocal rank fusion."""
    from memhub.memory.analyzer import analyze, highlight
    from memhub.memory.context import conversation_text
    from memhub.memory.orchestrate import orchestrated_search

    workspace = _workspace(request, principal, body.user_id, "read")
    provider = request.app.state.sessions.provider
    found = orchestrated_search(
        memory, workspace, _conversation(body.conversation), k=10, provider=provider
    )
    terms = {t for q in found.queries for t in analyze(q)}
    return {
        "status": "success",
        "results": [h.to_dict(highlight(h.text, terms)) for h in found.hits],
        "metadata": _meta(
            query=conversation_text(_conversation(body.conversation)),
            queries=found.queries,
            user_id=workspace,
            orchestrator=found.planner,
            fusion="rrf",
        ),
    }


@router.post("/memory/context")
def seed_context(
    body: SeedContextRequest,
    request: Request,
    response: Response,
    memory: MemoryDep,
    principal: Annotated[Principal, Depends(get_principal)],
) -> dict[str, Any]:
    """Assembled context for a conversation at depth basic | wide | deep | temporal."""
    workspace = _workspace(request, principal, body.user_id, "read")
    ctx = memory.context(
        workspace, _conversation(body.conversation), depth=body.depth, max_tokens=body.max_tokens
    )
    _warn(response, ctx.warning)
    result = ctx.to_dict()
    return {
        "status": "success",
        "context": result["markdown"],
        "sources": result["sources"],
        "tokens": result["tokens"],
        "metadata": _meta(depth=body.depth, user_id=workspace, max_tokens=body.max_tokens),
    }


@router.post("/memory/rebuild-index")
def seed_rebuild(
    request: Request,
    memory: MemoryDep,
    principal: Annotated[Principal, Depends(get_principal)],
    body: SeedUserRequest | None = None,
) -> dict[str, Any]:
    """Rebuild the search index of ``user_id`` (or the caller's workspace) from the store."""
    workspace = _workspace(request, principal, body.user_id if body else None, "write")
    stats = memory.rebuild(workspace)
    return {
        "status": "success",
        "message": "Index rebuilt successfully",
        "stats": stats,
        "metadata": _meta(user_id=workspace),
    }


# Unix times of 0001-01-01 and 9999-12-31: what an ISO date can say, and what the
# index's 64-bit date field holds without overflow.
MIN_TIME = -62_135_596_800.0
MAX_TIME = 253_402_300_799.0
UnixTime = Annotated[float, Field(ge=MIN_TIME, le=MAX_TIME, allow_inf_nan=False)]
IsoDate = Annotated[str, Field(min_length=1, max_length=64)]


class SearchRequest(StrictBody):
    query: str = Field(default="", max_length=10_000)
    k: int = Field(default=10, ge=1, le=MAX_K)
    offset: int = Field(default=0, ge=0, le=10_000)
    path_prefix: str | None = Field(default=None, max_length=1024)
    file_kinds: list[str] = Field(default_factory=list, max_length=16)
    since: UnixTime | IsoDate | None = None
    until: UnixTime | IsoDate | None = None
    always_load_only: bool = False


def _moment(value: float | str | None, name: str) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"{name} must be an ISO date or a Unix time", context={name: value}
        ) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _search(memory: Memory, workspace: str, body: SearchRequest, response: Response) -> SearchPage:
    filters = SearchFilters(
        path_prefix=body.path_prefix or None,
        file_kinds=tuple(body.file_kinds),
        since=_moment(body.since, "since"),
        until=_moment(body.until, "until"),
        always_load_only=body.always_load_only,
    )
    found = memory.search(workspace, body.query, k=body.k, offset=body.offset, filters=filters)
    _warn(response, found.get("warning"))
    more = body.offset + len(found["results"]) < found["total"]
    next_offset = body.offset + len(found["results"]) if more else None
    return SearchPage.model_validate({**found, "next_offset": next_offset})


@router.post("/v1/workspaces/{workspace}/search", tags=["v1"])
def v1_search(
    workspace: str,
    body: SearchRequest,
    response: Response,
    memory: MemoryDep,
    principal: PrincipalDep,
) -> SearchPage:
    """Search with filters (path prefix, file kinds, date range, always-load only) and paging."""
    return _search(memory, access(principal, workspace, "read"), body, response)


@router.get("/v1/workspaces/{workspace}/search", tags=["v1"])
def v1_search_get(
    workspace: str,
    response: Response,
    memory: MemoryDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=10_000)] = "",
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    prefix: Annotated[str | None, Query(max_length=1024)] = None,
) -> SearchPage:
    """The same search from a URL: ``?q=…&k=…&offset=…&prefix=…``."""
    body = SearchRequest(query=q, k=k, offset=offset, path_prefix=prefix)
    return _search(memory, access(principal, workspace, "read"), body, response)


class ContextRequest(StrictBody):
    conversation: list[Message] = Field(default_factory=list, max_length=MAX_CONVERSATION)
    depth: DepthName = "basic"
    max_tokens: int = Field(default=8000, ge=1, le=1_000_000)


@router.post("/v1/workspaces/{workspace}/context", tags=["v1"])
def v1_context(
    workspace: str,
    body: ContextRequest,
    response: Response,
    memory: MemoryDep,
    principal: PrincipalDep,
) -> ContextResult:
    """The assembled markdown (never over ``max_tokens``) and its sources with token counts."""
    workspace = access(principal, workspace, "read")
    ctx = memory.context(
        workspace, _conversation(body.conversation), depth=body.depth, max_tokens=body.max_tokens
    )
    _warn(response, ctx.warning)
    return ContextResult.model_validate(ctx.to_dict())


@router.get("/v1/workspaces/{workspace}/index", tags=["v1"])
def v1_index_status(workspace: str, memory: MemoryDep, principal: PrincipalDep) -> dict[str, Any]:
    """How many blocks the index holds and the last rev it applied."""
    return memory.status(access(principal, workspace, "read"))


@router.post("/v1/workspaces/{workspace}/index/rebuild", tags=["v1"])
def v1_index_rebuild(workspace: str, memory: MemoryDep, principal: PrincipalDep) -> IndexRebuild:
    """Rebuild the workspace's search index from the store."""
    return IndexRebuild.model_validate(memory.rebuild(access(principal, workspace, "write")))
