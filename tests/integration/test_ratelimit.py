"""Rate limits as the app applies them: a window per key (per client IP without a
valid key), the headers on every answer, 429 with Retry-After, the exempt routes,
per-scope limits, X-Forwarded-For only from trusted proxies, and what a client sees
when Redis is down (the in-process window, or 503).

The limits are small (5 per 2 s) so a test reaches them in a few requests. How the
window itself behaves over time (sliding, refilling, Retry-After, bursts, Redis
going away and coming back) is the limiters' contract, run with a fake clock in
``test_ratelimit_contract.py``.
"""

from __future__ import annotations

import json
import math
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import assert_error, build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from prometheus_client.parser import text_string_to_metric_families

from raw_asgi import asgi_call

LIMITS: dict[str, Any] = {
    "rate_limit_enabled": True,
    "rate_limit": 5,
    "rate_window_seconds": 2,
    "rate_limit_scopes": "",
}
WS = "/v1/workspaces/default"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode())]


def assert_rate_headers(response: Response, limit: int, remaining: int) -> None:
    h = response.headers
    assert h["x-ratelimit-limit"] == str(limit), (response.status_code, dict(h))
    assert h["x-ratelimit-remaining"] == str(remaining), (response.status_code, dict(h))
    reset = int(h["x-ratelimit-reset"])
    now = time.time()
    assert math.floor(now) <= reset <= math.ceil(now + LIMITS["rate_window_seconds"]) + 1


def assert_429(response: Response) -> dict[str, Any]:
    body = assert_error(response, 429, "RATE_LIMITED")
    assert {"detail", "retry_after"} <= body.keys()
    retry = int(response.headers["retry-after"])
    assert 1 <= retry <= LIMITS["rate_window_seconds"]
    assert body["retry_after"] == retry
    assert response.headers["x-ratelimit-remaining"] == "0"
    return body


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return build_app(tmp_path, **LIMITS)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_headers_on_every_answer(app: FastAPI, client: TestClient) -> None:
    key = app.state.keys.create("default", ["read"])[0]
    h = bearer(key)
    answers = [
        client.get(WS, headers=h),  # 200
        client.get("/v1/workspaces/nope", headers=h),  # 404 from the route
        client.get("/no/such/route", headers=h),  # 404 from the router
        client.put(f"{WS}/files/a.txt", content=b"x", headers=h),  # 403
        client.get(f"{WS}/files/bad%0Apath", headers=h),  # 400 before routing
    ]
    assert [r.status_code for r in answers] == [200, 404, 404, 403, 400]
    for i, response in enumerate(answers):
        assert_rate_headers(response, 5, 4 - i)
    # without a key: the client address's window, on 401s too
    anonymous = [client.get(WS), client.get(WS, headers=bearer("mh_wrong"))]
    for i, response in enumerate(anonymous):
        assert response.status_code == 401
        assert_rate_headers(response, 5, 4 - i)


def test_429_after_the_limit(app: FastAPI, client: TestClient) -> None:
    key = app.state.keys.create("default", ["read"])[0]
    for i in range(5):
        response = client.get(WS, headers=bearer(key))
        assert response.status_code == 200
        assert_rate_headers(response, 5, 4 - i)
    body = assert_429(client.get(WS, headers=bearer(key)))
    assert body["detail"]
    assert_429(client.get("/no/such/route", headers=bearer(key)))  # any route counts
    # other keys have windows of their own
    other = app.state.keys.create("default", ["read"])[0]
    assert client.get(WS, headers=bearer(other)).status_code == 200
    assert client.get(WS, headers=bearer(app.state.test_key)).status_code == 200
    rejected = metric(client.get("/metrics"), "memhub_admission_rejections_total", "rate_limited")
    assert rejected == 2


def metric(response: Response, name: str, label: str | None = None) -> float:
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and (label is None or label in sample.labels.values()):
                return float(sample.value)
    return 0.0


def test_exempt_routes(app: FastAPI, client: TestClient) -> None:
    h = bearer(app.state.test_key)
    for _ in range(12):
        for response in (
            client.get("/health"),
            client.get("/docs"),
            client.get("/openapi.json"),
            client.get("/health", headers=h),
            client.options(WS, headers={"origin": "https://example.com"}),
        ):
            assert response.status_code != 429
            assert "x-ratelimit-limit" not in response.headers
    # none of that used either window
    assert_rate_headers(client.get(WS, headers=h), 5, 4)
    assert_rate_headers(client.get(WS), 5, 4)


def test_unauthenticated_requests_count_per_client_ip(app: FastAPI) -> None:
    a, b = ("192.0.2.1", 40000), ("192.0.2.2", 40000)
    for i in range(5):
        status, headers, _ = asgi_call(app, "GET", WS, client=(a[0], 40000 + i))  # any port
        assert status == 401
        assert headers["x-ratelimit-remaining"] == str(4 - i)
    status, headers, body = asgi_call(app, "GET", WS, client=a)
    assert status == 429, body
    assert json.loads(body)["retry_after"] >= 1
    # a bad key counts against the address too
    bad = [(b"authorization", b"Bearer mh_not-a-key")]
    assert asgi_call(app, "GET", WS, client=a, headers=bad)[0] == 429
    # another address has its own window
    assert asgi_call(app, "GET", WS, client=b)[0] == 401
    # a valid key from the throttled address counts against the key, not the address
    key = [(b"authorization", f"Bearer {app.state.test_key}".encode())]
    status, headers, _ = asgi_call(app, "GET", WS, client=a, headers=key)
    assert status == 200
    assert headers["x-ratelimit-remaining"] == "4"


