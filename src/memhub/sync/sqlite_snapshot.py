"""The local half of the SQLite sync: snapshots, checks, chunks, backups, replace.

Nothing here talks to a server.

- :func:`snapshot` copies a live database with SQLite's online backup API: one
  read transaction, so the copy is consistent while another process keeps
  writing (in WAL mode the writer is never blocked), and it includes what is
  still in the ``-wal``. The copy is deterministic: the same logical content
  gives the same bytes, wherever its pages were (WAL or main file).
- :func:`inspect` runs ``PRAGMA integrity_check`` on a snapshot and reads its
  page size and row counts (opened ``immutable=1``: no locks, no side files).
- :func:`hash_chunks` cuts a file into fixed-size chunks, a multiple of the
  page size, so a changed page changes one chunk.
- :func:`replace_database` puts a checked file in place of a database: the
  old one is checkpointed (``wal_checkpoint(TRUNCATE)``), refused if another
  process has it open, its empty ``-wal``/``-shm`` are removed, then one
  ``os.replace`` and an fsync of the directory. A crash at any point leaves
  the old database or the new one, never a mix (the new file is a
  self-contained snapshot: no WAL of the old one can be applied to it).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memhub.core.durable import fsync_dir
from memhub.errors import BadRequest, Conflict, FileNotFound

SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # a rollback journal that may be hot
LOCK_TIMEOUT = 2.0  # seconds to wait for another connection before calling the DB busy
# a check reads every page: memory-mapped, SQLite reads them without a pread and a copy
# each (integrity_check of a 200 MB database: ~0.30 s of CPU read, ~0.21 s mapped);
# SQLite clamps this to its own limit (2 GiB by default) and reads the rest as usual
MMAP_BYTES = 1 << 40


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime_ns: int


def file_stat(path: Path) -> FileStat | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return FileStat(st.st_size, st.st_mtime_ns)


def side_file(db: Path, suffix: str) -> Path:
    return db.with_name(db.name + suffix)


def fingerprint(db: Path) -> dict[str, list[int] | None]:
    """(size, mtime_ns) of the database and its ``-wal``: changes whenever a write lands."""
    result: dict[str, list[int] | None] = {}
    for key, path in (("db", db), ("wal", side_file(db, "-wal"))):
        st = file_stat(path)
        result[key] = [st.size, st.mtime_ns] if st else None
    return result


def uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{path.resolve().as_uri()}?{query}"


# -- temp files ----------------------------------------------------------------------


def temp_path(directory: Path, stem: str) -> Path:
    """A temp name next to the target; the pid in it lets a later run remove leftovers."""
    return directory / f".{stem}.memhub-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: Path, stem: str) -> list[Path]:
    """Delete temp files (and their SQLite side files) left by runs that died (kill -9)."""
    removed: list[Path] = []
    pattern = re.compile(rf"^\.{re.escape(stem)}\.memhub-(\d+)-[0-9a-f]{{8}}\.tmp")
    for path in directory.glob(f".{glob.escape(stem)}.memhub-*.tmp*"):
        match = pattern.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- snapshot and checks -------------------------------------------------------------


def snapshot(source: Path, dest: Path, *, timeout: float = 30.0) -> None:
    """Copy the live database ``source`` into the new file ``dest`` (online backup API).

    The source is opened read-only, so closing it never checkpoints the ``-wal``:
    the database's files stay as they were (a push does not change what it
    fingerprints). A read-only open fails on a hot rollback journal, which needs
    a read-write connection to roll back: then it is opened read-write.
    """
    if not source.is_file():
        raise FileNotFound(f"no database at {source}", context={"path": str(source)})
    try:
        _backup(source, dest, "ro", timeout)
    except sqlite3.OperationalError:
        dest.unlink(missing_ok=True)
        _backup(source, dest, "rw", timeout)


def _backup(source: Path, dest: Path, mode: str, timeout: float) -> None:
    try:
        src = sqlite3.connect(uri(source, mode=mode), uri=True, timeout=timeout)
        try:
            dst = sqlite3.connect(dest)
            try:
                dst.execute("PRAGMA journal_mode=OFF")  # a new file: nothing to roll back;
                dst.execute("PRAGMA synchronous=OFF")  # callers fsync what must be durable
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.OperationalError as exc:
        if mode == "ro":
            raise  # snapshot() tries again read-write
        raise BadRequest(f"cannot copy {source}: {exc}") from exc
    except sqlite3.Error as exc:
        raise BadRequest(f"cannot copy {source}: {exc}", hint="is it a SQLite database?") from exc


@dataclass(frozen=True, slots=True)
class DbInfo:
    page_size: int
    page_count: int
    wal_header: bool  # the file says WAL mode (opening it turns WAL on again)
    tables: dict[str, int | None]  # row counts; None for a virtual table we cannot read


def inspect(path: Path) -> DbInfo:
    """``PRAGMA integrity_check`` plus page size and row counts of a file nobody else has open."""
    try:
        conn = sqlite3.connect(uri(path, mode="ro", immutable="1"), uri=True)
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    except sqlite3.Error as exc:
        raise BadRequest(f"cannot open {path}: {exc}") from exc
    try:
        with path.open("rb") as f:
            header = f.read(20)
        return inspect_connection(conn, path, header)
    finally:
        conn.close()


def inspect_connection(conn: sqlite3.Connection, path: Path, header: bytes) -> DbInfo:
    """:func:`inspect` on an open connection to ``path`` (whose first bytes are
    ``header``): the version of the database its transaction sees."""
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise BadRequest(
                f"{path} fails PRAGMA integrity_check",
                context={"problems": problems},
                hint="the database is damaged; nothing was sent or replaced",
            )
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        names = [
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        tables = {name: _count(conn, name) for name in sorted(names)}
    except sqlite3.DatabaseError as exc:
        raise BadRequest(
            f"{path} fails PRAGMA integrity_check: {exc}",
            hint="the database is damaged; nothing was sent or replaced",
        ) from exc
    return DbInfo(page_size, page_count, header[18:19] == b"\x02", tables)


def _count(conn: sqlite3.Connection, table: str) -> int | None:
    quoted = '"' + table.replace('"', '""') + '"'
    try:
        return int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    except sqlite3.OperationalError:  # a virtual table whose module this Python lacks
        return None


# -- chunks --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    offset: int
    size: int
    sha256: str


def chunk_size_for(requested: int, page_size: int, file_size: int, max_chunks: int) -> int:
    """``requested`` rounded up to a multiple of the page size, doubled until the file
    fits in ``max_chunks`` chunks (the server's limit per manifest)."""
    if requested <= 0:
        raise BadRequest("the chunk size must be positive")
    size = -(-requested // page_size) * page_size
    while -(-file_size // size) > max_chunks:
        size *= 2
    return size


def header_page_size(path: Path) -> int:
    """The page size a database file's header declares (bytes 16-17; 1 means 65536)."""
    with path.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        raise BadRequest(f"{path} is not a SQLite database")
    value = int.from_bytes(header[16:18], "big")
    return 65536 if value == 1 else value


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
            size += len(piece)
    return digest.hexdigest(), size


def chunk_hashes(path: Path, chunk_size: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    offset = 0
    with path.open("rb", buffering=0) as f:
        while piece := f.read(chunk_size):
            chunks.append(Chunk(offset, len(piece), hashlib.sha256(piece).hexdigest()))
            offset += len(piece)
    return chunks


def hash_chunks(path: Path, chunk_size: int) -> tuple[str, int, list[Chunk]]:
    """sha256 of the whole file, its size and its chunks (two threads: hashlib lets go
    of the GIL, and the second read comes from the page cache)."""
    with ThreadPoolExecutor(1) as pool:
        whole = pool.submit(file_sha256, path)
        chunks = chunk_hashes(path, chunk_size)
        sha, size = whole.result()
    if size != sum(c.size for c in chunks):
        raise BadRequest(f"{path} changed while it was hashed")
    return sha, size, chunks


def read_chunk(path: Path, chunk: Chunk) -> bytes:
    with path.open("rb", buffering=0) as f:
        f.seek(chunk.offset)
        return f.read(chunk.size)


# -- backups -------------------------------------------------------------------------


def _backup_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}-(\d{{8}}T\d{{12}})Z\.sqlite$")


def make_backup(db: Path, directory: Path, name: str, *, now: datetime) -> Path:
    """A durable copy of ``db`` (backup API, so WAL content is in it) named by time."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(directory, name)
    target = directory / f"{name}-{now.astimezone(UTC):%Y%m%dT%H%M%S%f}Z.sqlite"
    tmp = temp_path(directory, name)
    try:
        snapshot(db, tmp)
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        side_file(tmp, "-journal").unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return target


def prune_backups(
    directory: Path, name: str, *, keep: int, max_age_days: float, now: datetime
) -> list[Path]:
    """Delete backups beyond the ``keep`` newest and those older than ``max_age_days``."""
    pattern = _backup_pattern(name)
    dated: list[tuple[datetime, Path]] = []
    for path in directory.glob(f"{glob.escape(name)}-*.sqlite") if directory.is_dir() else []:
        match = pattern.match(path.name)
        if match:
            taken = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
            dated.append((taken, path))
    dated.sort(reverse=True)
    cutoff = now - timedelta(days=max_age_days)
    doomed = [path for i, (taken, path) in enumerate(dated) if i >= keep or taken < cutoff]
    for path in doomed:
        for suffix in ("", *SIDE_SUFFIXES):  # a backup someone opened has side files
            side_file(path, suffix).unlink(missing_ok=True)
    if doomed:
        fsync_dir(directory)
    return doomed


# -- replace -------------------------------------------------------------------------


def replace_database(new: Path, target: Path) -> None:
    """Atomically put the checked, fsync'd file ``new`` in place of ``target``."""
    if target.exists():
        _quiesce(target)
    else:  # side files without their database: a stale -wal must never meet the new file
        for suffix in SIDE_SUFFIXES:
            side_file(target, suffix).unlink(missing_ok=True)
    os.replace(new, target)
    fsync_dir(target.parent)


def _quiesce(target: Path) -> None:
    """Checkpoint ``target`` into its main file; refuse when another process has it open;
    then remove its side files, which are empty (or not hot) by now."""
    in_use = Conflict(
        f"{target} is open in another process",
        context={"path": str(target)},
        hint="stop the program that uses it (--before CMD) and pull again",
    )
    try:
        conn = sqlite3.connect(uri(target, mode="rw"), uri=True, timeout=LOCK_TIMEOUT)
    except sqlite3.Error as exc:
        raise BadRequest(f"cannot open {target}: {exc}") from exc
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])  # rolls back a hot journal
        if mode == "wal" and conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            raise in_use
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")  # fails while any other connection has it open (WAL)
        conn.rollback()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise in_use from exc
        raise BadRequest(f"cannot checkpoint {target}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise BadRequest(
            f"{target} is not a readable SQLite database: {exc}",
            hint="move it away and pull again",
        ) from exc
    finally:
        conn.close()
    wal = file_stat(side_file(target, "-wal"))
    if wal is not None and wal.size > 0:
        raise in_use  # a writer appended after our checkpoint
    journal = side_file(target, "-journal")
    with contextlib.suppress(FileNotFoundError), journal.open("rb") as f:
        if f.read(len(JOURNAL_MAGIC)) == JOURNAL_MAGIC:
            raise in_use  # a live transaction's journal: replacing now would be unsafe
    for suffix in SIDE_SUFFIXES:
        side_file(target, suffix).unlink(missing_ok=True)
