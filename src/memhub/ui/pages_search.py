"""Search (highlighted snippets, filters, heading trails) and "what would the agent load":
the context of a message at every depth, with its sources and token counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from memhub.errors import BadRequest
from memhub.memory.context import DEPTHS
from memhub.memory.index import SearchFilters
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


@router.get("/context")
def context(
    ui: UiDep,
    ws: str,
    message: Annotated[str, Query(max_length=20_000)] = "",
    depth: Annotated[str, Query(max_length=16)] = "basic",
    max_tokens: Annotated[int, Query(ge=100, le=200_000)] = 8000,
) -> Response:
    workspace = ui.workspace(ws)
    if depth not in DEPTHS:
        raise BadRequest(f"depth must be one of {', '.join(DEPTHS)}", context={"depth": depth})
    summary: list[dict[str, Any]] = []
    chosen: dict[str, Any] | None = None
    if message.strip():
        memory: Memory = ui.request.app.state.memory
        conversation = [{"role": "user", "content": message}]
        for name in DEPTHS:
            result = memory.context(
                workspace, conversation, depth=name, max_tokens=max_tokens
            ).to_dict()
            summary.append(
                {"depth": name, "tokens": result["tokens"], "sources": len(result["sources"])}
            )
            if name == depth:
                chosen = result
    return ui.render(
        "context.html",
        workspace,
        message=message,
        depth=depth,
        depths=DEPTHS,
        max_tokens=max_tokens,
        summary=summary,
        result=chosen,
    )
