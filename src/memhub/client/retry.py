"""When the client tries a request again: 429 (after ``Retry-After``), and idempotent
requests that failed to connect or met a 503, with exponential backoff and jitter.

A 429 is always safe to retry: the server refused the request before running
it. A connection error or a 503 is retried only for idempotent methods. The
clock (``sleep``) and the waiting message (``on_wait``) are injectable, so
tests run without real sleeps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_WAIT = 120.0


def retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait (delta-seconds or an HTTP date), if it says."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


def _say(seconds: float, reason: str) -> None:
    import sys

    print(f"memhub: {reason}; retrying in {seconds:.1f} s", file=sys.stderr)


@dataclass(slots=True)
class RetryPolicy:
    attempts: int = 6  # retries after the first try (429, 503)
    connect_attempts: int = 2  # retries of an idempotent request that could not connect
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    on_wait: Callable[[float, str], None] = field(default=_say)

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """How long to wait before retry number ``attempt`` (1-based)."""
        if response is not None and response.status_code == 429:
            asked = retry_after(response)
            if asked is not None:
                return min(asked + random.uniform(0, 0.25), MAX_WAIT)
        backoff: float = min(self.cap, self.base * 2 ** (attempt - 1))
        return backoff * random.uniform(0.5, 1.0)

    def should_retry(
        self, method: str, attempt: int, response: httpx.Response | None, replayable: bool
    ) -> bool:
        if not replayable:
            return False
        if response is None:  # the request failed to connect
            return method in IDEMPOTENT and attempt <= self.connect_attempts
        if attempt > self.attempts:
            return False
        if response.status_code == 429:
            return True
        return response.status_code == 503 and method in IDEMPOTENT

    def wait(self, attempt: int, response: httpx.Response | None, what: str) -> None:
        seconds = self.delay(attempt, response)
        if response is None:
            reason = f"{what}: cannot connect"
        elif response.status_code == 429:
            reason = f"{what}: rate limited by the server"
        else:
            reason = f"{what}: the server is unavailable ({response.status_code})"
        self.on_wait(seconds, reason)
        self.sleep(seconds)


NO_RETRY = RetryPolicy(attempts=0, connect_attempts=0)
