"""The MCP tools' hub for memhub in this process: the REST routes' own functions, no HTTP.

``/mcp`` inside ``memhub serve`` and ``memhub mcp`` on the local data dir run in
the process that holds the store. A tool call there used to make a REST request
to its own app: the middleware stack again, routing, FastAPI's dependency
solving, a JSON response, then parsing that JSON back. Here the hub calls what
those routes call once the request is parsed, in the same order:

- access: :func:`~memhub.api.routes.common.access` on the caller's principal (the
  one admission authenticated for the ``/mcp`` request, or the local admin key's)
  refuses another workspace (404, as for one that does not exist) and a missing
  scope (403), before anything is read or written;
- bodies: the route's own pydantic model validates the body a tool built, and a
  failure is the same 422 ``VALIDATION_ERROR`` (:func:`~memhub.api.errors.invalid_request`);
- preconditions: the same header values through the route's parser, message
  limits through :func:`~memhub.api.routes.common.limited_text`;
- the operation: the route module's function (``put_file``, ``files_page``,
  ``changes_page``, …), or the route handler itself where it is a plain function
  of typed values (search, context, items, sessions), run in the thread pool as
  FastAPI runs a ``def`` route.

Errors are the exceptions the routes raise, which the REST API would render and
the :class:`~memhub.mcp.rest.RestHub` would raise again: the same class, detail and
hint (``tests/integration/test_mcp_parity.py``). Rate limiting is the ``/mcp``
request's one admission: nothing here passes admission again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from memhub.api.errors import invalid_request
from memhub.api.routes import items as item_routes
from memhub.api.routes import memory as memory_routes
from memhub.api.routes import sessions as session_routes
from memhub.api.routes import v1_files
from memhub.api.routes.common import access, limited_text, precondition_from_headers
from memhub.api.routes.v1_sync import changes_page
from memhub.auth.principal import Principal
from memhub.core.models import ContextResult, SearchPage
from memhub.errors import Unauthorized
from memhub.mcp.hub import (
    MAX_READ_BYTES,
    WRITE_CONTENT_TYPE,
    FileContent,
    precondition_headers,
    segment_id,
    too_large,
)
from memhub.store.mediatype import served_content_type

M = TypeVar("M", bound=BaseModel)
WORKSPACE_HEADER = "x-memhub-workspace"


def body_of(model: type[M], body: dict[str, Any]) -> M:
    """``body`` as the route's model takes it; a failure as the REST API reports it."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise invalid_request(errors) from None


def _json(model: BaseModel) -> dict[str, Any]:
    """A route's response model as the REST API serialises it."""
    return model.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True, slots=True)
