"""Sliding-window rate limits: in-process, or shared through Redis.

A window is a log of hit times: a request is admitted when fewer than
``limit`` hits fall in the last ``window`` seconds. The Redis limiter does the
whole check-and-add in one Lua script (atomic per request), so any number of
nodes enforce one limit.

Clocks. Every limiter takes a ``clock`` (seconds as a float), so tests move
time by hand instead of sleeping. :class:`MemoryRateLimiter` defaults to
``time.monotonic``. :class:`RedisRateLimiter` defaults to *no* local clock:
the script then reads Redis's own ``TIME``, the one clock every node shares,
so nodes whose clocks disagree still count hits in one window. Given a
``clock``, the limiter passes its reading to the script as "now" instead;
every limiter sharing the Redis keys must then share that clock too (tests
do; a deployment has no reason to). :class:`FailoverLimiter` times its pause
before retrying Redis with its ``clock`` (``time.monotonic``).

When Redis cannot be reached, :class:`FailoverLimiter` either falls back to
the in-process limiter (logged, counted in a metric, Redis retried after a
pause) or refuses the request with 503, as configured.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from memhub.errors import StorageUnavailable

log = logging.getLogger("memhub.ratelimit")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the oldest hit in the window expires
    backend: str = "memory"

    @property
    def retry_after(self) -> int:
        return max(1, int(self.reset_after + 0.999))


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> Decision: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Per-process sliding window log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        return self.hit_sync(key, limit, window)

    def hit_sync(self, key: str, limit: int, window: float) -> Decision:
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            horizon = now - window
            while hits and hits[0] <= horizon:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            reset_after = (hits[0] + window - now) if hits else window
            remaining = max(0, limit - len(hits))
            if now - self._last_sweep > 60:
                self._sweep(now, window)
        return Decision(allowed, limit, remaining, reset_after, "memory")

    def _sweep(self, now: float, window: float) -> None:
        self._last_sweep = now
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - window]:
            del self._hits[key]

    async def close(self) -> None:
        return None


# ARGV: window, limit, member, and "now" in seconds ('' for the server's TIME)
_SLIDING_WINDOW = """
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, count, tostring(reset)}
"""


class RedisRateLimiter:
    """One sliding window per key in a Redis sorted set, shared by every node.

    ``clock``: None (the default) times hits by the Redis server's clock; a
    callable times them by its reading instead (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "memhub:rl:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        self._script = self._redis.register_script(_SLIDING_WINDOW)
        self._prefix = prefix
        self._clock = clock

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        now = "" if self._clock is None else repr(self._clock())
        allowed, count, reset = await self._script(
            keys=[self._prefix + key], args=[window, limit, member, now]
        )
        return Decision(bool(allowed), limit, max(0, limit - int(count)), float(reset), "redis")

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


class FailoverLimiter:
    """Redis first; when it fails, the in-process limiter (or 503 with ``refuse``)."""

    def __init__(
        self,
        primary: RedisRateLimiter,
        fallback: MemoryRateLimiter,
        *,
        refuse: bool = False,
        on_failure: Callable[[], None] = lambda: None,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._refuse = refuse
        self._on_failure = on_failure
        self._retry_after = retry_after
        self._clock = clock
        self._down_until = clock()

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        if self._clock() >= self._down_until:
            try:
                return await self._primary.hit(key, limit, window)
            except (OSError, TimeoutError, RedisError) as exc:
                self._down_until = self._clock() + self._retry_after
                self._on_failure()
                log.warning(
                    "Redis rate limiter unreachable (%s); %s for %.0f s",
                    exc,
                    "refusing requests" if self._refuse else "using the in-process limiter",
                    self._retry_after,
                )
        else:
            self._on_failure()
        if self._refuse:
            raise StorageUnavailable(
                "the rate limiter (Redis) is unreachable",
                hint="check MEMHUB_REDIS_URL, or set MEMHUB_RATE_LIMIT_ON_REDIS_FAILURE=fallback",
            )
        return await self._fallback.hit(key, limit, window)

    async def close(self) -> None:
        await self._primary.close()
