"""Files cut into blocks and analysed for the index, in worker processes when many.

A rebuild spends nearly all of its time in pure Python (markdown-it and the
analyzer), which one process runs on one core. :class:`Preparer` hands batches of
files to worker processes (``python -m memhub.memory.prepare``, the plumbing of
the parse offload: no ``multiprocessing``, so nothing forks a threaded server),
each answering the :class:`~memhub.memory.documents.BlockFields` of its files. The
writer's process meanwhile reads the next files from the store; it takes the
answers in the order of the files and only turns fields into tantivy documents,
so the index is the one a single process builds, document ids included.

The first couple of MiB of text are prepared in place (a catch-up of a few
files never starts a worker); workers start with the first batch after that and
stop with :meth:`Preparer.close`: a server keeps no idle analyzers. A worker that
dies (killed, out of memory) has its batch prepared in place and is started anew
for the next one: the workers are an optimisation, never a reason to lose a file.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

from memhub.memory.blocks import split_file_checked
from memhub.memory.blocks.offload import WorkerProcess, serve, split_file_offloaded
from memhub.memory.documents import BlockFields, block_fields
from memhub.store import Revision

# text prepared in place before the workers start: less would not pay for starting them
# and warming their word caches (a second or so each)
PARALLEL_AFTER_CHARS = 2 * 1024 * 1024
BATCH_CHARS = 256 * 1024  # text per request: large enough that the round trip is noise
BATCH_FILES = 128
IN_FLIGHT = 3  # batches per worker sent ahead of the one being read back

Job = tuple[Revision, str]  # a file's head and its text


class Prepared(NamedTuple):
    fields: list[BlockFields]
    error: str | None  # why the file's splitter failed (it is then indexed as paragraphs)


def default_processes() -> int:
    """Workers for a large build: one per core, none on one core (they would only
    take turns with the writer)."""
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


def prepare(job: Job, workspace: str, neighbours: int, *, offload: bool = True) -> Prepared:
    """One file's analysed blocks (``offload``: a large file parsed by the offload worker)."""
    revision, text = job
    split = split_file_offloaded if offload else split_file_checked
    blocks, error = split(revision.path, text, workspace=workspace)
    return Prepared(block_fields(blocks, revision, neighbours), error)


class Preparer:
    """Prepares files in place (``processes`` 0) or in that many worker processes."""

    def __init__(self, workspace: str, neighbours: int, processes: int = 0) -> None:
        self.workspace = workspace
        self.neighbours = neighbours
        self._workers: list[WorkerProcess] = [WorkerProcess(__name__) for _ in range(processes)]
        self._idle: queue.SimpleQueue[WorkerProcess] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)
        self._threads = ThreadPoolExecutor(processes) if processes else None

    def map(self, jobs: Iterable[Job]) -> Iterator[tuple[Revision, Prepared]]:
        """Each job's file prepared, in the order of ``jobs``: the first
        :data:`PARALLEL_AFTER_CHARS` of text in place, the rest in the workers."""
        jobs = iter(jobs)
        chars = 0
        for job in jobs:
            yield job[0], prepare(job, self.workspace, self.neighbours)
            chars += len(job[1])
            if self._threads is not None and chars >= PARALLEL_AFTER_CHARS:
                yield from self._map_in_workers(jobs, self._threads)
                return

    def _map_in_workers(
        self, jobs: Iterator[Job], threads: ThreadPoolExecutor
    ) -> Iterator[tuple[Revision, Prepared]]:
        pending: deque[tuple[list[Job], Future[list[Prepared]]]] = deque()
        for batch in _batches(jobs):
            pending.append((batch, threads.submit(self._prepare_batch, batch)))
            if len(pending) > IN_FLIGHT * len(self._workers):
                yield from _settled(*pending.popleft())
        while pending:
            yield from _settled(*pending.popleft())

    def _prepare_batch(self, batch: list[Job]) -> list[Prepared]:
        worker = self._idle.get()
        try:
            answer: list[Prepared] = worker.call((self.workspace, self.neighbours, batch))
            return answer
        except (OSError, EOFError, pickle.PickleError, struct.error):
            worker.stop()  # started anew by its next batch
            return [prepare(job, self.workspace, self.neighbours) for job in batch]
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:
            worker.stop()

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _batches(jobs: Iterable[Job]) -> Iterator[list[Job]]:
    batch: list[Job] = []
    chars = 0
    for job in jobs:
        batch.append(job)
        chars += len(job[1])
        if chars >= BATCH_CHARS or len(batch) >= BATCH_FILES:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _settled(
    batch: list[Job], future: Future[list[Prepared]]
) -> Iterator[tuple[Revision, Prepared]]:
    for (revision, _), prepared in zip(batch, future.result(), strict=True):
        yield revision, prepared


def _answer(request: tuple[str, int, list[Job]]) -> list[Prepared]:
    workspace, neighbours, batch = request
    return [prepare(job, workspace, neighbours, offload=False) for job in batch]


if __name__ == "__main__":
    # answer with this module's classes under their importable name, not __main__'s
    from memhub.memory import prepare as _module

    serve(_module._answer)
