"""Files prepared for the index in worker processes are prepared exactly as in place,
in the order given; a dead worker loses no file, and closing stops every worker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from memhub.memory import prepare
from memhub.memory.blocks import split_file
from memhub.memory.documents import block_fields, block_record
from memhub.memory.prepare import Job, Prepared, Preparer
from memhub.store import Revision

FILES = {
    "notes/plan.md": "# Plan\n\n## Deploy\n\nShip the go-api.\n\n## Пам'ять\n\nНалаштування.\n",
    "notes/ru.md": "## Миграция\n\nМиграции базы данных и ключи сервера.\n",
    "transcripts/chat.md": "## D1:1 Caroline\n\nHello Melanie!\n\n## D1:2 Melanie\n\nHi!\n",
    "memories/people/ann.md": "# Ann\n\n### Work [Strength: High]\nAnn keeps a light.\n/END\n",
    "items/cube/x.md": "---\nnot: [valid\n---\nA fact with broken front matter.\n",
    "notes/cjk.txt": "東京の会議 and notes",
    "notes/empty.md": "   \n",
}


def job(n: int, path: str, text: str) -> Job:
    revision = Revision(
        workspace="w",
        rev=n + 1,
        path=path.replace(".", f"-{n}.", 1),
        sha256="0" * 64,
        md5="0" * 32,
        size=len(text.encode()),
        content_type="text/markdown",
        created_at=1_700_000_000.0 + n,
        author=None,
        session_id=None,
        message=None,
        deleted=False,
    )
    return revision, text


JOBS = [job(n, path, text) for n in range(12) for path, text in FILES.items()]


def in_place(jobs: list[Job]) -> list[tuple[Revision, Prepared]]:
    return list(Preparer("w", 2).map(jobs))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "PARALLEL_AFTER_CHARS", 0)  # workers from the second file
    monkeypatch.setattr(prepare, "BATCH_FILES", 3)  # many batches from a few files


def alive(preparer: Preparer) -> list[int]:
    return [
        w._process.pid
        for w in preparer._workers
        if w._process is not None and w._process.poll() is None
    ]


def test_workers_prepare_the_files_as_in_place_in_order(small_batches: None) -> None:
    expected = in_place(JOBS)
    assert any(p.error for _, p in expected)  # the broken front matter is reported
    assert sum(len(p.fields) for _, p in expected) > len(JOBS)
    with Preparer("w", 2, processes=2) as preparer:
        assert list(preparer.map(JOBS)) == expected
        assert len(alive(preparer)) == 2
        workers = list(preparer._workers)
    assert all(w._process is None for w in workers)  # closing stopped them


def test_a_little_text_is_prepared_in_place_without_starting_workers() -> None:
    assert sum(len(text) for _, text in JOBS) < prepare.PARALLEL_AFTER_CHARS
    with Preparer("w", 2, processes=2) as preparer:
        assert list(preparer.map(JOBS)) == in_place(JOBS)
        assert alive(preparer) == []


def test_killed_workers_lose_no_file(small_batches: None) -> None:
    expected = in_place(JOBS)
    with Preparer("w", 2, processes=2) as preparer:
        results = preparer.map(JOBS)
        got = [next(results), next(results)]  # the first in place, the second from a worker
        killed = alive(preparer)
        for worker in preparer._workers:
            if worker._process is not None:
                worker._process.kill()
        got += list(results)
        assert got == expected
        assert killed and not set(killed) & set(alive(preparer))  # later batches: new ones


def test_a_failing_job_source_stops_the_map_and_close_still_stops_the_workers(
    small_batches: None,
) -> None:
    def jobs() -> Iterator[Job]:
        yield from JOBS[:20]
        raise OSError("the store went away")

    preparer = Preparer("w", 2, processes=2)
    with pytest.raises(OSError, match="went away"):
        list(preparer.map(jobs()))
    preparer.close()
    assert alive(preparer) == []


def test_block_records_read_back_as_the_blocks_records() -> None:
    """The stored record (orjson's bytes) is what a hit is made from: ``json.loads``
    gives the record of the block back, every value and type intact."""
    for revision, text in JOBS[: len(FILES)]:
        blocks = split_file(revision.path, text)
        for i, fields in enumerate(block_fields(blocks, revision)):
            assert json.loads(fields.record) == block_record(blocks[i], revision, i)
            assert fields.record.decode("utf-8")  # UTF-8, as the index stores it
