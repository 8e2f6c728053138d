"""The search index follows the store's change log (memhub.memory.index via Memory).

A real store (SQLite file + local blob directory; PostgreSQL for the two-node
test) and real tantivy indexes on disk. Every search goes through ``Memory.search``,
which catches the index up with the log first.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memhub.errors import BadRequest
from memhub.memory import prepare
from memhub.memory.documents import SearchFilters
from memhub.memory.index import WorkspaceIndex
from memhub.memory.service import Memory
from memhub.store import Store
from memhub.store.blobs import open_blob_store
from memhub.store.metadata import Metadata

WS = "notes"
DAY = 86400.0


@pytest.fixture
def open_memory(tmp_path: Path) -> Iterator[Callable[..., Memory]]:
    """``open_memory(store, index_dir=None)``: a Memory closed at teardown."""
    opened: list[Memory] = []

    def make(store: Store, index_dir: Path | None = None, **options: Any) -> Memory:
        memory = Memory(store, index_dir or tmp_path / "index", **options)
        opened.append(memory)
        return memory

    yield make
    for memory in opened:
        memory.close()


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path, clock: Any) -> Iterator[Store]:
    meta = Metadata(sqlite_url)
    store = Store(meta, open_blob_store((tmp_path / "blobs").as_uri()), clock=clock)
    store.create_workspace(WS)
    yield store
    meta.close()


@pytest.fixture
def memory(store: Store, open_memory: Callable[..., Memory]) -> Memory:
    return open_memory(store)


def paths(memory: Memory, query: str, **kwargs: Any) -> list[str]:
    return [hit["path"] for hit in memory.search(WS, query, **kwargs)["results"]]


def put(store: Store, path: str, text: str) -> None:
    store.put(WS, path, text.encode("utf-8"))


# --- following the log ----------------------------------------------------------------


def test_a_write_is_searchable_at_once(store: Store, memory: Memory) -> None:
    assert paths(memory, "giraffe") == []  # the index exists and is caught up
    put(store, "notes/zoo.md", "# Zoo\n\n## Animals\n\nThe giraffe eats acacia leaves.\n")
    found = memory.search(WS, "giraffes")
    assert [h["path"] for h in found["results"]] == ["notes/zoo.md"]
    hit = found["results"][0]
    assert hit["heading"] == ["Zoo", "Animals"]
    assert (hit["line_start"], hit["line_end"]) == (3, 5)
    assert hit["rev"] == store.head_rev(WS)
    assert "**giraffe**" in hit["snippet"]
    assert memory.status(WS) == {"blocks": 1, "rev": store.head_rev(WS), "problems": []}


def test_delete_overwrite_and_rename(store: Store, memory: Memory) -> None:
    put(store, "a.md", "## A\n\nthe walrus sleeps\n")
    put(store, "b.md", "## B\n\nthe pelican flies\n")
    assert paths(memory, "walrus") == ["a.md"]
    assert paths(memory, "pelican") == ["b.md"]

    store.delete(WS, "a.md")
    assert paths(memory, "walrus") == []

    put(store, "b.md", "## B\n\nthe heron wades\n")  # overwrite: the old text is gone
    assert paths(memory, "pelican") == []
    assert paths(memory, "heron") == ["b.md"]

    store.delete(WS, "b.md")  # a rename is a delete and a put
    put(store, "birds/b.md", "## B\n\nthe heron wades\n")
    assert paths(memory, "heron") == ["birds/b.md"]
    assert memory.status(WS)["blocks"] == 1


def test_many_changes_between_searches_are_all_applied(store: Store, memory: Memory) -> None:
    assert paths(memory, "anything") == []
    for i in range(30):
        put(store, f"n/{i}.md", f"## Note {i}\n\nmarker{i} shared\n")
    for i in range(0, 30, 3):
        store.delete(WS, f"n/{i}.md")
    found = memory.search(WS, "shared", k=50)
    assert found["total"] == 20
    assert {h["path"] for h in found["results"]} == {f"n/{i}.md" for i in range(30) if i % 3}


def test_binary_and_oversized_files_are_not_indexed(store: Store, memory: Memory) -> None:
    store.put(WS, "img/photo.png", b"\x89PNG\r\n\x1a\n binary zebra \x00\x01")
    store.put(WS, "raw.bin", b"zebra \x00\x00 zebra")
    store.put(WS, "db/memory.sqlite", b"SQLite format 3\x00 zebra")
    store.put(WS, "doc.txt", b"zebra\x00 with a NUL is binary too")
    put(store, "notes/z.md", "## Z\n\nzebra crossing\n")
    assert paths(memory, "zebra") == ["notes/z.md"]
    assert memory.status(WS)["blocks"] == 1


# --- the index is a cache: missing or damaged, it is rebuilt ------------------------------


def _fill(store: Store) -> None:
    put(store, "a.md", "## Alpha\n\nthe otter swims\n")
    put(store, "b.md", "## Beta\n\nthe badger digs\n")
    store.delete(WS, "b.md")
    put(store, "c.md", "## Gamma\n\nthe otter and the beaver\n")


def _answers(memory: Memory) -> tuple[list[str], list[str], int]:
    return (
        sorted(paths(memory, "otter")),
        paths(memory, "badger"),
        memory.status(WS)["blocks"],
    )


EXPECTED = (["a.md", "c.md"], [], 2)


def _remove_index(root: Path) -> None:
    shutil.rmtree(root)


def _remove_tantivy_dir(root: Path) -> None:
    shutil.rmtree(root / "tantivy")  # state.json stays and still names a rev


def _empty_tantivy_dir(root: Path) -> None:
    for file in (root / "tantivy").iterdir():
        file.unlink()


def _garbage_state(root: Path) -> None:
    (root / "state.json").write_text("{not json")


def _state_of_another_version(root: Path) -> None:
    (root / "state.json").write_text('{"version": 0, "rev": 1}')


def _garbage_meta(root: Path) -> None:
    (root / "tantivy" / "meta.json").write_bytes(b"\x00garbage\xff")


def _garbage_segments(root: Path) -> None:
    for file in (root / "tantivy").iterdir():
        if file.name not in ("meta.json", ".managed.json") and file.is_file():
            file.write_bytes(b"garbage" * 10)


@pytest.mark.parametrize(
    "damage",
    [
        _remove_index,
        _remove_tantivy_dir,
        _empty_tantivy_dir,
        _garbage_state,
        _state_of_another_version,
        _garbage_meta,
        _garbage_segments,
    ],
)
def test_a_missing_or_damaged_index_is_rebuilt(
    store: Store,
    open_memory: Callable[..., Memory],
    tmp_path: Path,
    damage: Callable[[Path], None],
) -> None:
    _fill(store)
    first = open_memory(store, tmp_path / "index")
    assert _answers(first) == EXPECTED
    first.close()

    damage(tmp_path / "index" / WS)
    second = open_memory(store, tmp_path / "index")  # a restarted server
    assert _answers(second) == EXPECTED
    put(store, "d.md", "## Delta\n\nan otter again\n")  # and it goes on following the log
    assert sorted(paths(second, "otter")) == ["a.md", "c.md", "d.md"]


def test_rebuild_on_request_gives_the_same_answers(store: Store, memory: Memory) -> None:
    _fill(store)
    before = _answers(memory)
    stats = memory.rebuild(WS)
    assert stats == {"files": 2, "blocks": 2, "rev": store.head_rev(WS), "problems": []}
    assert _answers(memory) == before == EXPECTED


def test_a_restart_reuses_an_intact_index(
    store: Store, open_memory: Callable[..., Memory], tmp_path: Path
) -> None:
    _fill(store)
    first = open_memory(store, tmp_path / "index")
    assert _answers(first) == EXPECTED
    first.close()
    marker = tmp_path / "index" / WS / "tantivy" / "meta.json"
    before = marker.stat().st_mtime_ns
    second = open_memory(store, tmp_path / "index")
    assert _answers(second) == EXPECTED
    assert marker.stat().st_mtime_ns == before  # nothing to apply: not rebuilt


# --- filters and paging ------------------------------------------------------------------------


@pytest.fixture
def corpus(store: Store, clock: Any) -> Any:
    """Files about lighthouses, written ten days apart, of several kinds."""
    start = clock.now
    put(store, "notes/coast.md", "## Coast\n\nA lighthouse on the rocks.\n")
    clock.advance(10 * DAY)
    put(store, "notes/archive/old.md", "## Old\n\nThe old lighthouse keeper.\n")
    clock.advance(10 * DAY)
    put(store, "notes-extra/more.md", "## More\n\nAnother lighthouse.\n")
    put(store, "CLAUDE.md", "## IMPORTANT: lighthouse rule\n\nAlways mention the lighthouse.\n")
    put(store, "memories/people/keeper.md", "# Keeper\n\nRuns the lighthouse.\n")
    put(store, "timeline/2021-03.md", "### March\nlighthouse repainted\n/END\n")
    put(store, "transcripts/chat.json", '[{"speaker": "Ann", "text": "a lighthouse!"}]')
    clock.now = start
    return clock


def test_filter_by_path_prefix(corpus: Any, memory: Memory) -> None:
    def under(prefix: str) -> list[str]:
        return sorted(paths(memory, "lighthouse", filters=SearchFilters(path_prefix=prefix)))

    assert under("notes/") == ["notes/archive/old.md", "notes/coast.md"]
    assert under("notes/archive/") == ["notes/archive/old.md"]
    # a prefix is a string prefix, as in file listings
    assert under("notes") == ["notes-extra/more.md", "notes/archive/old.md", "notes/coast.md"]
    assert under("notes/co") == ["notes/coast.md"]
    assert under("CLAUDE.md") == ["CLAUDE.md"]
    assert under("nothing/") == []
    with pytest.raises(BadRequest):
        memory.search(WS, "lighthouse", filters=SearchFilters(path_prefix="../etc"))


def test_filter_by_file_kind(corpus: Any, memory: Memory) -> None:
    def kinds(*file_kinds: str) -> list[str]:
        found = memory.search(WS, "lighthouse", filters=SearchFilters(file_kinds=file_kinds))
        return sorted(h["file_kind"] for h in found["results"])

    assert kinds("instructions") == ["instructions"]
    assert kinds("entity", "timeline") == ["entity", "timeline"]
    assert kinds("transcript") == ["transcript"]
    assert kinds("markdown") == ["markdown"] * 3
    assert kinds("no-such-kind") == []


def test_filter_by_date(corpus: Any, memory: Memory) -> None:
    start = corpus.now

    def between(since: float | None, until: float | None) -> list[str]:
        filters = SearchFilters(path_prefix="notes/", since=since, until=until)
        return sorted(paths(memory, "lighthouse", filters=filters))

    assert between(start - 1, start + 1) == ["notes/coast.md"]
    assert between(start + 5 * DAY, None) == ["notes/archive/old.md"]
    assert between(None, start + 5 * DAY) == ["notes/coast.md"]
    assert between(start + 30 * DAY, None) == []
    # a timeline block is dated by its month, not by when the file was written
    march = SearchFilters(since=1614556800, until=1617235199)  # 2021-03
    assert paths(memory, "lighthouse", filters=march) == ["timeline/2021-03.md"]


def test_always_load_only(corpus: Any, memory: Memory) -> None:
    found = memory.search(WS, "lighthouse", filters=SearchFilters(always_load_only=True))
    assert [(h["path"], h["always_load"]) for h in found["results"]] == [("CLAUDE.md", True)]
    # with no query at all: every always-load block (how context assembly lists rules)
    everything = memory.search(WS, "", filters=SearchFilters(always_load_only=True))
    assert [h["path"] for h in everything["results"]] == ["CLAUDE.md"]
    assert memory.search(WS, "")["results"] == []  # no query, no filter: nothing


def test_paging_with_offset(store: Store, memory: Memory) -> None:
    for i in range(23):
        put(store, f"p/{i:02d}.md", f"## P{i}\n\n{'tide ' * (i + 1)}pool\n")
    pages = []
    offset = 0
    while True:
        found = memory.search(WS, "tide", k=5, offset=offset)
        assert found["total"] == 23 and found["offset"] == offset
        if not found["results"]:
            break
        pages.append([h["path"] for h in found["results"]])
        offset += 5
    flat = [p for page in pages for p in page]
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert len(set(flat)) == 23  # no result twice, none left out
    assert flat == paths(memory, "tide", k=50)  # the pages are one ranking cut in pieces
    scores = [h["score"] for h in memory.search(WS, "tide", k=50)["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("k", "offset"), [(0, 0), (201, 0), (5, -1)])
def test_bad_paging_is_a_bad_request(memory: Memory, k: int, offset: int) -> None:
    with pytest.raises(BadRequest):
        memory.search(WS, "x", k=k, offset=offset)


# --- another node --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_second_node_with_its_own_index_sees_the_same_results(
    backend: str,
    request: pytest.FixtureRequest,
    sqlite_url: str,
    tmp_path: Path,
    open_memory: Callable[..., Memory],
) -> None:
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("migrated_postgres_url")
    blobs = open_blob_store((tmp_path / "shared-blobs").as_uri())
    metas = [Metadata(url), Metadata(url)]
    try:
        node_a, node_b = (Store(meta, blobs) for meta in metas)
        workspace = f"nodes-{tmp_path.name[-12:]}".replace("_", "-")
        node_a.create_workspace(workspace)
        # recheck 0: each search asks the database (the staleness bound has its own test)
        memory_a = open_memory(node_a, tmp_path / "index-a", recheck_seconds=0)
        memory_b = open_memory(node_b, tmp_path / "index-b", recheck_seconds=0)

        def both(query: str) -> tuple[list[str], list[str]]:
            return tuple(  # type: ignore[return-value]
                [h["path"] for h in m.search(workspace, query)["results"]]
                for m in (memory_a, memory_b)
            )

        node_a.put(workspace, "x.md", b"## X\n\nthe narwhal tusk\n")
        assert both("narwhal") == (["x.md"], ["x.md"])
        node_b.put(workspace, "y.md", b"## Y\n\na narwhal pod\n")  # written through node b
        a, b = both("narwhal")
        assert sorted(a) == sorted(b) == ["x.md", "y.md"]
        node_a.delete(workspace, "x.md")
        assert both("narwhal") == (["y.md"], ["y.md"])
        assert (tmp_path / "index-a" / workspace).is_dir()
        assert (tmp_path / "index-b" / workspace).is_dir()
    finally:
        for meta in metas:
            meta.close()


def test_snippets_mark_every_form_of_the_query_words(store: Store, memory: Memory) -> None:
    decomposed = "е\u0308лочные"  # е + combining diaeresis: ёлочные once composed
    put(
        store,
        "notes/tree.md",
        f"## Ёлка\n\nЕлки, ЁЛКИ и {decomposed} игрушки; ещё ёлкой украсили go-ёлка.\n",
    )
    snippet = memory.search(WS, "ёлки")["results"][0]["snippet"]
    for form in ("Ёлка", "Елки", "ЁЛКИ", "ёлкой", "ёлка"):
        assert f"**{form}**" in snippet, snippet
    assert "**игрушки**" not in snippet
    put(store, "notes/mem.md", "## Пам'ять\n\nПАМ’ЯТЬ і пам'яті, памʼяттю\n")
    snippet = memory.search(WS, "пам'ять")["results"][0]["snippet"]
    assert snippet.count("**") == 2 * 4, snippet


def test_searches_ask_the_database_only_when_the_recheck_interval_passed(
    sqlite_url: str, tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    """Writes through this process are seen at once without asking the database;
    writes through another node once ``recheck_seconds`` have passed."""
    blobs = open_blob_store((tmp_path / "shared-blobs").as_uri())
    metas = [Metadata(sqlite_url), Metadata(sqlite_url)]
    now = [1000.0]
    try:
        here, other = (Store(meta, blobs) for meta in metas)
        here.create_workspace("recheck")
        memory = open_memory(here, tmp_path / "index", recheck_seconds=5, clock=lambda: now[0])
        asked: list[str] = []
        head_rev = here.head_rev
        here.head_rev = lambda ws: asked.append(ws) or head_rev(ws)  # type: ignore[method-assign]

        def paths(query: str) -> list[str]:
            return sorted(h["path"] for h in memory.search("recheck", query)["results"])

        here.put("recheck", "seed.md", b"a seed\n")
        assert paths("seed") == ["seed.md"]
        assert asked  # the first search asks (and builds the index)
        asked.clear()
        here.put("recheck", "a.md", b"a narwhal\n")
        assert paths("narwhal") == ["a.md"]  # our own write: seen at once, nothing asked
        other.put("recheck", "b.md", b"another narwhal\n")
        now[0] += 4.9
        assert paths("narwhal") == ["a.md"]  # the other node's write: not yet
        assert asked == []
        now[0] += 0.2
        assert paths("narwhal") == ["a.md", "b.md"]  # the interval passed: asked again
        assert asked == ["recheck"]
    finally:
        for meta in metas:
            meta.close()


# --- preparing files in worker processes -----------------------------------------------


def _index_content(index: WorkspaceIndex) -> tuple[Any, ...]:
    blocks = sorted((hit.path, seq, hit) for seq, hit in index._all_blocks())
    found = [index.search(q, k=50) for q in ("lighthouse", "keeper rocks", "ann", "Фактів")]
    return blocks, found, index.problems, index.applied_rev


def test_files_prepared_in_worker_processes_make_the_same_index(
    corpus: Any, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "PARALLEL_AFTER_CHARS", 0)  # workers even for a few files
    put(store, "items/cube/bad.md", "---\nnot: [valid\n---\nФактів немає.\n")  # a parse problem
    parallel = WorkspaceIndex(tmp_path / "parallel", WS, store, processes=2)
    in_place = WorkspaceIndex(tmp_path / "in-place", WS, store, processes=0)
    try:
        assert parallel.rebuild() == in_place.rebuild() == 8
        assert _index_content(parallel) == _index_content(in_place)
        assert parallel.problems and parallel.num_docs() == 8
        # a catch-up of several changes at once goes through the workers too
        put(store, "notes/coast.md", "## Coast\n\nNo lighthouse left.\n")
        store.delete(WS, "notes/archive/old.md")
        put(store, "notes/new.md", "## New\n\nA new lighthouse keeper.\n")
        assert parallel.catch_up() == in_place.catch_up() == 3
        assert _index_content(parallel) == _index_content(in_place)
    finally:
        parallel.close()
        in_place.close()
