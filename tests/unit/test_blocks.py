"""Cutting files into blocks: markdown sections, DiffMem blocks, instruction rules,
memory items, transcripts and plain text (memhub.memory.blocks)."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memhub.memory.blocks import MAX_BLOCK_CHARS, Block, classify, split_file


def lines_of(text: str, block: Block) -> str:
    """The lines of ``text`` a block says it covers."""
    return "\n".join(text.split("\n")[block.line_start - 1 : block.line_end])


# --- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("CLAUDE.md", "instructions"),
        ("sub/dir/AGENTS.md", "instructions"),
        ("api.instructions.md", "instructions"),
        ("timeline/2024-05.md", "timeline"),
        ("memories/people/alice.md", "entity"),
        ("memories/contexts/work.md", "entity"),
        ("ws.md", "user"),
        ("items/2024/one.md", "item"),
        ("transcripts/chat.json", "transcript"),
        ("logs/day.jsonl", "transcript"),
        ("export.json", "transcript"),
        ("notes/today.md", "markdown"),
        ("README", "text"),
        ("notes.txt", "text"),
        ("photo.png", "binary"),
        ("db/memory.sqlite", "binary"),
    ],
)
def test_classify(path: str, kind: str) -> None:
    assert classify(path, "ws") == kind


def test_binary_and_empty_files_have_no_blocks() -> None:
    assert split_file("photo.png", "whatever") == []
    assert split_file("notes/empty.md", "  \n\n \t\n") == []


# --- markdown -------------------------------------------------------------------------------

NOTE = """# Project

Intro line.

## Setup

Install it.
Then run it.

### Linux

Use apt.

## Usage

Call the API.
"""


def test_markdown_sections_keep_heading_trail_and_lines() -> None:
    blocks = split_file("notes/project.md", NOTE)
    assert [b.heading for b in blocks] == [
        ("Project",),
        ("Project", "Setup"),
        ("Project", "Setup", "Linux"),
        ("Project", "Usage"),
    ]
    assert [(b.line_start, b.line_end) for b in blocks] == [(1, 3), (5, 8), (10, 12), (14, 16)]
    for block in blocks:
        assert lines_of(NOTE, block) == block.text
        assert block.kind == "section" and block.file_kind == "markdown"
    assert [b.seq for b in blocks] == [0, 1, 2, 3]
    assert blocks[2].title == "Project › Setup › Linux"
    assert blocks[2].block_id == "notes/project.md#2"


def test_heading_only_sections_are_skipped_and_text_before_the_first_heading_kept() -> None:
    text = "Preamble without heading.\n\n# Empty\n\n## Full\n\nbody\n"
    blocks = split_file("a.md", text)
    assert [b.heading for b in blocks] == [(), ("Empty", "Full")]
    assert blocks[0].text == "Preamble without heading."
    assert (blocks[1].line_start, blocks[1].line_end) == (5, 7)


def test_headings_inside_code_fences_are_ignored_and_fences_never_split() -> None:
    text = (
        "## Build\n\n"
        "```bash\n"
        "# not a heading: a shell comment\n"
        "make build\n"
        "\n"
        "## still code\n"
        "```\n\n"
        "~~~\n"
        "# also code\n"
        "~~~\n\n"
        "## Next\n\ntext\n"
    )
    blocks = split_file("b.md", text)
    assert [b.heading for b in blocks] == [("Build",), ("Next",)]
    assert "# not a heading" in blocks[0].text and "## still code" in blocks[0].text
    assert blocks[0].text.count("```") == 2 and blocks[0].text.count("~~~") == 2


def test_an_unclosed_fence_runs_to_the_end_of_the_file() -> None:
    text = "## A\n\n```\ncode\n## B inside\n"
    blocks = split_file("c.md", text)
    assert [b.heading for b in blocks] == [("A",)]
    assert "## B inside" in blocks[0].text


def test_over_long_sections_are_cut_at_blank_lines_outside_fences() -> None:
    paragraph = "word " * 60  # ~300 characters
    fence = "```\n" + "\n".join(["x = 1", ""] * 5) + "```"  # blank lines inside: no cut there
    body = "\n\n".join([paragraph] * 12 + [fence] + [paragraph] * 12)
    text = f"## Long\n\n{body}\n"
    blocks = split_file("long.md", text)
    assert len(blocks) > 1
    assert all(b.heading == ("Long",) for b in blocks)
    assert all(len(b.text) <= MAX_BLOCK_CHARS for b in blocks)
    fenced = [b for b in blocks if "```" in b.text]
    assert len(fenced) == 1 and fenced[0].text.count("```") == 2  # the fence stayed whole
    for block in blocks:
        assert lines_of(text, block) == block.text
    # together the pieces are the whole section, in order and without overlap
    assert [b.line_start for b in blocks] == sorted(b.line_start for b in blocks)
    for first, second in pairwise(blocks):
        assert first.line_end < second.line_start


def test_heading_markers_are_cleaned_from_the_trail() -> None:
    text = "## Deploy notes [Strength: High] [ALWAYS_LOAD]\n\nkeep it\n"
    (block,) = split_file("notes/d.md", text)
    assert block.heading == ("Deploy notes",)
    assert block.strength == "High" and block.always_load


# --- DiffMem memory files -----------------------------------------------------------------

ENTITY = """# Alice

