"""Large files are parsed in a worker process (so the server's event loop keeps the
GIL); the blocks are the same as parsed in place, and a dead worker loses nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memhub.memory.blocks import offload, split_file_checked

BIG = "".join(
    f"# Day {i}\n\n## Topic {i}\n\nNotes about topic {i}: Привіт, світ; Київ.\n\n"
    for i in range(1500)
)


@pytest.fixture(autouse=True)
def fresh_worker() -> Iterator[None]:
    offload.shutdown()
    yield
    offload.shutdown()


def worker_pid() -> int | None:
    process = offload._WORKER._process
    return None if process is None or process.poll() is not None else process.pid


def test_a_large_file_is_parsed_by_the_worker_into_the_same_blocks() -> None:
    assert len(BIG) >= offload.OFFLOAD_MIN_CHARS
    blocks, error = offload.split_file_offloaded("notes/big.md", BIG, workspace="w")
    assert error is None
    assert worker_pid() is not None
    assert (blocks, error) == split_file_checked("notes/big.md", BIG, workspace="w")
    assert blocks[1].heading == ("Day 1", "Topic 1")
    first = worker_pid()
    offload.split_file_offloaded("notes/big.md", BIG)
    assert worker_pid() == first  # kept for the next large file


def test_a_small_file_is_parsed_in_place() -> None:
    blocks, _ = offload.split_file_offloaded("notes/small.md", "# A\n\ntext\n")
    assert [b.heading for b in blocks] == [("A",)]
    assert worker_pid() is None


def test_a_killed_worker_is_replaced_and_no_file_is_lost() -> None:
    offload.split_file_offloaded("notes/big.md", BIG)
    process = offload._WORKER._process
    assert process is not None
    process.kill()
    process.wait()
    blocks, error = offload.split_file_offloaded("notes/big.md", BIG)  # in place, or anew
    assert error is None and len(blocks) == 1500
    blocks, _ = offload.split_file_offloaded("notes/big.md", BIG)
    assert len(blocks) == 1500 and worker_pid() not in (None, process.pid)
