"""One model of a turn, whatever the format (memhub.memory.blocks.turns): a markdown section
named by a turn id and a speaker, a ``Speaker: text`` line and a JSON turn give the
same block fields, and a date in a parent heading dates the turns below it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memhub.memory.blocks import split_file
from memhub.memory.blocks.turns import heading_date, turn_heading

MAY_8 = datetime(2023, 5, 8, tzinfo=UTC).timestamp()


def fields(path: str, text: str) -> list[tuple[object, ...]]:
    return [
        (b.kind, b.turn_id, b.speaker, b.text, b.timestamp, b.meta.get("when"))
        for b in split_file(path, text)
    ]


def test_markdown_json_and_speaker_lines_give_the_same_turns() -> None:
    markdown = (
        "# Session 1 — 1:56 pm on 8 May, 2023\n\n"
        "## D1:1 Caroline\nHey Mel! Good to see you!\n\n"
        "## D1:2 Melanie\nI'm swamped with the kids.\n"
    )
    transcript = json.dumps(
        [
            {"speaker": "Caroline", "dia_id": "D1:1", "text": "Hey Mel! Good to see you!"},
            {"speaker": "Melanie", "dia_id": "D1:2", "text": "I'm swamped with the kids."},
        ]
    )
    lines = (
        "# Session 1 — 1:56 pm on 8 May, 2023\n\n"
        "[D1:1] Caroline: Hey Mel! Good to see you!\n"
        "[D1:2] Melanie: I'm swamped with the kids.\n"
    )
    from_markdown = fields("notes/s1.md", markdown)
    from_lines = fields("notes/s1-lines.md", lines)
    from_json = [
        (kind, tid, spk, text)
        for kind, tid, spk, text, _, _ in fields("transcripts/s1.json", transcript)
    ]
    assert [f[:4] for f in from_markdown] == from_json
    assert [f[:4] for f in from_lines] == from_json
    for f in (*from_markdown, *from_lines):
        assert f[4] == MAY_8
        assert f[5] == "1:56 pm on 8 May, 2023"


def test_turn_lines_point_at_the_text() -> None:
    text = "# Day — 2024-02-01\n\n## [T7] Bob\nfirst line\nsecond line\n"
    (block,) = split_file("notes/x.md", text)
    lines = text.split("\n")[block.line_start - 1 : block.line_end]
    assert lines == ["first line", "second line"]
    assert block.timestamp == datetime(2024, 2, 1, tzinfo=UTC).timestamp()


def test_ordinary_sections_stay_sections() -> None:
    text = "# Setup\n\nRun make.\n\n## 2023 Goals\n\nShip it.\n\n## Notes: misc\n\nx: y\n"
    assert [b.kind for b in split_file("notes/plan.md", text)] == ["section"] * 3


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("D1:3 Caroline", ("D1:3", "Caroline")),
        ("[D12:40] Ann Lee", ("D12:40", "Ann Lee")),
        ("#12 Bob", ("12", "Bob")),
        ("[12] - Ann", ("12", "Ann")),
        ("Q3 Goals", None),
        ("Caroline (D1:3)", ("D1:3", "Caroline")),
        ("2023 Goals", None),
        ("Setup", None),
        ("D1:3", None),
        ("D1:3 " + "x" * 300, None),
    ],
)
def test_turn_heading(heading: str, expected: tuple[str, str] | None) -> None:
    assert turn_heading(heading) == expected


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("Session 3 — 7:55 pm on 9 June, 2023", (2023, 6, 9)),
        ("2023-06-09", (2023, 6, 9)),
        ("June 9th, 2023", (2023, 6, 9)),
        ("9 Jun 2023", (2023, 6, 9)),
        ("31 February 2023", None),
        ("0000-01-01", None),
        ("Session 3", None),
    ],
)
def test_heading_date(text: str, day: tuple[int, int, int] | None) -> None:
    expected = datetime(*day, tzinfo=UTC).timestamp() if day else None
    assert heading_date(text) == expected


@given(st.text(max_size=300))
def test_heading_parsers_never_raise(text: str) -> None:
    turn_heading(text)
    heading_date(text)


def test_markdown_sessions_keep_headings_with_their_text() -> None:
    """A markdown file under sessions/ that is neither JSON nor speaker lines: turns
    from its headings, never a heading split from its body."""
    text = "# Session 2 — 9 June 2023\n\n## D2:1 Ann\nWe adopted a dog.\n\n## Summary\nA dog.\n"
    blocks = split_file("sessions/2023-06-09.md", text)
    assert [(b.kind, b.turn_id, b.speaker, b.text) for b in blocks] == [
        ("turn", "D2:1", "Ann", "We adopted a dog."),
        ("section", None, None, "## Summary\nA dog."),
    ]
