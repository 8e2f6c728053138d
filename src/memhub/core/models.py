"""The v1 API's response bodies as pydantic models: the server's answers, the client's
return types.

The server builds these bodies from its store records (``Revision.to_dict``
and friends); ``tests/integration/test_wire_models.py`` checks every model
against what the in-process server actually answers, so the two sides cannot
drift apart. Unknown fields are ignored (an older client keeps working with a
newer server).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    # defer_build: a model's validator is built when it is first used, not at import
    # (a hook or a CLI command uses two or three of these models, not forty)
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class RevisionInfo(Wire):
    """One revision of a path (a tombstone when ``deleted``)."""

    workspace: str
    rev: int
    path: str
    sha256: str
    md5: str
    size: int
    content_type: str | None = None
    created_at: float
    author: str | None = None
    session_id: str | None = None
    message: str | None = None
    deleted: bool = False


class WriteInfo(RevisionInfo):
    """A PUT or restore: the new head, and whether the path was created (201) by it."""

    created: bool | None = None


class FilePage(Wire):
    files: list[RevisionInfo]
    next_after: str | None = None


class HistoryPage(Wire):
    path: str
    revisions: list[RevisionInfo]
    next_before: int | None = None


class ChangesPage(Wire):
    changes: list[RevisionInfo]
    next_since: int
    head_rev: int
    has_more: bool


class LeaseInfo(Wire):
    workspace: str
    name: str
    holder: str | None = None
    token: int
    acquired_at: float | None = None
    expires_at: float | None = None
    active: bool
    ttl_remaining: float = 0.0


class LeaseList(Wire):
    leases: list[LeaseInfo]


class WorkspaceSummary(Wire):
    """One workspace in ``GET /v1/workspaces``."""

    name: str
    created_at: float | None = None
    head_rev: int


class WorkspaceList(Wire):
    workspaces: list[WorkspaceSummary]


class WorkspaceInfo(WorkspaceSummary):
    """One workspace with its live file count and bytes."""

    files: int
    bytes: int = 0


# -- search, context and the index (``/v1/workspaces/{ws}/search|context|index``) -------


class SearchHit(Wire):
    """One block that matched: where it is, its highlighted snippet and its score."""

    path: str
    heading: list[str]
    line_start: int
    line_end: int
    rev: int
    score: float
    snippet: str
    file_kind: str
    always_load: bool
    strength: str | None = None
    turn_id: str | None = None
    speaker: str | None = None
    date: float


class SearchPage(Wire):
    query: str
    total: int
    offset: int
    results: list[SearchHit]
    next_offset: int | None = None
    mode: Literal["bm25", "hybrid"] = "bm25"  # hybrid: BM25 fused with vector ranks


class IndexProblem(Wire):
    """A file the index could not read as its kind (indexed as text, or left out)."""

    path: str
    rev: int
    kind: str
    error_code: str
    detail: str


class ContextSource(Wire):
    section: str
    path: str
    heading: list[str]
    rev: int
    tokens: int
    line_start: int | None = None
    line_end: int | None = None


class ContextResult(Wire):
    """The assembled markdown (never over ``max_tokens``) and where each part came from."""

    workspace: str
    depth: str
    max_tokens: int
    tokens: int
    markdown: str
    sources: list[ContextSource]
    skipped: int
    problems: list[IndexProblem]


class IndexRebuild(Wire):
    files: int
    blocks: int
    rev: int
    problems: list[IndexProblem]


# -- batches (``/v1/workspaces/{ws}/batch/read|write``, ``…/chunks/batch``) ---------------
# A batch result holds only the keys that apply to it (a failed operation has ``error``
# and no ``revision``); the routes answer with ``response_model_exclude_unset`` so the
# JSON is the same as before these models.


class ErrorInfo(Wire):
    detail: str
    error_code: str
    context: dict[str, Any] | None = None
    hint: str | None = None


class BatchFile(Wire):
    """One path of a batch read: 200 with content, 413 past the byte budget, or an error."""

    path: str
    status: int
    revision: RevisionInfo | None = None
    content: str | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    error: ErrorInfo | None = None


class BatchFiles(Wire):
    files: list[BatchFile]


class BatchResult(Wire):
    """One operation of a batch write: its status and the new head, or its error."""

    path: str
    status: int
    revision: WriteInfo | None = None
    error: ErrorInfo | None = None


class BatchResults(Wire):
    results: list[BatchResult]


class MissingChunks(Wire):
    """The chunk hashes of a manifest that the workspace lacks (upload only those)."""

    missing: list[str]


class StoredChunk(Wire):
    sha256: str
    size: int
    created: bool


class ChunkBatch(Wire):
    chunks: list[StoredChunk]
    bytes: int
    wire_bytes: int