def test_per_scope_limits(tmp_path: Path) -> None:
    app = build_app(tmp_path, **{**LIMITS, "rate_limit": 2, "rate_limit_scopes": "write=4,admin=6"})
    keys = {
        "read": app.state.keys.create("default", ["read"])[0],
        "write": app.state.keys.create("default", ["read", "write"])[0],
        "admin": app.state.test_key,
    }
    with TestClient(app) as client:
        for scope, limit in (("read", 2), ("write", 4), ("admin", 6)):
            h = bearer(keys[scope])
            for i in range(limit):
                response = client.get(WS, headers=h)
                assert response.status_code == 200, (scope, i)
                assert response.headers["x-ratelimit-limit"] == str(limit)
            assert client.get(WS, headers=h).status_code == 429, scope
        # without a key: the plain limit
        assert client.get(WS).headers["x-ratelimit-limit"] == "2"


@pytest.fixture
def proxied(tmp_path: Path) -> FastAPI:
    return build_app(tmp_path, **LIMITS, trusted_proxies="10.0.0.0/8, 2001:db8::/32")


def test_forwarded_for_is_ignored_from_untrusted_peers(app: FastAPI, proxied: FastAPI) -> None:
    for target in (app, proxied):
        peer = (f"192.0.2.{uuid.uuid4().int % 200 + 1}", 1234)
        for i in range(5):
            assert (
                asgi_call(target, "GET", WS, client=peer, headers=xff(f"203.0.113.{i}"))[0] == 401
            )
        # a new X-Forwarded-For does not buy a new window
        assert asgi_call(target, "GET", WS, client=peer, headers=xff("198.51.100.7"))[0] == 429
        assert asgi_call(target, "GET", WS, client=peer)[0] == 429


def test_forwarded_for_from_a_trusted_proxy(proxied: FastAPI) -> None:
    proxy = ("10.1.2.3", 5555)
    for _ in range(5):
        assert asgi_call(proxied, "GET", WS, client=proxy, headers=xff("203.0.113.1"))[0] == 401
    assert asgi_call(proxied, "GET", WS, client=proxy, headers=xff("203.0.113.1"))[0] == 429
    # another client behind the same proxy has its own window
    assert asgi_call(proxied, "GET", WS, client=proxy, headers=xff("203.0.113.2"))[0] == 401
    # a spoofed first hop changes nothing: the nearest untrusted hop is the client
    spoofed = xff("1.2.3.4, 203.0.113.1")
    assert asgi_call(proxied, "GET", WS, client=proxy, headers=spoofed)[0] == 429
    # through two trusted proxies
    chained = xff("203.0.113.1, 10.9.9.9")
    assert asgi_call(proxied, "GET", WS, client=proxy, headers=chained)[0] == 429
    # IPv6 proxies and garbage in the header
    v6 = ("2001:db8::1", 443)
    assert asgi_call(proxied, "GET", WS, client=v6, headers=xff("203.0.113.1"))[0] == 429
    status, _, body = asgi_call(proxied, "GET", WS, client=proxy, headers=xff("not an ip, ,"))
    assert status == 401, body
    # the proxy's own address was never limited by its clients' requests
    assert asgi_call(proxied, "GET", WS, client=proxy)[0] == 401


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_down_falls_back_to_the_in_process_window(tmp_path: Path) -> None:
    app = build_app(tmp_path, **LIMITS, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    key = app.state.keys.create("default", ["read"])[0]
    with TestClient(app) as client:
        for i in range(5):
            response = client.get(WS, headers=bearer(key))
            assert response.status_code == 200, response.text
            assert_rate_headers(response, 5, 4 - i)
        assert_429(client.get(WS, headers=bearer(key)))  # still limited, in-process
        failures = metric(client.get("/metrics"), "memhub_ratelimit_redis_failures_total")
    assert failures > 0


def test_redis_down_with_refuse_is_503(tmp_path: Path) -> None:
    app = build_app(
        tmp_path,
        **LIMITS,
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        rate_limit_on_redis_failure="refuse",
    )
    with TestClient(app, headers=bearer(app.state.test_key)) as client:
        for _ in range(2):  # the first finds Redis down, the second is refused at once
            body = assert_error(client.get(WS), 503, "STORAGE_UNAVAILABLE")
            assert "Redis" in body["detail"]
        assert client.get("/health").status_code == 200  # exempt: never asks Redis


@pytest.mark.redis
def test_two_nodes_share_one_window_through_redis(tmp_path: Path, redis_url: str) -> None:
    """Two apps over one database and one Redis: one key, one window."""
    import redis

    one = build_app(tmp_path, **LIMITS, redis_url=redis_url)
    two = build_app(tmp_path, **LIMITS, redis_url=redis_url)
    key, record = one.state.keys.create("default", ["read"])
    window = f"memhub:rl:key:{record.id}"  # the limiter's key space
    r = redis.Redis.from_url(redis_url)
    try:
        with TestClient(one) as a, TestClient(two) as b:
            statuses = [c.get(WS, headers=bearer(key)) for c in (a, b, a, b, a)]
            assert [s.status_code for s in statuses] == [200] * 5
            assert [s.headers["x-ratelimit-remaining"] for s in statuses] == list("43210")
            assert r.zcard(window) == 5
            assert_429(b.get(WS, headers=bearer(key)))
            assert_429(a.get(WS, headers=bearer(key)))
            assert 0 < r.pttl(window) <= 2000
            for c in (a, b):
                assert metric(c.get("/metrics"), "memhub_ratelimit_redis_failures_total") == 0
    finally:
        r.delete(window)
        r.close()
