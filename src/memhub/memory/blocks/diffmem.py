"""DiffMem memory files: explicit ``/START … /END`` and ``### Header … /END``
blocks, with ``[Strength: …]`` and ``[ALWAYS_LOAD]`` markers; markdown
sections for the rest.

One pass over the lines with precomputed "next /END" and "next /START"
tables, so the cost is linear however many headers lack an ``/END``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from memhub.memory.blocks.markdown import Outline, section_block
from memhub.memory.blocks.model import (
    Block,
    FileKind,
    always_load_anywhere,
    leading_blank,
    strength_of,
    timeline_month,
)

_START = re.compile(r"[ \t]*/START\b", re.IGNORECASE)
_END = re.compile(r"[ \t]*/END\b", re.IGNORECASE)
NONE = -1


def _next_table(flags: list[bool]) -> list[int]:
    """``table[i]``: the first j > i with ``flags[j]``, or NONE."""
    table = [NONE] * len(flags)
    following = NONE
    for i in range(len(flags) - 1, -1, -1):
        table[i] = following
        if flags[i]:
            following = i
    return table


def split_diffmem(path: str, text: str, file_kind: FileKind) -> list[Block]:
    outline = Outline(text)
    lines = outline.lines
    starts = [bool(_START.match(line)) for line in lines]
    ends = [bool(_END.match(line)) for line in lines]
    atx_level = {h.start: h.level for h in outline.headings if h.atx}
    is_heading = [False] * len(lines)
    for heading in outline.headings:
        is_heading[heading.start] = True
    next_end, next_start = _next_table(ends), _next_table(starts)
    next_heading = _next_table(is_heading)
    covered = bytearray(len(lines))
    explicit: list[Block] = []
    i = 0
    while i < len(lines):
        opener = starts[i]
        if not opener and atx_level.get(i, 0) < 3:
            i += 1
            continue
        end = next_end[i]
        if end == NONE or NONE < next_start[i] < end:
            i += 1
            continue
        first = i + 1 if opener else i
        head_at = first if is_heading[first] else next_heading[first]
        head_at = head_at if head_at != NONE and head_at < end else NONE
        covered[i : end + 1] = b"\x01" * (end + 1 - i)
        body = "\n".join(lines[first:end]).strip("\n")
        if body.strip():  # an empty /START … /END: nothing to find or load
            head_line = lines[head_at] if head_at != NONE else ""
            explicit.append(
                Block(
                    path=path,
                    seq=0,
                    kind="diffmem",
                    file_kind=file_kind,
                    heading=outline.trail_at(head_at if head_at != NONE else i),
                    text=body,
                    line_start=i + 1,
                    line_end=end + 1,
                    always_load=always_load_anywhere(body),
                    strength=strength_of(head_line) or strength_of(body.split("\n", 1)[0]),
                )
            )
        i = end + 1
    rest = _outside(path, outline, covered, file_kind)
    return sorted(explicit + rest, key=lambda b: b.line_start)


def _outside(path: str, outline: Outline, covered: bytearray, kind: FileKind) -> list[Block]:
    """Markdown sections of the lines no explicit block took, one block per run."""
    lines = outline.lines
    blocks: list[Block] = []
    for section in outline.sections:
        i = section.start
        while i < section.end:
            if covered[i]:
                i += 1
                continue
            run_start = i
            while i < section.end and not covered[i]:
                i += 1
            chunk = lines[run_start:i]
            offset = leading_blank(chunk)
            body = "\n".join(chunk[offset:]).rstrip()
            start = run_start + offset
            heading_only = start < section.body_start and outline.is_blank_from(
                section.body_start, i
            )
            if body.strip() and not heading_only:
                blocks.append(section_block(path, kind, section.trail, start, body))
    return blocks


def timeline_time(path: str) -> float | None:
    """The first instant of a ``timeline/YYYY-MM.md`` file's month (None if no such month)."""
    month = timeline_month(path)
    if month is None:
        return None
    year, number = month
    if not (1 <= year <= 9999 and 1 <= number <= 12):
        return None
    return datetime(year, number, 1, tzinfo=UTC).timestamp()
