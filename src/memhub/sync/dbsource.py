"""What a push reads: the live database file in place, or a snapshot copy of it.

A push needs one consistent version of the database for three passes: the
integrity check, the hashes, and the upload of the chunks the server lacks.
The safe default is a copy made with the online backup API
(:func:`memhub.sync.sqlite_snapshot.snapshot`), which costs a write and a
read of the whole file. When the database is in WAL mode and its ``-wal`` is
empty, the copy is not needed: :func:`open_source` then *pins* the file
instead, with one read transaction held for the whole push. A reader that
began while the WAL was empty reads every page from the main file, and while
it reads, no checkpoint may write into that file (the checkpointer waits for
such readers); writers only append to the ``-wal``, and are never blocked.
So the main file's bytes are that version, and are read in place.

The bytes are then those of the backup copy exactly (a test compares them):
the backup API makes a new file whose header says change counter 1, schema
cookie 1, version-valid-for 1, the page count and this library's version,
and the rest is the source's pages verbatim. The pinned source writes those
header fields into page 1 as it reads it, so the sha256 of a database does not
depend on how it was read, and a pull's ``local_sha`` agrees with a push's.

The file is read through one descriptor, opened before the connection and
closed after it: closing any other descriptor of the file would drop this
process's POSIX locks on it, SQLite's among them. Litestream does something
close to this: it keeps a long read transaction open so that it, not the
application, decides when the WAL is checkpointed, and ships WAL frames.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from memhub.errors import BadRequest
from memhub.sync import dbhashes
from memhub.sync import sqlite_snapshot as sq

HEADER_BYTES = 100
READ_PIECE = 1 << 20
_V = sqlite3.sqlite_version_info
SQLITE_VERSION_NUMBER = _V[0] * 1_000_000 + _V[1] * 1000 + _V[2]


class Source:
    """One version of a database: its bytes by offset, its size, its check."""

    def __init__(self, path: Path, fd: int, conn: sqlite3.Connection | None) -> None:
        self.path = path
        self.pinned = conn is not None  # the live file, held by ``conn``'s read transaction
        self._fd = fd
        self._conn = conn
        self.size = os.fstat(fd).st_size
        self.page_size = sq.header_page_size(path) if conn is None else _page_size(conn)
        self.rehashed = self.resumed = 0  # chunks sha256'd, and not read for the whole's

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end of the file); a read that
        covers the header starts at 0 (chunks start on page boundaries)."""
        size = max(0, min(size, self.size - offset))
        parts: list[bytes] = []
        got = 0
        while got < size:
            piece = os.pread(self._fd, size - got, offset + got)
            if not piece:
                raise BadRequest(f"{self.path} shrank while it was read")
            parts.append(piece)
            got += len(piece)
        data = b"".join(parts)
        if self.pinned and offset == 0 and len(data) >= HEADER_BYTES:
            data = _as_backup_header(data, self.size // self.page_size)
        return data

    def inspect(self) -> sq.DbInfo:
        """``PRAGMA integrity_check``, page size and row counts of this version."""
        if self._conn is None:
            return sq.inspect(self.path)
        return sq.inspect_connection(self._conn, self.path, self.read(0, HEADER_BYTES))

    def hash_chunks(
        self, chunk_size: int, known: dbhashes.Known | None = None
    ) -> tuple[str, int, list[sq.Chunk], dbhashes.Known]:
        """sha256 of the whole, its size, its chunks and the record of them for the next
        push, in one read (the whole's digest on a second thread: the hashes let go of
        the GIL); with ``known``, the record of the last push, only what changed since
        is hashed with sha256 (:mod:`memhub.sync.dbhashes`)."""
        hasher = dbhashes.Hasher(chunk_size, known)
        chunks: list[sq.Chunk] = []
        with ThreadPoolExecutor(1) as side:
            fed = side.submit(lambda: None)
            for index, offset in enumerate(range(0, self.size, chunk_size)):
                piece = self.read(offset, chunk_size)
                sha = hasher.chunk_sha256(index, piece)
                fed.result()
                fed = side.submit(hasher.feed_whole, index, piece)
                chunks.append(sq.Chunk(offset, len(piece), sha))
            fed.result()
        whole, record = hasher.finish()
        self.rehashed, self.resumed = hasher.rehashed, hasher.resumed
        return whole, self.size, chunks, record

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for offset in range(0, self.size, READ_PIECE):
            digest.update(self.read(offset, READ_PIECE))
        return digest.hexdigest()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # first: closing the descriptor drops the process's locks
        os.close(self._fd)


@contextmanager
def open_source(file: Path, tmp: Path) -> Iterator[Source]:
    """The database ``file`` pinned in place when it can be, else copied to ``tmp``
    (the caller removes ``tmp``)."""
    source = _pin(file)
    if source is None:
        sq.snapshot(file, tmp)
        source = Source(tmp, os.open(tmp, os.O_RDONLY), None)
    try:
        yield source
    finally:
        source.close()


def _pin(file: Path) -> Source | None:
    """``file`` held by a read transaction that reads nothing from the WAL, or None
    (not WAL mode, WAL frames present, a size that is not whole pages, any error)."""
    fd = os.open(file, os.O_RDONLY)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(
            sq.uri(file, mode="ro"),
            uri=True,
            timeout=sq.LOCK_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,  # the integrity check runs on a worker thread
        )
        # read-only mapping: no checkpoint may shrink the file under this reader
        conn.execute(f"PRAGMA mmap_size={sq.MMAP_BYTES}")
        if _reads_main_file_only(conn, file, fd):
            return Source(file, fd, conn)
    except sqlite3.Error:
        pass
    if conn is not None:
        conn.close()  # first: closing the descriptor drops the process's locks
    os.close(fd)
    return None


def _reads_main_file_only(conn: sqlite3.Connection, file: Path, fd: int) -> bool:
    """Begin ``conn``'s read transaction; True when it reads every page from the main
    file (WAL mode, an empty ``-wal`` once the read began, whole pages)."""
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
        return False
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read begins here
    wal = sq.file_stat(sq.side_file(file, "-wal"))
    if wal is not None and wal.size > 0:
        return False
    page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
    return os.fstat(fd).st_size == page_count * _page_size(conn)


def _page_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA page_size").fetchone()[0])


def _as_backup_header(page: bytes, page_count: int) -> bytes:
    """The start of page 1 with the header fields the backup API writes into a new
    copy: change counter, page count, schema cookie, version-valid-for, version."""
    header = bytearray(page[:HEADER_BYTES])
    for at, value in ((24, 1), (28, page_count), (40, 1), (92, 1), (96, SQLITE_VERSION_NUMBER)):
        header[at : at + 4] = value.to_bytes(4, "big")
    return bytes(header) + page[HEADER_BYTES:]
