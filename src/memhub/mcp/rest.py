"""The MCP tools' hub for a remote server: an async HTTP adapter over the REST API.

Every tool call is one or more ordinary API requests with the profile's key, so
validation, auth, scopes, rate limits and error codes are the server's. Server
errors come back as memhub's exceptions (the response's ``error_code`` picks the
class), exactly as :class:`memhub.client.MemhubClient` raises them. This module
is small on purpose: it can be swapped for the shared typed client once that one
grows an async flavour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx

from memhub.client.http import error_from_response
from memhub.core.models import ContextResult, SearchPage
from memhub.core.paths import normalize_path
from memhub.errors import StorageUnavailable
from memhub.mcp.hub import (
    MAX_READ_BYTES,
    WRITE_CONTENT_TYPE,
    FileContent,
    precondition_headers,
    segment_id,
    too_large,
)


def _q(path: str) -> str:
    """A path checked by the store's own rules before it goes in a URL: an HTTP client
    would resolve ``..`` segments into another route."""
    return quote(normalize_path(path), safe="/")


def _segment(value: str) -> str:
    return quote(segment_id(value), safe="")


@dataclass(frozen=True, slots=True)
class RestHub:
    """One caller's view of one workspace: ``http`` is shared, ``headers`` are theirs."""

    http: httpx.AsyncClient
    workspace: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def at(self, workspace: str) -> RestHub:
        return replace(self, workspace=workspace)

    @property
    def base(self) -> str:
        return f"/v1/workspaces/{quote(self.workspace, safe='')}"

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def unreachable(self, exc: httpx.HTTPError) -> StorageUnavailable:
        return StorageUnavailable(
            f"cannot reach the memhub server at {self.http.base_url}: {exc}",
            hint="check MEMHUB_SERVER (or `memhub login`) and that the server is running",
        )

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        return (await self.request(method, url, **kwargs)).json()

    # -- memory ---------------------------------------------------------------------

    async def search(self, body: dict[str, Any]) -> SearchPage:
        response = await self.request("POST", f"{self.base}/search", json=body)
        return SearchPage.model_validate_json(response.content)

    async def context(self, body: dict[str, Any]) -> ContextResult:
        response = await self.request("POST", f"{self.base}/context", json=body)
        return ContextResult.model_validate_json(response.content)

    # -- files ------------------------------------------------------------------------

    async def read(self, path: str, rev: int | None = None) -> FileContent:
        params = {"rev": rev} if rev is not None else None
        url = f"{self.base}/files/{_q(path)}"
        try:
            async with self.http.stream("GET", url, params=params, headers=self.headers) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise error_from_response(r)
                size = int(r.headers.get("content-length") or 0)
                if size > MAX_READ_BYTES:
                    raise too_large(path, size)
                data = await r.aread()
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        return FileContent(
            path=path,
            rev=int(r.headers["x-memhub-rev"]),
            sha256=r.headers["etag"].strip('"'),
            content_type=r.headers.get("content-type", "application/octet-stream"),
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
        headers = {
            "content-type": WRITE_CONTENT_TYPE,
            **precondition_headers(if_match, if_none_match),
        }
        if message:
            headers["x-memhub-message"] = quote(message)
        url = f"{self.base}/files/{_q(path)}"
        return dict(await self.json("PUT", url, content=data, headers=headers))

    async def delete(self, path: str, *, if_match: str) -> dict[str, Any]:
        url = f"{self.base}/files/{_q(path)}"
        headers = precondition_headers(if_match, False)
        return dict(await self.json("DELETE", url, headers=headers))

    async def revision(self, rev: int) -> dict[str, Any]:
        return dict(await self.json("GET", f"{self.base}/revisions/{rev}"))

    async def history(self, path: str, limit: int) -> list[dict[str, Any]]:
        url = f"{self.base}/history/{_q(path)}"
        return list((await self.json("GET", url, params={"limit": limit}))["revisions"])

    async def restore(self, path: str, rev: int) -> dict[str, Any]:
        return dict(await self.json("POST", f"{self.base}/restore/{_q(path)}", json={"rev": rev}))

    async def list_files(self, prefix: str, limit: int, after: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        return dict(await self.json("GET", f"{self.base}/files", params=params))

    async def changes(self, since: int, limit: int, wait: float = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"since": since, "limit": limit}
        if wait:
            params["wait"] = wait
        return dict(await self.json("GET", f"{self.base}/changes", params=params))

    # -- items ------------------------------------------------------------------------

    async def add_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list((await self.json("POST", f"{self.base}/items", json={"items": items}))["items"])

    async def list_items(self, cube: str | None, offset: int, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if cube is not None:
            params["cube_id"] = cube
        return dict(await self.json("GET", f"{self.base}/items", params=params))

    async def search_items(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.json("POST", f"{self.base}/items/search", json=body))

    async def delete_item(self, item_id: str, if_rev: int | None) -> dict[str, Any]:
        params = {"if_rev": if_rev} if if_rev is not None else None
        url = f"{self.base}/items/{_segment(item_id)}"
        return dict(await self.json("DELETE", url, params=params))

    # -- sessions -----------------------------------------------------------------------

    async def process_session(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.json("POST", f"{self.base}/sessions", json=body))

    async def session(self, session_id: str) -> dict[str, Any]:
        return dict(await self.json("GET", f"{self.base}/sessions/{_segment(session_id)}"))

    async def commit_session(self, session_id: str) -> dict[str, Any]:
        url = f"{self.base}/sessions/{_segment(session_id)}/commit"
        return dict(await self.json("POST", url))

    async def discard_session(self, session_id: str) -> None:
        await self.request("DELETE", f"{self.base}/sessions/{_segment(session_id)}")
