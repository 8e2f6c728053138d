"""What a push reads (:mod:`memhub.sync.dbsource`), on real SQLite files: a WAL database
with an empty ``-wal`` is read in place and gives the backup copy's bytes exactly; one
with WAL frames, or in rollback mode, is copied; a pinned version stays that version
while another connection writes and checkpoints."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from memhub.sync import dbsource
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbsync import local_sha


def make_db(path: Path, *, wal: bool = True, page_size: int = 4096) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA page_size={page_size}")
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        for t in range(4):  # several schema changes: the schema cookie is not 1
            conn.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("CREATE INDEX t0_body ON t0 (body)")
        conn.executemany(
            "INSERT INTO t0 (body) VALUES (?)", ((f"row {i} " * 9,) for i in range(5000))
        )
        conn.commit()
        conn.execute("UPDATE t0 SET body = 'changed' WHERE id % 7 = 0")
        conn.commit()
        conn.execute("DROP TABLE t1")
        conn.commit()


def backup_bytes(db: Path, tmp_path: Path) -> bytes:
    copy = tmp_path / "backup-copy.sqlite"
    copy.unlink(missing_ok=True)
    sq.snapshot(db, copy)
    return copy.read_bytes()


def source_bytes(source: dbsource.Source, piece: int = 3 * 4096) -> bytes:
    return b"".join(source.read(o, piece) for o in range(0, source.size, piece))


@pytest.mark.parametrize("page_size", [1024, 4096, 65536])
def test_a_wal_database_with_an_empty_wal_is_read_in_place_as_its_backup_copy(
    tmp_path: Path, page_size: int
) -> None:
    db = tmp_path / "app.db"
    make_db(db, page_size=page_size)
    expected = backup_bytes(db, tmp_path)

    with dbsource.open_source(db, tmp_path / "unused.tmp") as source:
        assert source.pinned and source.path == db
        assert source_bytes(source) == expected
        whole, size, chunks, _ = source.hash_chunks(2 * page_size)
        info = source.inspect()

    assert (whole, size) == (hashlib.sha256(expected).hexdigest(), len(expected))
    assert [c.sha256 for c in chunks] == [
        hashlib.sha256(expected[c.offset : c.offset + c.size]).hexdigest() for c in chunks
    ]
    assert info.page_size == page_size and info.page_count * page_size == len(expected)
    assert info.tables == {"t0": 5000, "t2": 0, "t3": 0}
    assert not (tmp_path / "unused.tmp").exists()
    assert local_sha(db) == hashlib.sha256(expected).hexdigest()


def test_wal_frames_or_a_rollback_journal_mean_a_backup_copy(tmp_path: Path) -> None:
    rollback = tmp_path / "rollback.db"
    make_db(rollback, wal=False)
    framed = tmp_path / "framed.db"
    make_db(framed)
    writer = sqlite3.connect(framed)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO t2 (body) VALUES ('only in the wal')")
    writer.commit()
    try:
        assert sq.side_file(framed, "-wal").stat().st_size > 0
        for db in (rollback, framed):
            expected = backup_bytes(db, tmp_path)
            tmp = tmp_path / f"{db.stem}.tmp"
            with dbsource.open_source(db, tmp) as source:
                assert not source.pinned and source.path == tmp
                assert source_bytes(source) == expected
                assert source.inspect().tables["t0"] == 5000
            assert local_sha(db) == hashlib.sha256(expected).hexdigest()
        with dbsource.open_source(framed, tmp_path / "f2.tmp") as source:
            assert source.inspect().tables["t2"] == 1  # the WAL's row is in the copy
    finally:
        writer.close()


def test_a_pinned_version_holds_while_another_connection_writes_and_checkpoints(
    tmp_path: Path,
) -> None:
    db = tmp_path / "busy.db"
    make_db(db)
    before = backup_bytes(db, tmp_path)
    with dbsource.open_source(db, tmp_path / "unused.tmp") as source:
        assert source.pinned
        with closing(sqlite3.connect(db, timeout=0.1)) as writer:
            writer.executemany(
                "UPDATE t0 SET body = ? WHERE id = ?",
                ((f"new {i}" * 20, i) for i in range(1, 4000, 3)),
            )
            writer.commit()  # the writer is not blocked
            _busy, log, done = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert log > 0 and done < log  # the pinned reader holds the checkpoint back
        assert source_bytes(source) == before
        assert source.inspect().tables["t0"] == 5000
        assert source.hash_chunks(8192)[0] == hashlib.sha256(before).hexdigest()
    after = backup_bytes(db, tmp_path)
    assert after != before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM t0 WHERE body LIKE 'new %'").fetchone()[0] > 1000
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
