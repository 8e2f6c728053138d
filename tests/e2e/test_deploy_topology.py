"""The compose topology without containers: two ``memhub serve`` nodes over PostgreSQL,
S3 (moto) and Redis, behind a loopback load balancer (``loopback_lb.py``, for Caddy).

Through the balancer: the seed's curl session, folder sync between two clients and a
database push/pull; a writer keeps creating files the whole time, one node is killed with
SIGKILL half-way, and afterwards the other keeps serving all of it and every write that
was acknowledged (201) reads back, byte for byte. Requests in flight on the killed node
get 502 from the balancer and count as unacknowledged, as they would behind Caddy.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from loopback_lb import LoadBalancer

from memhub.client import MemhubClient
from memhub.sync.dbstate import SyncState
from memhub.sync.dbsync import push
from memhub.sync.folder import FolderSync

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.s3, pytest.mark.redis,
              pytest.mark.slow]  # fmt: skip

SECRET = "topology-test-jwt-secret-" + "x" * 40
NO_LIMIT = str(10**9)
PACE = 0.03  # seconds between the writer's requests


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Writer(threading.Thread):
    """Creates ``load/<n>.txt`` through the balancer until stopped; remembers every 201."""

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.key = base_url, key
        self.acked: dict[str, bytes] = {}
        self.failed = 0  # 502s and transport errors: not acknowledged
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        with httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        ) as http:
            n = 0
            while not self.stop.wait(PACE):  # a steady load, not a flood of the two cores
                n += 1
                path, data = f"load/{n:05d}.txt", f"write {n}\n".encode() * 20
                try:
                    response = http.put(f"/blob/{path}", content=data,
                                        headers={"Content-MD5": "new"})  # fmt: skip
                except httpx.TransportError:
                    self.failed += 1
                    continue
                if response.status_code == 201:
                    with self.progress:
                        self.acked[path] = data
                        self.progress.notify_all()
                else:
                    self.failed += 1

    def wait_for(self, count: int, timeout: float = 120) -> None:
        with self.progress:
            ok = self.progress.wait_for(lambda: len(self.acked) >= count, timeout=timeout)
        assert ok, f"only {len(self.acked)} writes acknowledged, {self.failed} failed"


@pytest.fixture
def topology(
    memhub_server: Any, fresh_postgres_url: str, s3_server: str, s3_bucket: str, redis_url: str
) -> Iterator[tuple[LoadBalancer, list[Any]]]:
    env = {
        "MEMHUB_DATABASE_URL": fresh_postgres_url,
        "MEMHUB_BLOB_URL": f"s3://{s3_bucket}/memhub",
        "MEMHUB_S3_ENDPOINT_URL": s3_server,
        "MEMHUB_REDIS_URL": redis_url,
        "MEMHUB_JWT_SECRET": SECRET,
        "MEMHUB_TRUSTED_PROXIES": "127.0.0.1/32",
        # rate limiting on (through Redis), with limits this test never reaches
        "MEMHUB_RATE_LIMIT_ENABLED": "true",
        "MEMHUB_RATE_LIMIT": NO_LIMIT,
        "MEMHUB_RATE_LIMIT_SCOPES": f"read={NO_LIMIT},write={NO_LIMIT},admin={NO_LIMIT}",
    }
    nodes = [memhub_server(env={**env, "MEMHUB_NODE_ID": f"node-{i}"}) for i in (1, 2)]
    backends = [
        (urlparse(n.base_url).hostname or "", urlparse(n.base_url).port or 0) for n in nodes
    ]
    with LoadBalancer(backends) as balancer:
        yield balancer, nodes


def seed_session(http: httpx.Client) -> None:
    """The memory proxy's README session (seed 001), every step through the balancer."""
    assert http.get("/health").json() == {"status": "ok", "storage": "connected"}
    hello = b"Hello, World!"
    created = http.put("/blob/test/file.txt", content=hello,
                       headers={"Content-MD5": "new", "Content-Type": "text/plain"})  # fmt: skip
    assert created.status_code == 201, created.text
    assert http.put("/blob/test/file.txt", content=b"x",
                    headers={"Content-MD5": "new"}).status_code == 412  # fmt: skip
    for _ in range(2):  # both nodes answer the same
        read = http.get("/blob/test/file.txt")
        assert read.content == hello and read.headers["etag"] == f'"{md5(hello)}"'
    updated = http.put("/blob/test/file.txt", content=b"v2", headers={"Content-MD5": md5(hello)})
    assert updated.status_code == 200
    entry = http.get("/sync").json()["files"]["test/file.txt"]
    assert entry["md5"] == md5(b"v2") and entry["is_deleted"] is False
    assert http.delete("/blob/test/file.txt").status_code == 204
    assert http.get("/blob/test/file.txt").status_code == 404
    assert http.get("/sync").json()["files"]["test/file.txt"]["is_deleted"] is True


