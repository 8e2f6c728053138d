"""The HTTP client: one method per API route the tools need.

Errors come back as memhub's own exceptions (the server's ``error_code``
picks the class), so callers handle a 412 from the server exactly like a
``PreconditionFailed`` raised by an in-process store.

One class, one method per route (about 400 lines): the client's whole view of
the API, kept together so it can be checked against the routes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import quote

import httpx

from memhub import errors
from memhub.client.retry import RetryPolicy
from memhub.core.models import (
    BatchFile,
    BatchFiles,
    BatchResult,
    BatchResults,
    ChangesPage,
    ContextResult,
    FilePage,
    HistoryPage,
    IndexRebuild,
    LeaseInfo,
    LeaseList,
    MissingChunks,
    RevisionInfo,
    SearchPage,
    WorkspaceInfo,
    WriteInfo,
)
from memhub.core.paths import normalize_path
from memhub.core.protocol import MESSAGE_HEADER, USER_AGENT
from memhub.errors import MemhubError, StorageUnavailable

_BY_CODE: dict[str, type[MemhubError]] = {}


def _collect(cls: type[MemhubError]) -> None:
    for sub in cls.__subclasses__():
        _BY_CODE.setdefault(sub.code, sub)
        _collect(sub)


_collect(MemhubError)
_BY_STATUS = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    413: errors.PayloadTooLarge,
    429: errors.RateLimited,
    503: errors.StorageUnavailable,
}


class ServerUnreachable(StorageUnavailable):
    """The server did not answer at all (refused, DNS, timeout): raised by the client only."""

    code = "SERVER_UNREACHABLE"


def error_from_response(response: httpx.Response) -> MemhubError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or response.reason_phrase or "request failed")
    code = str(body.get("error_code") or "")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, MemhubError)
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    error = cls(detail, context=context, hint=body.get("hint"))
    error.headers = dict(response.headers)
    return error


def _pieces(stream: IO[bytes], size: int = 1024 * 1024) -> Iterator[bytes]:
    while piece := stream.read(size):
        yield piece


def _q(path: str) -> str:
    """A workspace path for a URL, checked by the server's own rules first: a path the
    server would refuse (or that a URL would rewrite, like ``a/../b``) fails here with
    :class:`InvalidPath` before anything is sent."""
    return quote(normalize_path(path), safe="/")


class MemhubClient:
    def __init__(
        self,
        server: str,
        key: str | None = None,
        workspace: str = "default",
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        headers = {"user-agent": USER_AGENT}
        if key:
            headers["authorization"] = f"Bearer {key}"
        self.server = server.rstrip("/")
        self.workspace = workspace
        self.retry = retry or RetryPolicy()
        self._on_close = on_close
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=timeout,
            transport=transport,
            # a plain-http server has no certificate to check: skip loading the CA bundle
            # (0.15 s of every command's start); redirects are never followed, so no
            # request of this client can reach an https URL
            verify=not self.server.lower().startswith("http://"),
        )

    def close(self) -> None:
        self._http.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> MemhubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request; retry per the policy; raise the server's error as ours."""
        content = kwargs.get("content")
        replayable = content is None or isinstance(content, bytes | str)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if self.retry.should_retry(method, attempt, None, replayable):
                    self.retry.wait(attempt, None, f"{method} {url}")
                    continue
                raise self._unreachable(exc) from exc
            if response.status_code < 400:
                return response
            if self.retry.should_retry(method, attempt, response, replayable):
                self.retry.wait(attempt, response, f"{method} {url}")
                continue
            raise error_from_response(response)

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return ServerUnreachable(
            f"cannot reach the memhub server at {self.server}: {exc}",
            hint="check MEMHUB_SERVER (or `memhub login`) and that the server is running",
        )

    def _ws(self, workspace: str | None) -> str:
        return f"/v1/workspaces/{quote(workspace or self.workspace, safe='')}"

    # -- server ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health").json())

    def workspace_info(self, workspace: str | None = None) -> WorkspaceInfo:
        return WorkspaceInfo.model_validate_json(self.request("GET", self._ws(workspace)).content)

    # -- files ---------------------------------------------------------------------

    def get(
        self, path: str, *, rev: int | None = None, workspace: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        params = {"rev": rev} if rev is not None else None
        response = self.request("GET", f"{self._ws(workspace)}/files/{_q(path)}", params=params)
        return dict(response.headers), response.content

    def stream(self, path: str, *, workspace: str | None = None) -> Iterator[bytes]:
        url = f"{self._ws(workspace)}/files/{_q(path)}"
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._http.stream("GET", url) as response:
                    if response.status_code < 400:
                        yield from response.iter_bytes()
                        return
                    response.read()
            except httpx.TransportError as exc:
                if self.retry.should_retry("GET", attempt, None, True):
                    self.retry.wait(attempt, None, f"GET {url}")
                    continue
                raise self._unreachable(exc) from exc
            if not self.retry.should_retry("GET", attempt, response, True):
                raise error_from_response(response)
            self.retry.wait(attempt, response, f"GET {url}")

    def put(
        self,
        path: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str | None = None,
        message: str | None = None,
        workspace: str | None = None,
    ) -> WriteInfo:
        headers: dict[str, str] = {}
        if if_match is not None:
            headers["if-match"] = f'"{if_match}"' if if_match != "*" else "*"
        if if_none_match:
            headers["if-none-match"] = "*"
        if content_type:
            headers["content-type"] = content_type
        if message:
            headers[MESSAGE_HEADER] = quote(message)
        url = f"{self._ws(workspace)}/files/{_q(path)}"
        response = self.request("PUT", url, content=data, headers=headers)
        return WriteInfo.model_validate_json(response.content)

    def put_stream(
        self,
        path: str,
        stream: IO[bytes],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        workspace: str | None = None,
    ) -> WriteInfo:
        """PUT a file object without reading it into memory."""
        headers: dict[str, str] = {}
        if if_match:
            headers["if-match"] = f'"{if_match}"'
        if if_none_match:
            headers["if-none-match"] = "*"
        url = f"{self._ws(workspace)}/files/{_q(path)}"
        response = self.request("PUT", url, content=_pieces(stream), headers=headers)
        return WriteInfo.model_validate_json(response.content)

    def delete(
        self, path: str, *, if_match: str | None = None, workspace: str | None = None
    ) -> RevisionInfo:
        headers = {"if-match": f'"{if_match}"'} if if_match else {}
        url = f"{self._ws(workspace)}/files/{_q(path)}"
        return RevisionInfo.model_validate_json(
            self.request("DELETE", url, headers=headers).content
        )

    def history(
        self,
        path: str,
        *,
        limit: int = 100,
        before: int | None = None,
        workspace: str | None = None,
    ) -> HistoryPage:
        url = f"{self._ws(workspace)}/history/{_q(path)}"
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        return HistoryPage.model_validate_json(self.request("GET", url, params=params).content)

    def restore(
        self,
        path: str,
        rev: int,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        message: str | None = None,
        workspace: str | None = None,
    ) -> WriteInfo:
        url = f"{self._ws(workspace)}/restore/{_q(path)}"
        headers = {"if-match": f'"{if_match}"'} if if_match else {}
        if if_none_match:
            headers["if-none-match"] = "*"
        body: dict[str, Any] = {"rev": rev}
        if message:
            body["message"] = message
        response = self.request("POST", url, json=body, headers=headers)
        return WriteInfo.model_validate_json(response.content)

    def list_files(
        self, *, prefix: str = "", include_deleted: bool = False, workspace: str | None = None
    ) -> Iterator[RevisionInfo]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "prefix": prefix,
                "include_deleted": include_deleted,
                "limit": 1000,
            }
            if after:
                params["after"] = after
            response = self.request("GET", f"{self._ws(workspace)}/files", params=params)
            page = FilePage.model_validate_json(response.content)
            yield from page.files
            after = page.next_after
            if not after:
                return

    def changes(
        self, since: int = 0, *, limit: int = 1000, wait: float = 0, workspace: str | None = None
    ) -> ChangesPage:
        params = {"since": since, "limit": limit, "wait": wait}
        timeout = httpx.Timeout(wait + 30.0)
        url = f"{self._ws(workspace)}/changes"
        response = self.request("GET", url, params=params, timeout=timeout)
        return ChangesPage.model_validate_json(response.content)

    def batch_read(self, paths: list[str], *, workspace: str | None = None) -> list[BatchFile]:
        body = {"paths": paths, "encoding": "base64"}
        response = self.request("POST", f"{self._ws(workspace)}/batch/read", json=body)
        return BatchFiles.model_validate_json(response.content).files

    def batch_write(
        self, operations: list[dict[str, Any]], *, workspace: str | None = None
    ) -> list[BatchResult]:
        url = f"{self._ws(workspace)}/batch/write"
        response = self.request("POST", url, json={"operations": operations})
        return BatchResults.model_validate_json(response.content).results

    # -- chunks and manifests ------------------------------------------------------------

    def missing_chunks(self, shas: list[str], *, workspace: str | None = None) -> list[str]:
        url = f"{self._ws(workspace)}/chunks/missing"
        answer = self.request("POST", url, json={"chunks": shas})
        return MissingChunks.model_validate_json(answer.content).missing

    def put_chunk(self, data: bytes, *, workspace: str | None = None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.request("PUT", f"{self._ws(workspace)}/chunks/{sha}", content=data)
        return sha

    def commit(self, body: dict[str, Any], *, workspace: str | None = None) -> WriteInfo:
        answer = self.request("POST", f"{self._ws(workspace)}/commits", json=body)
        return WriteInfo.model_validate_json(answer.content)

    # -- leases ----------------------------------------------------------------------

    def acquire(
        self,
        name: str,
        holder: str,
        ttl: float,
        *,
        force: bool = False,
        workspace: str | None = None,
    ) -> LeaseInfo:
        body = {"holder": holder, "ttl": ttl, "force": force}
        url = f"{self._ws(workspace)}/leases/{quote(name, safe='')}"
        return LeaseInfo.model_validate_json(self.request("POST", url, json=body).content)

    def renew(
        self, name: str, holder: str, token: int, ttl: float, *, workspace: str | None = None
    ) -> LeaseInfo:
        url = f"{self._ws(workspace)}/leases/{quote(name, safe='')}/renew"
        body = {"holder": holder, "token": token, "ttl": ttl}
        return LeaseInfo.model_validate_json(self.request("POST", url, json=body).content)

    def release(
        self, name: str, holder: str, token: int, *, workspace: str | None = None
    ) -> LeaseInfo:
        url = f"{self._ws(workspace)}/leases/{quote(name, safe='')}/release"
        body = {"holder": holder, "token": token}
        return LeaseInfo.model_validate_json(self.request("POST", url, json=body).content)

    def leases(self, *, workspace: str | None = None) -> list[LeaseInfo]:
        response = self.request("GET", f"{self._ws(workspace)}/leases")
        return LeaseList.model_validate_json(response.content).leases

    def force_release(self, name: str, *, workspace: str | None = None) -> LeaseInfo:
        url = f"{self._ws(workspace)}/leases/{quote(name, safe='')}"
        return LeaseInfo.model_validate_json(self.request("DELETE", url).content)

    # -- memory ------------------------------------------------------------------------

    def search(
        self, query: str, *, k: int = 10, workspace: str | None = None, **filters: Any
    ) -> SearchPage:
        body = {"query": query, "k": k, **filters}
        response = self.request("POST", f"{self._ws(workspace)}/search", json=body)
        return SearchPage.model_validate_json(response.content)

    def context(
        self,
        conversation: list[dict[str, Any]],
        *,
        depth: str = "basic",
        max_tokens: int = 8000,
        workspace: str | None = None,
    ) -> ContextResult:
        body = {"conversation": conversation, "depth": depth, "max_tokens": max_tokens}
        response = self.request("POST", f"{self._ws(workspace)}/context", json=body)
        return ContextResult.model_validate_json(response.content)

    def rebuild_index(self, *, workspace: str | None = None) -> IndexRebuild:
        response = self.request("POST", f"{self._ws(workspace)}/index/rebuild")
        return IndexRebuild.model_validate_json(response.content)
