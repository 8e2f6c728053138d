"""Transcripts: one block per turn (JSON arrays of turns, JSON lines, ``Speaker:
text`` lines), keeping the turn id and speaker. A transcript that is none of
these is cut as markdown sections (``.md``) or paragraphs (anything else).
"""

from __future__ import annotations

import json
import re
from typing import Any

from memhub.memory.blocks.items import parse_time
from memhub.memory.blocks.markdown import split_markdown
from memhub.memory.blocks.model import MARKDOWN_SUFFIXES, MAX_BLOCK_CHARS, Block, FileKind
from memhub.memory.blocks.turns import heading_date, markdown_turns

_TURN_LINE = re.compile(
    r"[ \t]*(?:\[(?P<id>[^\]]{1,40})\][ \t]*)?(?P<speaker>[\w .'-]{1,40}):[ \t]+(?P<text>.+)"
)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
MAX_TURN_LINE = 100_000  # longer lines are prose, never "Speaker: text"

# A turn with the lines it spans in the file (1-based, inclusive).
Turn = tuple[dict[str, Any], int, int]


def split_transcript(path: str, text: str) -> list[Block]:
    turns = json_turns(text)
    if turns is not None:
        return _turn_blocks(path, turns)
    blocks = _line_turns(path, text)
    if blocks is not None:
        return blocks
    if path.lower().endswith(MARKDOWN_SUFFIXES):
        # turns where the headings name them (memhub.memory.blocks.turns)
        return markdown_turns(split_markdown(path, text, "transcript"))
    return split_paragraphs(path, text, "transcript")


def _turn_blocks(path: str, turns: list[Turn]) -> list[Block]:
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
                heading=(str(speaker)[:300],) if speaker else (),
                text=body,
                line_start=first_line,
                line_end=last_line,
                turn_id=str(turn_id)[:300] if turn_id is not None else None,
                speaker=str(speaker)[:300] if speaker else None,
                timestamp=(parse_time(str(when)) or heading_date(str(when))) if when else None,
                meta={"when": str(when)[:100]} if when else {},
            )
        )
    return blocks


def json_turns(text: str) -> list[Turn] | None:
    """The turns of a JSON array of objects or of JSON lines, or None if it is neither.
    JSON nested deeper than the decoder's recursion limit is a :class:`ValueError`
    (the caller indexes the file as plain text and reports why)."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            return _json_array(text, len(text) - len(stripped))
        if stripped.startswith("{"):
            return _json_lines(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply to read") from exc
    return None


def _json_lines(text: str) -> list[Turn] | None:
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


def _match_turn(line: str) -> re.Match[str] | None:
    return _TURN_LINE.fullmatch(line) if len(line) <= MAX_TURN_LINE else None


def _line_turns(path: str, text: str) -> list[Block] | None:
    """One block per ``[id] Speaker: text`` line, or None when most lines are not turns."""
    lines = text.split("\n")
    matches = [_match_turn(line) for line in lines]
    filled = sum(1 for line in lines if line.strip())
    if sum(1 for m in matches if m is not None) < max(1, filled // 2):
        return None
    blocks = []
    for i, match in enumerate(matches):
        if match is None:
            continue
        speaker = match.group("speaker").strip()
        blocks.append(
            Block(
                path=path,
                seq=0,
                kind="turn",
                file_kind="transcript",
                heading=(speaker,),
                text=match.group("text").strip(),
                line_start=i + 1,
                line_end=i + 1,
                turn_id=match.group("id"),
                speaker=speaker,
            )
        )
    return blocks


def split_paragraphs(path: str, text: str, file_kind: FileKind) -> list[Block]:
    """One block per paragraph (lines between blank lines); a paragraph over
    :data:`MAX_BLOCK_CHARS` is cut between its lines, so no block is unbounded
    (this is also the fallback for files over a parser's budget)."""
    blocks = []
    lines = text.split("\n")
    start: int | None = None
    size = 0
    for i, line in enumerate([*lines, ""]):
        blank = not line.strip()
        if start is not None and (blank or size + len(line) > MAX_BLOCK_CHARS):
            blocks.append(_paragraph(path, file_kind, lines, start, i))
            start = None
        if not blank and start is None:
            start, size = i, 0
        size += len(line) + 1
    return blocks


def _paragraph(path: str, file_kind: FileKind, lines: list[str], start: int, end: int) -> Block:
    return Block(
        path=path,
        seq=0,
        kind="paragraph",
        file_kind=file_kind,
        heading=(),
        text="\n".join(lines[start:end]),
        line_start=start + 1,
        line_end=end,
    )
