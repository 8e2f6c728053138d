"""Context assembly (memhub.memory.context via Memory.context) over a real store.

The instruction file is a CLAUDE.md written for these tests, in Russian, with
mandatory rules in headings («ВАЖНО», «СТРОГОЕ ПРАВИЛО») and in a bold lead-in
(«НИКОГДА»), beside ordinary sections.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memhub.errors import BadRequest
from memhub.memory.context import DEPTHS, estimate_tokens
from memhub.memory.service import Memory
from memhub.store import Store
from memhub.store.blobs import open_blob_store
from memhub.store.metadata import Metadata

WS = "team"

CLAUDE_MD = """# Проект «Маяк»

Монорепозиторий сервиса заметок: бэкенд на Go, фронтенд на TypeScript.

## ВАЖНО: секреты и ключи

Файлы окружения с ключами не попадают в git: ключи лежат только в хранилище секретов.

## СТРОГОЕ ПРАВИЛО: ревью перед слиянием

Каждый пулл-реквест смотрят два человека. Сливать ветку без зелёной сборки запрещено.

## Журналирование

**НИКОГДА не пиши персональные данные пользователей в логи.** Для отладки есть маскирование.

## Сборка

Фронтенд собирается командой `pnpm build`, бэкенд — `make build`. Артефакты лежат в dist.

## Развёртывание

Выкатка идёт канареечными релизами: сначала пять процентов трафика, затем весь.

## Очередь задач

