"""The local half of the SQLite sync, on real SQLite files: snapshots of a database being
written, chunking, what a manifest reports, the state quick-check, backups and their
retention, and the atomic replace with ``-wal``/``-shm`` present."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memhub.errors import BadRequest, Conflict
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbstate import SyncState
from memhub.sync.dbsync import fingerprint, record

ROWS = 3000


def make_db(path: Path, rows: int = ROWS, *, wal: bool = True) -> None:
    with closing(sqlite3.connect(path)) as conn:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("CREATE TABLE meta (total INTEGER)")
        conn.execute("INSERT INTO meta VALUES (?)", (rows,))
        conn.executemany(
            "INSERT INTO items (body) VALUES (?)", ((f"row {i} " * 12,) for i in range(rows))
        )
        conn.commit()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path, table: str = "items") -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def wal_pair(tmp_path: Path, name: str = "live.db") -> Path:
    """A WAL database whose last transactions are still in its -wal (as after a crash)."""
    source = tmp_path / "building" / name
    source.parent.mkdir()
    make_db(source)
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE meta SET total = total + 500")
    conn.executemany("INSERT INTO items (body) VALUES (?)", (("in the wal",) for _ in range(500)))
    conn.commit()
    target = tmp_path / name
    for suffix in ("", "-wal"):  # copied while the writer is idle: a consistent pair
        shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    conn.close()
    assert (tmp_path / f"{name}-wal").stat().st_size > 0
    return target


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Path]:
    """A database another thread keeps writing (WAL): rows and meta.total move together."""
    db = tmp_path / "busy.db"
    make_db(db)
    stop, wrote = threading.Event(), threading.Event()

    def write() -> None:
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            while not stop.is_set():
                with conn:
                    conn.executemany(
                        "INSERT INTO items (body) VALUES (?)", (("busy " * 20,) for _ in range(7))
                    )
                    conn.execute("UPDATE meta SET total = total + 7")
                wrote.set()

    thread = threading.Thread(target=write)
    thread.start()
    # the first write has landed before any snapshot (however loaded the machine)
    if not wrote.wait(60):
        stop.set()
        thread.join()
        pytest.fail("the writer thread never committed")
    yield db
    stop.set()
    thread.join()


def test_snapshots_of_a_database_being_written_are_consistent(writer: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    for i in range(5):
        copy = tmp_path / f"snap-{i}.db"
        sq.snapshot(writer, copy)
        info = sq.inspect(copy)  # PRAGMA integrity_check passes
        with closing(sqlite3.connect(copy)) as conn:
            total = conn.execute("SELECT total FROM meta").fetchone()[0]
        assert info.tables["items"] == total  # one transaction's view, never half of one
        seen.append(total)
    assert seen == sorted(seen)
    assert seen[-1] > ROWS  # the writer really was writing


def test_a_snapshot_includes_the_wal_and_does_not_depend_on_checkpoints(tmp_path: Path) -> None:
    db = wal_pair(tmp_path)
    sq.snapshot(db, tmp_path / "one.db")
    assert rows(tmp_path / "one.db") == ROWS + 500
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sq.snapshot(db, tmp_path / "two.db")
    sq.snapshot(tmp_path / "two.db", tmp_path / "three.db")  # a snapshot of a snapshot
    assert sha(tmp_path / "one.db") == sha(tmp_path / "two.db") == sha(tmp_path / "three.db")
    assert not (tmp_path / "one.db-wal").exists()  # self-contained


def test_snapshot_refuses_what_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BadRequest):
        sq.snapshot(junk, tmp_path / "out.db")


def test_inspect_reports_pages_and_row_counts_and_catches_damage(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    make_db(db, wal=True)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE VIRTUAL TABLE notes USING fts5(body)")
        conn.execute("INSERT INTO notes VALUES ('hello world')")
        conn.commit()
    snap = tmp_path / "snap.db"
    sq.snapshot(db, snap)
    info = sq.inspect(snap)
    assert info.page_size == 4096
    assert info.page_count * info.page_size == snap.stat().st_size
    assert info.wal_header  # opening it turns WAL on again, like the original
    assert info.tables["items"] == ROWS and info.tables["meta"] == 1 and info.tables["notes"] == 1
    data = bytearray(snap.read_bytes())
    data[3 * 4096 : 3 * 4096 + 200] = os.urandom(200)  # trash a b-tree page
    snap.write_bytes(bytes(data))
    with pytest.raises(BadRequest, match="integrity"):
        sq.inspect(snap)


def test_chunk_size_is_a_multiple_of_the_page_size_and_fits_the_manifest() -> None:
    assert sq.chunk_size_for(65536, 4096, 10**9, 100_000) == 65536
    assert sq.chunk_size_for(10_000, 4096, 10**6, 100_000) == 12288  # rounded up
    assert sq.chunk_size_for(1024, 65536, 10**6, 100_000) == 65536  # never below a page
    assert sq.chunk_size_for(65536, 4096, 65536 * 250, 100) == 65536 * 4  # doubled to fit
    with pytest.raises(BadRequest):
        sq.chunk_size_for(0, 4096, 10, 10)


def test_chunks_cover_the_file_and_a_changed_row_changes_one_chunk(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    make_db(db, rows=20_000, wal=False)
    whole, size, chunks = sq.hash_chunks(db, 65536)
    assert whole == sha(db) and size == db.stat().st_size
    assert [c.offset for c in chunks] == list(range(0, size, 65536))
    assert all(c.size == 65536 for c in chunks[:-1]) and sum(c.size for c in chunks) == size
    assert sq.read_chunk(db, chunks[3]) == db.read_bytes()[3 * 65536 : 4 * 65536]
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE items SET body = 'changed' WHERE id = 10000")
        conn.commit()
    after = sq.hash_chunks(db, 65536)[2]
    changed = [i for i, (a, b) in enumerate(zip(chunks, after, strict=True)) if a != b]
    assert 1 <= len(changed) <= 2  # the row's page, and page 1 (its change counter)
    assert len(chunks) > 30


def test_state_quick_check_sees_writes_and_ignores_reads(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    make_db(db)
    state = SyncState(tmp_path / "config" / "dbsync.json")
    key = SyncState.key("http://h:1/", "default", "a", db)
    assert key == SyncState.key("http://h:1", "default", "a", db)
    assert key != SyncState.key("http://h:1", "default", "a", tmp_path / "b.db")
    assert state.get(key) is None
    state.put(key, record(db, "a", "f" * 64, 7, fingerprint(db), "push"))
    assert state.get(key)["fingerprint"] == fingerprint(db)  # type: ignore[index]
    with closing(sqlite3.connect(db)) as reader:
        reader.execute("SELECT count(*) FROM items").fetchone()
        assert fingerprint(db) == state.get(key)["fingerprint"]  # type: ignore[index]
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("UPDATE items SET body = 'x' WHERE id = 1")
            conn.commit()
        assert fingerprint(db)["wal"] is not None  # the write sits in the -wal
        assert fingerprint(db) != state.get(key)["fingerprint"]  # type: ignore[index]
    (tmp_path / "config" / "dbsync.json").write_text("{ damaged")
    assert state.get(key) is None  # a damaged cache costs a re-hash, nothing else


def test_backups_include_the_wal_and_retention_keeps_count_and_age(tmp_path: Path) -> None:
    db = wal_pair(tmp_path)
    backups = tmp_path / "backups"
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    made = [sq.make_backup(db, backups, "live", now=now - timedelta(days=d)) for d in range(8)]
    made.append(sq.make_backup(db, backups, "live", now=now - timedelta(days=40)))
    assert rows(made[0]) == ROWS + 500  # what was still in the -wal is in the backup
    assert sq.inspect(made[0]).tables["items"] == ROWS + 500
    (backups / "other-20260101T000000000000Z.sqlite").write_bytes(b"not ours")
    pruned = sq.prune_backups(backups, "live", keep=5, max_age_days=30, now=now)
    assert sorted(pruned) == sorted(made[5:])
    pruned = sq.prune_backups(backups, "live", keep=10, max_age_days=2.5, now=now)
    assert sorted(pruned) == sorted(made[3:5])  # by age: 3 and 4 days old
    left = sorted(p.name for p in backups.iterdir())
    assert left == sorted([*(p.name for p in made[:3]), "other-20260101T000000000000Z.sqlite"])


def test_replace_takes_over_a_wal_database_and_leaves_no_side_files(tmp_path: Path) -> None:
    db = wal_pair(tmp_path)
    (tmp_path / "live.db-shm").write_bytes(b"\0" * 32768)  # a stale -shm, as after a crash
    new = tmp_path / "new.db"
    make_db(new, rows=10)
    expected = sha(new)
    sq.replace_database(new, db)
    assert sha(db) == expected and not new.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("live.db")] == ["live.db"]
    assert rows(db) == 10


def test_replace_removes_a_stale_wal_left_without_its_database(tmp_path: Path) -> None:
    old = wal_pair(tmp_path)
    old.unlink()  # the database went, its -wal stayed: it must never meet the new file
    new = tmp_path / "new.db"
    make_db(new, rows=10, wal=True)
    sq.replace_database(new, old)
    assert not (tmp_path / "live.db-wal").exists()
    assert sq.inspect(old).tables["items"] == 10


def test_replace_refuses_while_another_process_has_the_database_open(tmp_path: Path) -> None:
    db = wal_pair(tmp_path)
    argv = [sys.executable, "-c", HOLD_OPEN, str(db)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
            new = tmp_path / "new.db"
            make_db(new, rows=10)
            with pytest.raises(Conflict, match="open in another process"):
                sq.replace_database(new, db)
            assert new.exists()
        finally:
            holder.kill()
    snap = tmp_path / "check.db"
    sq.snapshot(db, snap)
    assert sq.inspect(snap).tables["items"] == ROWS + 500  # the old database, whole


HOLD_OPEN = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM items").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


def test_stale_temp_files_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = tmp_path / f".a.db.memhub-{pid}-0123abcd.tmp"
    stale_journal = tmp_path / f".a.db.memhub-{pid}-0123abcd.tmp-journal"
    mine = sq.temp_path(tmp_path, "a.db")
    for path in (stale, stale_journal, mine):
        path.write_bytes(b"x")
    other = tmp_path / f".b.db.memhub-{pid}-0123abcd.tmp"
    other.write_bytes(b"x")
    assert sorted(sq.remove_stale_temps(tmp_path, "a.db")) == sorted([stale, stale_journal])
    assert mine.exists() and other.exists()
