"""Sessions: transcripts processed into staged memory edits, read as a diff per file,
then committed (all or nothing) or discarded.

A thin client of :class:`memhub.memory.sessions.Sessions`, the service behind
``/v1/workspaces/{ws}/sessions``: the same validation, the same 409
``SESSION_CONFLICT`` when a staged file changed since processing. A conflicting
commit writes nothing and keeps the staged edits; the page says so and shows
them again.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from memhub.errors import SessionConflict
from memhub.memory.sessions import MAX_TRANSCRIPT_CHARS, Sessions, StagedSession
from memhub.ui.deps import FormUi, Ui, UiDep
from memhub.ui.render import unified_diff

router = APIRouter(prefix="/w/{ws}", include_in_schema=False)
SessionId = Annotated[str, Form(max_length=128)]


def _sessions(ui: Ui) -> Sessions:
    sessions: Sessions = ui.request.app.state.memory_sessions
    return sessions


def _to(ws: str, session_id: str = "") -> RedirectResponse:
    tail = f"/{quote(session_id, safe='')}" if session_id else ""
    return RedirectResponse(f"/ui/w/{ws}/sessions{tail}", status_code=303)


def new_session_id(clock: datetime | None = None) -> str:
    """``ui-YYYYMMDD-HHMMSS-xxxxxx``: sortable, and unique enough to never replace another."""
    moment = clock or datetime.now(UTC)
    return f"ui-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@router.get("/sessions")
def listing(
    ui: UiDep, ws: str, status: Literal["staged", "committed", "all"] = "staged"
) -> Response:
    workspace = ui.workspace(ws)
    rows = _sessions(ui).list(workspace, status=None if status == "all" else status)
    return ui.render(
        "sessions.html",
        workspace,
        sessions=list(reversed(rows)),  # newest first
        shown=status,
        max_chars=MAX_TRANSCRIPT_CHARS,
    )


def _detail(
    ui: Ui,
    workspace: str,
    staged: StagedSession,
    status: int = 200,
    conflict: SessionConflict | None = None,
) -> Response:
    files = [
        {
            "path": edit.path,
            "action": edit.action,
            "base_rev": edit.base_rev,
            "lines": unified_diff(edit.base_content or "", edit.content),
        }
        for edit in staged.edits
    ]
    return ui.render(
        "session.html",
        workspace,
        status=status,
        staged=staged,
        files=files,
        conflict=conflict,
    )


@router.get("/sessions/{session_id}")
def detail(ui: UiDep, ws: str, session_id: str) -> Response:
    workspace = ui.workspace(ws)
    return _detail(ui, workspace, _sessions(ui).get(workspace, session_id))


@router.post("/sessions")
def process(
    ui: FormUi,
    ws: str,
    transcript: Annotated[str, Form(max_length=MAX_TRANSCRIPT_CHARS)],
    session_id: SessionId = "",
    session_date: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Stage the edits a transcript proposes; the next page shows them as a diff."""
    workspace = ui.workspace(ws, "write")
    chosen = session_id.strip() or new_session_id()
    staged = _sessions(ui).process(
        workspace,
        chosen,
        transcript.replace("\r\n", "\n"),
        session_date.strip() or None,
        author=ui.principal.name,
    )
    return _to(workspace, staged.session_id)


@router.post("/sessions/{session_id}/commit")
def commit(ui: FormUi, ws: str, session_id: str) -> Response:
    workspace = ui.workspace(ws, "write")
    sessions = _sessions(ui)
    try:
        sessions.commit(workspace, session_id, author=ui.principal.name)
    except SessionConflict as exc:
        staged = sessions.get(workspace, session_id)
        if staged.status == "committed":  # committed by someone else meanwhile
            raise
        return _detail(ui, workspace, staged, status=409, conflict=exc)
    return _to(workspace, session_id)


@router.post("/sessions/{session_id}/discard")
def discard(ui: FormUi, ws: str, session_id: str) -> Response:
    workspace = ui.workspace(ws, "write")
    _sessions(ui).discard(workspace, session_id)
    return _to(workspace)
