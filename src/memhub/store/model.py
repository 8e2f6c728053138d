"""Plain values the store hands out: revisions, changes, leases, preconditions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from memhub.errors import PreconditionFailed

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Revision:
    """One version of one file. A tombstone keeps the hashes of what it deleted."""

    workspace: str
    rev: int
    path: str
    sha256: str
    md5: str
    size: int
    content_type: str
    created_at: float
    author: str | None
    session_id: str | None
    message: str | None
    deleted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "rev": self.rev,
            "path": self.path,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "content_type": self.content_type,
            "created_at": self.created_at,
            "author": self.author,
            "session_id": self.session_id,
            "message": self.message,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class ChunkRef:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    revision: Revision
    created: bool  # the path did not exist (or was a tombstone) before this write


@dataclass(frozen=True, slots=True)
class ChangePage:
    changes: list[Revision]
    next_since: int  # pass as ``since`` to continue
    head_rev: int  # the workspace's latest rev at read time
    has_more: bool


@dataclass(frozen=True, slots=True)
class Lease:
    workspace: str
    name: str
    holder: str | None
    token: int
    acquired_at: float | None
    expires_at: float | None

    def active(self, now: float) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "name": self.name,
            "holder": self.holder if self.active(now) else None,
            "token": self.token,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
            "active": self.active(now),
            "ttl_remaining": max(0.0, (self.expires_at or 0.0) - now) if self.active(now) else 0.0,
        }


@dataclass(frozen=True, slots=True)
class Fence:
    """A lease token a write must still hold when it commits."""

    lease: str
    token: int


@dataclass(frozen=True, slots=True)
class Precondition:
    """What the current state of a path must be for a write to go ahead.

    ``exists``: True (something live must be there), False (nothing live may be
    there), None (no check). ``sha256`` / ``md5``: the live content must have
    this hash. A tombstone counts as "nothing there". ``version``: the head of
    the path, a tombstone included, must be this rev (the memory proxy's
    ``If-Match-Version: N``).
    """

    exists: bool | None = None
    sha256: str | None = None
    md5: str | None = None
    rev: int | None = None
    version: int | None = None

    @classmethod
    def none(cls) -> Precondition:
        return cls()

    def check(self, path: str, current: Revision | None) -> None:
        live = current if current is not None and not current.deleted else None
        context: dict[str, Any] = {"path": path}
        if self.version is not None and (current is None or current.rev != self.version):
            raise PreconditionFailed(
                "Version mismatch (If-Match-Version)",
                context={
                    **context,
                    "current_version": current.rev if current is not None else None,
                    "provided_version": self.version,
                },
            )
        if self.exists is False and live is not None:
            raise PreconditionFailed(
                "File already exists",
                context={**context, "current_md5": live.md5, "current_sha256": live.sha256},
            )
        if (
            self.exists or self.sha256 is not None or self.md5 is not None or self.rev is not None
        ) and live is None:
            raise PreconditionFailed("File does not exist", context={**context, "current": None})
        if live is None:
            return
        if self.sha256 is not None and live.sha256 != self.sha256:
            raise PreconditionFailed(
                "Content hash mismatch (If-Match)",
                context={**context, "current_sha256": live.sha256, "provided": self.sha256},
            )
        if self.md5 is not None and live.md5 != self.md5:
            raise PreconditionFailed(
                "Content-MD5 mismatch",
                context={**context, "current_md5": live.md5, "provided_md5": self.md5},
            )
        if self.rev is not None and live.rev != self.rev:
            raise PreconditionFailed(
                "Revision mismatch",
                context={**context, "current_rev": live.rev, "provided_rev": self.rev},
            )


@dataclass(slots=True)
class FsckReport:
    revisions_checked: int = 0
    chunks_checked: int = 0
    missing_chunks: list[str] = field(default_factory=list)
    corrupt_chunks: list[str] = field(default_factory=list)
    orphan_blobs: list[str] = field(default_factory=list)
    broken_revisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_chunks or self.corrupt_chunks or self.broken_revisions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "revisions_checked": self.revisions_checked,
            "chunks_checked": self.chunks_checked,
            "missing_chunks": self.missing_chunks,
            "corrupt_chunks": self.corrupt_chunks,
            "orphan_blobs": self.orphan_blobs,
            "broken_revisions": self.broken_revisions,
        }


@dataclass(slots=True)
class GcReport:
    revisions_purged: int = 0
    contents_deleted: int = 0
    chunks_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "revisions_purged": self.revisions_purged,
            "contents_deleted": self.contents_deleted,
            "chunks_deleted": self.chunks_deleted,
            "blobs_deleted": self.blobs_deleted,
            "bytes_freed": self.bytes_freed,
            "dry_run": self.dry_run,
        }