Воркеры забирают задачи из очереди RabbitMQ; повторная попытка — с экспоненциальной паузой.
"""

RULES = {
    ("Проект «Маяк»", "ВАЖНО: секреты и ключи"),
    ("Проект «Маяк»", "СТРОГОЕ ПРАВИЛО: ревью перед слиянием"),
    ("Проект «Маяк»", "Журналирование"),
}
ORDINARY = {
    ("Проект «Маяк»",),
    ("Проект «Маяк»", "Сборка"),
    ("Проект «Маяк»", "Развёртывание"),
    ("Проект «Маяк»", "Очередь задач"),
}


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path) -> Iterator[Store]:
    meta = Metadata(sqlite_url)
    store = Store(meta, open_blob_store((tmp_path / "blobs").as_uri()))
    store.create_workspace(WS)
    yield store
    meta.close()


@pytest.fixture
def memory(store: Store, tmp_path: Path) -> Iterator[Memory]:
    memory = Memory(store, tmp_path / "index")
    yield memory
    memory.close()


def put(store: Store, path: str, text: str) -> None:
    store.put(WS, path, text.encode("utf-8"))


def ask(message: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": message}]


def sources(ctx: dict[str, Any], section: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (s["path"], tuple(s["heading"]))
        for s in ctx["sources"]
        if section is None or s["section"] == section
    ]


def context(memory: Memory, message: str = "", **kwargs: Any) -> dict[str, Any]:
    return memory.context(WS, ask(message) if message else [], **kwargs).to_dict()


# --- the instruction file -------------------------------------------------------------------


def test_mandatory_rules_come_back_at_depth_basic(store: Store, memory: Memory) -> None:
    put(store, "CLAUDE.md", CLAUDE_MD)
    ctx = context(memory, "Как настроить кэширование в браузере?")  # about none of them
    assert set(sources(ctx, "Rules")) == {("CLAUDE.md", h) for h in RULES}
    assert {s["section"] for s in ctx["sources"]} == {"Rules"}
    for phrase in ("хранилище секретов", "два человека", "персональные данные"):
        assert phrase in ctx["markdown"]
    assert "канареечными" not in ctx["markdown"]  # ordinary sections wait for a query
    assert ctx["markdown"].startswith("## Rules\n\n### CLAUDE.md — ")
    # with no conversation at all the rules are still there
    assert set(sources(context(memory), "Rules")) == {("CLAUDE.md", h) for h in RULES}


@pytest.mark.parametrize(
    ("message", "heading"),
    [
        ("Как у нас устроены повторные попытки в очередях?", "Очередь задач"),
        ("Расскажи про выкатку канареечным релизом", "Развёртывание"),
        ("Какой командой собирать фронтенды?", "Сборка"),
    ],
)
def test_an_inflected_query_finds_the_right_section(
    store: Store, memory: Memory, message: str, heading: str
) -> None:
    put(store, "CLAUDE.md", CLAUDE_MD)
    put(store, "notes/other.md", "## Заметки\n\nСовсем о другом: рецепт борща и погода.\n")
    found = memory.search(WS, message, k=3)
    assert found["results"][0]["heading"] == ["Проект «Маяк»", heading]
    ctx = context(memory, message, depth="wide")
    relevant = sources(ctx, "Relevant memories")
    assert relevant[0] == ("CLAUDE.md", ("Проект «Маяк»", heading))
    assert set(sources(ctx, "Rules")) == {("CLAUDE.md", h) for h in RULES}
    assert not set(relevant) & set(sources(ctx, "Rules"))  # a rule is not repeated


# --- depths ------------------------------------------------------------------------------------


@pytest.fixture
def team(store: Store) -> Store:
    """An instruction file, the user entity, two people (one edited often), a timeline
    month, and a plain note."""
    put(store, "CLAUDE.md", CLAUDE_MD)
    put(store, f"{WS}.md", "# Team\n\n/START\n## Style [ALWAYS_LOAD]\nShort answers.\n/END\n")
    for i in range(6):
        put(
            store,
            "memories/people/alice.md",
            f"# Alice\n\nRuns the payments service (edit {i}).\n\n"
            "/START\n## Contact [ALWAYS_LOAD]\nalice@example.org\n/END\n",
        )
    put(store, "memories/people/bob.md", "# Bob\n\nBob maintains the lighthouse beacon firmware.\n")
    put(store, "memories/people/bob.md", "# Bob\n\nBob maintains the lighthouse beacon code.\n")
    put(store, "timeline/2024-05.md", "### 2024-05-02 Launch\nbeacon v2 shipped\n/END\n")
    put(store, "notes/beacon.md", "## Beacon\n\nThe beacon firmware blinks every ten seconds.\n")
    return store


def test_depths_add_what_the_documentation_says(team: Store, memory: Memory) -> None:
    message = "What does Bob do with the beacon firmware?"
    by_depth = {depth: context(memory, message, depth=depth) for depth in DEPTHS}
    sections = {d: [s["section"] for s in c["sources"]] for d, c in by_depth.items()}

    basic = set(sections["basic"])
    assert basic == {"Rules", "User", "Always load", "Recent timeline"}
    assert sources(by_depth["basic"], "User") == [(f"{WS}.md", ())]
    assert set(sources(by_depth["basic"], "Recent timeline")) == {
        ("timeline/2024-05.md", ("2024-05-02 Launch",))
    }

    assert set(sections["wide"]) == basic | {"Relevant memories"}
    assert ("notes/beacon.md", ("Beacon",)) in sources(by_depth["wide"], "Relevant memories")

    assert set(sections["deep"]) == basic | {"Relevant memories", "Files"}
    files = [path for path, _ in sources(by_depth["deep"], "Files")]
    assert files[0] == "memories/people/bob.md"
    assert "memories/people/alice.md" in files
    assert "Bob maintains the lighthouse beacon code." in by_depth["deep"]["markdown"]
    # the whole file is in: its blocks are not repeated among the relevant memories
    relevant = [path for path, _ in sources(by_depth["deep"], "Relevant memories")]
    assert "memories/people/bob.md" not in relevant

    assert set(sections["temporal"]) == set(sections["deep"]) | {"Recent changes"}
    diffs = [path for path, _ in sources(by_depth["temporal"], "Recent changes")]
    assert sorted(diffs) == ["memories/people/alice.md", "memories/people/bob.md"]
    markdown = by_depth["temporal"]["markdown"]
    assert "-Bob maintains the lighthouse beacon firmware." in markdown
    assert "+Bob maintains the lighthouse beacon code." in markdown

    # each depth holds everything the one before holds (a block, or its whole file)
    for smaller, larger in pairwise(DEPTHS):
        held = set(sources(by_depth[larger]))
        for path, heading in sources(by_depth[smaller]):
            assert (path, heading) in held or (path, ()) in held, (smaller, path, heading)


def test_an_unknown_depth_or_budget_is_a_bad_request(memory: Memory) -> None:
    with pytest.raises(BadRequest):
        memory.context(WS, ask("x"), depth="everything")
    with pytest.raises(BadRequest):
        memory.context(WS, ask("x"), max_tokens=0)


# --- entity ranking ---------------------------------------------------------------------


def test_entity_ranking_prefers_the_entity_the_conversation_is_about(
    store: Store, memory: Memory
) -> None:
    for i in range(25):  # busy: edited again and again, just now
        put(store, "memories/people/carol.md", f"# Carol\n\nCarol's weekly status, week {i}.\n")
    put(store, "memories/contexts/garden.md", "# Garden\n\nThe tomato seedlings need repotting.\n")

    def ranking(message: str) -> list[str]:
        hits = memory.search(WS, message, k=30)["results"] if message else []
        index = memory.index.current(WS)
        found = index.search(message, k=30)[0] if message else []
        assert [h.path for h in found] == [h["path"] for h in hits]
        return [path for path, _ in memory.assembler.rank_entities(WS, found)]

    # with nothing to go on, activity decides
    assert ranking("") == ["memories/people/carol.md", "memories/contexts/garden.md"]
    # talking about the garden puts it first, however busy Carol is
    assert ranking("when should I repot the tomato seedlings?")[0] == "memories/contexts/garden.md"
    # and deep context loads its file first
    ctx = context(memory, "when should I repot the tomato seedlings?", depth="deep")
    files = [path for path, _ in sources(ctx, "Files")]
    assert files == ["memories/contexts/garden.md", "memories/people/carol.md"]


def test_entity_ranking_follows_every_write_and_delete(store: Store, memory: Memory) -> None:
    """The entity activity is kept per head rev: each write or delete is seen by the next
    assembly; paths that only look like entities are not ranked."""

    def ranking() -> list[str]:
        return [path for path, _ in memory.assembler.rank_entities(WS, [])]

    put(store, "memories/people/dan.md", "# Dan\n\nDan bakes bread.\n")
    put(store, "notes/memories/people-notes.md", "# Not an entity\n")
    put(store, "archive/memories/people/old/x.md", "# Too deep: a note\n")
    put(store, "archive/memories/people/x.md", "# An entity under another folder\n")
    assert set(ranking()) == {"memories/people/dan.md", "archive/memories/people/x.md"}
    store.delete(WS, "archive/memories/people/x.md")
    assert ranking() == ["memories/people/dan.md"]
    for i in range(4):
        put(store, "memories/people/erin.md", f"# Erin\n\nErin's status {i}.\n")
    assert ranking() == ["memories/people/erin.md", "memories/people/dan.md"]
    put(store, "Memories/Events/Launch.md", "# Launch\n")  # kinds are case-insensitive
    put(store, f"{WS.upper()}.md", "# The user\n")
    assert set(ranking()) == {
        "memories/people/erin.md",
        "memories/people/dan.md",
        "Memories/Events/Launch.md",
        f"{WS.upper()}.md",
    }
    store.delete(WS, "memories/people/erin.md")
    assert "memories/people/erin.md" not in ranking()


def test_always_load_blocks_of_entities_follow_the_ranking(store: Store, memory: Memory) -> None:
    for i in range(7):
        put(
            store,
            f"memories/people/p{i}.md",
            f"# P{i}\n\nPerson number {i} likes topic{i}.\n\n"
            f"/START\n## Card [ALWAYS_LOAD]\ncard of person {i}\n/END\n",
        )
    ctx = context(memory, "who likes topic6?")
    always = [path for path, _ in sources(ctx, "Always load")]
    assert "memories/people/p6.md" in always
    assert len(always) == 5  # the top five entities only


# --- the budget -------------------------------------------------------------------------


def _check_budget(ctx: dict[str, Any], max_tokens: int) -> None:
    assert ctx["tokens"] <= max_tokens
    assert estimate_tokens(ctx["markdown"]) <= max_tokens
    assert sum(s["tokens"] for s in ctx["sources"]) == ctx["tokens"]
    assert all(s["tokens"] > 0 for s in ctx["sources"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    max_tokens=st.one_of(st.integers(1, 60), st.integers(61, 3000)),
    depth=st.sampled_from(DEPTHS),
    message=st.sampled_from(
        ["", "beacon firmware", "Что с очередью задач?", "Bob", "ревью перед слиянием"]
    ),
)
def test_max_tokens_is_never_exceeded(
    team: Store, memory: Memory, max_tokens: int, depth: str, message: str
) -> None:
    ctx = context(memory, message, depth=depth, max_tokens=max_tokens)
    _check_budget(ctx, max_tokens)
    assert ctx["max_tokens"] == max_tokens and ctx["depth"] == depth


def test_a_tight_budget_keeps_the_rules_first_and_skips_the_rest(
    team: Store, memory: Memory
) -> None:
    full = context(memory, "beacon firmware", depth="temporal", max_tokens=100_000)
    rules_only = sum(s["tokens"] for s in full["sources"] if s["section"] == "Rules")
    tight = context(memory, "beacon firmware", depth="temporal", max_tokens=rules_only)
    assert set(sources(tight, "Rules")) == {("CLAUDE.md", h) for h in RULES}
    assert {s["section"] for s in tight["sources"]} == {"Rules"}
    assert tight["skipped"] > 0
    _check_budget(tight, rules_only)
    _check_budget(full, 100_000)
    assert full["skipped"] == 0


def test_a_file_too_big_whole_gives_its_always_load_blocks_then_the_rest(
    store: Store, memory: Memory
) -> None:
    sections = "\n\n".join(f"## Part {i}\n\n" + f"detail {i} " * 40 for i in range(8))
    put(
        store,
        f"{WS}.md",
        f"# Me\n\n{sections}\n\n/START\n## Key facts [ALWAYS_LOAD]\nvegetarian\n/END\n",
    )
    whole = context(memory, max_tokens=100_000)
    assert sources(whole, "User") == [(f"{WS}.md", ())]
    budget = whole["tokens"] // 2
    ctx = context(memory, max_tokens=budget)
    parts = sources(ctx, "User")
    assert parts[0] == (f"{WS}.md", ("Me", "Key facts"))  # the always-load block first
    assert parts[1:] == [(f"{WS}.md", ("Me", f"Part {i}")) for i in range(len(parts) - 1)]
    assert len(parts) > 2
    _check_budget(ctx, budget)
