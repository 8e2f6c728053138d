"""The outline of common markdown in one pass over its lines, exactly as markdown-it
would find it, or nothing.

markdown-it-py's block parser costs ~60 µs a section (a token object per block, a rule
call per rule per line); most notes hold only ATX headings, paragraphs, fenced and
indented code and thematic breaks, whose rules are short. :func:`scan` applies those
rules, transcribed from markdown-it-py's ``rules_block`` (heading, fence, code, hr,
lheading, paragraph and the paragraph terminators) at the top level of a document, and
gives up (None) at the first line that could start anything else: a list, block
quote, HTML block, setext underline, reference definition or a NUL byte. The caller
then runs markdown-it over the whole text, so the result is markdown-it's either way;
``tests/unit/test_blocks_scan.py`` compares the two on generated and real markdown.

Every line is read once (a paragraph's lines by the paragraph, a fence's by the fence),
and each test reads one line, so the cost is linear in the text.
"""

from __future__ import annotations

from typing import NamedTuple

# markdown_it.common.utils.MD_TRIM_CHARS: what mdTrim strips from a heading's text
_MD_TRIM = "".join(
    chr(c)
    for c in sorted(
        {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x202F, 0x205F, 0x3000}
        | set(range(0x2000, 0x200B))
        | {0x2028, 0x2029}
    )
)
_LIST_START = frozenset("*-+0123456789")


class ScannedHeading(NamedTuple):
    line: int  # 0-based; an ATX heading is one line
    level: int
    title: str  # markdown-it's inline content of the heading (before clean_heading)


class Scan(NamedTuple):
    headings: list[ScannedHeading]
    code: list[tuple[int, int]]  # [start, end) line ranges of fences and indented code


def _columns(line: str, shift: int) -> int:
    """markdown-it's ``sCount``: the indent's width with tabs to the next multiple of 4."""
    prefix = line[:shift]
    if "\t" not in prefix:
        return shift
    col = 0
    for ch in prefix:
        col = col + 4 - col % 4 if ch == "\t" else col + 1
    return col


def atx_heading(body: str) -> tuple[int, str] | None:
    """(level, content) when ``body`` (a line after its indent) is an ATX heading."""
    level = len(body) - len(body.lstrip("#"))
    if level == 0 or level > 6 or (level < len(body) and body[level] not in " \t"):
        return None
    rest = body[level:].rstrip(" \t")
    closed = rest.rstrip("#")
    if closed and closed[-1] in " \t":  # a closing sequence: "## title ##"
        rest = closed
    return level, rest.strip(_MD_TRIM)


def fence_opening(body: str) -> tuple[str, int] | None:
    """(marker, length) when ``body`` opens a fenced code block."""
    marker = body[:1]
    if marker not in ("`", "~") or len(body) < 3:
        return None
    info = body.lstrip(marker)
    length = len(body) - len(info)
    if length < 3 or (marker == "`" and "`" in info):
        return None
    return marker, length


def _closes(body: str, marker: str, length: int) -> bool:
    rest = body.lstrip(marker)
    return len(body) - len(rest) >= length and not rest.strip(" \t")


def thematic_break(body: str) -> bool:
    marker = body[:1]
    return (
        marker in ("*", "-", "_")
        and body.count(marker) >= 3
        and not body.replace(marker, "").replace(" ", "").replace("\t", "")
    )


def _underline(body: str) -> bool:
    """A setext underline (``===`` or ``---``, spaces after)."""
    return body[:1] in ("=", "-") and not body.lstrip(body[0]).strip(" \t")


def _opens_list(body: str) -> bool:
    """Whether a list item could start here (a bullet, or digits then ``.`` or ``)``)."""
    if body[0] in "*-+":
        return len(body) == 1 or body[1] in " \t"
    digits = len(body) - len(body.lstrip("0123456789"))
    return (
        0 < digits < 10
        and body[digits : digits + 1] in (".", ")")
        and (len(body) == digits + 1 or body[digits + 1] in " \t")
    )


