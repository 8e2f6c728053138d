"""What a push remembers of the bytes it hashed (:mod:`memhub.sync.dbhashes`), on real
SQLite files: the next push sha256s only the chunks that changed and resumes the whole
file's sha256 after the unchanged ones, and gets the same digests as hashing it all;
a record that is damaged, of another chunk size or of another file is not used."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from blake3 import blake3

from memhub.sync import dbhashes, dbsource
from memhub.sync import sqlite_snapshot as sq

CHUNK = 8 * 4096


def make_db(path: Path, rows: int = 6000) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany(
            "INSERT INTO items (body) VALUES (?)", ((f"row {i} " * 9,) for i in range(rows))
        )
        conn.commit()


def write(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(sql)
        conn.commit()


def hashed(db: Path, known: dbhashes.Known | None) -> tuple[tuple[str, list[sq.Chunk]], int, int]:
    """(whole sha256, chunks), chunks sha256'd, chunks not read again for the whole."""
    with dbsource.open_source(db, db.with_name("unused.tmp")) as source:
        assert source.pinned
        whole, _, chunks, _ = source.hash_chunks(CHUNK, known)
        return (whole, chunks), source.rehashed, source.resumed


def record_of(db: Path) -> dbhashes.Known:
    with dbsource.open_source(db, db.with_name("unused.tmp")) as source:
        return source.hash_chunks(CHUNK)[3]


def test_a_change_in_the_middle_rehashes_its_chunk_and_resumes_after_the_prefix(
    tmp_path: Path,
) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    known = record_of(db)
    write(db, "UPDATE items SET body = 'x' || substr(body, 2) WHERE id BETWEEN 3000 AND 3010")
    fresh, rehashed_all, _ = hashed(db, None)

    again, rehashed, resumed = hashed(db, known)

    assert again == fresh  # the same chunks and whole sha256 as hashing everything
    sq.snapshot(db, tmp_path / "copy.sqlite")  # the bytes a push sends: the backup copy's
    assert fresh[0] == hashlib.sha256((tmp_path / "copy.sqlite").read_bytes()).hexdigest()
    changed = [i for i, (a, b) in enumerate(zip(known.sha256s, fresh[1], strict=True))
               if a != b.sha256]  # fmt: skip
    assert rehashed_all == len(fresh[1]) and rehashed == len(changed) >= 1
    assert resumed == changed[0] > 0  # chunks before the first change: not read again


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO items (body) SELECT body FROM items WHERE id < 2000",  # grows
        "DELETE FROM items WHERE id > 1000",  # then VACUUM: shrinks
    ],
)
def test_a_database_that_grew_or_shrank_gets_the_digests_of_a_full_hash(
    tmp_path: Path, change: str
) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    known = record_of(db)
    write(db, change)
    if change.startswith("DELETE"):
        write(db, "VACUUM")
    assert hashed(db, known)[0] == hashed(db, None)[0]


def test_nothing_changed_reads_nothing_again_for_the_whole(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    known = record_of(db)
    (whole, chunks), rehashed, resumed = hashed(db, known)
    assert (rehashed, resumed) == (0, len(chunks))
    assert whole == hashed(db, None)[0][0]


def test_a_record_is_used_only_whole_and_for_its_chunk_size(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    path = dbhashes.path_for(tmp_path / "config", db)
    dbhashes.save(path, record_of(db))
    assert dbhashes.load(path, CHUNK) == record_of(db)
    assert dbhashes.load(path, 2 * CHUNK) is None
    assert dbhashes.path_for(tmp_path / "config", tmp_path / "other.db") != path

    data = json.loads(path.read_text())
    data["body"]["sha256"][1] = "0" * 64  # a lie about a chunk: the record's own hash fails
    path.write_text(json.dumps(data))
    assert dbhashes.load(path, CHUNK) is None
    path.write_text("{not json")
    assert dbhashes.load(path, CHUNK) is None
    path.unlink()
    assert dbhashes.load(path, CHUNK) is None


def test_a_record_of_another_state_format_is_not_used(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    path = dbhashes.path_for(tmp_path / "config", db)
    dbhashes.save(path, record_of(db))
    data = json.loads(path.read_text())
    data["body"]["states_format"] = "rehashes-0.0.1"
    data["blake3"] = blake3(json.dumps(data["body"]).encode()).hexdigest()
    path.write_text(json.dumps(data))
    assert dbhashes.load(path, CHUNK) is None
