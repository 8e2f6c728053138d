"""The line scanner (memory/blocks/scan.py) against markdown-it: every text gets the
same headings and code lines either way, and the scanner answers for the common
markdown rather than giving up on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memhub.memory.blocks import split_file_checked
from memhub.memory.blocks.markdown import Outline
from memhub.memory.blocks.scan import scan

ROOT = Path(__file__).resolve().parents[2]

# line shapes around every rule's edge: headings, fences, lists, quotes, HTML, setext
# underlines, thematic breaks, reference definitions, indents and tabs, odd whitespace
FRAGMENTS = [
    "",
    " ",
    "\t",
    "text",
    "more words here",
    "# Title",
    "## Title ##",
    "### trailing #s#",
    "## tab closed\t##",
    "## spaced #  ",
    "#",
    "# #",
    "#\ttab title",
    "####### seven",
    "#hashtag",
    "## [Strength: High] marked",
    "```",
    "```python",
    "``` a`b",
    "````",
    "~~~",
    "~~~ info ``",
    "``",
    "- item",
    "-",
    "- ",
    "* star",
    "*emphasis*",
    "+ plus",
    "1. one",
    "1)",
    "01. one",
    "2. two",
    "1.x",
    "1234567890. many digits",
    "---",
    "- - -",
    "***",
    "___",
    "===",
    "= not underline",
    "--",
    "> quote",
    "<div>",
    "<!-- comment",
    "<3 love",
    "[ref]: /url",
    "[link](x) text",
    "word ]: colon",
    "|a|b|",
    "\u00a0# nbsp",
    "# title\u3000",
    "x\r",
    "\x00",
    "\u2028",
]


@st.composite
def markdown(draw: st.DrawFn) -> str:
    lines = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["", " ", "  ", "   ", "    ", "\t", " \t"]),
                st.sampled_from(FRAGMENTS),
            ),
            max_size=25,
        )
    )
    return "\n".join(indent + fragment for indent, fragment in lines) + draw(
        st.sampled_from(["", "\n", "\n\n", "\n  "])
    )


def assert_same_outline(text: str) -> None:
    fast = Outline(text)
    reference = Outline(text, scan_first=False)
    assert fast.headings == reference.headings
    assert fast.code == reference.code
    assert fast.sections == reference.sections


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown())
def test_the_scan_finds_what_markdown_it_finds(text: str) -> None:
    assert_same_outline(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="#`~-*_=+>< \t\n1.)[]:ab\r", max_size=200))
def test_the_scan_agrees_on_dense_punctuation(text: str) -> None:
    assert_same_outline(text)


def real_markdown() -> list[Path]:
    return sorted(
        p
        for p in [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("tests/**/*.md")]
        if p.is_file()
    )


@pytest.mark.parametrize("path", real_markdown(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_scan_agrees_on_the_repos_markdown(path: Path) -> None:
    assert_same_outline(path.read_text(encoding="utf-8"))


def test_the_scan_agrees_on_the_redos_inputs() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import redos  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for path, text in redos.inputs(20_000).values():
        assert_same_outline(text)
        blocks, _ = split_file_checked(path, text)
        assert blocks == split_file_checked(path, text)[0]


def test_the_scan_follows_headings_paragraphs_and_code() -> None:
    text = (
        "intro\n\n# One #\n\npara\ncontinued\n    indented continuation\n\n"
        "```py\n# not a heading\n\n```\n\n    indented code\n\n***\n\n## Two\ntext\n~~~\nopen"
    )
    result = scan(text)
    assert result is not None
    assert [(h.line, h.level, h.title) for h in result.headings] == [(2, 1, "One"), (17, 2, "Two")]
    assert result.code == [(8, 12), (13, 14), (19, 21)]
    assert_same_outline(text)


@pytest.mark.parametrize(
    "text",
    [
        "para\n---\n",  # setext heading
        "para\n===",
        "- item\n",
        "para\n- item interrupts\n",
        "para\n1. item interrupts\n",
        "> quote\n",
        "<div>\n",
        "[a]: /url\n",
        "nul \x00 byte\n",
    ],
)
def test_the_scan_gives_up_on_what_it_does_not_follow(text: str) -> None:
    assert scan(text) is None
    assert_same_outline(text)


@pytest.mark.parametrize(
    "text",
    [
        "para\n2. not a list here\n",  # only 1. interrupts a paragraph
        "para\n-\n\ntext\n",  # an empty item cannot interrupt one ... but "-" is an underline
        "[link](x) text\n",  # no "]:" anywhere: no reference definition
        "*emphasis* text\n",
        "2024-05-01 meeting\n",
    ],
)
def test_the_scan_keeps_lines_that_only_look_like_blocks(text: str) -> None:
    assert_same_outline(text)
