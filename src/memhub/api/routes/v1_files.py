"""/v1 workspaces and files: read, write, delete, history, revisions, restore.

What a route does once the request is parsed and the workspace's access checked
(:func:`~memhub.api.routes.common.access`) is a function of its own here
(:func:`open_revision`, :func:`put_file`, :func:`delete_revision`, …): the MCP
tools' in-process hub (``memhub.mcp.services``) calls the same functions, so a
tool call and a REST request write, count and fail alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from memhub.api.routes.common import (
    MAX_HEADER_TEXT,
    MAX_INT64,
    PrincipalDep,
    StoreDep,
    StrictBody,
    access,
    fence_from,
    header_text,
    page_response,
    parse_etag,
    precondition_from_headers,
)
from memhub.api.transfer import close_body, content_response, fetch, receive_body, v1_headers
from memhub.core.models import (
    FilePage,
    HistoryPage,
    RevisionInfo,
    WorkspaceInfo,
    WorkspaceList,
    WriteInfo,
)
from memhub.errors import Forbidden
from memhub.store import ChunkRef, Fence, Precondition, Revision, Store, WriteResult

if TYPE_CHECKING:
    from memhub.auth.principal import Principal

router = APIRouter(prefix="/v1", tags=["v1"])


class WorkspaceCreate(StrictBody):
    name: str = Field(min_length=1, max_length=64)


class RestoreRequest(StrictBody):
    rev: int = Field(ge=1, le=MAX_INT64)
    message: str | None = Field(default=None, max_length=4096)


def revision_json(revision: Revision, *, created: bool | None = None) -> dict[str, Any]:
    body = revision.to_dict()
    if created is not None:
        body["created"] = created
    return body


def write_response(result: WriteResult) -> JSONResponse:
    revision = result.revision
    return JSONResponse(
        revision_json(revision, created=result.created),
        status_code=201 if result.created else 200,
        headers={"etag": f'"{revision.sha256}"', "x-memhub-rev": str(revision.rev)},
    )


async def open_revision(
    store: Store, workspace: str, path: str, rev: int | None = None, *, body: bool = True
) -> tuple[Revision, list[ChunkRef], bytes | None]:
    """A file's revision (the head, or ``rev``), its chunks, and its bytes when small."""
    return await run_in_threadpool(fetch, store, workspace, path, rev, body=body)


async def put_file(
    state: Any,
    principal: Principal,
    workspace: str,
    path: str,
    body: Any,
    *,
    precondition: Precondition,
    content_type: str | None = None,
    message: str | None = None,
    session_id: str | None = None,
    fence: Fence | None = None,
) -> WriteResult:
    """A new revision of ``path`` by ``principal`` (``state``: the app's), counted.
    ``body``: bytes or a readable file."""
    result: WriteResult = await run_in_threadpool(
        lambda: state.store.put(
            workspace,
            path,
            body,
            precondition=precondition,
            content_type=content_type,
            author=principal.name,
            session_id=session_id,
            message=message,
            fence=fence,
            max_bytes=state.settings.max_body_bytes,
        )
    )
    metrics = state.metrics
    metrics.revisions.labels("put").inc()
    metrics.bytes_in.inc(result.revision.size)
    return result


def delete_revision(
    state: Any,
    principal: Principal,
    workspace: str,
    path: str,
    *,
    precondition: Precondition,
    session_id: str | None = None,
    message: str | None = None,
    fence: Fence | None = None,
) -> Revision:
    """A tombstone of ``path`` by ``principal``, counted."""
    revision: Revision = state.store.delete(
        workspace,
        path,
        precondition=precondition,
        author=principal.name,
        session_id=session_id,
        message=message,
        fence=fence,
    )
    state.metrics.revisions.labels("delete").inc()
    return revision


