"""Sessions: a transcript processed into staged edits, read back as a diff, then
committed all at once (or discarded).

    process(ws, id, transcript, date)  → extract facts (offline, or the LLM when
                                          configured), plan edits against the current
                                          heads, stage them (table ``staged_sessions``)
    get(ws, id)                        → the staged edits as unified diffs
    commit(ws, id)                     → :meth:`Store.put_many`: every edit a revision
                                          carrying the session id, conditional on the
                                          head it was planned against; all or nothing
    discard(ws, id)                    → forget the staged edits

Staged edits live in the metadata database, not in the workspace's files: they
are not memory yet (search, sync and the change feed do not see them), and a
commit is the only way they become revisions. A file that changed between
process and commit fails the commit with 409 ``SESSION_CONFLICT``; nothing is
written and the staged edits stay, to be discarded or processed again.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from memhub.errors import BadRequest, PreconditionFailed, SessionConflict, SessionNotFound
from memhub.memory.dates import parse_session_date
from memhub.memory.extractor import Extraction, extract_offline
from memhub.memory.llm import ChatProvider
from memhub.memory.llm_extractor import extract_llm
from memhub.memory.writer import Edit, SessionPlanner, known_entities
from memhub.store import Precondition, Store
from memhub.store.schema import staged_sessions

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
MAX_TRANSCRIPT_CHARS = 1_000_000
MARKDOWN = "text/markdown; charset=utf-8"


def check_session_id(session_id: str) -> str:
    if not SESSION_ID.match(session_id) or ".." in session_id:
        raise BadRequest(
            "session_id takes 1-128 letters, digits and . _ : @ - (no '..')",
            context={"session_id": session_id[:200]},
        )
    return session_id


@dataclass(frozen=True, slots=True)
class StagedSession:
    workspace: str
    session_id: str
    status: str  # staged | committed
    session_date: str
    extractor: str
    edits: list[Edit]
    summary: dict[str, Any]
    created_at: float
    committed_at: float | None
    commit_revs: list[int]

    def to_dict(self, *, diffs: bool = False) -> dict[str, Any]:
        files = []
        for edit in self.edits:
            item: dict[str, Any] = {
                "path": edit.path,
                "action": edit.action,
                "base_rev": edit.base_rev,
            }
            if diffs:
                item["diff"] = unified_diff(edit)
            files.append(item)
        return {
            "session_id": self.session_id,
            "user_id": self.workspace,
            "status": self.status,
            "session_date": self.session_date,
            "extractor": self.extractor,
            "files": files,
            "summary": self.summary,
            "created_at": self.created_at,
            "committed_at": self.committed_at,
            "revs": self.commit_revs,
        }


def unified_diff(edit: Edit) -> str:
    before = (edit.base_content or "").splitlines()
    after = edit.content.splitlines()
    old = f"a/{edit.path}" if edit.base_rev is not None else "/dev/null"
    return "\n".join(difflib.unified_diff(before, after, old, f"b/{edit.path}", lineterm=""))


class Sessions:
    def __init__(self, store: Store, provider: ChatProvider | None = None) -> None:
        self.store = store
        self.provider = provider

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()

    # -- process ---------------------------------------------------------------

    def extract(self, workspace: str, transcript: str, session_date: date) -> Extraction:
        known = known_entities(self.store, workspace)
        if self.provider is not None:
            return extract_llm(self.provider, transcript, session_date, workspace, known)
        return extract_offline(transcript, session_date, workspace, known)

    def process(
        self,
        workspace: str,
        session_id: str,
        transcript: str,
        session_date: str | None = None,
        *,
        author: str | None = None,
    ) -> StagedSession:
        check_session_id(session_id)
        if not transcript.strip():
            raise BadRequest("memory_input is empty")
        if len(transcript) > MAX_TRANSCRIPT_CHARS:
            raise BadRequest(f"memory_input is limited to {MAX_TRANSCRIPT_CHARS} characters")
        day = parse_session_date(session_date, datetime.now(UTC).date())
        existing = self._row(workspace, session_id)
        if existing is not None and existing.status == "committed":
            raise SessionConflict(
                f"session {session_id!r} is already committed",
                context={"session_id": session_id, "revs": existing.commit_revs},
            )
        extraction = self.extract(workspace, transcript, day)
        edits = SessionPlanner(self.store, workspace).plan(
            extraction,
            transcript=transcript,
            session_id=session_id,
            session_date=day,
            user=workspace,
        )
        summary = {
            "facts": len(extraction.facts),
            "entities": sorted(e.name for e in extraction.entities.values()),
        }
        values = {
            "workspace_id": self.store.workspace_id(workspace),
            "session_id": session_id,
            "status": "staged",
            "session_date": day.isoformat(),
            "extractor": extraction.extractor,
            "edits": json.dumps([{**e.to_json(), "base_content": e.base_content} for e in edits]),
            "summary": json.dumps(summary),
            "author": author,
            "created_at": self.store.clock(),
            "committed_at": None,
            "commit_revs": None,
        }
        key = (
            staged_sessions.c.workspace_id == values["workspace_id"],
            staged_sessions.c.session_id == session_id,
        )
        try:
            with self.store.meta.write() as conn:
                # replace a staged version; a committed one stays and the insert fails
                conn.execute(
                    delete(staged_sessions).where(*key, staged_sessions.c.status == "staged")
                )
                conn.execute(insert(staged_sessions).values(**values))
        except IntegrityError as exc:
            raise SessionConflict(
                f"session {session_id!r} was committed meanwhile",
                context={"session_id": session_id},
            ) from exc
        return self.get(workspace, session_id)

    # -- read ------------------------------------------------------------------

    def _row(self, workspace: str, session_id: str) -> StagedSession | None:
        ws_id = self.store.workspace_id(workspace)
        with self.store.meta.read() as conn:
            row = conn.execute(
                select(staged_sessions).where(
                    staged_sessions.c.workspace_id == ws_id,
                    staged_sessions.c.session_id == session_id,
                )
            ).first()
        if row is None:
            return None
        edits = [
            Edit(e["path"], e["content"], e["base_rev"], e["base_sha256"], e.get("base_content"))
            for e in json.loads(row.edits)
        ]
        return StagedSession(
            workspace,
            row.session_id,
            row.status,
            row.session_date,
            row.extractor,
            edits,
            json.loads(row.summary),
            row.created_at,
            row.committed_at,
            json.loads(row.commit_revs) if row.commit_revs else [],
        )

    def get(self, workspace: str, session_id: str) -> StagedSession:
        found = self._row(workspace, check_session_id(session_id))
        if found is None:
            raise SessionNotFound(
                f"no session {session_id!r} was processed in {workspace!r}",
                context={"session_id": session_id},
                hint="POST /memory/process-session first",
            )
        return found

    def list(self, workspace: str, *, status: str | None = None) -> list[dict[str, Any]]:
        ws_id = self.store.workspace_id(workspace)
        stmt = select(
            staged_sessions.c.session_id,
            staged_sessions.c.status,
            staged_sessions.c.session_date,
            staged_sessions.c.created_at,
            staged_sessions.c.committed_at,
        ).where(staged_sessions.c.workspace_id == ws_id)
        if status:
            stmt = stmt.where(staged_sessions.c.status == status)
        with self.store.meta.read() as conn:
            rows = conn.execute(stmt.order_by(staged_sessions.c.created_at).limit(1000)).all()
        return [dict(r._mapping) for r in rows]

    # -- commit / discard --------------------------------------------------------

    def commit(
        self, workspace: str, session_id: str, *, author: str | None = None
    ) -> StagedSession:
        staged = self.get(workspace, session_id)
        if staged.status == "committed":
            raise SessionConflict(
                f"session {session_id!r} is already committed",
                context={"session_id": session_id, "revs": staged.commit_revs},
            )
        writes = [
            (
                e.path,
                e.content.encode("utf-8"),
                Precondition(exists=False)
                if e.base_sha256 is None
                else Precondition(sha256=e.base_sha256),
            )
            for e in staged.edits
        ]
        try:
            results = self.store.put_many(
                workspace,
                writes,
                content_type=MARKDOWN,
                author=author,
                session_id=session_id,
                message=f"session {session_id}",
            )
        except PreconditionFailed as exc:
            raise SessionConflict(
                f"a staged file changed since session {session_id!r} was processed; "
                "nothing was committed",
                context={"session_id": session_id, **(exc.context or {})},
                hint="discard the session or process it again, then commit",
            ) from exc
        revs = [r.revision.rev for r in results]
        ws_id = self.store.workspace_id(workspace)
        with self.store.meta.write() as conn:
            conn.execute(
                update(staged_sessions)
                .where(
                    staged_sessions.c.workspace_id == ws_id,
                    staged_sessions.c.session_id == session_id,
                )
                .values(
                    status="committed",
                    committed_at=self.store.clock(),
                    commit_revs=json.dumps(revs),
                )
            )
        return self.get(workspace, session_id)

    def discard(self, workspace: str, session_id: str) -> None:
        staged = self.get(workspace, session_id)
        if staged.status == "committed":
            raise SessionConflict(
                f"session {session_id!r} is committed; restore files to undo it",
                context={"session_id": session_id, "revs": staged.commit_revs},
            )
        ws_id = self.store.workspace_id(workspace)
        with self.store.meta.write() as conn:
            conn.execute(
                delete(staged_sessions).where(
                    staged_sessions.c.workspace_id == ws_id,
                    staged_sessions.c.session_id == session_id,
                    staged_sessions.c.status == "staged",
                )
            )