def scan(src: str) -> Scan | None:
    """The top-level headings and code ranges markdown-it finds in ``src`` (lone CRs
    already blanked), or None when ``src`` holds something this scan does not follow."""
    if "\0" in src:
        return None  # markdown-it reads it as U+FFFD
    lines = src.split("\n")
    end = len(lines)
    if not lines[-1].strip(" \t"):
        end -= 1  # markdown-it does not count a last line of spaces (or nothing)
    references = "]:" in src  # no "]:", no reference definition anywhere
    headings: list[ScannedHeading] = []
    code: list[tuple[int, int]] = []
    i = 0
    while i < end:
        line = lines[i]
        body = line.lstrip(" \t")
        if not body:
            i += 1
            continue
        shift = len(line) - len(body)
        if shift and _columns(line, shift) >= 4:
            i = _indented_code(lines, i, end, code)
            continue
        first = body[0]
        if first in (">", "<") or (first == "[" and references):
            return None  # a block quote, HTML, a reference definition
        if first in ("`", "~") and (fence := fence_opening(body)) is not None:
            i = _fence(lines, i, end, fence, code)
            continue
        if first in ("*", "-", "_") and thematic_break(body):
            i += 1
            continue
        if first in _LIST_START and _opens_list(body):
            return None
        if first == "#" and (heading := atx_heading(body)) is not None:
            headings.append(ScannedHeading(i, *heading))
            i += 1
            continue
        paragraph_end = _paragraph(lines, i + 1, end)
        if paragraph_end is None:
            return None
        i = paragraph_end
    return Scan(headings, code)


def _indented_code(lines: list[str], i: int, end: int, code: list[tuple[int, int]]) -> int:
    start = i
    last = i = i + 1
    while i < end:
        line = lines[i]
        body = line.lstrip(" \t")
        if body and _columns(line, len(line) - len(body)) < 4:
            break
        i += 1
        if body:
            last = i
    code.append((start, last))
    return last


def _fence(
    lines: list[str], i: int, end: int, fence: tuple[str, int], code: list[tuple[int, int]]
) -> int:
    marker, length = fence
    start = i
    for j in range(i + 1, end):
        line = lines[j]
        body = line.lstrip(" \t")
        if body[:1] != marker or _columns(line, len(line) - len(body)) >= 4:
            continue
        if _closes(body, marker, length):
            code.append((start, j + 1))
            return j + 1
    code.append((start, end))
    return end


def _paragraph(lines: list[str], i: int, end: int) -> int | None:
    """Where a paragraph whose first line is ``i - 1`` ends (None: it becomes something
    this scan does not follow: a setext heading, or a list or quote interrupts it)."""
    while i < end:
        line = lines[i]
        body = line.lstrip(" \t")
        if not body:
            return i
        shift = len(line) - len(body)
        if shift and _columns(line, shift) >= 4:
            i += 1  # indented text continues a paragraph
            continue
        first = body[0]
        if first in ("=", "-") and _underline(body):
            return None  # setext heading
        if first in (">", "<"):
            return None
        if first in ("`", "~") and fence_opening(body) is not None:
            return i
        if first in ("*", "-", "_") and thematic_break(body):
            return i
        if first in _LIST_START and _interrupts_as_list(body):
            return None
        if first == "#" and atx_heading(body) is not None:
            return i
        i += 1
    return i


def _interrupts_as_list(body: str) -> bool:
    """A list item that may interrupt a paragraph: a bullet, or ``1.``/``1)``, with text."""
    if not _opens_list(body):
        return False
    if body[0] in "*-+":
        return bool(body[1:].strip(" \t"))
    digits = len(body) - len(body.lstrip("0123456789"))
    return int(body[:digits]) == 1 and bool(body[digits + 1 :].strip(" \t"))
