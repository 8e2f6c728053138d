"""The offline extractor's pieces: dates against a session date, turns and sentences,
entity names (known, aliases, kinship, capitalised), and DiffMem blocks in the writer."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memhub.memory.blocks import split_file
from memhub.memory.dates import resolve_dates
from memhub.memory.extractor import Entity, extract_offline, names_in, turns
from memhub.memory.writer import append_to_section, block

WEDNESDAY = date(2024, 1, 17)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("I saw her yesterday", "2024-01-16"),
        ("the day before yesterday", "2024-01-15"),
        ("tomorrow we fly", "2024-01-18"),
        ("last Friday we met", "2024-01-12"),
        ("on Monday I ran", "2024-01-15"),
        ("next Tuesday", "2024-01-23"),
        ("this coming Friday", "2024-01-19"),
        ("next month I go", "2024-02"),
        ("last year was hard", "2023"),
        ("3 weeks ago", "week of 2023-12-25"),
        ("two days ago", "2024-01-15"),
        ("in a few days", "2024-01-20"),
        ("last weekend", "weekend of 2024-01-13"),
        ("on 8 May, 2023", "2023-05-08"),
        ("May 2023 was fun", "2023-05"),
        ("January 5th", "2024-01-05"),
        ("December 30", "2023-12-30"),  # a month-day far ahead means last year's
        ("2022-11-03", "2022-11-03"),
    ],
)
def test_dates_resolve_against_the_session(text: str, value: str) -> None:
    found = resolve_dates(text, WEDNESDAY)
    assert [m.value for m in found] == [value]


def test_may_the_verb_is_not_a_date() -> None:
    assert resolve_dates("we may 5 times a week", WEDNESDAY) == []


@given(st.text(max_size=300), st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)))
def test_dates_never_crash_and_spans_point_into_the_text(text: str, anchor: date) -> None:
    for mention in resolve_dates(text, anchor):
        assert text[mention.start : mention.end] == mention.text


def test_turns_and_prose() -> None:
    text = "[D1:3] Caroline: I went.\nMelanie Smith: Nice!\nplain prose: not a speaker\n\nHad tea."
    assert turns(text) == [
        ("D1:3", "Caroline", "I went."),
        (None, "Melanie Smith", "Nice!"),
        (None, None, "plain prose: not a speaker"),
        (None, None, "Had tea."),
    ]


def test_entities_known_aliases_kinship_and_capitalised() -> None:
    known = [Entity("Alexandra Petrova", "people", "memories/people/alexandra.md", ("Sasha",))]
    text = (
        "Sasha and my brother drove to Lisbon last Friday for the Web Summit. "
        "Later Tomasz joined them at the Blue Door Cafe."
    )
    out = extract_offline(text, WEDNESDAY, "me", known)
    paths = set(out.entities)
    assert paths == {
        "memories/people/alexandra.md",
        "memories/people/brother.md",
        "memories/contexts/lisbon.md",
        "memories/events/web-summit.md",
        "memories/people/tomasz.md",
        "memories/contexts/blue-door-cafe.md",
    }
    first = out.facts[0]
    assert first.when == "2024-01-12" and "last Friday (2024-01-12)" in first.text
    assert first.about_user


def test_speakers_questions_and_greetings() -> None:
    text = (
        "[D1:1] Caroline: Hey Mel!\n"
        "[D1:2] Melanie: How was the support group yesterday?\n"
        "[D1:3] Caroline: I went to the support group yesterday and felt accepted."
    )
    out = extract_offline(text, date(2023, 5, 8), "locomo", [])
    assert len(out.facts) == 1  # the greeting and the question state nothing
    fact = out.facts[0]
    assert fact.ref == "D1:3" and fact.speaker == "Caroline" and not fact.about_user
    assert fact.entities == ["memories/people/caroline.md"]
    assert fact.line() == (
        "- 2023-05-07: Caroline: I went to the support group yesterday (2023-05-07) "
        "and felt accepted. [D1:3]"
    )


def test_names_in_skips_sentence_openers() -> None:
    assert names_in("Tell me more. How is Priya doing? Where does Priya work?") == ["Priya"]


def test_writer_blocks_are_diffmem_blocks() -> None:
    text = "# Priya\n\n## Timeline\n\n## Notes\n\nLikes tea.\n"
    updated = append_to_section(text, "Timeline", block("2024-01-15 — session s", ["- a fact"]))
    assert updated.index("- a fact") < updated.index("## Notes")
    blocks = split_file("memories/people/priya.md", updated)
    fact = next(b for b in blocks if "a fact" in b.text)
    assert fact.kind == "diffmem" and fact.strength == "Medium"
    assert append_to_section("# X\n", "Timeline", "B\n") == "# X\n\n## Timeline\n\nB\n"
