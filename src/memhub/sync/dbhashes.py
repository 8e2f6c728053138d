"""What a push remembers of the bytes it hashed, so that the next one hashes what changed.

A push must name every chunk of the database by its sha256 and declare the
sha256 of the whole file: both cover every byte. Two things make a re-push
cheaper without trusting anything but the bytes:

- a chunk whose BLAKE3 digest equals the one it had at the last push has the
  same bytes (BLAKE3 is a cryptographic hash, ~2.5 times as fast as sha256 here),
  so its sha256 is taken from then: only changed chunks pay for a sha256;
- sha256 is a Merkle-Damgard hash: its state after the first k chunks depends
  on those bytes only. The state after each chunk is kept (``rehashes``
  serialises it: 104 bytes), so the whole file's sha256 resumes after the
  unchanged prefix and reads on from the first changed chunk.

The record lives in ``<config dir>/dbhashes/`` per database file and is only a
cache: one that is missing, damaged (its own BLAKE3 fails), of another chunk
size or written by another version of ``rehashes`` simply means hashing
everything, as the first push does; so does a commit the server refuses
because the chunks do not add up (the push deletes the record). It is written
after hashing, whatever the push does next: it describes bytes, not the server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import rehashes
from blake3 import blake3

from memhub.core.durable import write_durably

FORMAT = 1
DIR = "dbhashes"
# a sha256 state is in rehashes' own serialisation: a record of another version is not used
STATE_FORMAT = f"rehashes-{version('rehashes')}"


@dataclass(frozen=True, slots=True)
class Known:
    """The chunks of one version of a file: BLAKE3 and sha256 of each, and the whole
    file's sha256 state after each."""

    chunk_size: int
    blake3s: list[str]
    sha256s: list[str]
    states: list[bytes]


def path_for(config_dir: Path, file: Path) -> Path:
    """The record of ``file`` (an absolute path) in ``config_dir``."""
    name = hashlib.sha256(str(file).encode()).hexdigest()[:32]
    return config_dir / DIR / f"{name}.json"


def load(path: Path, chunk_size: int) -> Known | None:
    """The record at ``path`` when it is whole and of ``chunk_size`` (None otherwise)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        body = data["body"]
        if data["blake3"] != blake3(json.dumps(body).encode()).hexdigest():
            return None
        if (body["format"], body["states_format"]) != (FORMAT, STATE_FORMAT):
            return None
        if body["chunk_size"] != chunk_size:
            return None
        known = Known(
            chunk_size,
            [str(x) for x in body["blake3"]],
            [str(x) for x in body["sha256"]],
            [bytes.fromhex(x) for x in body["states"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not len(known.blake3s) == len(known.sha256s) == len(known.states):
        return None
    return known


def save(path: Path, known: Known) -> None:
    body: dict[str, Any] = {
        "format": FORMAT,
        "states_format": STATE_FORMAT,
        "chunk_size": known.chunk_size,
        "blake3": known.blake3s,
        "sha256": known.sha256s,
        "states": [state.hex() for state in known.states],
    }
    data = {"blake3": blake3(json.dumps(body).encode()).hexdigest(), "body": body}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(data).encode())


class Hasher:
    """Feeds a file's chunks in order: each chunk's sha256 (from ``known`` when its BLAKE3
    is unchanged) and the whole file's sha256, resumed after the unchanged prefix."""

    def __init__(self, chunk_size: int, known: Known | None) -> None:
        self.chunk_size = chunk_size
        self._known = known if known is not None and known.chunk_size == chunk_size else None
        self._whole: Any = None  # a rehashes.PySha256 once the prefix ended
        self._blake3s: list[str] = []
        self._sha256s: list[str] = []
        self._states: list[bytes] = []
        self.rehashed = 0  # chunks whose sha256 was computed
        self.resumed = 0  # chunks the whole file's sha256 did not read again

    def chunk_sha256(self, index: int, piece: bytes) -> str:
        """The sha256 of chunk ``index`` (``piece``): remembered, or computed now."""
        mark = blake3(piece, max_threads=1).hexdigest()
        known = self._known
        if known is not None and index < len(known.blake3s) and known.blake3s[index] == mark:
            sha = known.sha256s[index]
        else:
            sha = hashlib.sha256(piece).hexdigest()
            self.rehashed += 1
        self._blake3s.append(mark)
        self._sha256s.append(sha)
        return sha

    def feed_whole(self, index: int, piece: bytes) -> None:
        """Chunk ``index`` into the whole file's sha256 (after :meth:`chunk_sha256` of
        it): skipped while every chunk so far is the remembered one."""
        known = self._known
        if self._whole is None:
            if known is not None and self._same_so_far(index):
                self._states.append(known.states[index])
                self.resumed += 1
                return
            self._whole = self._resumed()
        self._whole.update(piece)
        self._states.append(bytes(self._whole.serialize()))

    def _resumed(self) -> Any:
        """The whole file's sha256 after the chunks fed so far (the remembered prefix)."""
        return (
            rehashes.PySha256.deserialize(self._states[-1]) if self._states else rehashes.PySha256()
        )

    def _same_so_far(self, index: int) -> bool:
        known = self._known
        return (
            known is not None
            and index < len(known.blake3s)
            and known.blake3s[index] == self._blake3s[index]
        )

    def finish(self) -> tuple[str, Known]:
        """The whole file's sha256 and the record of this version."""
        # every chunk the remembered one: the remembered state
        whole = self._whole if self._whole is not None else self._resumed()
        sha = str(whole.finalize())
        known = Known(self.chunk_size, self._blake3s, self._sha256s, self._states)
        return sha, known
