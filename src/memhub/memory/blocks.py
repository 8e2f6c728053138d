"""Cutting files into blocks: the units of search and context assembly.

Blocks are derived from file contents, never stored by hand. What a file is
cut into depends on what it is (:func:`classify`):

- markdown: one block per section (heading line to the next heading of any
  level, outside code fences), with its heading trail and line range; code
  fences are never split; over-long sections are cut at blank lines.
- DiffMem memory files (``memories/{people,contexts,events}/``,
  ``timeline/YYYY-MM.md``, the user entity): explicit ``/START … /END`` blocks
  and ``### Header … /END`` blocks, with ``[Strength: High|Medium|Low]`` and
  ``[ALWAYS_LOAD]`` markers; the rest as markdown sections.
- instruction files (``CLAUDE.md``, ``AGENTS.md``, …): markdown sections; a
  section whose heading, or a bold lead-in, states a mandatory rule
  (MANDATORY, IMPORTANT, NEVER, ALWAYS, ВАЖНО, СТРОГОЕ ПРАВИЛО, НИКОГДА,
  ОБЯЗАТЕЛЬНО, ЗАВЖДИ, …) is flagged always-load.
- memory items (``items/**.md``): one block, front matter parsed.
- transcripts (``transcripts/**``, ``*.jsonl``, JSON chat exports): one block
  per turn, keeping the turn id and speaker; plain text: one per paragraph.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

MAX_BLOCK_CHARS = 4000

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_STRENGTH = re.compile(r"\[\s*Strength\s*:\s*(High|Medium|Low)\s*\]", re.IGNORECASE)
_ALWAYS = re.compile(r"\[\s*ALWAYS_LOAD\s*\]", re.IGNORECASE)
_MARKERS = re.compile(r"\[\s*(?:Strength\s*:[^\]]*|[A-Z_]+_LOAD|Temporal Drift:[^\]]*)\s*\]", re.I)
_TIMELINE = re.compile(r"(?:^|/)timeline/(\d{4})-(\d{2})\.md$")
_ENTITY = re.compile(r"(?:^|/)memories/(people|contexts|events)/[^/]+\.md$")
_INSTRUCTION_NAMES = frozenset(
    {"claude.md", "agents.md", "gemini.md", "copilot-instructions.md", ".cursorrules", "rules.md"}
)
_MANDATORY = re.compile(
    r"\b(MANDATORY|IMPORTANT|CRITICAL|REQUIRED|MUST|NEVER|ALWAYS|STRICT RULE|DO NOT)\b"
    r"|ВАЖНО|СТРОГОЕ ПРАВИЛО|СТРОГО|НИКОГДА|ВСЕГДА|ОБЯЗАТЕЛЬНО|ЗАПРЕЩЕНО|ОБЯЗАН"
    r"|ВАЖЛИВО|СУВОРЕ ПРАВИЛО|НІКОЛИ|ЗАВЖДИ|ОБОВ'?ЯЗКОВО|ОБОВʼЯЗКОВО|ЗАБОРОНЕНО",
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Block:
    path: str
    seq: int  # position of the block in its file
    kind: str  # section | diffmem | item | turn | paragraph
    file_kind: str  # markdown | instructions | entity | timeline | user | item | transcript | text
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


def classify(path: str, workspace: str | None = None) -> str:
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
    if lower.endswith((".md", ".markdown", ".mdx")):
        return "markdown"
    if lower.endswith((".txt", ".rst", ".org")) or "." not in name:
        return "text"
    if lower.endswith(".json"):
        return "transcript"
    return "binary"


def split_file(path: str, text: str, *, workspace: str | None = None) -> list[Block]:
    """Cut one file's text into blocks (empty for binary or empty files)."""
    file_kind = classify(path, workspace)
    if file_kind == "binary" or not text.strip():
        return []
    if file_kind == "transcript":
        blocks = _split_transcript(path, text)
    elif file_kind == "text":
        blocks = _split_paragraphs(path, text, file_kind)
    elif file_kind == "item":
        blocks = _split_item(path, text)
    elif file_kind in ("entity", "timeline", "user"):
        blocks = _split_diffmem(path, text, file_kind)
    else:
        blocks = _split_markdown(path, text, file_kind)
        if file_kind == "markdown":
            from memhub.memory.turns import markdown_turns

            blocks = markdown_turns(blocks)
    if file_kind == "instructions":
        blocks = [replace(b, always_load=b.always_load or is_mandatory(b)) for b in blocks]
    if file_kind == "timeline":
        stamp = _timeline_time(path)
        blocks = [replace(b, timestamp=b.timestamp or stamp) for b in blocks]
    return [replace(b, seq=i) for i, b in enumerate(blocks)]


