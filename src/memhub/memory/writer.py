"""From an :class:`Extraction` to file edits in DiffMem's layout.

A session proposes, relative to the workspace's current heads:

- ``sessions/<session_id>.md``: the transcript, archived;
- ``memories/<kind>/<entity>.md`` for every entity a fact names: created from a
  template, or updated by appending a block to its ``## Timeline`` section;
- ``timeline/YYYY-MM.md`` (the session's month): one block with the session's
  most informative facts;
- ``<user>.md``: the user entity (created with an ``[ALWAYS_LOAD]`` identity
  block when missing), with a block of the user's own facts and who was mentioned.

Every block is DiffMem's: ``/START``, a ``### … [Strength: …]`` header, the
fact lines, ``/END``. Each edit remembers the head it was based on (rev and
sha256), which the commit turns into a precondition.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from memhub.errors import MemhubError
from memhub.memory.documents import decode_text
from memhub.memory.extractor import KINDS, Entity, Extraction, Fact
from memhub.store import Store

TIMELINE_FACTS = 12
FACTS_PER_BLOCK = 4  # an entity's facts of one session, a few per block (finer search)
MAX_ENTITY_FILES = 2000
_ALIASES = re.compile(r"^\**\s*aliases?\s*\**\s*:\s*\**\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_TITLE = re.compile(r"^#\s+(.+?)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
KIND_LABEL = {"people": "person", "contexts": "context", "events": "event"}


@dataclass(frozen=True, slots=True)
class Edit:
    path: str
    content: str
    base_rev: int | None  # None: the file does not exist (or is deleted)
    base_sha256: str | None
    base_content: str | None

    @property
    def action(self) -> str:
        return "create" if self.base_rev is None else "update"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "content": self.content,
            "base_rev": self.base_rev,
            "base_sha256": self.base_sha256,
        }


def read_text(store: Store, workspace: str, path: str) -> tuple[int, str, str] | None:
    """(rev, sha256, text) of the live head of ``path``, or None when absent."""
    try:
        revision, data = store.read_bytes(workspace, path)
    except MemhubError as exc:
        if exc.status == 404:
            return None
        raise
    return revision.rev, revision.sha256, decode_text(data, revision.content_type) or ""


def known_entities(store: Store, workspace: str) -> list[Entity]:
    """The entities in ``memories/{people,contexts,events}/``, with their title and aliases."""
    found: list[Entity] = []
    for head in store.list_files(workspace, prefix="memories/", limit=MAX_ENTITY_FILES):
        parts = head.path.split("/")
        if len(parts) != 3 or parts[1] not in KINDS or not parts[2].endswith(".md"):
            continue
        loaded = read_text(store, workspace, head.path)
        text = loaded[2] if loaded else ""
        title = _TITLE.search(text)
        name = title.group(1).strip() if title else parts[2][:-3].replace("-", " ").title()
        aliases: list[str] = []
        for m in _ALIASES.finditer(text[:4000]):
            aliases += [a.strip(" *") for a in m.group(1).split(",") if a.strip(" *")]
        found.append(Entity(name, parts[1], head.path, tuple(aliases)))
    return found


def block(header: str, lines: list[str], strength: str = "Medium") -> str:
    body = "\n".join(lines)
    return f"/START\n### {header} [Strength: {strength}]\n{body}\n/END\n"


def append_to_section(text: str, section: str, addition: str) -> str:
    """``addition`` at the end of the ``## section`` (created at the end when missing)."""
    headings = list(_SECTION.finditer(text))
    for i, m in enumerate(headings):
        if m.group(1).strip().lower() == section.lower():
            end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
            head, tail = text[:end].rstrip("\n"), text[end:]
            return f"{head}\n\n{addition}" + (f"\n{tail}" if tail else "")
    return f"{text.rstrip()}\n\n## {section}\n\n{addition}"


def _new_entity(entity: Entity, session_id: str, day: date) -> str:
    label = KIND_LABEL.get(entity.kind, entity.kind)
    core = block(
        "Core",
        [f"{entity.name} ({label}), first mentioned in session {session_id} on {day.isoformat()}."],
    )
    return f"# {entity.name}\n\n**Type:** {label}\n**Aliases:**\n\n{core}\n## Timeline\n"


def _new_user(user: str) -> str:
    identity = block("Identity [ALWAYS_LOAD]", [f"The memory of {user}."], "High")
    return f"# {user}\n\n{identity}\n## Timeline\n"


def _weight(fact: Fact) -> tuple[int, int]:
    digits = sum(ch.isdigit() for ch in fact.text) > 0
    return (len(fact.entities) + 2 * digits + fact.about_user, len(fact.text))


class SessionPlanner:
    """Plans the edits of one session against the workspace's current heads."""

    def __init__(self, store: Store, workspace: str) -> None:
        self.store = store
        self.workspace = workspace
        self.edits: dict[str, Edit] = {}

    def _base(self, path: str) -> tuple[int | None, str | None, str | None]:
        loaded = read_text(self.store, self.workspace, path)
        return (None, None, None) if loaded is None else loaded

    def _set(self, path: str, make: str | Callable[[str | None], str]) -> None:
        base_rev, base_sha, base_text = self._base(path)
        content = make if isinstance(make, str) else make(base_text)
        if content != base_text:
            self.edits[path] = Edit(path, content, base_rev, base_sha, base_text)

    def plan(
        self,
        extraction: Extraction,
        *,
        transcript: str,
        session_id: str,
        session_date: date,
        user: str,
    ) -> list[Edit]:
        day = session_date.isoformat()
        header = f"{day} — session {session_id}"
        archive = f"# Session {session_id}\n\nDate: {day}\n\n{transcript.strip()}\n"
        self._set(f"sessions/{session_id}.md", archive)
        by_entity: dict[str, list[Fact]] = {}
        for fact in extraction.facts:
            for path in fact.entities:
                by_entity.setdefault(path, []).append(fact)
        for path, facts in sorted(by_entity.items()):
            entity = extraction.entities[path]
            lines = [f.line() for f in facts]
            addition = "\n".join(
                block(header, lines[i : i + FACTS_PER_BLOCK])
                for i in range(0, len(lines), FACTS_PER_BLOCK)
            )

            def update(base: str | None, e: Entity = entity, add: str = addition) -> str:
                text = base if base is not None else _new_entity(e, session_id, session_date)
                return append_to_section(text, "Timeline", add)

            self._set(path, update)
        top = sorted(extraction.facts, key=_weight, reverse=True)[:TIMELINE_FACTS]
        if top:
            ordered = [f for f in extraction.facts if f in top]
            month = session_date.strftime("%Y-%m")
            addition = block(header, [f.line() for f in ordered])
            self._set(
                f"timeline/{month}.md",
                lambda base: (base or f"# Timeline {month}\n").rstrip() + "\n\n" + addition,
            )
        self._set(f"{user}.md", lambda base: self._user(base, extraction, header, user))
        return list(self.edits.values())

    @staticmethod
    def _user(base: str | None, extraction: Extraction, header: str, user: str) -> str:
        lines = [f.line() for f in extraction.facts if f.about_user]
        mentioned = sorted({e.name for e in extraction.entities.values()})
        if mentioned:
            lines.append("- Mentioned: " + ", ".join(mentioned[:50]))
        if not lines:
            lines.append("- Nothing new was stated about the user.")
        text = base if base is not None else _new_user(user)
        return append_to_section(text, "Timeline", block(header, lines))
