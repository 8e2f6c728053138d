"""One model of a conversation turn, whatever the file format.

A turn is a block with a speaker, its text, an optional turn id and a time.
JSON transcripts give those fields directly (:mod:`memhub.memory.blocks`);
people keep the same conversations as markdown, and this module reads the
turns out of markdown sections so that both forms index alike:

- a section whose heading carries a turn id and a speaker (``## D1:3 Caroline``,
  ``## [12] Bob``, ``## Caroline (D1:3)``) is one turn: its body is the text;
- a section whose lines are mostly ``Speaker: text`` is one turn per line;
- a date in a parent heading (``# Session 3 — 7:55 pm on 9 June, 2023``) or in
  the front matter (``date: 2023-06-09``) dates the turns below it.

Every pattern here is anchored and linear: headings are short (the parser
hands over one line), and bodies are matched line by line.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

from memhub.memory.blocks.model import Block

MAX_HEADING = 200  # longer headings are never turn headings or dates

# A turn id: "D1:3" (letters, a number, a colon, a number), "#12", or anything of
# those shapes or a bare number in brackets ("[12]", "(D1:3)"). A bare "2023" or "Q3"
# is not one: "## 2023 Goals" stays a section.
_BARE_ID = r"(?:[A-Za-z]{0,3}\d{1,6}:\d{1,6}|#\d{1,6})"
_BRACKETED_ID = r"[A-Za-z]{0,3}\d{1,6}(?::\d{1,6})?"
_NAME = r"[^\d\s(\[#][^\n(\[]{0,60}?"
_ID_FIRST = re.compile(
    rf"^(?:\[(?P<bid>{_BRACKETED_ID})\]|(?P<id>{_BARE_ID}))\s*[-—–:.]?\s*(?P<speaker>{_NAME})$"
)
_ID_LAST = re.compile(rf"^(?P<speaker>{_NAME})\s*[(\[](?P<bid>{_BRACKETED_ID})[)\]]$")
_SPEAKER = re.compile(r"^[^\W\d_][\w .'’-]{0,40}$")
_TURN_LINE = re.compile(
    r"^\s*(?:\[(?P<id>[^\]]{1,40})\]\s*)?(?P<speaker>[^\W\d_][\w .'’-]{0,39}):\s+(?P<text>\S.*)$"
)

_MONTH_NAMES = (
    "january february march april may june july august september october november december"
).split()
_MONTHS = {name[:n]: i + 1 for i, name in enumerate(_MONTH_NAMES) for n in (3, 4, len(name))}
_ISO_DATE = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_DAY_MONTH_YEAR = re.compile(
    r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mon>[A-Za-z]{3,9})\.?,?\s+(?P<y>\d{4})\b"
)
_MONTH_DAY_YEAR = re.compile(
    r"\b(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})\b"
)


def heading_date(text: str) -> float | None:
    """The date a heading, a front-matter value or a turn's ``date_time`` names (UTC
    midnight), or None."""
    if len(text) > MAX_HEADING:
        return None
    for pattern in (_ISO_DATE, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        month = int(groups["m"]) if "m" in groups else _MONTHS.get(groups["mon"].lower(), 0)
        try:
            return datetime(int(groups["y"]), month, int(groups["d"]), tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def turn_heading(heading: str) -> tuple[str, str] | None:
    """(turn id, speaker) when a heading names one turn, else None."""
    heading = heading.strip()
    if len(heading) > MAX_HEADING:
        return None
    for pattern in (_ID_FIRST, _ID_LAST):
        match = pattern.match(heading)
        if match is None:
            continue
        speaker = match.group("speaker").strip(" -—–:.")
        if _SPEAKER.match(speaker) and len(speaker.split()) <= 4:
            found = match.groupdict()
            return (found.get("id") or found["bid"]).lstrip("#"), speaker
    return None


def markdown_turns(blocks: list[Block], *, file_date: str | None = None) -> list[Block]:
    """Markdown section blocks, with turns recognised as turns and dated."""
    out: list[Block] = []
    for block in blocks:
        if block.kind != "section":
            out.append(block)
            continue
        named = turn_heading(block.heading[-1]) if block.heading else None
        if named is not None:
            dated = _date_of(block.heading[:-1], file_date)
            out.append(_turn_from_section(block, *named, dated))
            continue
        lines = _turn_lines(block)
        if lines:
            out.extend(lines_to_turns(block, lines, _date_of(block.heading, file_date)))
        else:
            out.append(block)
    return out


def _date_of(trail: tuple[str, ...], file_date: str | None) -> tuple[str, float] | None:
    for heading in reversed(trail):
        stamp = heading_date(heading)
        if stamp is not None:
            return heading, stamp
    if file_date:
        stamp = heading_date(file_date)
        if stamp is not None:
            return file_date, stamp
    return None


def _turn_from_section(
    block: Block, turn_id: str, speaker: str, dated: tuple[str, float] | None
) -> Block:
    lines = block.text.split("\n")
    drop = 0
    if lines[0].lstrip().startswith("#"):
        drop = 1
    elif len(lines) > 1 and lines[1].strip() and set(lines[1].strip()) <= {"=", "-"}:
        drop = 2  # a setext heading
    body = "\n".join(lines[drop:]).strip("\n")
    skipped = len(lines) - 1 - body.count("\n") if body else 0
    return replace(
        block,
        kind="turn",
        text=body.strip() or block.heading[-1],
        line_start=block.line_start + skipped,
        turn_id=turn_id,
        speaker=speaker,
        timestamp=dated[1] if dated else block.timestamp,
        meta={**block.meta, "when": _when(dated[0])} if dated else block.meta,
    )


def _turn_lines(block: Block) -> list[tuple[int, re.Match[str]]]:
    """(line offset, match) of the ``Speaker: text`` lines of a section, when they
    are most of its non-heading lines."""
    if block.text.count(":") < 2:  # two turn lines at least, each with its colon
        return []
    lines = block.text.split("\n")
    start = 1 if lines and lines[0].lstrip().startswith("#") else 0
    body = [(i, ln) for i, ln in enumerate(lines) if i >= start and ln.strip()]
    found = [(i, m) for i, ln in body if (m := _TURN_LINE.match(ln)) is not None]
    if len(found) < 2 or len(found) * 2 < len(body):
        return []
    return found


def lines_to_turns(
    block: Block, lines: list[tuple[int, re.Match[str]]], dated: tuple[str, float] | None
) -> list[Block]:
    return [
        replace(
            block,
            kind="turn",
            heading=(*block.heading, match.group("speaker").strip()),
            text=match.group("text").strip(),
            line_start=block.line_start + offset,
            line_end=block.line_start + offset,
            turn_id=match.group("id"),
            speaker=match.group("speaker").strip(),
            timestamp=dated[1] if dated else block.timestamp,
            meta={**block.meta, "when": _when(dated[0])} if dated else block.meta,
        )
        for offset, match in lines
    ]


def _when(heading: str) -> str:
    """The time words of a dating heading: ``Session 3 — 7:55 pm on 9 June, 2023`` →
    ``7:55 pm on 9 June, 2023`` (what a JSON turn's ``date_time`` holds)."""
    for sep in (" — ", " – ", " - ", ": "):
        if sep in heading:
            return heading.split(sep, 1)[1].strip()
    return heading.strip()
