"""The sha256 and md5 of a whole content, from chunks the store already holds.

A commit of uploaded chunks (``POST …/commits``) must know the whole content's
sha256 (its identity, checked against the one the client declared) and md5
(the ETag of the seed's blob API). Both are Merkle-Damgard hashes: they cannot
be resumed after a change in the middle, but they can be resumed after an
unchanged *prefix*. So the bytes are read as little and as cheaply as they can be:

- :class:`Midstates` keeps, for the large contents this process committed
  recently, the sha256 and md5 states after each of their chunks (copies of
  hashlib objects, in memory). A manifest that starts with the same chunks as
  one of them (the next push of a database changed in its middle or at its
  end) resumes both digests from there and reads only the chunks after. The
  states come only from bytes this process read and that added up to the
  declared sha256; a chunk is named by its sha256, so the same list of chunks
  is the same bytes. A restart, another worker or another node simply starts
  from the first chunk;
- each chunk's own sha256 is not recomputed: it was checked when the chunk was
  uploaded, and the whole content's sha256, checked against the declared one,
  covers every byte read again (a chunk that rotted since makes it differ, and
  the caller then finds and reports that chunk). A chunk of a resumed prefix is
  not read at all; every read of it later (GET, pull, ``fsck``) verifies it;
- reads run ahead on a few threads, a window of chunks at a time, while the
  previous window is hashed; sha256 and md5 run side by side on two threads
  (hashlib and file reads let go of the GIL).

Pure of metadata: the caller hands in how to read one chunk.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from memhub.store.model import ChunkRef

WINDOW_BYTES = 16 * 1024**2  # read ahead this much while the previous window is hashed
READERS = 4
REPEAT_BUDGET = 64 * 1024**2
# a pair of hashlib states is ~550 bytes: at most ~9 MB of them, for large contents only
MAX_STATES = 16_384
MAX_CONTENTS = 16
MIN_CHUNKS = 8

State = tuple[Any, Any]  # (sha256, md5) hashlib objects, never updated once kept


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a digest starts: after the first ``count`` chunks, in these states."""

    count: int
    states: list[State]  # after each of those chunks; the last is where hashing resumes


@dataclass(frozen=True, slots=True)
class Digests:
    sha256: str
    md5: str
    states: list[State] | None  # after each chunk (when asked for)
    resumed: int  # chunks not read: a known prefix


def whole_digests(
    read: Callable[[ChunkRef], bytes], refs: Sequence[ChunkRef], *, window: int = WINDOW_BYTES
) -> tuple[str, str]:
    """(sha256, md5) of the chunks of ``refs`` in order (:func:`digest_chunks`)."""
    got = digest_chunks(read, refs, window=window)
    return got.sha256, got.md5


def digest_chunks(
    read: Callable[[ChunkRef], bytes],
    refs: Sequence[ChunkRef],
    *,
    window: int = WINDOW_BYTES,
    start: Resume | None = None,
    keep: bool = False,
) -> Digests:
    """The digests of the chunks of ``refs`` in order, each read by ``read`` (which
    checks its size), ``window`` bytes read ahead at a time; a chunk named many times
    is read once (up to a budget). ``start``: the first chunks are known, hashing
    resumes after them. ``keep``: return the states after each chunk."""
    count = start.count if start else 0
    sha, md5 = (start.states[-1][0].copy(), start.states[-1][1].copy()) if start else (
        hashlib.sha256(), hashlib.md5())  # fmt: skip
    kept_sha: list[Any] | None = [] if keep else None
    kept_md5: list[Any] | None = [] if keep else None
    rest = refs[count:]
    once = _ReadOnce(read, rest)
    windows = list(_windows(rest, window))
    if len(windows) <= 1:  # a small content: threads would cost more than they save
        datas = [once.get(ref) for ref in rest]
        _feed(sha, datas, kept_sha)
        _feed(md5, datas, kept_md5)
    else:
        with ThreadPoolExecutor(READERS, "digest-read") as readers, ThreadPoolExecutor(1) as side:
            ahead = [readers.submit(once.get, ref) for ref in windows[0]]
            for nxt in [*windows[1:], None]:
                datas = [future.result() for future in ahead]
                ahead = [readers.submit(once.get, ref) for ref in nxt] if nxt else []
                md5_done: Future[Any] = side.submit(_feed, md5, datas, kept_md5)
                _feed(sha, datas, kept_sha)
                md5_done.result()
    states = None
    if kept_sha is not None and kept_md5 is not None:
        states = (start.states if start else []) + list(zip(kept_sha, kept_md5, strict=True))
    return Digests(sha.hexdigest(), md5.hexdigest(), states, count)


def _feed(digest: Any, datas: list[bytes], kept: list[Any] | None) -> None:
    for data in datas:
        digest.update(data)
        if kept is not None:
            kept.append(digest.copy())


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


class Midstates:
    """The digest states after each chunk of the large contents committed last (by
    workspace and content sha256), so a manifest that starts like one of them resumes
    there. Bounded: ``max_contents`` contents, ``max_states`` states in all, least
    recently used dropped first; contents of fewer than ``min_chunks`` are not kept."""

    def __init__(
        self,
        *,
        max_contents: int = MAX_CONTENTS,
        max_states: int = MAX_STATES,
        min_chunks: int = MIN_CHUNKS,
    ) -> None:
        self.max_contents = max_contents
        self.max_states = max_states
        self.min_chunks = min_chunks
        self._known: OrderedDict[tuple[int, str], tuple[list[str], list[State]]] = OrderedDict()
        self._lock = threading.Lock()

    def wants(self, refs: Sequence[ChunkRef]) -> bool:
        return self.min_chunks <= len(refs) <= self.max_states

    def start(self, ws_id: int, refs: Sequence[ChunkRef]) -> Resume | None:
        """The longest known prefix of ``refs`` in ``ws_id``'s contents (None: none)."""
        shas = [ref.sha256 for ref in refs]
        count, best = 0, None
        with self._lock:
            for key, (known, _) in self._known.items():
                if key[0] == ws_id and (common := _common_prefix(known, shas)) > count:
                    count, best = common, key
            if best is None:
                return None
            self._known.move_to_end(best)
            return Resume(count, self._known[best][1][:count])

    def remember(
        self, ws_id: int, content_sha: str, refs: Sequence[ChunkRef], states: list[State]
    ) -> None:
        """Keep the ``states`` after each chunk of a content whose bytes were read and
        added up to ``content_sha``."""
        if not self.wants(refs) or len(states) != len(refs):
            return
        with self._lock:
            self._known[(ws_id, content_sha)] = ([ref.sha256 for ref in refs], states)
            self._known.move_to_end((ws_id, content_sha))
            total = sum(len(s) for _, s in self._known.values())
            while len(self._known) > self.max_contents or total > self.max_states:
                _, (_, dropped) = self._known.popitem(last=False)
                total -= len(dropped)

    def __len__(self) -> int:
        return len(self._known)


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


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
