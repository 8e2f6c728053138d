"""The one interface the MCP tools call: :class:`Hub`, one caller's view of one workspace.

Two implementations, chosen by where memhub is:

- :class:`~memhub.mcp.services.ServiceHub`: memhub in this process (``/mcp``
  inside ``memhub serve``, and ``memhub mcp`` on the local data dir). It calls
  the functions the REST routes call (access and scope checks on the caller's
  principal, body models, preconditions, the store and memory services), so a
  tool call validates, authorises and fails exactly as the REST request would,
  without a second trip through HTTP.
- :class:`~memhub.mcp.rest.RestHub`: a remote server, over the REST API with
  the profile's key.

Both return what the REST API answers (its JSON as dicts, or its wire models) and
raise memhub's exceptions (the class, detail and hint the REST API renders), so a
tool reads the same results and explains the same errors either way
(``tests/integration/test_mcp_parity.py`` runs every tool through both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from memhub.core.models import ContextResult, SearchPage
from memhub.errors import BadRequest, PayloadTooLarge

MAX_READ_BYTES = 4 * 1024 * 1024
WRITE_CONTENT_TYPE = "text/plain; charset=utf-8"  # what a tool writes: text from an agent


@dataclass(frozen=True, slots=True)
class FileContent:
    path: str
    rev: int
    sha256: str
    content_type: str
    data: bytes


def precondition_headers(if_match: str | None, if_none_match: bool) -> dict[str, str]:
    """A tool's write condition as the REST API takes it; the in-process hub hands these
    to the routes' own parser (``precondition_from_headers``)."""
    headers: dict[str, str] = {}
    if if_match is not None:
        headers["if-match"] = f'"{if_match}"'
    if if_none_match:
        headers["if-none-match"] = "*"
    return headers


def segment_id(value: str) -> str:
    """An item or session id, which the REST API takes as one URL path segment: an HTTP
    client would resolve ``.`` and ``..`` into another route, so no hub takes them."""
    if value in ("", ".", ".."):
        raise BadRequest(f"{value!r} is not an id", context={"id": value})
    return value


def too_large(path: str, size: int) -> PayloadTooLarge:
    """A file a tool will not read: a tool result is one JSON message."""
    return PayloadTooLarge(
        f"{path} is {size} bytes; tools read files up to {MAX_READ_BYTES} bytes",
        context={"path": path, "size": size},
        hint="fetch it with the HTTP API or `memhub pull`",
    )


class Hub(Protocol):
    """One caller's view of one workspace (see the module docstring)."""

    @property
    def workspace(self) -> str: ...

    def at(self, workspace: str) -> Hub:
        """The same caller's view of another workspace (access is checked per call)."""
        ...

    # -- memory
    async def search(self, body: dict[str, Any]) -> SearchPage: ...

    async def context(self, body: dict[str, Any]) -> ContextResult: ...

    # -- files
    async def read(self, path: str, rev: int | None = None) -> FileContent:
        """A file's content, up to :data:`MAX_READ_BYTES` (a larger file is refused with
        :func:`too_large` before its bytes are read)."""
        ...

    async def write(
        self,
        path: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        message: str | None = None,
    ) -> dict[str, Any]: ...

    async def delete(self, path: str, *, if_match: str) -> dict[str, Any]: ...

    async def revision(self, rev: int) -> dict[str, Any]: ...

    async def history(self, path: str, limit: int) -> list[dict[str, Any]]: ...

    async def restore(self, path: str, rev: int) -> dict[str, Any]: ...

    async def list_files(
        self, prefix: str, limit: int, after: str | None = None
    ) -> dict[str, Any]: ...

    async def changes(self, since: int, limit: int, wait: float = 0) -> dict[str, Any]: ...

    # -- items
    async def add_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    async def list_items(self, cube: str | None, offset: int, limit: int) -> dict[str, Any]: ...

    async def search_items(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def delete_item(self, item_id: str, if_rev: int | None) -> dict[str, Any]: ...

    # -- sessions
    async def process_session(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def session(self, session_id: str) -> dict[str, Any]: ...

    async def commit_session(self, session_id: str) -> dict[str, Any]: ...

    async def discard_session(self, session_id: str) -> None: ...
