"""The block, what every splitter produces, and how a path decides its splitter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_BLOCK_CHARS = 4000
MAX_HEADING_CHARS = 300  # heading text kept (and seen by any regex) per heading
MARKER_SCAN_CHARS = 1000  # how much of a block's first line marker regexes read

_TIMELINE = re.compile(r"(?:^|/)timeline/(\d{4})-(\d{2})\.md$")
_ENTITY = re.compile(r"(?:^|/)memories/(people|contexts|events)/[^/]+\.md$")
_INSTRUCTION_NAMES = frozenset(
    {"claude.md", "agents.md", "gemini.md", "copilot-instructions.md", ".cursorrules", "rules.md"}
)
_STRENGTH = re.compile(r"\[\s*Strength\s*:\s*(High|Medium|Low)\s*\]", re.IGNORECASE)
_ALWAYS = re.compile(r"\[\s*ALWAYS_LOAD\s*\]", re.IGNORECASE)
_MARKERS = re.compile(r"\[\s*(?:Strength\s*:[^\]]*|[A-Z_]+_LOAD|Temporal Drift:[^\]]*)\s*\]", re.I)
_SPACES = re.compile(r"\s{2,}")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")


BlockKind = Literal["section", "diffmem", "item", "turn", "paragraph"]
FileKind = Literal[
    "markdown", "instructions", "entity", "timeline", "user", "item", "transcript", "text", "binary"
]


@dataclass(frozen=True, slots=True)
class Block:
    path: str
    seq: int  # position of the block in its file
    kind: BlockKind
    file_kind: FileKind
    heading: tuple[str, ...]
    text: str
    line_start: int  # 1-based, inclusive
    line_end: int
    always_load: bool = False
    strength: str | None = None
    turn_id: str | None = None
    speaker: str | None = None
    timestamp: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def block_id(self) -> str:
        return f"{self.path}#{self.seq}"

    @property
    def title(self) -> str:
        return " › ".join(self.heading)


def classify(path: str, workspace: str | None = None) -> FileKind:
    """What kind of file ``path`` is, which decides how it is cut."""
    lower = path.lower()
    name = lower.rsplit("/", 1)[-1]
    if name in _INSTRUCTION_NAMES or name.endswith(".instructions.md"):
        return "instructions"
    if _TIMELINE.search(lower):
        return "timeline"
    if _ENTITY.search(lower):
        return "entity"
    if workspace and name in (f"{workspace.lower()}.md",) and lower.count("/") <= 1:
        return "user"
    if lower.startswith("items/") and lower.endswith(".md"):
        return "item"
    if lower.startswith(("transcripts/", "sessions/")) or lower.endswith(".jsonl"):
        return "transcript"
    if lower.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    if lower.endswith((".txt", ".rst", ".org")) or "." not in name:
        return "text"
    if lower.endswith(".json"):
        return "transcript"
    return "binary"


def timeline_month(path: str) -> tuple[int, int] | None:
    match = _TIMELINE.search(path.lower())
    return (int(match.group(1)), int(match.group(2))) if match else None


def clean_heading(raw: str) -> str:
    """A heading without DiffMem markers, cut to :data:`MAX_HEADING_CHARS`."""
    raw = raw[:MAX_HEADING_CHARS]
    return _SPACES.sub(" ", _MARKERS.sub("", raw)).strip(" *_") or raw.strip()


def strength_of(line: str) -> str | None:
    match = _STRENGTH.search(line[:MARKER_SCAN_CHARS])
    return match.group(1).capitalize() if match else None


def always_load_in(text: str) -> bool:
    return bool(_ALWAYS.search(text[:MARKER_SCAN_CHARS]))


def always_load_anywhere(text: str) -> bool:
    return bool(_ALWAYS.search(text))


def leading_blank(lines: list[str]) -> int:
    n = 0
    for line in lines:
        if line.strip():
            break
        n += 1
    return n
