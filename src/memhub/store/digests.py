"""The sha256 and md5 of a whole content, from chunks the store already holds.

A commit of uploaded chunks (``POST …/commits``) must know the whole content's
sha256 (its identity, checked against the one the client declared) and md5
(the ETag of the seed's blob API). Neither can be carried over from the
previous revision: a Merkle-Damgard hash cannot resume after a change in the
middle. So the bytes are read once more, but as cheaply as they can be:

- each chunk's own sha256 is not recomputed: it was checked when the chunk was
  uploaded, and the whole content's sha256, checked against the declared one,
  covers every byte again (a chunk that rotted since makes it differ, and the
  caller then finds and reports that chunk);
- reads run ahead on a few threads, a window of chunks at a time, while the
  previous window is hashed; sha256 and md5 run side by side on two threads
  (hashlib and file reads let go of the GIL).

Pure of metadata: the caller hands in how to read one chunk.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from memhub.store.model import ChunkRef

WINDOW_BYTES = 16 * 1024**2  # read ahead this much while the previous window is hashed
READERS = 4
REPEAT_BUDGET = 64 * 1024**2


def whole_digests(
    read: Callable[[ChunkRef], bytes], refs: Sequence[ChunkRef], *, window: int = WINDOW_BYTES
) -> tuple[str, str]:
    """(sha256, md5) of the chunks of ``refs`` in order, each read by ``read`` (which
    checks its size), ``window`` bytes read ahead at a time; a chunk named many times
    is read once (up to a budget)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    once = _ReadOnce(read, refs)
    windows = list(_windows(refs, window))
    if len(windows) <= 1:  # a small content: threads would cost more than they save
        datas = [once.get(ref) for ref in refs]
        _feed(sha, datas)
        _feed(md5, datas)
        return sha.hexdigest(), md5.hexdigest()
    with ThreadPoolExecutor(READERS, "digest-read") as readers, ThreadPoolExecutor(1) as side:
        ahead = [readers.submit(once.get, ref) for ref in windows[0]] if windows else []
        for nxt in [*windows[1:], None]:
            datas = [future.result() for future in ahead]
            ahead = [readers.submit(once.get, ref) for ref in nxt] if nxt else []
            md5_done: Future[Any] = side.submit(_feed, md5, datas)
            _feed(sha, datas)
            md5_done.result()
    return sha.hexdigest(), md5.hexdigest()


def _feed(digest: Any, datas: list[bytes]) -> None:
    for data in datas:
        digest.update(data)


def _windows(refs: Sequence[ChunkRef], limit: int) -> Iterator[list[ChunkRef]]:
    """Consecutive groups of refs of about ``limit`` bytes (at least one ref each)."""
    group: list[ChunkRef] = []
    size = 0
    for ref in refs:
        group.append(ref)
        size += ref.size
        if size >= limit:
            yield group
            group, size = [], 0
    if group:
        yield group


class _ReadOnce:
    """``read`` of a chunk, keeping (up to a budget) those the manifest names again."""

    def __init__(self, read: Callable[[ChunkRef], bytes], refs: Sequence[ChunkRef]) -> None:
        self._read = read
        counts = Counter(ref.sha256 for ref in refs)
        self._repeats = {sha for sha, n in counts.items() if n > 1}
        self._kept: dict[str, bytes] = {}
        self._room = REPEAT_BUDGET
        self._lock = threading.Lock()

    def get(self, ref: ChunkRef) -> bytes:
        with self._lock:
            kept = self._kept.get(ref.sha256)
        if kept is not None:
            return kept
        data = self._read(ref)
        if ref.sha256 in self._repeats:
            with self._lock:
                if len(data) <= self._room and ref.sha256 not in self._kept:
                    self._kept[ref.sha256] = data
                    self._room -= len(data)
        return data
