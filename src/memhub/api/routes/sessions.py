"""Sessions over HTTP: the seed's DiffMem routes (``user_id`` in the body names the
workspace) and the /v1 routes, over one :class:`~memhub.memory.sessions.Sessions`.

Seed 002: ``POST /memory/process-session``, ``/memory/commit-session``,
``/memory/process-and-commit``. /v1: ``POST|GET /v1/workspaces/{ws}/sessions``,
``GET|DELETE /v1/workspaces/{ws}/sessions/{id}``, ``POST …/sessions/{id}/commit``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memhub.api.metrics import Metrics
from memhub.api.routes.common import PrincipalDep, StrictBody, access
from memhub.api.routes.responses import COMMON, errors
from memhub.auth.principal import Principal
from memhub.config import Settings
from memhub.memory.llm import ChatProvider, LLMConfig
from memhub.memory.sessions import MAX_TRANSCRIPT_CHARS, Sessions, StagedSession
from memhub.store import Store

router = APIRouter(tags=["sessions"])


def build_provider(settings: Settings, metrics: Metrics) -> ChatProvider | None:
    """The LLM provider the settings name (None: offline), with its /metrics counters."""
    if not settings.llm_base_url:
        return None
    tokens = Counter(
        "memhub_llm_tokens_total",
        "LLM tokens used, by kind (prompt | completion) and model",
        ["kind", "model"],
        registry=metrics.registry,
    )
    requests = Counter(
        "memhub_llm_requests_total",
        "LLM calls by outcome: ok | retry | invalid | error",
        ["outcome"],
        registry=metrics.registry,
    )

    def usage(model: str, prompt: int, completion: int) -> None:
        tokens.labels("prompt", model).inc(prompt)
        tokens.labels("completion", model).inc(completion)

    config = LLMConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        backoff=settings.llm_backoff_seconds,
    )
    return ChatProvider(
        config, on_usage=usage, on_outcome=lambda outcome: requests.labels(outcome).inc()
    )


def build_sessions(settings: Settings, store: Store, metrics: Metrics) -> Sessions:
    return Sessions(store, build_provider(settings, metrics))


async def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


SessionsDep = Annotated[Sessions, Depends(get_sessions)]


class ProcessBody(BaseModel):
    memory_input: str = Field(max_length=MAX_TRANSCRIPT_CHARS)
    session_id: str = Field(min_length=1, max_length=128)
    session_date: str | None = Field(default=None, max_length=32)
    user_id: str | None = Field(default=None, max_length=64)


class CommitBody(BaseModel):
    session_id: str = Field(min_length=1, max_length=128)
    user_id: str | None = Field(default=None, max_length=64)


def workspace_of(request: Request, principal: Principal, user_id: str | None, scope: str) -> str:
    name = user_id or principal.workspace or request.app.state.default_workspace
    return access(principal, name, scope)


def meta(**values: Any) -> dict[str, Any]:
    return {**values, "timestamp": datetime.now(UTC).isoformat()}


def _staged(staged: StagedSession, message: str) -> dict[str, Any]:
    return {
        "status": "success",
        "session_id": staged.session_id,
        "message": message,
        "session": staged.to_dict(),
        "metadata": meta(user_id=staged.workspace),
    }


@router.post("/memory/process-session", responses=errors(*COMMON, 409, 502))
async def seed_process(
    body: ProcessBody, request: Request, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Archive the transcript and stage the edits it proposes (entities, timeline, the
    user entity) without committing; read them back at ``GET /v1/…/sessions/{id}``."""
    workspace = workspace_of(request, principal, body.user_id, "write")
    staged = await run_in_threadpool(
        sessions.process,
        workspace,
        body.session_id,
        body.memory_input,
        body.session_date,
        author=principal.name,
    )
    return _staged(staged, "Session processed and staged for commit")


