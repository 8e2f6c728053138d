"""No lost updates: 8 clients x 100 read-modify-write increments of one counter.

Each increment is the seed's optimistic protocol: ``GET /blob/counter.txt``,
add one, ``PUT`` with ``Content-MD5: <md5 of what was read>``; a 412 means
someone else won, so read again. The first write (a 404 on read) uses
``Content-MD5: new``, which loses with a 412 to a concurrent first write too.
The counter must end at exactly 800, its history must be the 800 values in
order, and the change feed must count 1, 2, 3, ... without a gap.

Run on one server with the embedded SQLite default, one server on PostgreSQL,
and two server processes sharing one PostgreSQL database and one S3 bucket.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pytest

pytestmark = pytest.mark.e2e

CLIENTS = 8
INCREMENTS = 100
COUNTER = "counter.txt"
MAX_ATTEMPTS = 100_000  # a guard against a livelock, not a performance bound
BACKOFF = 0.02  # seconds, doubled per conflict of one increment


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def increment(http: httpx.Client) -> int:
    """One read-modify-write increment; returns how many 412s it took."""
    for conflicts in range(MAX_ATTEMPTS):
        read = http.get(f"/blob/{COUNTER}")
        if read.status_code == 404:
            value, precondition = 0, "new"
        else:
            assert read.status_code == 200, read.text
            assert read.headers["etag"] == f'"{md5(read.content)}"'
            value, precondition = int(read.content), md5(read.content)
        body = str(value + 1).encode()
        write = http.put(
            f"/blob/{COUNTER}",
            headers={"Content-MD5": precondition, "Content-Type": "text/plain"},
            content=body,
        )
        if write.status_code in (200, 201):
            assert write.status_code == (201 if precondition == "new" else 200)
            assert write.headers["etag"] == f'"{md5(body)}"'
            return conflicts
        assert write.status_code == 412, f"{write.status_code}: {write.text}"
        assert write.json()["error_code"] == "PRECONDITION_FAILED"
        # Jittered backoff, as a real client would: fewer doomed attempts, same check.
        time.sleep(random.uniform(0, BACKOFF * 2 ** min(conflicts + 1, 6)))
    pytest.fail("an increment never got through")


def run_clients(servers: list[Any]) -> int:
    """8 threads, each with its own httpx.Client, spread round-robin over the servers."""
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> int:
        with servers[index % len(servers)].client(timeout=60.0) as http:
            start.wait(timeout=60)
            return sum(increment(http) for _ in range(INCREMENTS))

    with ThreadPoolExecutor(CLIENTS) as pool:
        return sum(pool.map(client, range(CLIENTS)))


def assert_counted_exactly(server: Any, workspace: str = "default") -> None:
    total = CLIENTS * INCREMENTS
    with server.client(timeout=60.0) as http:
        final = http.get(f"/blob/{COUNTER}")
        assert final.status_code == 200
        assert int(final.content) == total, "increments were lost"

        history = http.get(
            f"/v1/workspaces/{workspace}/history/{COUNTER}", params={"limit": 10000}
        ).json()
        revisions = history["revisions"]
        assert len(revisions) == total
        # Newest first: the values total, total-1, ..., 1 - every increment saw its predecessor
        assert [r["md5"] for r in revisions] == [md5(str(v).encode()) for v in range(total, 0, -1)]

        feed = http.get(
            f"/v1/workspaces/{workspace}/changes", params={"since": 0, "limit": 10000}
        ).json()
        revs = [c["rev"] for c in feed["changes"]]
        assert feed["has_more"] is False
        assert revs == list(range(1, total + 1)), "the change feed has a gap or a repeat"
        assert feed["head_rev"] == total
        assert sorted(r["rev"] for r in revisions) == revs


@pytest.mark.slow
def test_no_lost_increments_sqlite(memhub_server: Any) -> None:
    server = memhub_server()
    conflicts = run_clients([server])
    assert_counted_exactly(server)
    assert conflicts > 0, "the clients never raced, so this proved nothing"


@pytest.mark.slow
@pytest.mark.postgres
def test_no_lost_increments_postgres(memhub_server: Any, fresh_postgres_url: str) -> None:
    server = memhub_server(env={"MEMHUB_DATABASE_URL": fresh_postgres_url})
    assert run_clients([server]) > 0
    assert_counted_exactly(server)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_no_lost_increments_two_servers_postgres_s3(
    memhub_server: Any, memhub_cli: Any, fresh_postgres_url: str, s3_server: str, s3_bucket: str
) -> None:
    env = {
        "MEMHUB_DATABASE_URL": fresh_postgres_url,
        "MEMHUB_BLOB_URL": f"s3://{s3_bucket}/memhub",
        "MEMHUB_S3_ENDPOINT_URL": s3_server,
    }
    first = memhub_server(env=env)
    second = memhub_server(env=env)
    assert run_clients([first, second]) > 0
    assert_counted_exactly(first)
    assert_counted_exactly(second)

    # The bytes are in the shared bucket, not on either server's disk
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    try:
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="memhub/chunks/")
    finally:
        s3.close()
    assert listed["KeyCount"] > 0
    assert not (first.data_dir / "blobs").exists()
    fsck = memhub_cli("fsck", "--json", "--data-dir", first.data_dir, env=env)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert json.loads(fsck.stdout)["revisions_checked"] == CLIENTS * INCREMENTS
