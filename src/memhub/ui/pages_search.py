"""Search (highlighted snippets, filters, heading trails) and "what would the agent load":
the context of a message at every depth, with its sources and token counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from memhub.errors import BadRequest
from memhub.memory.context import DEPTHS
from memhub.memory.documents import SearchFilters
from memhub.memory.service import Memory
from memhub.ui.deps import UiDep

router = APIRouter(prefix="/w/{ws}", include_in_schema=False)
KINDS = ("markdown", "instructions", "entity", "user", "timeline", "item", "transcript", "text")
PER_PAGE = 20


def _day(value: str | None, name: str, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", context={name: value}) from exc
    moment = (day if day.tzinfo else day.replace(tzinfo=UTC)).timestamp()
    return moment + 86400 if end and len(value) <= 10 else moment


@router.get("/search")
def search(
    ui: UiDep,
    ws: str,
    q: Annotated[str, Query(max_length=10_000)] = "",
    prefix: Annotated[str, Query(max_length=1024)] = "",
    kind: Annotated[list[str] | None, Query(max_length=16)] = None,
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    workspace = ui.workspace(ws)
    kinds = tuple(k for k in (kind or []) if k)
    found: dict[str, Any] | None = None
    if q.strip():
        memory: Memory = ui.request.app.state.memory
        filters = SearchFilters(
            path_prefix=prefix or None,
            file_kinds=kinds,
            since=_day(since, "since"),
            until=_day(until, "until", end=True),
        )
        found = memory.search(workspace, q, k=PER_PAGE, offset=offset, filters=filters)
    more = found is not None and offset + len(found["results"]) < found["total"]
    return ui.render(
        "search.html",
        workspace,
        q=q,
        prefix=prefix,
        kinds=kinds,
        all_kinds=KINDS,
        since=since,
        until=until,
        found=found,
        offset=offset,
        next_offset=offset + PER_PAGE if more else None,
    )


def _assemble(ui: UiDep, workspace: str, message: str, depth: str, max_tokens: int) -> Any:
    if depth not in DEPTHS:
        raise BadRequest(f"depth must be one of {', '.join(DEPTHS)}", context={"depth": depth})
    memory: Memory = ui.request.app.state.memory
    conversation = [{"role": "user", "content": message}]
    return memory.context(workspace, conversation, depth=depth, max_tokens=max_tokens).to_dict()


Message = Annotated[str, Query(max_length=20_000)]
Depth = Annotated[str, Query(max_length=16)]
Budget = Annotated[int, Query(ge=100, le=200_000)]


@router.get("/context")
def context(
    ui: UiDep, ws: str, message: Message = "", depth: Depth = "basic", max_tokens: Budget = 8000
) -> Response:
    """The chosen depth in full; the other depths' token counts load beside it (htmx),
    one assembly per request."""
    workspace = ui.workspace(ws)
    result = _assemble(ui, workspace, message, depth, max_tokens) if message.strip() else None
    if result is None and depth not in DEPTHS:
        raise BadRequest(f"depth must be one of {', '.join(DEPTHS)}", context={"depth": depth})
    return ui.render(
        "context.html",
        workspace,
        message=message,
        depth=depth,
        depths=DEPTHS,
        max_tokens=max_tokens,
        result=result,
    )


@router.get("/context/depth")
def context_depth(
    ui: UiDep, ws: str, message: Message = "", depth: Depth = "basic", max_tokens: Budget = 8000
) -> Response:
    """One row of the depth table (the htmx fragment)."""
    workspace = ui.workspace(ws)
    result = _assemble(ui, workspace, message, depth, max_tokens)
    return ui.render(
        "context_row.html",
        workspace,
        message=message,
        row={"depth": depth, "tokens": result["tokens"], "sources": len(result["sources"])},
        current=False,
        max_tokens=max_tokens,
    )
