"""/v1 batch reads and writes: many small files in one round trip.

Each operation succeeds or fails on its own (no cross-file atomicity) and
reports an HTTP-style status with the same error body a single request
would get. Contents travel as UTF-8 text or base64.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from memhub.api.routes.common import (
    PrincipalDep,
    StoreDep,
    StrictBody,
    access,
    precondition_from_headers,
)
from memhub.api.routes.v1_files import revision_json
from memhub.core.models import BatchFiles, BatchResults
from memhub.errors import BadRequest, MemhubError
from memhub.store import Store

router = APIRouter(prefix="/v1", tags=["v1"])

MAX_BATCH = 1000
MAX_BATCH_READ_BYTES = 64 * 1024 * 1024

Encoding = Literal["utf-8", "base64"]


class BatchRead(StrictBody):
    paths: list[str] = Field(max_length=MAX_BATCH)
    encoding: Encoding = "base64"


class WriteOp(StrictBody):
    op: Literal["put", "delete"] = "put"
    path: str
    content: str | None = None
    encoding: Encoding = "utf-8"
    content_type: str | None = Field(default=None, max_length=255)
    if_match: str | None = None
    if_none_match: str | None = None
    message: str | None = Field(default=None, max_length=4096)


class BatchWrite(StrictBody):
    operations: list[WriteOp] = Field(max_length=MAX_BATCH)
    session_id: str | None = Field(default=None, max_length=255)


def _encode(data: bytes, encoding: Encoding) -> tuple[str, Encoding]:
    if encoding == "utf-8":
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), "base64"


def _decode(op: WriteOp) -> bytes:
    if op.content is None:
        raise BadRequest("a put needs content")
    if op.encoding == "utf-8":
        return op.content.encode("utf-8")
    try:
        return base64.b64decode(op.content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("content is not valid base64") from exc


def _error(path: str, exc: MemhubError) -> dict[str, Any]:
    return {"path": path, "status": exc.status, "error": exc.to_dict()}


def _read_all(store: Store, workspace: str, body: BatchRead) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    budget = MAX_BATCH_READ_BYTES
    for path in body.paths:
        try:
            revision, refs = store.read_plan(workspace, path)
            if revision.size > budget:
                results.append(
                    {
                        "path": path,
                        "status": 413,
                        "revision": revision_json(revision),
                        "error": {
                            "detail": "batch byte budget used up; read this file on its own",
                            "error_code": "PAYLOAD_TOO_LARGE",
                            "context": None,
                        },
                    }
                )
                continue
            budget -= revision.size
            content, used = _encode(store.read_content(refs), body.encoding)
            results.append(
                {
                    "path": path,
                    "status": 200,
                    "revision": revision_json(revision),
                    "content": content,
                    "encoding": used,
                }
            )
        except MemhubError as exc:
            results.append(_error(path, exc))
    return results


@router.post("/workspaces/{workspace}/batch/read", response_model_exclude_unset=True)
async def batch_read(
    workspace: str, body: BatchRead, store: StoreDep, principal: PrincipalDep
) -> BatchFiles:
    """The heads and contents of up to 1,000 paths (64 MiB of content at most)."""
    workspace = access(principal, workspace, "read")
    files = await run_in_threadpool(_read_all, store, workspace, body)
    return BatchFiles.model_validate({"files": files})


def _write_all(
    store: Store, workspace: str, body: BatchWrite, author: str, max_bytes: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for op in body.operations:
        try:
            precondition = precondition_from_headers(op.if_match, op.if_none_match)
            if op.op == "delete":
                revision = store.delete(
                    workspace,
                    op.path,
                    precondition=precondition,
                    author=author,
                    session_id=body.session_id,
                    message=op.message,
                )
                results.append(
                    {"path": op.path, "status": 200, "revision": revision_json(revision)}
                )
                continue
            result = store.put(
                workspace,
                op.path,
                _decode(op),
                precondition=precondition,
                content_type=op.content_type,
                author=author,
                session_id=body.session_id,
                message=op.message,
                max_bytes=max_bytes,
            )
            results.append(
                {
                    "path": op.path,
                    "status": 201 if result.created else 200,
                    "revision": revision_json(result.revision, created=result.created),
                }
            )
        except MemhubError as exc:
            results.append(_error(op.path, exc))
    return results


@router.post("/workspaces/{workspace}/batch/write", response_model_exclude_unset=True)
async def batch_write(
    workspace: str, body: BatchWrite, store: StoreDep, principal: PrincipalDep, request: Request
) -> BatchResults:
    """Up to 1,000 puts and deletes, each with its own precondition and result."""
    workspace = access(principal, workspace, "write")
    max_bytes = request.app.state.settings.max_body_bytes
    results = await run_in_threadpool(_write_all, store, workspace, body, principal.name, max_bytes)
    return BatchResults.model_validate({"results": results})
