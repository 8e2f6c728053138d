"""Session tools: a conversation's transcript turned into memory edits
(``/v1/workspaces/{ws}/sessions…``).

``process_session`` extracts the facts of a transcript and plans the edits they
make to the entity files, the timeline and the user's file: staged for review
(a unified diff per file), or committed at once. ``commit_session`` applies a
staged session, all or nothing; ``discard_session`` forgets it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from memhub.errors import SessionNotFound
from memhub.mcp.registry import hub, tool

MAX_DIFF_CHARS = 20_000

SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
        description="The session's id (letters, digits and . _ : @ -), as process_session "
        "returned it.",
    ),
]


class SessionEdit(BaseModel):
    path: str = Field(description="The file the edit writes.")
    action: str = Field(description="create or update.")
    base_rev: int | None = Field(description="The rev the edit was planned on (None: new file).")
    diff: str | None = Field(
        default=None, description="A unified diff of the edit (cut when very long)."
    )


class SessionSummary(BaseModel):
    facts: int = Field(description="How many facts were extracted from the transcript.")
    entities: list[str] = Field(description="The people, places and things they are about.")


class SessionResult(BaseModel):
    session_id: str
    status: str = Field(description="staged (review, then commit_session) or committed.")
    session_date: str
    extractor: str = Field(description="offline, or the LLM model that read the transcript.")
    summary: SessionSummary
    edits: list[SessionEdit]
    revs: list[int] = Field(description="The revisions the commit wrote (empty while staged).")


def not_processed(exc: SessionNotFound) -> ToolError:
    return ToolError(
        f"{exc.code}: {exc.detail}. Next step: call process_session with the transcript "
        "(session ids are per workspace)."
    )


def _cut(diff: str | None) -> str | None:
    if diff is None or len(diff) <= MAX_DIFF_CHARS:
        return diff
    return diff[:MAX_DIFF_CHARS] + "\n… (cut: read the file after the commit for the rest)"


def session_result(found: dict[str, Any]) -> SessionResult:
    return SessionResult(
        session_id=found["session_id"],
        status=found["status"],
        session_date=found["session_date"],
        extractor=found["extractor"],
        summary=SessionSummary(
            facts=int(found["summary"].get("facts", 0)),
            entities=list(found["summary"].get("entities", [])),
        ),
        edits=[
            SessionEdit(
                path=f["path"], action=f["action"], base_rev=f["base_rev"], diff=_cut(f.get("diff"))
            )
            for f in found["files"]
        ],
        revs=list(found.get("revs") or []),
    )


@tool(title="Process a session", write=True)
async def process_session(
    ctx: Context,
    transcript: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1_000_000,
            description="The conversation, e.g. 'user: …' and 'assistant: …' lines, or notes.",
        ),
    ],
    session_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
            description="An id for the session (letters, digits and . _ : @ -); processing the "
            "same id again replaces its staged edits. Default: a new id.",
        ),
    ] = None,
    session_date: Annotated[
        str | None,
        Field(max_length=32, description="When it happened (ISO date); default: today."),
    ] = None,
    commit: Annotated[
        bool,
        Field(
            description="false (default): stage the edits for review, then call "
            "commit_session or discard_session; true: commit them at once."
        ),
    ] = False,
) -> SessionResult:
    """Turn a conversation into memory: extract its facts and plan the edits they make to the
    entity files, the timeline and the user's file. Returns each edit as a unified diff;
    staged edits are not memory until commit_session (or commit=true) writes them."""
    body: dict[str, Any] = {
        "memory_input": transcript,
        "session_id": session_id or f"mcp-{uuid.uuid4().hex[:16]}",
        "commit": commit,
    }
    if session_date is not None:
        body["session_date"] = session_date
    return session_result(await hub(ctx).process_session(body))


@tool(title="Commit a session", write=True)
async def commit_session(ctx: Context, session_id: SessionId) -> SessionResult:
    """Write a staged session's edits as revisions carrying the session id: all or nothing.
    Fails with SESSION_CONFLICT when a file changed since processing (nothing is written)."""
    h = hub(ctx)
    try:
        await h.commit_session(session_id)
    except SessionNotFound as exc:
        raise not_processed(exc) from exc
    return session_result(await h.session(session_id))


class Discarded(BaseModel):
    session_id: str
    discarded: bool


@tool(title="Discard a session", write=True, destructive=True)
async def discard_session(ctx: Context, session_id: SessionId) -> Discarded:
    """Forget a staged session's edits (nothing was written). A committed session cannot be
    discarded: restore_file its files instead."""
    try:
        await hub(ctx).discard_session(session_id)
    except SessionNotFound as exc:
        raise not_processed(exc) from exc
    return Discarded(session_id=session_id, discarded=True)