class ServiceHub:
    """``principal``'s view of ``workspace`` through ``state`` (the app's: store, memory,
    items, sessions, settings, metrics, notifier)."""

    state: Any
    principal: Principal
    workspace: str

    def at(self, workspace: str) -> ServiceHub:
        return replace(self, workspace=workspace)

    def _access(self, scope: str) -> str:
        return access(self.principal, self.workspace, scope)

    # -- memory ---------------------------------------------------------------------

    async def search(self, body: dict[str, Any]) -> SearchPage:
        request = body_of(memory_routes.SearchRequest, body)
        return await run_in_threadpool(
            memory_routes.v1_search,
            workspace=self.workspace,
            body=request,
            response=Response(),
            memory=self.state.memory,
            principal=self.principal,
        )

    async def context(self, body: dict[str, Any]) -> ContextResult:
        request = body_of(memory_routes.ContextRequest, body)
        return await run_in_threadpool(
            memory_routes.v1_context,
            workspace=self.workspace,
            body=request,
            response=Response(),
            memory=self.state.memory,
            principal=self.principal,
        )

    # -- files ------------------------------------------------------------------------

    async def read(self, path: str, rev: int | None = None) -> FileContent:
        workspace = self._access("read")
        store = self.state.store
        revision, refs, small = await v1_files.open_revision(store, workspace, path, rev)
        if small is not None:
            data = small
        elif revision.size > MAX_READ_BYTES:  # over the small-body size: only what a tool may
            raise too_large(path, revision.size)
        else:
            data = await run_in_threadpool(store.read_content, refs)
        self.state.metrics.bytes_out.inc(revision.size)
        return FileContent(
            path=path,
            rev=revision.rev,
            sha256=revision.sha256,
            content_type=served_content_type(revision.content_type),
            data=data,
        )

    async def write(
        self,
        path: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        message: str | None = None,
    ) -> dict[str, Any]:
        workspace = self._access("write")
        headers = precondition_headers(if_match, if_none_match)
        precondition = precondition_from_headers(
            headers.get("if-match"), headers.get("if-none-match")
        )
        result = await v1_files.put_file(
            self.state,
            self.principal,
            workspace,
            path,
            data,
            precondition=precondition,
            content_type=WRITE_CONTENT_TYPE,
            message=limited_text(message) if message else None,
        )
        return v1_files.revision_json(result.revision, created=result.created)

    async def delete(self, path: str, *, if_match: str) -> dict[str, Any]:
        workspace = self._access("write")
        header = precondition_headers(if_match, False)["if-match"]
        precondition = precondition_from_headers(header, None)
        revision = await run_in_threadpool(
            lambda: v1_files.delete_revision(
                self.state, self.principal, workspace, path, precondition=precondition
            )
        )
        return v1_files.revision_json(revision)

    async def revision(self, rev: int) -> dict[str, Any]:
        return await run_in_threadpool(
            v1_files.get_revision,
            workspace=self.workspace,
            rev=rev,
            store=self.state.store,
            principal=self.principal,
        )

    async def history(self, path: str, limit: int) -> list[dict[str, Any]]:
        workspace = self._access("read")
        page = await run_in_threadpool(
            lambda: v1_files.history_page(self.state.store, workspace, path, limit=limit)
        )
        return list(page["revisions"])

    async def restore(self, path: str, rev: int) -> dict[str, Any]:
        body = body_of(v1_files.RestoreRequest, {"rev": rev})
        workspace = self._access("write")
        precondition = precondition_from_headers(None, None)
        result = await run_in_threadpool(
            v1_files.restore_revision,
            self.state.store,
            self.principal,
            workspace,
            path,
            body,
            precondition,
        )
        return v1_files.revision_json(result.revision, created=result.created)

    async def list_files(self, prefix: str, limit: int, after: str | None = None) -> dict[str, Any]:
        workspace = self._access("read")
        return await run_in_threadpool(
            lambda: v1_files.files_page(
                self.state.store, workspace, prefix=prefix, after=after, limit=limit
            )
        )

    async def changes(self, since: int, limit: int, wait: float = 0) -> dict[str, Any]:
        workspace = self._access("read")
        return await changes_page(
            self.state.store, self.state.notifier, workspace, since, limit, wait
        )

    # -- items ------------------------------------------------------------------------

    async def add_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = body_of(item_routes.CreateItems, {"items": items})
        added = await item_routes.create_items(
            workspace=self.workspace, body=body, items=self.state.items, principal=self.principal
        )
        return list(_json(added)["items"])

    async def list_items(self, cube: str | None, offset: int, limit: int) -> dict[str, Any]:
        page = await item_routes.list_items(
            workspace=self.workspace,
            items=self.state.items,
            principal=self.principal,
            cube_id=cube,
            offset=offset,
            limit=limit,
            filter=None,
        )
        return _json(page)

    async def search_items(self, body: dict[str, Any]) -> dict[str, Any]:
        request = body_of(item_routes.ItemSearch, body)
        found = await item_routes.search_items(
            workspace=self.workspace,
            body=request,
            response=Response(),
            items=self.state.items,
            principal=self.principal,
        )
        return _json(found)

    async def delete_item(self, item_id: str, if_rev: int | None) -> dict[str, Any]:
        deleted = await item_routes.delete_item(
            workspace=self.workspace,
            item_id=segment_id(item_id),
            items=self.state.items,
            principal=self.principal,
            if_rev=if_rev,
        )
        return _json(deleted)

    # -- sessions -----------------------------------------------------------------------

    async def process_session(self, body: dict[str, Any]) -> dict[str, Any]:
        request = body_of(session_routes.V1ProcessBody, body)
        return await session_routes.v1_process(
            workspace=self.workspace,
            body=request,
            sessions=self.state.sessions,
            principal=self.principal,
        )

    async def session(self, session_id: str) -> dict[str, Any]:
        return await session_routes.v1_get(
            workspace=self.workspace,
            session_id=segment_id(session_id),
            sessions=self.state.sessions,
            principal=self.principal,
        )

    async def commit_session(self, session_id: str) -> dict[str, Any]:
        return await session_routes.v1_commit(
            workspace=self.workspace,
            session_id=segment_id(session_id),
            sessions=self.state.sessions,
            principal=self.principal,
        )

    async def discard_session(self, session_id: str) -> None:
        await session_routes.v1_discard(
            workspace=self.workspace,
            session_id=segment_id(session_id),
            sessions=self.state.sessions,
            principal=self.principal,
        )


@dataclass(frozen=True, slots=True)
class ServiceConnector:
    """``state``: the app's (its services); ``default_workspace``: a key's without one."""

    state: Any
    default_workspace: str

    def hub(self, request: Any) -> ServiceHub:
        principal = _principal(request)
        if principal is None:  # admission lets no such request reach /mcp: refuse anyway
            raise Unauthorized("this route needs an API key or a token")
        home = principal.workspace or self.default_workspace
        workspace = request.headers.get(WORKSPACE_HEADER) or home
        return ServiceHub(self.state, principal, workspace)

    def scopes(self, request: Any) -> frozenset[str] | None:
        principal = _principal(request)
        return frozenset(principal.scopes) if principal is not None else frozenset()


def _principal(request: Any) -> Principal | None:
    """The principal admission left in the ``/mcp`` request's scope."""
    principal = request.scope.get("state", {}).get("principal") if request is not None else None
    return principal if isinstance(principal, Principal) else None
