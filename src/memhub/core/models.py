"""The v1 API's response bodies as pydantic models: the server's answers, the client's
return types.

The server builds these bodies from its store records (``Revision.to_dict``
and friends); ``tests/integration/test_wire_models.py`` checks every model
against what the in-process server actually answers, so the two sides cannot
drift apart. Unknown fields are ignored (an older client keeps working with a
newer server).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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


class WorkspaceInfo(Wire):
    name: str
    created_at: float | None = None
    head_rev: int
    files: int
    bytes: int = 0