def is_mandatory(block: Block) -> bool:
    """A rule an agent must always see: stated in a heading or a bold lead-in."""
    if any(_MANDATORY.search(h) for h in block.heading[-1:]):
        return True
    for match in _BOLD.finditer(block.text[:400]):
        if _MANDATORY.search(match.group(1) or match.group(2) or ""):
            return True
    return False


# -- markdown ---------------------------------------------------------------------


def _sections(lines: list[str]) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, end, heading trail) of each section; indices into ``lines``."""
    out: list[tuple[int, int, tuple[str, ...]]] = []
    trail: list[tuple[int, str]] = []
    start = 0
    current: tuple[str, ...] = ()
    fence: str | None = None
    for i, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        heading = _HEADING.match(line)
        if heading is None:
            continue
        if i > start:
            out.append((start, i, current))
        level = len(heading.group(1))
        while trail and trail[-1][0] >= level:
            trail.pop()
        trail.append((level, clean_heading(heading.group(2))))
        current = tuple(t for _, t in trail)
        start = i
    if start < len(lines):
        out.append((start, len(lines), current))
    return out


def clean_heading(raw: str) -> str:
    return re.sub(r"\s{2,}", " ", _MARKERS.sub("", raw)).strip(" *_") or raw.strip()


def _split_markdown(path: str, text: str, file_kind: str, line_offset: int = 0) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    for start, end, trail in _sections(lines):
        body = "\n".join(lines[start:end]).strip("\n")
        if not body.strip() or (_HEADING.match(body) and "\n" not in body):
            continue
        first = start + _leading_blank(lines[start:end])
        for piece_start, piece in _cut_long(lines, first, end):
            blocks.append(
                Block(
                    path=path,
                    seq=0,
                    kind="section",
                    file_kind=file_kind,
                    heading=trail,
                    text=piece,
                    line_start=line_offset + piece_start + 1,
                    line_end=line_offset + piece_start + piece.count("\n") + 1,
                    always_load=bool(_ALWAYS.search(piece.split("\n", 1)[0])),
                    strength=_strength(piece.split("\n", 1)[0]),
                )
            )
    return blocks


def _leading_blank(lines: list[str]) -> int:
    n = 0
    for line in lines:
        if line.strip():
            break
        n += 1
    return n


def _cut_long(lines: list[str], start: int, end: int) -> list[tuple[int, str]]:
    """A section as one piece, or cut at blank lines outside fences when over-long."""
    body = "\n".join(lines[start:end]).rstrip()
    if len(body) <= MAX_BLOCK_CHARS:
        return [(start, body)]
    pieces: list[tuple[int, str]] = []
    piece_start = start
    size = 0
    fence = False
    for i in range(start, end):
        if _FENCE.match(lines[i]):
            fence = not fence
        size += len(lines[i]) + 1
        boundary = not fence and not lines[i].strip() and size >= MAX_BLOCK_CHARS // 2
        if boundary or i == end - 1:
            piece = "\n".join(lines[piece_start : i + 1]).strip("\n")
            if piece.strip():
                pieces.append((piece_start + _leading_blank(lines[piece_start : i + 1]), piece))
            piece_start, size = i + 1, 0
    return pieces or [(start, body)]


def _strength(line: str) -> str | None:
    match = _STRENGTH.search(line)
    return match.group(1).capitalize() if match else None


# -- DiffMem memory files ---------------------------------------------------------------

_START = re.compile(r"^\s*/START\b.*$", re.IGNORECASE)
_END = re.compile(r"^\s*/END\b.*$", re.IGNORECASE)


def _split_diffmem(path: str, text: str, file_kind: str) -> list[Block]:
    """Explicit blocks (/START … /END, ### Header … /END) and markdown for the rest."""
    lines = text.split("\n")
    sections = _sections(lines)
    explicit: list[Block] = []
    covered: set[int] = set()
    i = 0
    while i < len(lines):
        opener = i if _START.match(lines[i]) else None
        header = _HEADING.match(lines[i])
        if opener is None and not (header and len(header.group(1)) >= 3):
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if _END.match(lines[j])), None)
        next_open = next(
            (j for j in range(i + 1, end or len(lines)) if _START.match(lines[j])), None
        )
        if end is None or next_open is not None:
            i += 1
            continue
        first = i + 1 if opener is not None else i
        head_at = next((j for j in range(first, end) if _HEADING.match(lines[j])), None)
        head_line = lines[head_at] if head_at is not None else ""
        trail = _trail_at(sections, head_at if head_at is not None else i)
        body_lines = lines[first:end]
        body = "\n".join(body_lines).strip("\n")
        covered.update(range(i, end + 1))
        if not body.strip():  # an empty /START … /END: nothing to find or load
            i = end + 1
            continue
        explicit.append(
            Block(
                path=path,
                seq=0,
                kind="diffmem",
                file_kind=file_kind,
                heading=trail,
                text=body,
                line_start=i + 1,
                line_end=end + 1,
                always_load=bool(_ALWAYS.search(body)),
                strength=_strength(head_line) or _strength(body.split("\n", 1)[0]),
            )
        )
        i = end + 1
    rest = _markdown_outside(path, lines, covered, file_kind)
    return sorted(explicit + rest, key=lambda b: b.line_start)


