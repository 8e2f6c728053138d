"""The client's retry policy: 429 waits for ``Retry-After``, idempotent requests retry
a refused connection or a 503 with backoff, the rest fails at once. The server here is
an ``httpx.MockTransport`` scripted per test (an HTTP peer, not a memhub component);
the clock is injected, so nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from memhub.client import MemhubClient, RetryPolicy, ServerUnreachable
from memhub.client.retry import retry_after
from memhub.errors import RateLimited, StorageUnavailable


class Script:
    """Answers requests from a list of responses (or exceptions), recording each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers: Iterator[httpx.Response | Exception] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def limited(seconds: str = "3") -> httpx.Response:
    body = {"detail": "Too many requests", "error_code": "RATE_LIMITED", "context": None}
    return httpx.Response(429, json=body, headers={"retry-after": seconds})


def ok() -> httpx.Response:
    return httpx.Response(200, json={"status": "ok"})


def client_for(script: Script, attempts: int = 6) -> tuple[MemhubClient, list[float], list[str]]:
    slept: list[float] = []
    said: list[str] = []
    policy = RetryPolicy(
        attempts=attempts,
        sleep=slept.append,
        on_wait=lambda seconds, reason: said.append(reason),
    )
    client = MemhubClient("http://memhub.test", "mh_x", transport=httpx.MockTransport(script),
                          retry=policy)  # fmt: skip
    return client, slept, said


def test_429_waits_for_retry_after_then_succeeds() -> None:
    script = Script(limited("3"), limited("1"), ok())
    client, slept, said = client_for(script)
    assert client.health() == {"status": "ok"}
    assert len(script.requests) == 3
    assert 3.0 <= slept[0] < 3.3 and 1.0 <= slept[1] < 1.3  # Retry-After, plus jitter
    assert all("rate limited" in reason for reason in said)


def test_429_is_retried_even_for_post_and_gives_up_after_the_attempts() -> None:
    script = Script(*(limited("0") for _ in range(3)))
    client, slept, _ = client_for(script, attempts=2)
    with pytest.raises(RateLimited):
        client.request("POST", "/v1/workspaces/default/commits", json={})
    assert len(script.requests) == 3 and len(slept) == 2


def test_a_refused_connection_is_retried_for_get_but_not_for_post() -> None:
    refused = httpx.ConnectError("connection refused")
    script = Script(refused, ok())
    client, slept, said = client_for(script)
    assert client.health() == {"status": "ok"}
    assert len(slept) == 1 and "cannot connect" in said[0]

    script = Script(refused)
    client, slept, _ = client_for(script)
    with pytest.raises(ServerUnreachable) as caught:
        client.request("POST", "/v1/workspaces/default/commits", json={})
    assert isinstance(caught.value, StorageUnavailable) and slept == []


def test_503_retries_idempotent_requests_with_growing_backoff() -> None:
    unavailable = httpx.Response(
        503, json={"detail": "db down", "error_code": "STORAGE_UNAVAILABLE"}
    )
    script = Script(unavailable, unavailable, unavailable, ok())
    client, slept, _ = client_for(script)
    assert client.health() == {"status": "ok"}
    assert len(slept) == 3
    assert slept[0] <= 0.5 and slept[2] <= 2.0 and max(slept) > 0


def test_streamed_bodies_are_not_replayed() -> None:
    script = Script(limited("0"))
    client, slept, _ = client_for(script)
    with pytest.raises(RateLimited):
        client.request("PUT", "/x", content=iter([b"a", b"b"]))
    assert slept == []


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after(httpx.Response(429, headers={"retry-after": "7"})) == 7.0
    when = datetime.now(UTC) + timedelta(seconds=30)
    stamped = httpx.Response(429, headers={"retry-after": format_datetime(when, usegmt=True)})
    assert 28 <= (retry_after(stamped) or 0) <= 31
    assert retry_after(httpx.Response(429, headers={"retry-after": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None
