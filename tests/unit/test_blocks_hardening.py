"""Issue 8's regressions in the block splitters: linear parsing (no ReDoS), setext
headings, files that used to raise, markdown sessions, YAML front matter."""

from __future__ import annotations

import json

import pytest

from memhub.memory.blocks import (
    MAX_BLOCK_CHARS,
    MAX_PARSE_CHARS,
    split_file,
    split_file_checked,
)
from memhub.memory.blocks.items import MAX_FRONT_MATTER_BYTES, parse_front_matter


def lines_of(text: str, line_start: int, line_end: int) -> str:
    return "\n".join(text.split("\n")[line_start - 1 : line_end])


# -- item 1: a real parser, linear in the input ------------------------------------------


@pytest.mark.timeout(20)  # the old heading regex was cubic: 2 KB took 34 s, 40 KB ~ days
def test_a_heading_with_a_long_run_of_spaces_parses_at_once() -> None:
    text = "# a" + " " * 40_000 + "b\n\nbody\n"
    blocks = split_file("notes/h.md", text)
    assert blocks[0].heading == ("a",)  # heading text is cut to 300 characters first
    assert blocks[-1].text == "body" and blocks[-1].line_start == 3
    (short,) = split_file("notes/h.md", "# a" + " " * 200 + "b\n\nbody\n")
    assert short.heading == ("a b",)


@pytest.mark.timeout(20)  # the old DiffMem splitter scanned to the end for every header
def test_many_diffmem_headers_without_end_are_linear() -> None:
    text = "### x\nline\n" * 7_000
    blocks = split_file("memories/people/p.md", text)
    assert len(blocks) == 7_000
    assert all(b.kind == "section" for b in blocks)


def test_setext_headings_are_sections_with_their_body() -> None:
    text = "Setup\n=====\n\nInstall it.\n\nUsage\n-----\n\nCall it.\n"
    blocks = split_file("notes/s.md", text)
    assert [b.heading for b in blocks] == [("Setup",), ("Setup", "Usage")]  # = h1, - h2
    assert [(b.line_start, b.line_end) for b in blocks] == [(1, 4), (6, 9)]
    assert blocks[0].text == "Setup\n=====\n\nInstall it."
    assert lines_of(text, blocks[1].line_start, blocks[1].line_end) == blocks[1].text


def test_headings_in_quotes_lists_and_indented_code_are_not_sections() -> None:
    text = "# Top\n\n> # quoted\n\n- # in a list\n\n    # indented code\n\ntext\n"
    (block,) = split_file("notes/q.md", text)
    assert block.heading == ("Top",)


def test_over_the_parse_budget_a_file_is_paragraphs_and_says_so() -> None:
    text = ("# h\n" + "word " * 1000 + "\n\n") * (MAX_PARSE_CHARS // 5000 + 1)
    blocks, error = split_file_checked("notes/huge.md", text)
    assert error is not None and "plain paragraphs" in error
    assert blocks and all(b.kind == "paragraph" for b in blocks)


# -- item 6: files that used to raise ------------------------------------------------------


def test_a_timeline_of_year_zero_is_cut_without_a_date() -> None:
    blocks, error = split_file_checked("timeline/0000-01.md", "# x\n\ntext\n")
    assert error is None
    assert [b.timestamp for b in blocks] == [None]


def test_deeply_nested_json_is_plain_text() -> None:
    text = "[" * 100_000
    blocks, error = split_file_checked("data/deep.json", text)
    assert [b.kind for b in blocks] == ["paragraph"]
    assert error is not None and "nested too deeply" in error
    assert split_file("transcripts/deep.json", "{" * 100_000 + "\n")  # JSON lines too


# -- item 14: markdown sessions keep their structure ---------------------------------------


def test_a_markdown_session_that_is_not_turns_is_cut_into_sections() -> None:
    text = "# Session 12\n\nWe talked.\n\n## Decisions\n\nUse tantivy.\nShip Friday.\n"
    blocks = split_file("sessions/2024-05-02.md", text)
    assert [(b.kind, b.heading) for b in blocks] == [
        ("section", ("Session 12",)),
        ("section", ("Session 12", "Decisions")),
    ]
    assert blocks[1].text == "## Decisions\n\nUse tantivy.\nShip Friday."
    assert all(b.file_kind == "transcript" for b in blocks)


def test_a_markdown_transcript_of_turns_is_still_turns() -> None:
    blocks = split_file("transcripts/t.md", "Ann: hi\nBo: hello\n")
    assert [b.speaker for b in blocks] == ["Ann", "Bo"]


# -- item 15: YAML front matter --------------------------------------------------------------


def test_front_matter_is_yaml() -> None:
    text = (
        "---\n"
        "title: 'Coffee: order'\n"
        "always_load: true # pinned\n"
        "tags:\n  - drinks\n  - morning\n"
        "created_at: 2024-05-02\n"
        "---\n"
        "Flat white.\n"
    )
    (block,) = split_file("items/c.md", text)
    assert block.always_load is True
    assert block.heading == ("Coffee: order",)
    assert block.meta["tags"] == ["drinks", "morning"]
    assert block.meta["created_at"] == "2024-05-02"
    assert block.timestamp == 1714608000.0
    assert (block.line_start, block.line_end) == (9, 9)
    json.dumps(block.meta)  # plain JSON values only


def test_false_stays_false_and_a_comment_is_not_a_value() -> None:
    (block,) = split_file("items/d.md", "---\nalways_load: false # not pinned\n---\nx\n")
    assert block.always_load is False


@pytest.mark.parametrize(
    "front",
    [
        "a: [unclosed\n",
        "- just\n- a list\n",
        "x: " + "y" * MAX_FRONT_MATTER_BYTES + "\n",
        # an alias bomb: small YAML, a huge document once expanded
        "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        "!!python/object/apply:os.system ['true']\n",
    ],
)
def test_bad_front_matter_keeps_the_item_and_reports_why(front: str) -> None:
    text = f"---\n{front}---\nthe body\n"
    blocks, error = split_file_checked("items/bad.md", text)
    assert error is not None
    (block,) = blocks
    assert "the body" in block.text and block.meta == {}


def test_parse_front_matter_without_any() -> None:
    assert parse_front_matter("no front matter\n") == ({}, "no front matter\n", 0)


def test_more_structure_than_the_budget_is_paragraphs_and_says_so() -> None:
    from memhub.memory.blocks.markdown import MAX_BLOCK_STARTS

    text = "## x\ny\n" * (MAX_BLOCK_STARTS + 1)
    blocks, error = split_file_checked("notes/dense.md", text)
    assert error is not None and "paragraphs" in error
    assert {b.kind for b in blocks} == {"paragraph"}
    assert max(len(b.text) for b in blocks) <= MAX_BLOCK_CHARS  # cut between lines
    assert blocks[-1].line_end == text.count("\n")
    under = "## x\ny\n" * (MAX_BLOCK_STARTS // 2)
    blocks, error = split_file_checked("notes/ok.md", under)
    assert error is None and len(blocks) == MAX_BLOCK_STARTS // 2