def _trail_at(sections: list[tuple[int, int, tuple[str, ...]]], line: int) -> tuple[str, ...]:
    for start, end, trail in sections:
        if start <= line < end:
            return trail
    return ()


def _markdown_outside(path: str, lines: list[str], covered: set[int], kind: str) -> list[Block]:
    blocks: list[Block] = []
    for start, end, trail in _sections(lines):
        keep = [i for i in range(start, end) if i not in covered]
        if not keep:
            continue
        runs: list[list[int]] = [[keep[0]]]
        for i in keep[1:]:
            if i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            chunk = lines[run[0] : run[-1] + 1]
            offset = _leading_blank(chunk)
            body = "\n".join(chunk[offset:]).rstrip()
            if not body.strip() or (_HEADING.match(body) and "\n" not in body):
                continue
            first_line = body.split("\n", 1)[0]
            blocks.append(
                Block(
                    path=path,
                    seq=0,
                    kind="section",
                    file_kind=kind,
                    heading=trail,
                    text=body,
                    line_start=run[0] + offset + 1,
                    line_end=run[0] + offset + body.count("\n") + 1,
                    always_load=bool(_ALWAYS.search(first_line)),
                    strength=_strength(first_line),
                )
            )
    return blocks


def _timeline_time(path: str) -> float | None:
    match = _TIMELINE.search(path.lower())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


# -- memory items ------------------------------------------------------------------------


