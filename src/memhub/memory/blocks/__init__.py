"""Cutting files into blocks: the units of search and context assembly.

Blocks are derived from file contents, never stored by hand. What a file is
cut into depends on what it is (:func:`classify`), one module per kind:

- :mod:`.markdown`: one block per section (ATX and setext headings, found by
  markdown-it-py), with its heading trail and line range; code is never split;
  over-long sections are cut at blank lines.
- :mod:`.diffmem` (``memories/{people,contexts,events}/``, ``timeline/YYYY-MM.md``,
  the user entity): ``/START … /END`` and ``### Header … /END`` blocks with
  ``[Strength: …]`` and ``[ALWAYS_LOAD]`` markers; markdown for the rest.
- :mod:`.instructions` (``CLAUDE.md``, ``AGENTS.md``, …): markdown sections; a
  mandatory rule (MANDATORY, NEVER, ВАЖНО, ЗАВЖДИ, …) is always loaded.
- :mod:`.items` (``items/**.md``): one block, YAML front matter parsed.
- :mod:`.transcripts` (``transcripts/``, ``sessions/``, ``*.jsonl``, JSON chat
  exports): one block per turn; otherwise markdown sections or paragraphs.
- :mod:`.turns`: one model of a turn whatever the format: a markdown section
  named ``## D1:3 Caroline`` or ``Speaker: text`` lines are turns, dated by a
  parent heading, exactly as a JSON turn.

Budgets: every splitter is linear in its input. Text over
:data:`MAX_PARSE_CHARS` is cut into paragraphs only. A splitter that fails on a
file (for whatever reason) does not lose it: the file is cut into paragraphs
and :func:`split_file_checked` returns the error, which the index reports.
"""

from __future__ import annotations

from dataclasses import replace

from memhub.memory.blocks.diffmem import split_diffmem, timeline_time
from memhub.memory.blocks.instructions import is_mandatory
from memhub.memory.blocks.items import FrontMatterError, parse_front_matter, split_item
from memhub.memory.blocks.markdown import split_markdown
from memhub.memory.blocks.model import (
    MAX_BLOCK_CHARS,
    Block,
    FileKind,
    classify,
    clean_heading,
)
from memhub.memory.blocks.transcripts import split_paragraphs, split_transcript
from memhub.memory.blocks.turns import markdown_turns

MAX_PARSE_CHARS = 4 * 1024 * 1024

__all__ = [
    "MAX_BLOCK_CHARS",
    "MAX_PARSE_CHARS",
    "Block",
    "FrontMatterError",
    "classify",
    "clean_heading",
    "is_mandatory",
    "parse_front_matter",
    "split_file",
    "split_file_checked",
]


def split_file(path: str, text: str, *, workspace: str | None = None) -> list[Block]:
    """Cut one file's text into blocks (empty for binary or empty files)."""
    return split_file_checked(path, text, workspace=workspace)[0]


def split_file_checked(
    path: str, text: str, *, workspace: str | None = None
) -> tuple[list[Block], str | None]:
    """The blocks of one file and, when its kind's splitter could not read it, why
    (the blocks are then its paragraphs, so the file stays searchable)."""
    file_kind = classify(path, workspace)
    if file_kind == "binary" or not text.strip():
        return [], None
    error: str | None = None
    if len(text) > MAX_PARSE_CHARS:
        blocks = split_paragraphs(path, text, file_kind)
        error = f"over {MAX_PARSE_CHARS} characters: indexed as plain paragraphs"
    else:
        try:
            blocks, error = _split(path, text, file_kind)
        except (ValueError, RecursionError, MemoryError) as exc:
            blocks = split_paragraphs(path, text, file_kind)
            error = f"{type(exc).__name__}: {exc}"[:500]
    if file_kind == "instructions":
        blocks = [replace(b, always_load=b.always_load or is_mandatory(b)) for b in blocks]
    if file_kind == "timeline":
        stamp = timeline_time(path)
        blocks = [replace(b, timestamp=b.timestamp or stamp) for b in blocks]
    return _numbered(blocks), error


def _numbered(blocks: list[Block]) -> list[Block]:
    """The blocks with ``seq`` set to their place. They were made by this call's splitter
    and nobody else holds them yet, so they are numbered in place: a ``replace`` per
    block was a sixth of the cost of cutting a file."""
    seen: set[int] = set()
    for i, block in enumerate(blocks):
        if id(block) in seen:  # one object twice in the list: the second is a copy
            blocks[i] = replace(block, seq=i)
        elif block.seq != i:
            object.__setattr__(block, "seq", i)
        seen.add(id(block))
    return blocks


def _split(path: str, text: str, file_kind: FileKind) -> tuple[list[Block], str | None]:
    if file_kind == "transcript":
        return split_transcript(path, text), None
    if file_kind == "text":
        return split_paragraphs(path, text, file_kind), None
    if file_kind == "item":
        return split_item(path, text)
    if file_kind in ("entity", "timeline", "user"):
        return split_diffmem(path, text, file_kind), None
    blocks = split_markdown(path, text, file_kind)
    return (markdown_turns(blocks) if file_kind == "markdown" else blocks), None
