"""Markdown: one block per section, found by markdown-it-py (CommonMark), or for the
common markdown by :mod:`.scan`, which applies markdown-it's own rules faster and
defers to it for anything else.

A section runs from a heading (ATX ``## x`` or setext ``x\\n===``) to the next
heading of any level; the text before the first heading is a section with an
empty trail. Headings inside code, block quotes or lists are not section
breaks, code is never split, over-long sections are cut at blank lines
outside code. Only markdown-it's block rules run (no inline parsing), and
every regex applied afterwards reads a bounded slice of a line, so the cost
is linear in the size of the file.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from markdown_it import MarkdownIt

from memhub.memory.blocks.model import (
    MAX_BLOCK_CHARS,
    Block,
    FileKind,
    always_load_in,
    clean_heading,
    leading_blank,
    strength_of,
)
from memhub.memory.blocks.scan import scan

_MD = MarkdownIt("commonmark", {"maxNesting": 20}).disable("inline")
# markdown-it's cost is per token, not per byte: a heading every other line costs ~50x
# prose of the same size. Above this many block starts (a cheap count: a line after a
# blank one, or one that opens a heading, quote, list, fence, table or setext line),
# a file is cut into paragraphs instead, and the index reports why.
MAX_BLOCK_STARTS = 8_000
_OPENERS = frozenset("#>-*+=`~|<0123456789")


class StructureBudgetExceeded(ValueError):
    """A text with more block structure than :data:`MAX_BLOCK_STARTS`."""


def count_block_starts(lines: list[str], limit: int = MAX_BLOCK_STARTS) -> int:
    """Lines that may start a block, counted up to just past ``limit`` (linear, cheap)."""
    count = 0
    previous_blank = True
    for line in lines:
        body = line.lstrip(" \t")
        if not body:
            previous_blank = True
            continue
        if previous_blank or body[0] in _OPENERS or len(line) - len(body) >= 4:
            count += 1
            if count > limit:
                break
        previous_blank = False
    return count


@dataclass(frozen=True, slots=True)
class Heading:
    start: int  # 0-based first line of the heading
    end: int  # 0-based line after it (setext headings take two lines or more)
    level: int
    title: str
    atx: bool


@dataclass(frozen=True, slots=True)
class Section:
    start: int  # 0-based, inclusive
    end: int  # exclusive
    body_start: int  # the first line after the heading (== start without one)
    trail: tuple[str, ...]


class Outline:
    """The block structure of one markdown text: headings, code lines, sections."""

    def __init__(self, text: str, *, scan_first: bool = True) -> None:
        self.lines = text.split("\n")
        if count_block_starts(self.lines) > MAX_BLOCK_STARTS:
            raise StructureBudgetExceeded(
                f"over {MAX_BLOCK_STARTS} blocks of markdown structure: cut into paragraphs"
            )
        # lone CRs would be line breaks to markdown-it but not to str.split("\n"):
        # blank them (same length) so that its line numbers are ours
        src = text.replace("\r", " ")
        self.headings: list[Heading] = []
        self.code = bytearray(len(self.lines))  # 1: a line inside a code block or fence
        scanned = scan(src) if scan_first else None
        if scanned is None:
            self._parse(src)
        else:
            for line, level, title in scanned.headings:
                self.headings.append(Heading(line, line + 1, level, clean_heading(title), True))
            for start, end in scanned.code:
                self.code[start:end] = b"\x01" * (end - start)
        self.sections = self._sections()
        self._starts = [s.start for s in self.sections]

    def _parse(self, src: str) -> None:
        """Headings and code lines by markdown-it (what :func:`scan` does not follow)."""
        tokens = _MD.parse(src)
        for i, token in enumerate(tokens):
            if token.map is None:
                continue
            if token.type == "heading_open" and token.level == 0:
                inline = tokens[i + 1]
                self.headings.append(
                    Heading(
                        token.map[0],
                        token.map[1],
                        int(token.tag[1]),
                        clean_heading(inline.content),
                        token.markup.startswith("#"),
                    )
                )
            elif token.type in ("fence", "code_block"):
                start, end = token.map
                self.code[start:end] = b"\x01" * (end - start)

    def _sections(self) -> list[Section]:
        out: list[Section] = []
        trail: list[tuple[int, str]] = []
        start, body = 0, 0
        current: tuple[str, ...] = ()
        for heading in self.headings:
            if heading.start > start:
                out.append(Section(start, heading.start, body, current))
            while trail and trail[-1][0] >= heading.level:
                trail.pop()
            trail.append((heading.level, heading.title))
            current = tuple(t for _, t in trail)
            start, body = heading.start, heading.end
        if start < len(self.lines):
            out.append(Section(start, len(self.lines), max(body, start), current))
        return out

    def trail_at(self, line: int) -> tuple[str, ...]:
        index = bisect_right(self._starts, line) - 1
        return self.sections[index].trail if index >= 0 else ()

    def is_blank_from(self, start: int, end: int) -> bool:
        return all(not self.lines[i].strip() for i in range(start, end))


def split_markdown(path: str, text: str, file_kind: FileKind) -> list[Block]:
    outline = Outline(text)
    blocks: list[Block] = []
    for section in outline.sections:
        if outline.is_blank_from(section.body_start, section.end):
            continue  # a heading without a body, or blank lines
        first = section.start + leading_blank(outline.lines[section.start : section.end])
        for piece_start, piece in cut_long(outline, first, section.end):
            blocks.append(section_block(path, file_kind, section.trail, piece_start, piece))
    return blocks


def section_block(
    path: str, file_kind: FileKind, trail: tuple[str, ...], start: int, piece: str
) -> Block:
    first_line = piece.split("\n", 1)[0]
    return Block(
        path=path,
        seq=0,
        kind="section",
        file_kind=file_kind,
        heading=trail,
        text=piece,
        line_start=start + 1,
        line_end=start + piece.count("\n") + 1,
        always_load=always_load_in(first_line),
        strength=strength_of(first_line),
    )


def cut_long(outline: Outline, start: int, end: int) -> list[tuple[int, str]]:
    """A section as one piece, or cut at blank lines outside code when over-long."""
    lines = outline.lines
    body = "\n".join(lines[start:end]).rstrip()
    if len(body) <= MAX_BLOCK_CHARS:
        return [(start, body)]
    pieces: list[tuple[int, str]] = []
    piece_start = start
    size = 0
    for i in range(start, end):
        size += len(lines[i]) + 1
        boundary = not outline.code[i] and not lines[i].strip() and size >= MAX_BLOCK_CHARS // 2
        if boundary or i == end - 1:
            piece = "\n".join(lines[piece_start : i + 1]).strip("\n")
            if piece.strip():
                pieces.append((piece_start + leading_blank(lines[piece_start : i + 1]), piece))
            piece_start, size = i + 1, 0
    return pieces or [(start, body)]