@router.post("/memory/commit-session", responses=errors(*COMMON, 409))
async def seed_commit(
    body: CommitBody, request: Request, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Apply every staged edit as revisions carrying the session id: all or nothing;
    409 when a staged file changed since processing (nothing is lost)."""
    workspace = workspace_of(request, principal, body.user_id, "write")
    staged = await run_in_threadpool(
        sessions.commit, workspace, body.session_id, author=principal.name
    )
    return _staged(staged, "Session committed")


@router.post("/memory/process-and-commit", responses=errors(*COMMON, 409, 502))
async def seed_process_and_commit(
    body: ProcessBody, request: Request, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """``process-session`` then ``commit-session`` in one call."""
    workspace = workspace_of(request, principal, body.user_id, "write")

    def run() -> StagedSession:
        sessions.process(
            workspace, body.session_id, body.memory_input, body.session_date, author=principal.name
        )
        return sessions.commit(workspace, body.session_id, author=principal.name)

    staged = await run_in_threadpool(run)
    return _staged(staged, "Session processed and committed")


# -- /v1 ----------------------------------------------------------------------------


class V1ProcessBody(StrictBody):
    memory_input: str = Field(max_length=MAX_TRANSCRIPT_CHARS)
    session_id: str = Field(min_length=1, max_length=128)
    session_date: str | None = Field(default=None, max_length=32)
    commit: bool = False


@router.post(
    "/v1/workspaces/{workspace}/sessions",
    tags=["v1"],
    status_code=201,
    responses=errors(*COMMON, 409, 502),
)
async def v1_process(
    workspace: str, body: V1ProcessBody, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Process a transcript into staged edits (``commit: true`` commits them at once);
    answers the session with a unified diff per file."""
    workspace = access(principal, workspace, "write")

    def run() -> StagedSession:
        staged = sessions.process(
            workspace, body.session_id, body.memory_input, body.session_date, author=principal.name
        )
        if body.commit:
            staged = sessions.commit(workspace, body.session_id, author=principal.name)
        return staged

    return (await run_in_threadpool(run)).to_dict(diffs=True)


@router.get("/v1/workspaces/{workspace}/sessions", tags=["v1"], responses=errors(*COMMON))
async def v1_list(
    workspace: str,
    sessions: SessionsDep,
    principal: PrincipalDep,
    status: Annotated[Literal["staged", "committed"] | None, Query()] = None,
) -> dict[str, Any]:
    """Processed sessions (the first 1,000 by age), optionally only staged or committed."""
    workspace = access(principal, workspace, "read")
    return {"sessions": await run_in_threadpool(sessions.list, workspace, status=status)}


@router.get(
    "/v1/workspaces/{workspace}/sessions/{session_id}", tags=["v1"], responses=errors(*COMMON)
)
async def v1_get(
    workspace: str, session_id: str, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A session and its edits, each as a unified diff against the head it was planned on."""
    workspace = access(principal, workspace, "read")
    staged = await run_in_threadpool(sessions.get, workspace, session_id)
    return staged.to_dict(diffs=True)


@router.post(
    "/v1/workspaces/{workspace}/sessions/{session_id}/commit",
    tags=["v1"],
    responses=errors(*COMMON, 409),
)
async def v1_commit(
    workspace: str, session_id: str, sessions: SessionsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Commit a staged session (all or nothing; 409 on a concurrent edit)."""
    workspace = access(principal, workspace, "write")
    staged = await run_in_threadpool(sessions.commit, workspace, session_id, author=principal.name)
    return staged.to_dict()


@router.delete(
    "/v1/workspaces/{workspace}/sessions/{session_id}",
    tags=["v1"],
    status_code=204,
    responses=errors(*COMMON, 409),
)
async def v1_discard(
    workspace: str, session_id: str, sessions: SessionsDep, principal: PrincipalDep
) -> Response:
    """Discard a staged session (a committed one is 409: restore its files instead)."""
    workspace = access(principal, workspace, "write")
    await run_in_threadpool(sessions.discard, workspace, session_id)
    return Response(status_code=204)
