"""``memhub db push|pull`` and ``memhub lease`` against a real server, as users run them.

Each simulated host is a set of environment variables: its own config dir (the
sync state), data dir (backups) and ``MEMHUB_HOST_ID`` (the lease holder). The
databases are real SQLite files; one is written by another process while it is
pushed. ``test_kill_9_during_pull_leaves_old_or_new`` kills ``memhub db pull``
at 30 moments spread over a whole pull.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import rehashes

from memhub.client import MemhubClient
from memhub.errors import (
    BadRequest,
    FencingTokenRejected,
    InvalidChecksum,
    PreconditionFailed,
)
from memhub.sync import dbhashes
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbpull import PullOptions, pull
from memhub.sync.dbstate import LeaseGuard, SyncState
from memhub.sync.dbsync import push

pytestmark = pytest.mark.e2e

MEMHUB = Path(sys.executable).parent / "memhub"

WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30)
conn.execute("PRAGMA journal_mode=WAL")
print("writing", flush=True)
while True:
    with conn:
        conn.executemany("INSERT INTO items (body) VALUES (?)", [("w" * 150,)] * 20)
        conn.execute("UPDATE meta SET total = total + 20")
    time.sleep(0.002)
"""


def make_db(path: Path, rows: int, *, seed: int = 0) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("CREATE TABLE meta (total INTEGER)")
        conn.execute("INSERT INTO meta VALUES (?)", (rows,))
        body = f"seed {seed} " + "x" * 180
        conn.executemany("INSERT INTO items (body) VALUES (?)", ((body,) for _ in range(rows)))
        conn.commit()