def make_db(path: Path, rows: int, text: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO items (body) VALUES (?)", [(text,)] * rows)
        conn.commit()


def rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])


def test_two_nodes_behind_a_balancer_survive_a_kill(
    topology: tuple[LoadBalancer, list[Any]], memhub_cli: Any, tmp_path: Path
) -> None:
    balancer, nodes = topology
    key = nodes[0].key  # in PostgreSQL: valid on both nodes
    assert nodes[1].key  # each loopback node wrote its own local admin key, also shared

    def client_env(name: str) -> dict[str, str]:
        return {
            "MEMHUB_SERVER": balancer.base_url,
            "MEMHUB_KEY": key,
            "MEMHUB_WORKSPACE": "default",
            "MEMHUB_CONFIG_DIR": str(tmp_path / f"config-{name}"),
            "MEMHUB_DATA_DIR": str(tmp_path / f"data-{name}"),
            "MEMHUB_HOST_ID": f"host-{name}",
        }

    def cli(name: str, *args: str | Path) -> dict[str, Any]:
        done = memhub_cli(*args, "--json", env=client_env(name))
        assert done.returncode == 0, done.stdout + done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def laptop_sync() -> None:  # the laptop runs in-process, the desktop the CLI
        with MemhubClient(balancer.base_url, key, "default") as client:
            report = FolderSync(laptop, client, host="laptop").run().to_dict()
        assert report["errors"] == [], report

    def laptop_push() -> dict[str, Any]:
        with MemhubClient(balancer.base_url, key, "default") as client:
            return push(client, db, holder="host-laptop", state=laptop_state)

    laptop_state = SyncState(tmp_path / "laptop-dbsync.json")
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    laptop.mkdir()
    desktop.mkdir()
    db = tmp_path / "app.db"
    make_db(db, 2000, "first " * 30)

    with httpx.Client(base_url=balancer.base_url, timeout=60,
                      headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
        seed_session(http)
        writer = Writer(balancer.base_url, key)
        writer.start()
        try:
            # before the kill: folder sync both ways and a database push, through both nodes
            (laptop / "notes.md").write_text("# notes from the laptop\n")
            (laptop / "ideas").mkdir()
            (laptop / "ideas" / "one.md").write_text("idea one\n")
            laptop_sync()
            cli("desktop", "sync", desktop)
            assert (desktop / "ideas" / "one.md").read_text() == "idea one\n"
            pushed = laptop_push()
            assert not pushed["skipped"]
            writer.wait_for(20)
            assert balancer.served[0] > 0 and balancer.served[1] > 0, balancer.served

            nodes[0].kill()  # SIGKILL, mid-load

            acked_at_kill = len(writer.acked)
            writer.wait_for(acked_at_kill + 20)  # the other node keeps taking writes
            # after the kill: everything still works through the balancer
            (desktop / "from-desktop.md").write_text("written after the kill\n")
            (desktop / "notes.md").write_text("# notes, edited on the desktop\n")
            cli("desktop", "sync", desktop)
            laptop_sync()
            assert (laptop / "from-desktop.md").read_text() == "written after the kill\n"
            assert (laptop / "notes.md").read_text() == "# notes, edited on the desktop\n"
            copy = tmp_path / "elsewhere" / "app.db"
            pulled = cli("desktop", "db", "pull", copy, "--name", "app")
            assert pulled["sha256"] == pushed["sha256"] and rows(copy) == 2000
            make_db(db, 500, "second " * 30)
            again = laptop_push()
            assert not again["skipped"] and again["rev"] > pushed["rev"]
            cli("desktop", "db", "pull", copy, "--name", "app")
            assert rows(copy) == 2500
        finally:
            writer.stop.set()
            writer.join(timeout=60)
        assert not nodes[0].running and nodes[1].running
        assert balancer.refused[0] > 0  # the balancer did route around the dead node

        # nothing acknowledged is lost: every 201 reads back, and the seed index lists it
        listed = http.get("/sync").json()["files"]
        for path, data in writer.acked.items():
            read = http.get(f"/blob/{path}")
            assert read.status_code == 200 and read.content == data, path
            assert listed[path]["md5"] == md5(data)
        assert len(writer.acked) >= acked_at_kill + 20
