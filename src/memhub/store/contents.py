"""Contents and the chunks they are made of: the byte side of the store.

A content is identified by its sha256 (and carries its md5 and size); it is a
sequence of chunks, each stored in the blob store under its own sha256
(``chunks/<sha256>``). :class:`Chunks` writes a content's chunks (durable before
any metadata names them), takes chunks uploaded one by one and checks a
manifest of them, records contents in the metadata database inside a caller's
transaction, and reads chunks back, verifying each against its hash before a
byte of it is returned.

:class:`~memhub.store.service.Store` owns one and decides *when* (revisions,
preconditions, the change log); this module knows only bytes and hashes
(about 460 lines, one concern).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from sqlalchemy import Connection, bindparam, insert, select, update

from memhub.errors import (
    BadRequest,
    BlobMissing,
    ChunksMissing,
    InvalidChecksum,
    PayloadTooLarge,
    StorageCorrupt,
)
from memhub.store.blobs import BlobNotFound, BlobStore, chunk_key, put_all
from memhub.store.blobs.metainline import MetadataInline
from memhub.store.digests import Midstates, digest_chunks
from memhub.store.metadata import Metadata
from memhub.store.model import ChunkRef
from memhub.store.schema import chunks, content_chunks, contents

_CHUNKS_OF = (
    select(content_chunks.c.chunk_sha256, content_chunks.c.size)
    .where(
        content_chunks.c.workspace_id == bindparam("ws"),
        content_chunks.c.content_sha256 == bindparam("sha"),
    )
    .order_by(content_chunks.c.seq)
)
_INSERT_CONTENT_CHUNKS = insert(content_chunks)
_MANY = 500  # contents per query of refs_of_many (under SQLite's bound-parameter limit)


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class Content:
    """The identity of a content and the chunks it is made of. ``pending``: blobs of it
    not stored yet, which :meth:`Chunks.record` writes inside the recording transaction
    (small chunks, on a store whose inline tier is the metadata database)."""

    __slots__ = ("chunks", "md5", "pending", "sha256", "size")

    def __init__(
        self,
        sha256: str,
        md5: str,
        size: int,
        chunk_refs: list[ChunkRef],
        pending: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sha256 = sha256
        self.md5 = md5
        self.size = size
        self.chunks = chunk_refs
        self.pending = pending or []


class Chunks:
    def __init__(
        self,
        meta: Metadata,
        blobs: BlobStore,
        *,
        chunk_size: int,
        max_chunk_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max(max_chunk_bytes, chunk_size)
        self.clock = clock
        self._corruption_listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self.midstates = Midstates()
        # the local store's inline tier, when it is in this very metadata database
        within: MetadataInline | None = getattr(blobs, "within", None)
        self._within = within if within is not None and within.meta is meta else None

    # -- writing ---------------------------------------------------------------------

    def writes_inline(self, size: int) -> bool:
        """Whether a chunk of ``size`` bytes is stored by the transaction that records
        it (:meth:`record`) rather than before it."""
        within = self._within
        return within is not None and size <= within.max_bytes

    def write(self, data: bytes | IO[bytes], max_bytes: int | None) -> Content:
        """Cut ``data`` into chunks and make each durable, or leave the small ones
        pending for :meth:`record`; the content they make."""
        whole_sha = hashlib.sha256()
        whole_md5 = hashlib.md5()
        refs: list[ChunkRef] = []
        pending: list[tuple[str, bytes]] = []
        size = 0
        for piece in _pieces(data, self.chunk_size):
            size += len(piece)
            if max_bytes is not None and size > max_bytes:
                raise PayloadTooLarge(
                    f"the body is larger than the limit of {max_bytes} bytes",
                    context={"max_bytes": max_bytes},
                )
            whole_sha.update(piece)
            whole_md5.update(piece)
            chunk_sha = hashlib.sha256(piece).hexdigest()
            if self.writes_inline(len(piece)):
                pending.append((chunk_key(chunk_sha), piece))
            else:
                self.blobs.put(chunk_key(chunk_sha), piece)
            refs.append(ChunkRef(chunk_sha, len(piece)))
        return Content(whole_sha.hexdigest(), whole_md5.hexdigest(), size, refs, pending)

    def write_many(self, datas: list[bytes]) -> list[Content]:
        """:meth:`write` of many contents: those of one chunk go to the blob store in one
        call, or, small enough for the metadata database, are left pending for the
        transaction that records them; larger ones are written as :meth:`write` does,
        a piece at a time."""
        made: list[Content] = []
        pending: dict[str, bytes] = {}
        for data in datas:
            if len(data) > self.chunk_size:  # several chunks: written one piece at a time
                made.append(self.write(data, None))
                continue
            sha = hashlib.sha256(data).hexdigest()  # one chunk: the content is its chunk
            refs = [ChunkRef(sha, len(data))] if data else []
            inline: list[tuple[str, bytes]] = []
            if data and self.writes_inline(len(data)):
                inline.append((chunk_key(sha), bytes(data)))
            elif data:
                pending.setdefault(chunk_key(sha), bytes(data))
            made.append(Content(sha, hashlib.md5(data).hexdigest(), len(data), refs, inline))
        put_all(self.blobs, list(pending.items()))
        return made

    def put(self, ws_id: int, sha256: str, data: bytes) -> bool:
        """Store one uploaded chunk after checking its hash; True when it was new to the
        workspace."""
        sha256 = sha256.lower()
        if not is_sha256(sha256):
            raise BadRequest("a chunk is addressed by 64 hex digits of its sha256")
        if len(data) > self.max_chunk_bytes:
            raise PayloadTooLarge(
                f"a chunk may be at most {self.max_chunk_bytes} bytes",
                context={"max_bytes": self.max_chunk_bytes},
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise InvalidChecksum(
                "the chunk's bytes do not hash to its address",
                context={"declared": sha256, "actual": actual},
            )
        self.blobs.put(chunk_key(sha256), data)
        with self.meta.write() as conn:
            inserted = conn.execute(
                self.meta.insert_ignore(chunks),
                {"workspace_id": ws_id, "sha256": sha256, "size": len(data),
                 "created_at": self.clock()},
            ).rowcount  # fmt: skip
        return bool(inserted)

    def missing(self, ws_id: int, shas: Iterable[str], *, touch: bool = True) -> list[str]:
        """The hashes in ``shas`` this workspace has not uploaded, in the order given.

        Present chunks are touched, so ``memhub gc`` leaves them alone for its
        grace period while the client commits a manifest that uses them.
        """
        wanted = list(dict.fromkeys(s.lower() for s in shas))
        bad = [s for s in wanted if not is_sha256(s)]
        if bad:
            raise BadRequest("chunk hashes must be 64 hex digits", context={"invalid": bad[:10]})
        present: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            with self.meta.read() as conn:
                present.update(
                    conn.execute(
                        select(chunks.c.sha256).where(
                            chunks.c.workspace_id == ws_id, chunks.c.sha256.in_(batch)
                        )
                    ).scalars()
                )
            if touch and present:
                with self.meta.write() as conn:
                    conn.execute(
                        update(chunks)
                        .where(
                            chunks.c.workspace_id == ws_id,
                            chunks.c.sha256.in_([s for s in batch if s in present]),
                        )
                        .values(created_at=self.clock())
                    )
        return [s for s in wanted if s not in present]

    def assemble(
        self, ws_id: int, refs: list[ChunkRef], sha256: str, max_bytes: int | None
    ) -> Content:
        """The content a manifest of uploaded chunks makes, checked against ``sha256``.

        The work is bounded before any byte is read (:meth:`_check_manifest`); then
        the chunks are read back once to hash the whole and compute its md5
        (:mod:`memhub.store.digests`: each chunk's sha256 was checked on upload, and
        the whole's covers every byte read again; a prefix of chunks this process
        already hashed for a recent content is not read, its digest states are
        resumed), so a manifest can never name content the store does not hold.
        When the whole does not match, each chunk is verified, so that one which
        rotted in the store is reported as such.
        """
        sha256 = sha256.lower()
        if not is_sha256(sha256):
            raise BadRequest("sha256 must be 64 hex digits")
        refs = [ChunkRef(c.sha256.lower(), c.size) for c in refs]
        self._check_manifest(ws_id, refs, max_bytes)
        start = self.midstates.start(ws_id, refs)
        got = digest_chunks(self._sized, refs, start=start, keep=self.midstates.wants(refs))
        actual, md5 = got.sha256, got.md5
        if actual != sha256:
            for ref in {ref.sha256: ref for ref in refs}.values():
                self.verified(ref)  # raises StorageCorrupt for a chunk that rotted
            raise InvalidChecksum(
                "the chunks do not add up to the declared sha256",
                context={"declared": sha256, "actual": actual},
            )
        if got.states is not None:
            self.midstates.remember(ws_id, sha256, refs, got.states)
        return Content(sha256, md5, sum(ref.size for ref in refs), refs)

    def _check_manifest(self, ws_id: int, refs: list[ChunkRef], max_bytes: int | None) -> None:
        """Refuse a manifest from the metadata alone: too many bytes, chunks never
        uploaded by this workspace, or sizes other than the uploaded ones."""
        declared = sum(ref.size for ref in refs)
        if max_bytes is not None and declared > max_bytes:
            raise PayloadTooLarge(
                f"the manifest names {declared} bytes, more than the limit of {max_bytes}",
                context={"declared": declared, "max_bytes": max_bytes},
            )
        wanted = list(dict.fromkeys(ref.sha256 for ref in refs))
        bad = [s for s in wanted if not is_sha256(s)]
        if bad:
            raise BadRequest("chunk hashes must be 64 hex digits", context={"invalid": bad[:10]})
        sizes: dict[str, int] = {}
        with self.meta.read() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(chunks.c.sha256, chunks.c.size).where(
                        chunks.c.workspace_id == ws_id,
                        chunks.c.sha256.in_(wanted[start : start + 500]),
                    )
                ).all()
                sizes.update((row[0], int(row[1])) for row in rows)
        missing = [s for s in wanted if s not in sizes]
        if missing:
            raise ChunksMissing(
                f"{len(missing)} chunks of the manifest were never uploaded",
                context={"missing": missing[:100]},
                hint="upload them with PUT …/chunks/{sha256}, then commit again",
            )
        for ref in refs:
            if sizes[ref.sha256] != ref.size:
                raise InvalidChecksum(
                    f"chunk {ref.sha256} is {sizes[ref.sha256]} bytes, the manifest says "
                    f"{ref.size}",
                    context={"chunk": ref.sha256, "declared": ref.size,
                             "actual": sizes[ref.sha256]},
                )  # fmt: skip

    # -- the metadata of contents (inside the caller's write transaction) -------------

    def record(
        self,
        conn: Connection,
        ws_id: int,
        made: list[Content],
        now: float,
        *,
        new_chunks: bool = True,
    ) -> None:
        """Record contents, their chunk lists and (``new_chunks``: written by this
        request, not uploaded earlier) their chunks, once each, and store the blobs they
        left pending; the caller holds the workspace's write lock."""
        unique = {c.sha256: c for c in made}
        pending = dict(item for c in unique.values() for item in c.pending)
        if pending:
            within = self._within
            assert within is not None, "pending blobs come only from a store with the tier"
            # stamped with the clock, not ``now`` (an import's own, older time): gc's
            # grace period for blobs is counted from this
            within.put_within(conn, list(pending.items()), self.clock())
        if new_chunks:
            sizes = {ref.sha256: ref.size for c in unique.values() for ref in c.chunks}
            if sizes:
                conn.execute(
                    self.meta.insert_ignore(chunks),
                    [
                        {"workspace_id": ws_id, "sha256": sha, "size": size, "created_at": now}
                        for sha, size in sizes.items()
                    ],
                )
        if len(unique) == 1:  # the common case: the insert itself says whether it is new
            [content] = unique.values()
            inserted = conn.execute(
                self.meta.insert_ignore(contents), _content_row(ws_id, content, now)
            ).rowcount
            fresh = [content] if inserted else []
        else:
            known: set[str] = set()
            shas = list(unique)
            for start in range(0, len(shas), 500):
                known.update(
                    conn.execute(
                        select(contents.c.sha256).where(
                            contents.c.workspace_id == ws_id,
                            contents.c.sha256.in_(shas[start : start + 500]),
                        )
                    ).scalars()
                )
            fresh = [c for sha, c in unique.items() if sha not in known]
            if fresh:
                conn.execute(
                    self.meta.insert_ignore(contents),
                    [_content_row(ws_id, c, now) for c in fresh],
                )
        links = [
            {"workspace_id": ws_id, "content_sha256": c.sha256, "seq": seq,
             "chunk_sha256": ref.sha256, "size": ref.size}
            for c in fresh
            for seq, ref in enumerate(c.chunks)
        ]  # fmt: skip
        if links:
            conn.execute(_INSERT_CONTENT_CHUNKS, links)

    @staticmethod
    def refs_of(conn: Connection, ws_id: int, sha256: str) -> list[ChunkRef]:
        rows = conn.execute(_CHUNKS_OF, {"ws": ws_id, "sha": sha256}).all()
        return [ChunkRef(r[0], r[1]) for r in rows]

    @staticmethod
    def refs_of_many(
        conn: Connection, ws_id: int, shas: Iterable[str]
    ) -> dict[str, list[ChunkRef]]:
        """:meth:`refs_of` for many contents in a query per ``_MANY`` of them; a content
        the workspace does not hold is absent from the answer."""
        wanted = sorted(set(shas))
        out: dict[str, list[ChunkRef]] = {}
        for start in range(0, len(wanted), _MANY):
            rows = conn.execute(
                select(
                    content_chunks.c.content_sha256,
                    content_chunks.c.chunk_sha256,
                    content_chunks.c.size,
                )
                .where(
                    content_chunks.c.workspace_id == ws_id,
                    content_chunks.c.content_sha256.in_(wanted[start : start + _MANY]),
                )
                .order_by(content_chunks.c.content_sha256, content_chunks.c.seq)
            ).all()
            for content, chunk, size in rows:
                out.setdefault(content, []).append(ChunkRef(chunk, size))
        return out

    # -- reading -----------------------------------------------------------------------

    def iter_content(self, refs: list[ChunkRef]) -> Iterator[bytes]:
        """The content, one verified chunk at a time (a chunk is at most
        ``max_chunk_bytes``): no byte leaves before its chunk passed its sha256."""
        for ref in refs:
            yield self.verified(ref)

    def read_content(self, refs: list[ChunkRef]) -> bytes:
        return b"".join(self.verified(ref) for ref in refs)

    def verified(self, ref: ChunkRef) -> bytes:
        """One chunk's bytes, after they passed their sha256 and size."""
        data = self._stored(ref)
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256 or len(data) != ref.size:
            for callback in list(self._corruption_listeners):
                callback(ref.sha256)
            raise StorageCorrupt(
                f"chunk {ref.sha256} failed its sha256 check on read",
                context={"chunk": ref.sha256, "actual": actual, "size": len(data)},
                hint="the stored bytes rotted: run `memhub fsck` and restore the chunk "
                "from a backup or another revision",
            )
        return data

    def _stored(self, ref: ChunkRef) -> bytes:
        try:
            return self.blobs.get(chunk_key(ref.sha256))
        except BlobNotFound:
            raise BlobMissing(
                f"chunk {ref.sha256} is missing from the blob store",
                hint="the store is damaged: run `memhub fsck`",
            ) from None

    def _sized(self, ref: ChunkRef) -> bytes:
        """One chunk's bytes, of its recorded size (its sha256 is for the caller to
        cover: :meth:`assemble` checks the whole's)."""
        data = self._stored(ref)
        if len(data) != ref.size:
            return self.verified(ref)  # reports the damage (and tells the listeners)
        return data

    def add_corruption_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(chunk_sha256)`` runs whenever a chunk fails its hash on read."""
        with self._lock:
            self._corruption_listeners.append(callback)


def _content_row(ws_id: int, content: Content, now: float) -> dict[str, object]:
    return {
        "workspace_id": ws_id,
        "sha256": content.sha256,
        "md5": content.md5,
        "size": content.size,
        "chunk_count": len(content.chunks),
        "created_at": now,
    }


def _pieces(data: bytes | IO[bytes], size: int) -> Iterator[bytes]:
    """Cut ``data`` into pieces of exactly ``size`` bytes (the last may be shorter)."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = bytes(data)
        for start in range(0, len(view), size):
            yield view[start : start + size]
        return
    while True:
        buf = bytearray()
        while len(buf) < size:
            piece = data.read(size - len(buf))
            if not piece:
                break
            buf += piece
        if buf:
            yield bytes(buf)
        if len(buf) < size:
            return