def update_rows(path: Path, ids: list[int], text: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executemany("UPDATE items SET body = ? WHERE id = ?", ((text, i) for i in ids))
        conn.commit()


def count(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        items = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        return int(items), int(conn.execute("SELECT total FROM meta").fetchone()[0])


def signature(path: Path, scratch: Path) -> tuple[str, dict[str, int | None]]:
    """sha256 of a backup-API copy (the same for the same logical content) and row counts;
    the copy passing integrity_check is part of it."""
    copy = scratch / f"sig-{time.monotonic_ns()}.db"
    sq.snapshot(path, copy)
    try:
        tables = sq.inspect(copy).tables
        return sq.hash_chunks(copy, 1 << 20)[0], tables
    finally:
        copy.unlink()


@dataclass
class Host:
    """One simulated machine running the memhub CLI."""

    name: str
    env: dict[str, str]

    @property
    def child_env(self) -> dict[str, str]:
        """Our environment without MEMHUB_*, plus this host's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
        env.update(self.env, COLUMNS="200", XDG_DATA_HOME=f"{self.env['HOME']}/xdg-data")
        return env

    def run(self, *args: str | Path, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
        done = subprocess.run(
            [str(MEMHUB), *(str(a) for a in args), "--json"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            env=self.child_env, check=False,
        )  # fmt: skip
        body = json.loads(done.stdout) if done.stdout.strip() else {}
        return done.returncode, body, done.stderr

    def ok(self, *args: str | Path) -> dict[str, Any]:
        code, body, stderr = self.run(*args)
        assert code == 0 and body["ok"], stderr
        return body


def make_host(server: Any, tmp_path: Path, name: str) -> Host:
    home = tmp_path / f"host-{name}"
    home.mkdir()
    env = {
        "HOME": str(home),
        "MEMHUB_SERVER": server.base_url,
        "MEMHUB_KEY": server.key,
        "MEMHUB_CONFIG_DIR": str(home / "config"),
        "MEMHUB_DATA_DIR": str(home / "data"),
        "MEMHUB_HOST_ID": f"host-{name}",
    }
    return Host(name, env)


def leases(server: Any) -> dict[str, dict[str, Any]]:
    with server.client() as http:
        return {x["name"]: x for x in http.get("/v1/workspaces/default/leases").json()["leases"]}


def head(server: Any, path: str) -> dict[str, Any] | None:
    with server.client() as http:
        revisions = http.get(f"/v1/workspaces/default/history/{path}").json()["revisions"]
    return revisions[0] if revisions else None


def test_push_while_writing_pull_back_skip_and_send_few_chunks(
    memhub_server: Any, tmp_path: Path
) -> None:
    server = memhub_server()
    a, b = make_host(server, tmp_path, "a"), make_host(server, tmp_path, "b")
    db = tmp_path / "busy.db"
    make_db(db, rows=40_000)
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    ) as writer:
        try:
            assert writer.stdout is not None and writer.stdout.readline().strip() == b"writing"
            while count(db)[0] < 40_200:
                time.sleep(0.01)
            pushed = a.ok("db", "push", db)
            assert not pushed["skipped"] and pushed["rev"] >= 1
            assert pushed["chunks_total"] > 100  # every chunk is new to the server
            assert pushed["chunks_sent"] >= pushed["chunks_total"] - 2
            assert pushed["bytes_sent"] >= pushed["size"] - 2 * 65536
            assert count(db)[0] > pushed["tables"]["items"]  # still writing after the snapshot
        finally:
            writer.kill()
    # the snapshot taken mid-write is consistent and pulls back byte for byte
    copy = tmp_path / "elsewhere" / "copy.db"
    pulled = b.ok("db", "pull", copy, "--name", "busy")
    assert pulled["sha256"] == pushed["sha256"] and pulled["backup"] is None
    assert sq.hash_chunks(copy, 1 << 20)[0] == pushed["sha256"]
    assert sq.inspect(copy).tables == pushed["tables"]
    items, total = count(copy)
    assert items == total == pushed["tables"]["items"] > 40_000
    with server.client() as http:
        manifest = http.get("/v1/workspaces/default/files/dbs/busy.manifest.json").json()
    assert manifest["rev"] == pushed["rev"] and manifest["sha256"] == pushed["sha256"]
    assert manifest["host"] == "host-a" and manifest["tables"] == pushed["tables"]
    assert manifest["page_size"] == 4096 and manifest["size"] == pushed["size"]
    # what the writer added after the snapshot goes with the next push; then nothing to do
    final = a.ok("db", "push", db)
    assert not final["skipped"] and final["tables"]["items"] == count(db)[0]
    again = a.ok("db", "push", db)
    assert again["skipped"] and again["reason"] == "unchanged" and again["bytes_sent"] == 0
    # a few rows changed: a few chunks go
    update_rows(db, [5, 20_000, 39_000], "changed " * 20)
    small = a.ok("db", "push", db)
    assert not small["skipped"] and small["rev"] > final["rev"]
    assert 1 <= small["chunks_sent"] <= 5 < small["chunks_total"] // 20
    assert small["bytes_sent"] <= 5 * 65536
    assert leases(server)["db:busy"]["active"] is False  # released after every push


def test_pull_backs_up_keeps_retention_and_runs_hooks(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server()
    b = make_host(server, tmp_path, "b")
    a = MemhubClient(server.base_url, server.key)  # host A pushes in-process: B's CLI is tested
    a_state = SyncState(tmp_path / "a-state.json")
    source, target = tmp_path / "notes.db", tmp_path / "b" / "notes.db"
    make_db(source, rows=3000)
    push(a, source, holder="host-a", state=a_state)
    first = b.ok("db", "pull", target)
    assert first["backup"] is None and count(target)[0] == 3000
    log = tmp_path / "hooks.log"
    hooks = ["--before", f'echo "before $MEMHUB_DB_NAME" >> {log}']
    hooks += ["--after", f'echo "after $MEMHUB_DB_NAME" >> {log}']
    backups = Path(b.env["MEMHUB_DATA_DIR"]) / "backups" / "notes"
    for round_ in range(1, 4):
        previous = count(target)[0]
        with closing(sqlite3.connect(source)) as conn:
            conn.execute("INSERT INTO items (body) VALUES ('round')")
            conn.commit()
        push(a, source, holder="host-a", state=a_state)
        result = b.ok("db", "pull", target, "--keep-backups", "2", *hooks)
        assert not result["skipped"] and count(target)[0] == 3000 + round_
        assert result["before"]["exit_code"] == 0 == result["after"]["exit_code"]
        backup = Path(result["backup"])
        assert backup.parent == backups and sq.inspect(backup).tables["items"] == previous
        assert len(list(backups.glob("*.sqlite"))) == min(round_, 2)
        assert len(result["pruned"]) == (1 if round_ == 3 else 0)
    assert log.read_text() == "before notes\nafter notes\n" * 3
    assert b.ok("db", "pull", target)["reason"] == "unchanged"
    # a failing --before: nothing replaced, --after not run, nothing left behind
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("DELETE FROM items WHERE id < 100")
        conn.commit()
    push(a, source, holder="host-a", state=a_state)
    before = signature(target, tmp_path)
    files = sorted(p.name for p in target.parent.iterdir())
    code, body, stderr = b.run(
        "db", "pull", target, "--before", "exit 3", "--after", f"touch {log}.x"
    )
    assert code == 1 and body["ok"] is False and "--before failed" in stderr
    assert signature(target, tmp_path) == before
    assert sorted(p.name for p in target.parent.iterdir()) == files
    assert not Path(f"{log}.x").exists()
    # the local copy changed and so did the server's: refused, unless --overwrite
    update_rows(target, [1], "local edit")
    code, body, stderr = b.run("db", "pull", target)
    assert code == 1 and body["error_code"] == "PRECONDITION_FAILED" and "--overwrite" in stderr
    assert b.ok("db", "pull", target, "--overwrite")["backup"] is not None
    assert count(target)[0] == count(source)[0]
    a.close()


def test_lease_contention_force_and_release(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server()
    a, b = make_host(server, tmp_path, "a"), make_host(server, tmp_path, "b")
    db = tmp_path / "shared.db"
    make_db(db, rows=2000)
    with server.client() as http:
        taken = http.post(
            "/v1/workspaces/default/leases/db:shared", json={"holder": "host-a", "ttl": 600}
        )
        assert taken.status_code == 200
    code, body, stderr = b.run("db", "push", db)
    assert code == 1 and body["error_code"] == "LEASE_HELD"
    assert "held by host-a" in stderr and "--force" in stderr
    assert head(server, "dbs/shared.sqlite") is None
    forced = b.ok("db", "push", db, "--force")
    assert forced["lease"]["took_over"] == "host-a" and forced["lease"]["holder"] == "host-b"
    code, listed, _ = a.run("lease", "list", "--all")  # released leases are hidden by default
    assert code == 0
    assert next(x for x in listed["leases"] if x["name"] == "db:shared")["active"] is False
    # a failed push (A's own copy, never synced with the server's) releases the lease too
    mine = tmp_path / "a-shared.db"
    make_db(mine, rows=10)
    code, body, stderr = a.run("db", "push", mine, "--name", "shared")
    assert code == 1 and body["error_code"] == "PRECONDITION_FAILED"
    assert "never synced" in stderr
    lease = leases(server)["db:shared"]
    assert lease["active"] is False and lease["token"] == forced["lease"]["token"] + 1
    # memhub lease release breaks a lease whoever holds it
    with server.client() as http:
        http.post("/v1/workspaces/default/leases/db:shared", json={"holder": "host-c", "ttl": 600})
    released = a.run("lease", "release", "db:shared")[1]
    assert released["name"] == "db:shared" and released["active"] is False
    update_rows(db, [1], "after release")
    assert not b.ok("db", "push", db)["skipped"]


class TakeOverAtCommit:
    """A progress reporter that lets host B force the lease just before A commits."""

    def __init__(self, server: Any, name: str) -> None:
        self.server, self.name = server, name

    def phase(self, name: str, total: int | None = None) -> None:
        if name == "commit":
            with MemhubClient(self.server.base_url, self.server.key) as other:
                other.acquire(self.name, "host-b", 600, force=True)

    def advance(self, amount: int) -> None:
        pass


def test_a_stale_writer_is_fenced_off(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server()
    db = tmp_path / "fenced.db"
    make_db(db, rows=2000)
    state = SyncState(tmp_path / "a-state.json")
    with MemhubClient(server.base_url, server.key) as client:
        first = push(client, db, holder="host-a", state=state)
        update_rows(db, [1, 2, 3], "stale")
        with pytest.raises(FencingTokenRejected, match="taken over"):
            push(
                client,
                db,
                holder="host-a",
                state=state,
                reporter=TakeOverAtCommit(server, "db:fenced"),
            )
    current = head(server, "dbs/fenced.sqlite")
    assert current is not None and current["rev"] == first["rev"]  # nothing was written
    assert current["sha256"] == first["sha256"]
    lease = leases(server)["db:fenced"]
    assert lease["holder"] == "host-b" and lease["active"]  # A's release did not touch it


def test_diverged_copies_are_never_overwritten(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server()
    x, y = tmp_path / "x" / "mem.db", tmp_path / "y" / "mem.db"
    x.parent.mkdir()
    y.parent.mkdir()
    make_db(x, rows=2000, seed=1)
    make_db(y, rows=1000, seed=2)
    sa, sb = SyncState(tmp_path / "a.json"), SyncState(tmp_path / "b.json")
    options = PullOptions(backup_dir=tmp_path / "backups")
    with MemhubClient(server.base_url, server.key) as client:
        push(client, x, holder="a", state=sa)
        with pytest.raises(PreconditionFailed, match="never synced"):
            push(client, y, holder="b", state=sb)
        assert pull(client, y, options=options, state=sb)["backup"] is not None
        update_rows(y, [1], "b's edit")
        assert pull(client, y, options=options, state=sb)["reason"] == "local-newer"
        update_rows(x, [2], "a's edit")
        pushed = push(client, x, holder="a", state=sa)
        with pytest.raises(PreconditionFailed, match="both"):
            push(client, y, holder="b", state=sb)
        assert head(server, "dbs/mem.sqlite")["sha256"] == pushed["sha256"]  # type: ignore[index]
        forced = push(client, y, holder="b", state=sb, overwrite=True)
        assert forced["rev"] > pushed["rev"]
        again = pull(client, x, options=options, state=sa)  # x unchanged since its push
        assert not again["skipped"] and again["sha256"] == forced["sha256"]
        os.utime(x, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, not changed
        update_rows(y, [3], "b again")
        push(client, y, holder="b", state=sb)
        assert push(client, x, holder="a", state=sa)["reason"] == "remote-newer"


def test_the_lease_is_renewed_while_held(memhub_server: Any) -> None:
    server = memhub_server()
    with MemhubClient(server.base_url, server.key) as client:
        with LeaseGuard(client, "db:slow", "host-a", ttl=1.2) as guard:
            time.sleep(2.5)  # twice the ttl: only renewal (every ttl/3) keeps it
            lease = leases(server)["db:slow"]
            assert lease["active"] and lease["holder"] == "host-a"
            assert lease["token"] == guard.token
        assert leases(server)["db:slow"]["active"] is False
        assert guard.warnings == []


@pytest.mark.slow
def test_kill_9_during_pull_leaves_old_or_new(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server()
    host = make_host(server, tmp_path, "k")
    source = tmp_path / "big.db"
    make_db(source, rows=110_000)  # ~25 MB
    with MemhubClient(server.base_url, server.key) as client:
        push(client, source, holder="k", state=SyncState(tmp_path / "s.json"))
        # the "old" local copy: same database, a third of it rewritten, part still in its -wal
        old_dir = tmp_path / "old"
        old_dir.mkdir()
        shutil.copyfile(source, old_dir / "big.db")
        conn = sqlite3.connect(old_dir / "big.db")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("UPDATE items SET body = 'old ' || id WHERE id % 3 = 0")
        conn.commit()
        shutil.copyfile(old_dir / "big.db-wal", old_dir / "saved-wal")
        shutil.copyfile(old_dir / "big.db", old_dir / "saved-db")
        conn.close()
    target = tmp_path / "target" / "big.db"
    target.parent.mkdir()

    def restore_old() -> None:
        for suffix in ("-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(old_dir / "saved-db", target)
        shutil.copyfile(old_dir / "saved-wal", f"{target}-wal")

    restore_old()
    old = signature(target, tmp_path)
    new = signature(source, tmp_path)
    assert old != new
    argv = [str(MEMHUB), "db", "pull", str(target), "--overwrite", "--keep-backups", "1"]
    env = host.child_env
    restore_old()
    started = time.monotonic()
    timed = subprocess.run(
        [*argv, "--json"], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )
    duration = time.monotonic() - started  # the whole process: start-up, pull, exit
    work = json.loads(timed.stdout)["duration_s"]  # the pull itself, the end of that span
    assert signature(target, tmp_path) == new
    rng = random.Random(9)
    outcomes = {"old": 0, "old, mid-pull": 0, "new": 0}

    def temps() -> set[str]:
        return {p.name for p in target.parent.iterdir() if p.name.startswith(".")}

    for i in range(30):
        restore_old()
        # a third anywhere in the process's life, the rest within the pull's own work
        window = duration if i % 3 == 0 else work + 0.1
        delay = duration - window + window * (i // 3 + rng.random()) / 10
        leftovers = temps()
        with subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as process:  # fmt: skip
            time.sleep(max(0.0, delay))
            process.send_signal(signal.SIGKILL)
            process.wait()
        got = signature(target, tmp_path)  # includes integrity_check
        assert got in (old, new), f"kill at {delay:.3f}s of {duration:.3f}s left a third state"
        mid = bool(temps() - leftovers)  # it had begun writing its temp file
        outcomes["new" if got == new else "old, mid-pull" if mid else "old"] += 1
    print(f"pull {duration:.2f}s (work {work:.2f}s); 30 kills: {outcomes}")
    assert outcomes["new"] + outcomes["old, mid-pull"] > 0  # the kills did hit pulls at work
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert signature(target, tmp_path) == new
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # temp files of killed pulls are cleaned up by the next one
    backups = Path(host.env["MEMHUB_DATA_DIR"]) / "backups" / "big"
    assert [p.name for p in backups.iterdir() if p.name.startswith(".")] == []
    assert len(list(backups.iterdir())) == 1
    assert os.path.exists(target)


def test_a_database_read_in_place_pulls_back_as_its_backup_copy(
    memhub_server: Any, tmp_path: Path
) -> None:
    """A WAL database with an empty -wal is pushed without a copy (pinned in place); what
    a pull gets is byte for byte the backup copy of it, so both ends agree on its sha256."""
    server = memhub_server()
    b = make_host(server, tmp_path, "b")
    source, target = tmp_path / "pinned.db", tmp_path / "b" / "pinned.db"
    make_db(source, rows=5000)
    update_rows(source, list(range(1, 5000, 50)), "edited " * 10)
    with MemhubClient(server.base_url, server.key) as a:
        pushed = push(a, source, holder="host-a", state=SyncState(tmp_path / "a.json"))
    assert pushed["source"] == "pinned" and not pushed["skipped"]
    assert signature(source, tmp_path) == (pushed["sha256"], pushed["tables"])

    pulled = b.ok("db", "pull", target)
    assert pulled["sha256"] == pushed["sha256"]
    assert signature(target, tmp_path) == (pushed["sha256"], pushed["tables"])
    # a new mtime makes the pull hash the local file (read in place too): the same sha256
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    assert b.ok("db", "pull", target)["reason"] == "same-as-remote"


def test_a_re_push_hashes_what_changed_and_commits_the_files_digests(
    memhub_server: Any, tmp_path: Path
) -> None:
    """The second push sha256s only the changed chunks and resumes the whole file's
    sha256 (client) and sha256 and md5 (server) after the unchanged ones; what lands is
    the file, byte for byte, with its md5 as the seed API's ETag."""
    server = memhub_server()
    db = tmp_path / "big.db"
    make_db(db, rows=8000)
    state = SyncState(tmp_path / "config" / "dbsync.json")
    with MemhubClient(server.base_url, server.key) as client:
        first = push(client, db, holder="host-a", state=state, chunk_size=32 * 1024)
        update_rows(db, list(range(6000, 6040)), "changed near the end")
        again = push(client, db, holder="host-a", state=state, chunk_size=32 * 1024)
        data = client.get("dbs/big.sqlite")[1]
    assert first["chunks_rehashed"] == first["chunks_total"] >= 20
    assert 1 <= again["chunks_rehashed"] <= 3 and again["chunks_resumed"] > 10
    current = head(server, "dbs/big.sqlite")
    assert current is not None and current["sha256"] == again["sha256"]
    assert hashlib.sha256(data).hexdigest() == again["sha256"]
    assert signature(db, tmp_path)[0] == again["sha256"]
    with server.client() as http:
        blob = http.get("/blob/dbs/big.sqlite")
    assert blob.status_code == 200 and blob.content == data
    assert blob.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_a_damaged_database_is_never_committed_though_its_chunks_went_up_first(
    memhub_server: Any, tmp_path: Path
) -> None:
    """Missing chunks are uploaded while the integrity check runs; the commit waits for
    it, so a database that fails it leaves the server's head as it was."""
    server = memhub_server()
    db = tmp_path / "hurt.db"
    make_db(db, rows=4000)
    state = SyncState(tmp_path / "config" / "dbsync.json")
    with MemhubClient(server.base_url, server.key) as client:
        first = push(client, db, holder="host-a", state=state)
        with db.open("r+b") as f:  # trash a b-tree page of the live file (empty -wal)
            f.seek(5 * 4096)
            f.write(os.urandom(300))
        with pytest.raises(BadRequest, match="integrity"):
            push(client, db, holder="host-a", state=state)
    current = head(server, "dbs/hurt.sqlite")
    assert current is not None and (current["rev"], current["sha256"]) == (
        first["rev"],
        first["sha256"],
    )
    assert not leases(server)["db:hurt"]["active"]  # released on the way out


def test_a_record_whose_states_lie_fails_one_commit_and_is_dropped(
    memhub_server: Any, tmp_path: Path
) -> None:
    """The server checks the declared sha256 against the chunks: a hash record whose
    whole-file states are wrong (yet carry a valid BLAKE3 of their own) makes the commit
    a 400 CHECKSUM_MISMATCH that writes nothing; the push drops the record, and the next
    push hashes everything and lands."""
    server = memhub_server()
    db = tmp_path / "lied.db"
    make_db(db, rows=4000)
    config = tmp_path / "config"
    state = SyncState(config / "dbsync.json")
    with MemhubClient(server.base_url, server.key) as client:
        first = push(client, db, holder="host-a", state=state, chunk_size=32 * 1024)
        record = dbhashes.path_for(config, db.resolve())
        known = dbhashes.load(record, 32 * 1024)
        assert known is not None
        empty = bytes(rehashes.PySha256().serialize())  # the state of no bytes at all
        dbhashes.save(record, replace(known, states=[empty] * len(known.states)))
        update_rows(db, [3500], "after the lie")
        with pytest.raises(InvalidChecksum):
            push(client, db, holder="host-a", state=state, chunk_size=32 * 1024)
        assert not record.exists()
        current = head(server, "dbs/lied.sqlite")
        assert current is not None and current["rev"] == first["rev"]
        again = push(client, db, holder="host-a", state=state, chunk_size=32 * 1024)
    assert again["chunks_rehashed"] == again["chunks_total"]
    assert again["sha256"] == signature(db, tmp_path)[0]