Works on the search team.

/START
### Preferences [Strength: High]
Likes tea, not coffee.
/END

### Birthday [ALWAYS_LOAD] [Strength: Medium]
12 March.
/END

## Notes

Free text after the blocks.
"""


def test_diffmem_start_end_and_header_blocks() -> None:
    blocks = split_file("memories/people/alice.md", ENTITY)
    assert all(b.file_kind == "entity" for b in blocks)
    by_kind = [(b.kind, b.heading) for b in blocks]
    assert by_kind == [
        ("section", ("Alice",)),
        ("diffmem", ("Alice", "Preferences")),
        ("diffmem", ("Alice", "Birthday")),
        ("section", ("Alice", "Notes")),
    ]
    intro, prefs, birthday, notes = blocks
    assert "/START" not in prefs.text and "/END" not in prefs.text
    assert prefs.text.startswith("### Preferences") and "Likes tea" in prefs.text
    assert prefs.strength == "High" and not prefs.always_load
    assert (prefs.line_start, prefs.line_end) == (5, 8)  # the /START line to the /END line
    assert birthday.strength == "Medium" and birthday.always_load
    assert (birthday.line_start, birthday.line_end) == (10, 12)
    assert intro.text == "# Alice\n\nWorks on the search team."
    assert notes.text.endswith("Free text after the blocks.")


def test_unterminated_diffmem_block_falls_back_to_markdown() -> None:
    text = "# Bob\n\n/START\n### Half\nno end marker\n"
    blocks = split_file("memories/people/bob.md", text)
    assert all(b.kind == "section" for b in blocks)
    assert any("no end marker" in b.text for b in blocks)


def test_timeline_blocks_are_dated_by_the_file_month() -> None:
    text = "### 2024-05-02 Launch\nshipped it\n/END\n"
    (block,) = split_file("timeline/2024-05.md", text)
    assert block.file_kind == "timeline" and block.kind == "diffmem"
    assert block.timestamp == 1714521600.0  # 2024-05-01T00:00:00Z


def test_the_user_entity_of_the_workspace() -> None:
    text = "# Me\n\n/START\n## Facts [ALWAYS_LOAD]\nlikes rust\n/END\n"
    blocks = split_file("ws.md", text, workspace="ws")
    assert {b.file_kind for b in blocks} == {"user"}
    assert any(b.always_load and "likes rust" in b.text for b in blocks)
    assert {b.file_kind for b in split_file("ws.md", text, workspace="other")} == {"markdown"}


# --- instruction files: mandatory rules --------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "MANDATORY: run the linter",
        "IMPORTANT: no force pushes",
        "NEVER commit secrets",
        "Always rebase",  # not a rule: the marker words are upper case
        "ВАЖНО: только через миграции",
        "СТРОГОЕ ПРАВИЛО: разные окружения",
        "НИКОГДА не пушить в master",
        "ОБЯЗАТЕЛЬНО прогоняй тесты",
        "ЗАВЖДИ перевіряй блокування",
        "НІКОЛИ не комітьте ключі",
        "ОБОВ'ЯЗКОВО: резервна копія",
        "ВАЖЛИВО: одна машина",
    ],
)
def test_mandatory_rules_in_headings(heading: str) -> None:
    text = f"# Repo\n\n## {heading}\n\nThe rule itself.\n\n## Layout\n\nFolders.\n"
    blocks = split_file("CLAUDE.md", text)
    rule = next(b for b in blocks if b.heading[-1:] == (heading,))
    layout = next(b for b in blocks if b.heading[-1:] == ("Layout",))
    assert rule.file_kind == "instructions"
    assert rule.always_load is (heading != "Always rebase")
    assert not layout.always_load


@pytest.mark.parametrize(
    "lead",
    ["**IMPORTANT: never skip CI.**", "**ВАЖНО: все миграции через Alembic.**", "__ЗАВЖДИ пуш__"],
)
def test_mandatory_rules_in_bold_lead_ins(lead: str) -> None:
    text = f"# Repo\n\n## Database\n\n{lead}\n\nmore text\n\n## Other\n\n**bold** but ordinary\n"
    database, other = split_file("AGENTS.md", text)
    assert database.always_load
    assert not other.always_load


def test_mandatory_markers_do_not_count_outside_instruction_files() -> None:
    text = "## НИКОГДА не делай так\n\n**ВАЖНО:** правило\n"
    assert not any(b.always_load for b in split_file("docs/guide.md", text))


def test_a_marker_deep_in_the_body_is_not_a_lead_in() -> None:
    filler = "Обычный текст раздела. " * 30
    text = f"## Раздел\n\n{filler}\n\n**НИКОГДА** так не делай.\n"
    (block,) = split_file("CLAUDE.md", text)
    assert not block.always_load


# --- memory items -----------------------------------------------------------------------------


def test_memory_item_with_front_matter() -> None:
    text = (
        "---\n"
        "title: Coffee order\n"
        "created_at: 2024-05-02T10:00:00Z\n"
        "always_load: true\n"
        "tags: [drinks]\n"
        "---\n"
        "\n"
        "Flat white, no sugar.\n"
    )
    (block,) = split_file("items/2024/coffee.md", text)
    assert block.kind == "item" and block.file_kind == "item"
    assert block.heading == ("Coffee order",)
    assert block.text == "Flat white, no sugar."
    assert block.always_load
    assert block.timestamp == 1714644000.0
    assert block.meta["tags"] == ["drinks"]  # YAML: a list, not its text
    assert lines_of(text, block).strip() == block.text


def test_memory_item_without_front_matter_takes_its_first_line_as_title() -> None:
    (block,) = split_file("items/x.md", "# Plain item\nbody\n")
    assert block.heading == ("Plain item",)
    assert not block.always_load and block.timestamp is None
    assert split_file("items/empty.md", "---\ntitle: t\n---\n\n") == []


# --- transcripts --------------------------------------------------------------------------------

TURNS = [
    {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bo!", "date_time": "2023-05-08T13:56:00"},
    {"speaker": "Bo", "dia_id": "D1:2", "text": "Look", "blip_caption": "a photo of a dog"},
    {"speaker": "Ann", "dia_id": "D1:3", "text": ""},
    {"role": "user", "id": 7, "content": "a chat message"},
]


@pytest.mark.parametrize("indent", [None, 1, 4])
def test_json_transcript_one_block_per_turn_keeping_ids(indent: int | None) -> None:
    text = json.dumps(TURNS, indent=indent)
    blocks = split_file("transcripts/s1.json", text)
    assert [b.turn_id for b in blocks] == ["D1:1", "D1:2", "7"]  # the empty turn is skipped
    assert [b.speaker for b in blocks] == ["Ann", "Bo", "user"]
    assert all(b.kind == "turn" and b.file_kind == "transcript" for b in blocks)
    assert blocks[0].timestamp is not None and blocks[0].meta["when"] == "2023-05-08T13:56:00"
    assert blocks[1].text == "Look\n[image: a photo of a dog]"
    assert blocks[2].text == "a chat message" and blocks[2].heading == ("user",)
    last_line = text.count("\n") + 1
    for block in blocks:
        assert 1 <= block.line_start <= block.line_end <= last_line
        assert json.dumps(block.turn_id if block.turn_id != "7" else 7) in lines_of(text, block)


def test_jsonl_transcript_keeps_the_line_of_each_turn() -> None:
    text = "\n".join(
        [json.dumps(TURNS[0]), "", json.dumps(TURNS[1]), json.dumps({"id": "x", "text": "last"})]
    )
    blocks = split_file("logs/chat.jsonl", text)
    assert [(b.turn_id, b.line_start, b.line_end) for b in blocks] == [
        ("D1:1", 1, 1),
        ("D1:2", 3, 3),
        ("x", 4, 4),
    ]


def test_speaker_lines_transcript() -> None:
    text = "[t1] Ann: hello there\n[t2] Bo: hi\nBo: no id on this one\n"
    blocks = split_file("transcripts/talk.txt", text)
    assert [(b.turn_id, b.speaker, b.text, b.line_start) for b in blocks] == [
        ("t1", "Ann", "hello there", 1),
        ("t2", "Bo", "hi", 2),
        (None, "Bo", "no id on this one", 3),
    ]


def test_a_transcript_that_is_prose_becomes_paragraphs() -> None:
    text = "Notes from the call.\nNothing structured here.\n\nSecond paragraph.\n"
    blocks = split_file("transcripts/call.txt", text)
    assert [b.kind for b in blocks] == ["paragraph", "paragraph"]


# --- plain text -------------------------------------------------------------------------------


def test_plain_text_paragraphs_with_lines() -> None:
    text = "\nFirst paragraph\nstill first.\n\n\nSecond one.\n"
    blocks = split_file("notes.txt", text)
    assert [(b.text, b.line_start, b.line_end) for b in blocks] == [
        ("First paragraph\nstill first.", 2, 3),
        ("Second one.", 6, 6),
    ]
    assert all(b.kind == "paragraph" and b.heading == () for b in blocks)


# --- properties -------------------------------------------------------------------------------

PATHS = [
    "notes/a.md",
    "CLAUDE.md",
    "memories/people/alice.md",
    "timeline/2024-05.md",
    "ws.md",
    "items/one.md",
    "transcripts/t.json",
    "chat.jsonl",
    "notes.txt",
    "transcripts/talk.txt",
]
LINES = st.one_of(
    st.sampled_from(
        [
            "# Title",
            "## Section [Strength: High]",
            "### Header [ALWAYS_LOAD]",
            "## ВАЖНО: правило",
            "**НІКОЛИ** не роби так",
            "```",
            "~~~",
            "/START",
            "/END",
            "---",
            "title: x",
            "",
            "   ",
            "Ann: hello",
            "[d1] Bo: hi",
            '{"speaker": "A", "text": "t", "dia_id": "D1"}',
            "[",
            "]",
        ]
    ),
    st.text(max_size=40),
)
TEXTS = st.one_of(
    st.lists(LINES, max_size=40).map("\n".join),
    st.text(max_size=300),
    st.lists(
        st.fixed_dictionaries(
            {"speaker": st.text(max_size=5), "text": st.text(max_size=30)},
            optional={"dia_id": st.text(max_size=5), "date_time": st.text(max_size=10)},
        ),
        max_size=6,
    ).flatmap(lambda turns: st.sampled_from([None, 1]).map(lambda i: json.dumps(turns, indent=i))),
)


@settings(max_examples=500, deadline=None)
@given(path=st.sampled_from(PATHS), text=TEXTS)
@example(path="memories/people/alice.md", text="   \n**НІКОЛИ** не роби так")  # found once
@example(path="items/x.md", text="---\ntitle: t\n---\n\n  \nbody\n")
@example(path="memories/people/alice.md", text="/START\n/END")
def test_split_file_never_raises_and_lines_stay_in_the_file(path: str, text: str) -> None:
    blocks = split_file(path, text, workspace="ws")
    lines = text.split("\n")
    for seq, block in enumerate(blocks):
        assert block.seq == seq
        assert 1 <= block.line_start <= block.line_end <= len(lines), (block, len(lines))
        assert block.text.strip()
        assert block.path == path
        if block.kind in ("section", "paragraph", "item"):  # the range is the text's lines
            first, *_, last = block.text.split("\n") * 2
            assert lines[block.line_start - 1].strip() == first.strip(), block
            assert lines[block.line_end - 1].strip() == last.strip(), block
