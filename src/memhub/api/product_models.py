"""MemOS ``/product/*`` wire models (MemOS v2.0.31 ``product_models.py``) and its envelope.

Every answer on these routes is ``{"code", "message", "data"}``. Errors keep
that envelope too (:class:`MemOSRoute`): a validation error is a 422 with
MemOS's ``"Parameter validation error on POST /product/…: [body -> query] Field
required (type: missing)"`` message and the pydantic errors in ``detail``; a
memhub error (400 bad value, 404 unreachable cube, 403 scope …) carries memhub's
``detail`` / ``error_code`` / ``context`` beside ``code`` / ``message`` / ``data``,
so MemOS clients and memhub clients both read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from memhub.api.routes.common import StrictBody
from memhub.errors import MemhubError

log = logging.getLogger("memhub.product")

MAX_IDS = 1000


class MemOSRoute(APIRoute):
    """Renders every failure of a ``/product/*`` route in MemOS's envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except RequestValidationError as exc:
                return validation_error(request, exc)
            except MemhubError as exc:
                body = {"code": exc.status, "message": exc.detail, "data": None, **exc.to_dict()}
                return JSONResponse(body, status_code=exc.status, headers=exc.headers)
            except ValueError as exc:
                return JSONResponse(
                    {"code": 400, "message": str(exc), "data": None, "detail": str(exc),
                     "error_code": "BAD_REQUEST", "context": None},
                    status_code=400,
                )  # fmt: skip

        return handler


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = jsonable_encoder(exc.errors())
    parts = [
        f"[{' -> '.join(str(p) for p in e.get('loc', ()))}] {e.get('msg', '')} "
        f"(type: {e.get('type', '')})"
        for e in errors
    ]
    message = f"Parameter validation error on {request.method} {request.url.path}: " + "; ".join(
        parts
    )
    return JSONResponse(
        {"code": 422, "message": message, "detail": errors, "data": None,
         "error_code": "VALIDATION_ERROR"},
        status_code=422,
    )  # fmt: skip


# -- envelopes ------------------------------------------------------------------------


class Envelope(BaseModel):
    code: int = Field(default=200, description="200 on success")
    message: str
    data: Any = None


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    data: None = None
    detail: Any = None
    error_code: str | None = None
    context: dict[str, Any] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope} for status in (400, 401, 403, 404, 412, 422)
}


class MemoryItemOut(BaseModel):
    id: str
    memory: str
    ref_id: str
    metadata: dict[str, Any]


class AddedMemory(BaseModel):
    memory: str
    memory_id: str
    memory_type: str
    cube_id: str
    action: Literal["created", "updated"] = Field(
        description="memhub: updated when the same fact was already stored"
    )


class AddResponse(Envelope):
    data: list[AddedMemory]


class CubeMemories(BaseModel):
    cube_id: str
    memories: list[MemoryItemOut]
    total_nodes: int


class SearchData(BaseModel):
    text_mem: list[CubeMemories]
    pref_mem: list[CubeMemories]
    tool_mem: list[CubeMemories]
    skill_mem: list[CubeMemories]
    act_mem: list[Any]
    para_mem: list[Any]
    pref_string: str = ""
    pref_note: str = ""


class SearchResponse(Envelope):
    data: SearchData


class Subgraph(BaseModel):
    nodes: list[MemoryItemOut]
    edges: list[dict[str, Any]]
    tree_structure: dict[str, Any]


class CubeGraph(BaseModel):
    cube_id: str
    memories: list[Subgraph]
    memory_statistics: dict[str, int]


class GetAllResponse(Envelope):
    data: list[CubeGraph]


class MemoryPage(BaseModel):
    text_mem: list[CubeMemories]
    pref_mem: list[CubeMemories]
    tool_mem: list[CubeMemories]
    skill_mem: list[CubeMemories]


class GetMemoryResponse(Envelope):
    data: MemoryPage


class OneMemoryResponse(Envelope):
    data: MemoryItemOut | None


class ManyMemories(BaseModel):
    memories: list[MemoryItemOut]


class ByIdsResponse(Envelope):
    data: ManyMemories


class DeleteStatus(BaseModel):
    status: Literal["success", "failure"]
    deleted: int = Field(default=0, description="memhub: how many items were deleted")


class DeleteResponse(Envelope):
    data: DeleteStatus


class ExistResponse(Envelope):
    data: bool


# -- requests --------------------------------------------------------------------------

Messages = str | Annotated[list[dict[str, Any]], Field(max_length=MAX_IDS)]

ADD_EXAMPLE: dict[str, Any] = {
    "user_id": "alice",
    "writable_cube_ids": ["alice"],
    "messages": [
        {"role": "user", "content": "I moved to Lisbon in March and I walk to work."},
        {"role": "assistant", "content": "Noted: Lisbon since March, walking to work."},
    ],
    "async_mode": "sync",
    "mode": "fast",
    "custom_tags": ["profile"],
    "info": {"source_app": "chat"},
    "session_id": "session-1",
}


class APIADDRequest(StrictBody):
    model_config = ConfigDict(json_schema_extra={"example": ADD_EXAMPLE})

    user_id: str | None = Field(default=None, max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    writable_cube_ids: list[str] | None = Field(default=None, max_length=100)
    mem_cube_id: str | None = Field(default=None, description="deprecated: writable_cube_ids")
    messages: Messages | None = None
    memory_content: str | None = Field(default=None, description="deprecated: a user message")
    doc_path: str | None = Field(default=None, description="accepted and ignored")
    source: str | None = Field(default=None, max_length=200, description="sets info.source")
    async_mode: Literal["async", "sync"] = "async"
    mode: Literal["fast", "fine"] | None = None
    custom_tags: list[str] | None = Field(default=None, max_length=100)
    info: dict[str, Any] | None = None
    chat_history: list[dict[str, Any]] | None = Field(default=None, description="ignored")
    is_feedback: bool = False


class APISearchRequest(StrictBody):
    query: str = Field(max_length=10_000)
    user_id: str = Field(max_length=255)
    readable_cube_ids: list[str] | None = Field(default=None, max_length=100)
    mem_cube_id: str | None = None
    top_k: int = Field(default=10, ge=1, le=200)
    relativity: float = Field(default=0.45, ge=0.0, le=1.0)
    mode: Literal["fast", "fine", "mixture"] = "fast"
    session_id: str | None = None
    filter: dict[str, Any] | None = None
    dedup: Literal["no", "sim", "mmr"] | None = None
    include_preference: bool = True
    pref_top_k: int = 6
    search_tool_memory: bool = False
    tool_mem_top_k: int = 6
    include_skill_memory: bool = False
    skill_mem_top_k: int = 6


class APIGetAllRequest(StrictBody):
    user_id: str = Field(max_length=255)
    memory_type: Literal["text_mem", "act_mem", "param_mem", "para_mem"]
    mem_cube_ids: list[str] | None = Field(default=None, max_length=100)
    search_query: str | None = Field(default=None, max_length=10_000)
    search_type: Literal["embedding", "fulltext"] = "fulltext"


class GetMemoryRequest(StrictBody):
    mem_cube_id: str
    user_id: str | None = None
    page: int | None = Field(default=None, ge=1)
    page_size: int | None = Field(default=None, ge=1, le=1000)
    filter: dict[str, Any] | None = None
    include_preference: bool = True
    include_tool_memory: bool = True
    include_skill_memory: bool = True


class DeleteMemoryRequest(StrictBody):
    writable_cube_ids: list[str] | None = Field(default=None, max_length=100)
    memory_ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    file_ids: list[str] | None = Field(default=None, max_length=MAX_IDS)
    filter: dict[str, Any] | None = None
    user_id: str | None = None
    session_id: str | None = None


class ExistCubeRequest(StrictBody):
    mem_cube_id: str = Field(max_length=255)