def files_page(
    store: Store,
    workspace: str,
    *,
    prefix: str = "",
    include_deleted: bool = False,
    after: str | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    heads = store.list_files(
        workspace, prefix=prefix, include_deleted=include_deleted, after=after, limit=limit
    )
    return {
        "files": [revision_json(h) for h in heads],
        "next_after": heads[-1].path if len(heads) == limit else None,
    }


def history_page(
    store: Store, workspace: str, path: str, *, limit: int = 100, before: int | None = None
) -> dict[str, Any]:
    items = store.history(workspace, path, limit=limit, before=before)
    return {
        "path": path,
        "revisions": [revision_json(r) for r in items],
        "next_before": items[-1].rev if len(items) == limit else None,
    }


def restore_revision(
    store: Store,
    principal: Principal,
    workspace: str,
    path: str,
    body: RestoreRequest,
    precondition: Precondition,
) -> WriteResult:
    return store.restore(
        workspace,
        path,
        body.rev,
        precondition=precondition,
        author=principal.name,
        message=body.message,
    )


@router.get("/workspaces", response_model=WorkspaceList)
def list_workspaces(store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """The workspaces this caller can reach."""
    items = store.list_workspaces()
    if not principal.is_admin:
        items = [w for w in items if principal.reaches(w["name"])]
    return {"workspaces": items}


@router.post("/workspaces", status_code=201, response_model=WorkspaceInfo)
def create_workspace(
    body: WorkspaceCreate, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Create a workspace (admin)."""
    if not principal.is_admin:
        raise Forbidden("creating a workspace needs an admin key")
    return store.create_workspace(body.name)


@router.get("/workspaces/{workspace}", response_model=WorkspaceInfo)
def get_workspace(workspace: str, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """A workspace's head rev, file count and bytes."""
    workspace = access(principal, workspace, "read")
    return store.get_workspace(workspace)


@router.get("/workspaces/{workspace}/files", response_model=FilePage)
def list_files(
    workspace: str,
    store: StoreDep,
    principal: PrincipalDep,
    prefix: str = "",
    include_deleted: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Response:
    """Heads of the files under ``prefix``, in path order; page with ``after``."""
    workspace = access(principal, workspace, "read")
    return page_response(
        files_page(
            store,
            workspace,
            prefix=prefix,
            include_deleted=include_deleted,
            after=after,
            limit=limit,
        )
    )


@router.get("/workspaces/{workspace}/files/{path:path}")
@router.head("/workspaces/{workspace}/files/{path:path}")
async def read_file(
    workspace: str,
    path: str,
    store: StoreDep,
    principal: PrincipalDep,
    request: Request,
    rev: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """A file's content (the head, or ``?rev=N``). ETag is the quoted sha256."""
    workspace = access(principal, workspace, "read")
    head = request.method == "HEAD" or if_none_match is not None
    revision, refs, data = await open_revision(store, workspace, path, rev, body=not head)
    headers = v1_headers(revision)
    if if_none_match is not None and (
        if_none_match.strip() == "*"
        or revision.sha256 in {parse_etag(t) for t in if_none_match.split(",")}
    ):
        return Response(status_code=304, headers=headers)
    request.app.state.metrics.bytes_out.inc(revision.size)
    return await content_response(
        store, revision, refs, headers, head=request.method == "HEAD", data=data
    )


@router.put("/workspaces/{workspace}/files/{path:path}", response_model=WriteInfo)
async def write_file(
    workspace: str,
    path: str,
    principal: PrincipalDep,
    request: Request,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    content_type: Annotated[str | None, Header(alias="Content-Type")] = None,
    x_memhub_message: Annotated[str | None, Header()] = None,
    x_memhub_session_id: Annotated[str | None, Header()] = None,
    x_memhub_lease: Annotated[str | None, Header()] = None,
    x_memhub_lease_token: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Write a new revision. ``If-Match: "<sha256>"`` updates only that content,
    ``If-None-Match: *`` creates only; 201 created, 200 updated, 412 mismatch."""
    workspace = access(principal, workspace, "write")
    precondition = precondition_from_headers(if_match, if_none_match)
    fence = fence_from(x_memhub_lease, x_memhub_lease_token)
    message = header_text(x_memhub_message)
    session_id = header_text(x_memhub_session_id, MAX_HEADER_TEXT)
    body = await receive_body(request)
    try:
        result = await put_file(
            request.app.state,
            principal,
            workspace,
            path,
            body,
            precondition=precondition,
            content_type=content_type,
            message=message,
            session_id=session_id,
            fence=fence,
        )
    finally:
        close_body(body)
    return write_response(result)


@router.delete("/workspaces/{workspace}/files/{path:path}", response_model=RevisionInfo)
def delete_file(
    workspace: str,
    path: str,
    principal: PrincipalDep,
    request: Request,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    x_memhub_message: Annotated[str | None, Header()] = None,
    x_memhub_session_id: Annotated[str | None, Header()] = None,
    x_memhub_lease: Annotated[str | None, Header()] = None,
    x_memhub_lease_token: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Delete (a tombstone revision). 200 with the tombstone, 404 absent, 412 mismatch."""
    workspace = access(principal, workspace, "write")
    revision = delete_revision(
        request.app.state,
        principal,
        workspace,
        path,
        precondition=precondition_from_headers(if_match, None),
        session_id=header_text(x_memhub_session_id, MAX_HEADER_TEXT),
        message=header_text(x_memhub_message),
        fence=fence_from(x_memhub_lease, x_memhub_lease_token),
    )
    return JSONResponse(revision_json(revision), headers={"x-memhub-rev": str(revision.rev)})


@router.get("/workspaces/{workspace}/history/{path:path}", response_model=HistoryPage)
def history(
    workspace: str,
    path: str,
    store: StoreDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> Response:
    """Revisions of a path, newest first; page with ``before=<rev>``."""
    workspace = access(principal, workspace, "read")
    return page_response(history_page(store, workspace, path, limit=limit, before=before))


@router.get("/workspaces/{workspace}/revisions/{rev}", response_model=RevisionInfo)
def get_revision(
    workspace: str,
    rev: Annotated[int, Path(ge=1, le=MAX_INT64)],
    store: StoreDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """One revision's metadata."""
    workspace = access(principal, workspace, "read")
    return revision_json(store.revision(workspace, rev))


@router.get("/workspaces/{workspace}/revisions/{rev}/content")
async def get_revision_content(
    workspace: str,
    rev: Annotated[int, Path(ge=1, le=MAX_INT64)],
    store: StoreDep,
    principal: PrincipalDep,
) -> Response:
    """The bytes of any revision (404 for a tombstone)."""
    workspace = access(principal, workspace, "read")
    revision = await run_in_threadpool(store.revision, workspace, rev)
    found, refs = await run_in_threadpool(store.read_plan, workspace, revision.path, rev)
    return await content_response(store, found, refs, v1_headers(found))


@router.post("/workspaces/{workspace}/restore/{path:path}", response_model=WriteInfo)
def restore(
    workspace: str,
    path: str,
    body: RestoreRequest,
    store: StoreDep,
    principal: PrincipalDep,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> JSONResponse:
    """A new revision of ``path`` with the content of ``rev``."""
    workspace = access(principal, workspace, "write")
    precondition = precondition_from_headers(if_match, if_none_match)
    return write_response(restore_revision(store, principal, workspace, path, body, precondition))
