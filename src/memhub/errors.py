"""memhub's one exception tree.

Every error a user can meet is a :class:`MemhubError`. Each class carries the
HTTP status it maps to and a stable machine-readable ``code``; the API renders
all of them the same way, as ``{"detail", "error_code", "context"}``.

    MemhubError
    ├── BadRequest                  400 BAD_REQUEST
    │   ├── InvalidPath             400 INVALID_PATH
    │   ├── InvalidChecksum         400 CHECKSUM_MISMATCH
    │   ├── UnsupportedPrecondition 400 UNSUPPORTED_PRECONDITION
    │   ├── InvalidContentType      400 INVALID_CONTENT_TYPE
    │   └── ChunksMissing           400 CHUNKS_MISSING
    ├── Unauthorized                401 UNAUTHORIZED
    ├── Forbidden                   403 FORBIDDEN
    ├── NotFound                    404 NOT_FOUND
    │   ├── FileNotFound            404 FILE_NOT_FOUND
    │   ├── RevisionNotFound        404 REVISION_NOT_FOUND
    │   ├── WorkspaceNotFound       404 WORKSPACE_NOT_FOUND
    │   ├── LeaseNotFound           404 LEASE_NOT_FOUND
    │   └── SessionNotFound         404 SESSION_NOT_FOUND
    ├── Conflict                    409 CONFLICT
    │   ├── SessionConflict         409 SESSION_CONFLICT
    │   ├── WorkspaceExists         409 WORKSPACE_EXISTS
    │   ├── PathConflict            409 PATH_CONFLICT   (differs only in case from a live path)
    │   ├── LeaseHeld               409 LEASE_HELD
    │   └── LeaseLost               409 LEASE_LOST
    ├── PreconditionFailed          412 PRECONDITION_FAILED
    │   └── FencingTokenRejected    412 FENCING_TOKEN_REJECTED
    ├── RequestTimeout              408 REQUEST_TIMEOUT  (a request head sent too slowly)
    ├── PayloadTooLarge             413 PAYLOAD_TOO_LARGE
    ├── InvalidRequest              422 VALIDATION_ERROR (a body or parameter fails its schema)
    ├── HeadersTooLarge             431 HEADERS_TOO_LARGE
    ├── RateLimited                 429 RATE_LIMITED
    ├── LLMUnavailable              502 LLM_UNAVAILABLE
    ├── StorageUnavailable          503 STORAGE_UNAVAILABLE
    ├── BlobMissing                 500 BLOB_MISSING   (the store is damaged: run `memhub fsck`)
    └── StorageCorrupt              500 STORAGE_CORRUPT (a chunk failed its sha256 on read)

Third-party exceptions are translated at the boundary with
``raise StorageUnavailable(...) from exc``; ``hint`` tells the user what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MemhubError(Exception):
    """Base of every memhub error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(
        self,
        detail: str,
        *,
        context: dict[str, Any] | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context
        self.hint = hint
        self.headers = headers

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "detail": self.detail,
            "error_code": self.code,
            "context": self.context,
        }
        if self.hint:
            body["hint"] = self.hint
        return body

    def __str__(self) -> str:
        return self.detail if not self.hint else f"{self.detail} (hint: {self.hint})"


class BadRequest(MemhubError):
    status = 400
    code = "BAD_REQUEST"


class InvalidPath(BadRequest):
    code = "INVALID_PATH"


class InvalidChecksum(BadRequest):
    code = "CHECKSUM_MISMATCH"


class UnsupportedPrecondition(BadRequest):
    """A write carried a precondition header its route does not check."""

    code = "UNSUPPORTED_PRECONDITION"


class InvalidContentType(BadRequest):
    code = "INVALID_CONTENT_TYPE"


class ChunksMissing(BadRequest):
    code = "CHUNKS_MISSING"


class Unauthorized(MemhubError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(MemhubError):
    status = 403
    code = "FORBIDDEN"


class NotFound(MemhubError):
    status = 404
    code = "NOT_FOUND"


class FileNotFound(NotFound):
    code = "FILE_NOT_FOUND"


class RevisionNotFound(NotFound):
    code = "REVISION_NOT_FOUND"


class WorkspaceNotFound(NotFound):
    code = "WORKSPACE_NOT_FOUND"


class LeaseNotFound(NotFound):
    code = "LEASE_NOT_FOUND"


class Conflict(MemhubError):
    status = 409
    code = "CONFLICT"


class WorkspaceExists(Conflict):
    code = "WORKSPACE_EXISTS"


class PathConflict(Conflict):
    code = "PATH_CONFLICT"


class LeaseHeld(Conflict):
    code = "LEASE_HELD"


class LeaseLost(Conflict):
    code = "LEASE_LOST"


class PreconditionFailed(MemhubError):
    status = 412
    code = "PRECONDITION_FAILED"


class FencingTokenRejected(PreconditionFailed):
    code = "FENCING_TOKEN_REJECTED"


class RequestTimeout(MemhubError):
    status = 408
    code = "REQUEST_TIMEOUT"


class PayloadTooLarge(MemhubError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class InvalidRequest(MemhubError):
    """A request body or parameter that fails its schema (a length, a range, a type)."""

    status = 422
    code = "VALIDATION_ERROR"


class HeadersTooLarge(MemhubError):
    status = 431
    code = "HEADERS_TOO_LARGE"


class RateLimited(MemhubError):
    status = 429
    code = "RATE_LIMITED"


class StorageUnavailable(MemhubError):
    status = 503
    code = "STORAGE_UNAVAILABLE"


class BlobMissing(MemhubError):
    status = 500
    code = "BLOB_MISSING"


# -- sessions and the LLM provider (issue 12) ----------------------------------------


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"


class SessionConflict(Conflict):
    """A staged file changed since the session was processed (nothing was written)."""

    code = "SESSION_CONFLICT"


class LLMUnavailable(MemhubError):
    """The configured LLM endpoint failed, timed out or kept answering invalid JSON."""

    status = 502
    code = "LLM_UNAVAILABLE"


class StorageCorrupt(MemhubError):
    status = 500
    code = "STORAGE_CORRUPT"
