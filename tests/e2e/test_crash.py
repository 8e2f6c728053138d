"""Durability under ``kill -9``: every acknowledged write survives a crash.

Four client threads PUT random content to files of their own (each path has
exactly one writer, so "the latest acknowledged write" of a path is well
defined) while the server is killed with SIGKILL mid-load, at a few different
moments. After each kill, ``memhub fsck`` must find the store clean, and a
server restarted on the same data dir must return, for every path, the content
of the latest acknowledged write (or of the one write that was in flight on
that path when the server died: it may or may not have committed). Every
acknowledged revision must still be in the change feed, which must have no
gaps.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

WRITERS = 4
PATHS_PER_WRITER = 6
KILL_AFTER = (0.7, 1.3, 2.0)  # seconds of load before each kill -9
CHUNK_SIZE = 64 * 1024  # small chunks, so that many files span several


@dataclass
class Writer:
    """What one client thread wrote, and what the server acknowledged."""

    index: int
    acked: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the latest ack
    revisions: dict[int, tuple[str, str]] = field(default_factory=dict)  # rev -> (path, sha)
    pending: tuple[str, str] | None = None  # sent, not acknowledged when the server died
    unexpected: list[str] = field(default_factory=list)

    def run(self, server: Any, stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        with server.client(timeout=30.0) as http:
            while not stop.is_set():
                path = f"writer-{self.index}/file-{rng.randrange(PATHS_PER_WRITER)}.bin"
                size = rng.choice((0, 1, 100, 5000, CHUNK_SIZE, 3 * CHUNK_SIZE + 17))
                data = rng.randbytes(size)
                sha = hashlib.sha256(data).hexdigest()
                self.pending = (path, sha)
                try:
                    response = http.put(f"/v1/workspaces/default/files/{path}", content=data)
                except httpx.TransportError:
                    return  # the server is gone; this write may or may not have committed
                if response.status_code not in (200, 201):
                    self.unexpected.append(f"PUT {path}: {response.status_code} {response.text}")
                    return
                body = response.json()
                if body["sha256"] != sha or response.headers["etag"] != f'"{sha}"':
                    self.unexpected.append(f"PUT {path}: acknowledged {body['sha256']}, sent {sha}")
                self.acked[path] = sha
                self.revisions[body["rev"]] = (path, sha)
                self.pending = None


def write_until_killed(server: Any, writers: list[Writer], after: float, cycle: int) -> None:
    stop = threading.Event()
    before = sum(len(w.revisions) for w in writers)
    threads = [
        threading.Thread(target=w.run, args=(server, stop, cycle * 100 + w.index)) for w in writers
    ]
    for thread in threads:
        thread.start()
    try:
        stop.wait(after)
        server.kill()  # SIGKILL while the writers are mid-request
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for writer in writers:
        assert writer.unexpected == []
    assert sum(len(w.revisions) for w in writers) > before, "no write was acknowledged"


def verify_after_restart(http: httpx.Client, writers: list[Writer]) -> None:
    for writer in writers:
        paths = set(writer.acked) | ({writer.pending[0]} if writer.pending else set())
        for path in sorted(paths):
            allowed = {writer.acked.get(path)}
            if writer.pending is not None and writer.pending[0] == path:
                allowed.add(writer.pending[1])
            response = http.get(f"/v1/workspaces/default/files/{path}")
            if response.status_code == 404:
                found = None
            else:
                assert response.status_code == 200, response.text
                found = hashlib.sha256(response.content).hexdigest()
                assert response.headers["etag"] == f'"{found}"'
            assert found in allowed, f"{path}: read {found}, acknowledged {writer.acked.get(path)}"
            if found is not None:
                writer.acked[path] = found  # the state the next cycle builds on
        writer.pending = None

    changes: list[dict[str, Any]] = []
    since = 0
    while True:
        page = http.get(
            "/v1/workspaces/default/changes", params={"since": since, "limit": 10000}
        ).json()
        changes += page["changes"]
        since = page["next_since"]
        if not page["has_more"]:
            break
    revs = [c["rev"] for c in changes]
    assert revs == list(range(1, len(revs) + 1)), "the change feed has a gap after the crash"
    feed = {c["rev"]: (c["path"], c["sha256"]) for c in changes}
    for writer in writers:
        for rev, written in writer.revisions.items():
            assert feed.get(rev) == written, f"acknowledged rev {rev} {written} is lost"


def fsck_clean(memhub_cli: Any, data_dir: Path, env: dict[str, str]) -> None:
    result = memhub_cli("fsck", "--data-dir", data_dir, "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["missing_chunks"] == report["corrupt_chunks"] == []
    assert report["broken_revisions"] == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"MEMHUB_CHUNK_SIZE": str(CHUNK_SIZE)}
    if request.param == "postgres":
        env["MEMHUB_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path, store_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "store"
    writers = [Writer(i) for i in range(WRITERS)]
    server = memhub_server(data_dir, env=store_env)
    for cycle, after in enumerate(KILL_AFTER):
        write_until_killed(server, writers, after, cycle)
        assert server.process.returncode == -9
        fsck_clean(memhub_cli, data_dir, store_env)  # the crashed state itself is consistent
        server = memhub_server(data_dir, env=store_env)
        with server.client() as http:
            verify_after_restart(http, writers)
    server.stop()
    fsck_clean(memhub_cli, data_dir, store_env)