def parse_front_matter(text: str) -> tuple[dict[str, str], str, int]:
    """(simple ``key: value`` front matter, the body, lines the front matter took)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text, 0
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            meta[key.strip()] = value.strip().strip("'\"")
    return meta, text[match.end() :], match.group(0).count("\n")


def _split_item(path: str, text: str) -> list[Block]:
    meta, body, skipped = parse_front_matter(text)
    if not body.strip():
        return []
    leading = _leading_blank(body.split("\n"))
    skipped += leading
    body = "\n".join(body.split("\n")[leading:])
    title = meta.get("title") or body.strip().split("\n", 1)[0].lstrip("# ")[:80]
    return [
        Block(
            path=path,
            seq=0,
            kind="item",
            file_kind="item",
            heading=(title,),
            text=body.strip(),
            line_start=skipped + 1,
            line_end=skipped + body.rstrip().count("\n") + 1,
            always_load=meta.get("always_load", "").lower() in ("true", "yes", "1"),
            timestamp=_parse_time(meta.get("created_at") or meta.get("date")),
            meta=dict(meta),
        )
    ]


def _turn_time(value: str) -> float | None:
    """ISO 8601, else a date written out (``1:56 pm on 8 May, 2023``)."""
    from memhub.memory.turns import heading_date

    return _parse_time(value) or heading_date(value)


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# -- transcripts and plain text -----------------------------------------------------------------

_TURN_LINE = re.compile(
    r"^\s*(?:\[(?P<id>[^\]]{1,40})\]\s*)?(?P<speaker>[\w .'-]{1,40}):\s+(?P<text>.+)$"
)


def _split_transcript(path: str, text: str) -> list[Block]:
    turns = _json_turns(text)
    if turns is None:
        return _line_turns(path, text)
    blocks = []
    for turn, first_line, last_line in turns:
        body = str(turn.get("text") or turn.get("content") or "").strip()
        caption = turn.get("blip_caption") or turn.get("caption")
        if caption:
            body = f"{body}\n[image: {caption}]".strip()
        if not body:
            continue
        speaker = turn.get("speaker") or turn.get("role")
        turn_id = turn.get("dia_id") or turn.get("id") or turn.get("turn_id")
        when = (
            turn.get("date_time") or turn.get("date") or turn.get("time") or turn.get("timestamp")
        )
        blocks.append(
            Block(
                path=path,
                seq=0,
                kind="turn",
                file_kind="transcript",
                heading=(str(speaker),) if speaker else (),
                text=body,
                line_start=first_line,
                line_end=last_line,
                turn_id=str(turn_id) if turn_id is not None else None,
                speaker=str(speaker) if speaker else None,
                timestamp=_turn_time(str(when)) if when else None,
                meta={"when": str(when)} if when else {},
            )
        )
    return blocks


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# A turn with the lines it spans in the file (1-based, inclusive).
Turn = tuple[dict[str, Any], int, int]


def _json_turns(text: str) -> list[Turn] | None:
    """The turns of a JSON array of objects or of JSON lines, or None if it is neither."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _json_array(text, len(text) - len(stripped))
    if stripped.startswith("{"):
        turns: list[Turn] = []
        for i, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                return None
            if not isinstance(item, dict):
                return None
            turns.append((item, i + 1, i + 1))
        return turns
    return None


def _json_array(text: str, start: int) -> list[Turn] | None:
    """Decode the array at ``start`` one element at a time, to know each one's lines."""
    turns: list[Turn] = []
    lines = _LineCounter(text)
    pos = _skip_space(text, start + 1)
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            try:
                item, end = _DECODER.raw_decode(text, pos)
            except ValueError:
                return None
            if not isinstance(item, dict):
                return None
            turns.append((item, lines.at(pos), lines.at(end - 1)))
            pos = _skip_space(text, end)
            if text.startswith(",", pos):
                pos = _skip_space(text, pos + 1)
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            return None
    return turns if not text[pos:].strip() else None


def _skip_space(text: str, pos: int) -> int:
    match = _JSON_SPACE.match(text, pos)
    return match.end() if match else pos


class _LineCounter:
    """1-based line numbers of ascending offsets in one text, in linear time overall."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _line_turns(path: str, text: str) -> list[Block]:
    lines = text.split("\n")
    if sum(1 for ln in lines if _TURN_LINE.match(ln)) < max(
        1, len([ln for ln in lines if ln.strip()]) // 2
    ):
        if not path.lower().endswith((".md", ".markdown")):
            return _split_paragraphs(path, text, "transcript")
        # markdown that is neither JSON nor "Speaker: text" lines: its sections, each
        # heading kept with its text, and turns where the headings name them
        from memhub.memory.turns import markdown_turns

        return markdown_turns(_split_markdown(path, text, "transcript"))
    blocks = []
    for i, line in enumerate(lines):
        match = _TURN_LINE.match(line)
        if match is None:
            continue
        blocks.append(
            Block(
                path=path,
                seq=0,
                kind="turn",
                file_kind="transcript",
                heading=(match.group("speaker").strip(),),
                text=match.group("text").strip(),
                line_start=i + 1,
                line_end=i + 1,
                turn_id=match.group("id"),
                speaker=match.group("speaker").strip(),
            )
        )
    return blocks


def _split_paragraphs(path: str, text: str, file_kind: str) -> list[Block]:
    blocks = []
    lines = text.split("\n")
    start: int | None = None
    for i, line in enumerate([*lines, ""]):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            body = "\n".join(lines[start:i])
            blocks.append(
                Block(
                    path=path,
                    seq=0,
                    kind="paragraph",
                    file_kind=file_kind,
                    heading=(),
                    text=body,
                    line_start=start + 1,
                    line_end=i,
                )
            )
            start = None
    return blocks
