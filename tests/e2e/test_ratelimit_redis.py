"""One rate limit across processes: two ``memhub serve`` nodes on one data dir and
one Redis enforce one sliding window per key.

1,000 requests with one key (limit 100 per 20 s window), split across both nodes
from several threads as fast as they go, all inside one window → between 100 and
105 succeed, the rest are 429. After the window has passed, a second burst gets
about 100 again. The window lives in Redis under the limiter's prefix
(``memhub:rl:key:<key id>``); the key is new, so the window is nobody else's, and
the test deletes it at the end (nothing else in Redis is touched).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow]

LIMIT = 100
WINDOW = 20
THREADS = 8
ROUTE = "/v1/workspaces/default"


def burst(
    servers: list[Any], key: str, total: int
) -> tuple[Counter[int], list[Counter[int]], float]:
    """``total`` GETs, thread i of THREADS on server i % 2 with its own keep-alive
    connection. Returns (statuses, statuses per server, seconds)."""
    per_server: list[Counter[int]] = [Counter() for _ in servers]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        server = servers[index % len(servers)]
        url = urlparse(server.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        seen: Counter[int] = Counter()
        try:
            for _ in range(index, total, THREADS):
                conn.request("GET", ROUTE, headers={"Authorization": f"Bearer {key}"})
                response = conn.getresponse()
                response.read()
                seen[response.status] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            conn.close()
            with lock:
                per_server[index % len(servers)].update(seen)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert not errors, errors
    return sum(per_server, Counter()), per_server, elapsed


def redis_failures(server: Any) -> float:
    with server.client() as http_client:
        text = http_client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("memhub_ratelimit_redis_failures_total "):
            return float(line.split()[1])
    raise AssertionError("no memhub_ratelimit_redis_failures_total in /metrics")


def test_two_nodes_enforce_one_limit(memhub_server: Any, redis_url: str, tmp_path: Path) -> None:
    import redis

    env = {
        "MEMHUB_RATE_LIMIT_ENABLED": "true",
        "MEMHUB_RATE_LIMIT": str(LIMIT),
        "MEMHUB_RATE_WINDOW_SECONDS": str(WINDOW),
        "MEMHUB_RATE_LIMIT_SCOPES": "",  # one limit for every key, admin or not
        "MEMHUB_REDIS_URL": redis_url,
    }
    data = tmp_path / "shared"
    servers = [memhub_server(data_dir=data, env=env), memhub_server(data_dir=data, env=env)]
    with servers[0].client() as admin:
        made = admin.post("/admin/keys", json={"user_name": "default", "scopes": ["read"]})
        assert made.status_code == 200, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    window = f"memhub:rl:key:{key_id}"
    r = redis.Redis.from_url(redis_url)
    try:
        assert not r.exists(window)
        statuses, per_server, elapsed = burst(servers, key, 1000)
        first_done = time.monotonic()
        print(f"first burst: {dict(statuses)} in {elapsed:.2f} s, per node {per_server}")
        if elapsed >= WINDOW - 1:
            pytest.fail(f"the burst took {elapsed:.1f} s: it did not fit in one window")
        assert set(statuses) <= {200, 429}, statuses
        assert LIMIT <= statuses[200] <= LIMIT + 5, statuses
        assert statuses[200] + statuses[429] == 1000
        assert all(s[200] > 0 for s in per_server), per_server  # both nodes took part
        assert r.zcard(window) == statuses[200]  # the window is the one in Redis
        assert all(redis_failures(s) == 0 for s in servers)

        # after the window has passed: about LIMIT again
        time.sleep(max(0.0, first_done + WINDOW + 1 - time.monotonic()))
        again, _, elapsed = burst(servers, key, 300)
        print(f"second burst: {dict(again)} in {elapsed:.2f} s")
        assert elapsed < WINDOW - 1
        assert LIMIT <= again[200] <= LIMIT + 5, again
        assert again[200] + again[429] == 300, again
    finally:
        r.delete(window)
        r.close()
