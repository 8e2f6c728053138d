"""The rate limiters' contract, run against every limiter with one fake clock.

``limiter`` is each of: the in-process :class:`MemoryRateLimiter`, the
:class:`RedisRateLimiter` on the machine's Redis, and the
:class:`FailoverLimiter` the app builds when Redis is configured (Redis up).
Every limiter takes its "now" from a :class:`FakeClock` the test moves by hand:
no test sleeps. The Redis keys live under a prefix of the test's own, deleted at
the end.

What Redis going away does is the failover limiter's contract: fall back to the
in-process window (counted, Redis retried after a pause) or refuse with 503.
A :class:`RedisGate` in front of the real Redis opens and shuts on command.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from urllib.parse import urlparse

import anyio
import pytest

from conftest import FakeClock
from memhub.auth.ratelimit import (
    Decision,
    FailoverLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from memhub.errors import StorageUnavailable

pytestmark = pytest.mark.anyio

LIMITERS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("failover", id="failover", marks=pytest.mark.redis),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock on a whole second, so that window edges are exact in floating point."""
    c = FakeClock()
    c.now = float(int(c.now))
    return c


async def delete_prefix(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=prefix + "*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


@pytest.fixture(params=LIMITERS)
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    kind = request.param
    if kind == "memory":
        yield MemoryRateLimiter(clock)
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix = f"memhub:test:rl:{uuid.uuid4().hex}:"
    redis_limiter = RedisRateLimiter(redis_url, prefix=prefix, clock=clock)
    chosen: RateLimiter = redis_limiter
    failures: list[None] = []
    if kind == "failover":
        chosen = FailoverLimiter(
            redis_limiter,
            MemoryRateLimiter(clock),
            on_failure=lambda: failures.append(None),
            clock=clock,
        )
    try:
        yield chosen
        assert not failures, "Redis was up: the fallback must not run"
    finally:
        await chosen.close()
        await delete_prefix(redis_url, prefix)


async def hits(limiter: RateLimiter, n: int, key: str = "k", limit: int = 3) -> list[Decision]:
    return [await limiter.hit(key, limit, 10) for _ in range(n)]


# -- the contract -------------------------------------------------------------------


async def test_admits_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    decisions = await hits(limiter, 5)
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert {d.limit for d in decisions} == {3}
    # all at one instant: the oldest hit leaves a whole window from now
    assert decisions[0].reset_after == pytest.approx(10)
    assert decisions[-1].reset_after == pytest.approx(10)
    assert decisions[-1].retry_after == 10


async def test_retry_after_is_when_the_oldest_hit_leaves(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(3):  # hits at t = 0, 2, 4
        assert (await limiter.hit("k", 3, 10)).allowed
        clock.advance(2)
    clock.advance(-1.5)  # t = 4.5
    refused = await limiter.hit("k", 3, 10)
    assert not refused.allowed
    assert refused.reset_after == pytest.approx(5.5)
    assert refused.retry_after == 6  # whole seconds, rounded up
    clock.advance(5.4)  # t = 9.9: still inside the window of the hit at 0
    refused = await limiter.hit("k", 3, 10)
    assert not refused.allowed
    assert refused.retry_after == 1  # never 0
    clock.advance(0.1)  # t = 10: the hit at 0 has left
    admitted = await limiter.hit("k", 3, 10)
    assert admitted.allowed
    assert admitted.remaining == 0
    assert admitted.reset_after == pytest.approx(2)  # the next to leave came at t = 2
    assert not (await limiter.hit("k", 3, 10)).allowed


async def test_refused_requests_do_not_count(limiter: RateLimiter, clock: FakeClock) -> None:
    await hits(limiter, 3)
    for _ in range(20):
        clock.advance(0.25)
        assert not (await limiter.hit("k", 3, 10)).allowed
    clock.advance(10 - 5)  # t = 10: only the three admitted hits ever counted
    assert [d.allowed for d in await hits(limiter, 4)] == [True, True, True, False]


async def test_the_window_slides(limiter: RateLimiter, clock: FakeClock) -> None:
    """3 hits at t=0 and 2 at t=1.5 fill a 3 s window of 5. At t=3.7 the first 3 have
    left and the last 2 have not: exactly 3 more pass (a fixed window restarted at
    t=3 would let 5 through)."""

    async def burst(n: int) -> list[bool]:
        return [(await limiter.hit("k", 5, 3)).allowed for _ in range(n)]

    assert await burst(3) == [True] * 3
    clock.advance(1.5)
    assert await burst(3) == [True, True, False]
    clock.advance(2.2)
    assert await burst(4) == [True, True, True, False]


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert [d.allowed for d in await hits(limiter, 4, key="a")] == [True, True, True, False]
    b = await hits(limiter, 4, key="b")
    assert [d.allowed for d in b] == [True, True, True, False]
    assert [d.remaining for d in b] == [2, 1, 0, 0]
    assert not (await limiter.hit("a", 3, 10)).allowed


async def test_a_concurrent_burst_admits_exactly_the_limit(limiter: RateLimiter) -> None:
    """60 requests at once against a limit of 25: the check-and-add is atomic."""
    decisions: list[Decision] = []

    async def one() -> None:
        decisions.append(await limiter.hit("burst", 25, 10))

    async with anyio.create_task_group() as tg:
        for _ in range(60):
            tg.start_soon(one)
    assert sum(d.allowed for d in decisions) == 25
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(25))
    assert all(d.remaining == 0 for d in decisions if not d.allowed)


async def test_an_idle_key_starts_afresh(limiter: RateLimiter, clock: FakeClock) -> None:
    await hits(limiter, 4)
    clock.advance(3600)
    first = await limiter.hit("k", 3, 10)
    assert first.allowed
    assert first.remaining == 2
    assert first.reset_after == pytest.approx(10)


# -- Redis specifics ----------------------------------------------------------------


@pytest.mark.redis
async def test_two_limiters_on_one_redis_share_one_window(redis_url: str, clock: FakeClock) -> None:
    prefix = f"memhub:test:rl:{uuid.uuid4().hex}:"
    one = RedisRateLimiter(redis_url, prefix=prefix, clock=clock)
    two = RedisRateLimiter(redis_url, prefix=prefix, clock=clock)
    try:
        decisions = [await node.hit("k", 3, 10) for node in (one, two, one, two)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    finally:
        await one.close()
        await two.close()
        await delete_prefix(redis_url, prefix)


@pytest.mark.redis
async def test_without_a_clock_redis_times_hits_by_its_own_clock(redis_url: str) -> None:
    """The production setting: no local clock, the server's TIME. A window of 1000 s
    seen from two limiters (two "nodes") is one window."""
    prefix = f"memhub:test:rl:{uuid.uuid4().hex}:"
    one, two = (
        RedisRateLimiter(redis_url, prefix=prefix),
        RedisRateLimiter(redis_url, prefix=prefix),
    )
    try:
        decisions = [await node.hit("k", 2, 1000) for node in (one, two, one)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert 999 < decisions[-1].reset_after <= 1000
        assert decisions[-1].retry_after == 1000
    finally:
        await one.close()
        await two.close()
        await delete_prefix(redis_url, prefix)


# -- Redis unreachable: the failover limiter ----------------------------------------


class RedisGate:
    """A TCP door on loopback in front of the real Redis. Open, it forwards both ways;
    shut, it hangs up on every connection, the ones it forwards included. Counts the
    connections made to it."""

    def __init__(self, redis_url: str) -> None:
        parsed = urlparse(redis_url)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        self._database = parsed.path or "/0"
        self.open = True
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._database}"

    async def __aenter__(self) -> RedisGate:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.shut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def shut(self) -> None:
        self.open = False
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}


@pytest.fixture
async def gate(redis_url: str) -> AsyncIterator[RedisGate]:
    async with RedisGate(redis_url) as g:
        yield g


Failover = Callable[..., tuple[FailoverLimiter, list[None]]]


@pytest.fixture
async def failover(gate: RedisGate, clock: FakeClock, redis_url: str) -> AsyncIterator[Failover]:
    """``failover(refuse=False)``: a failover limiter over Redis behind the gate, and a
    list that grows by one for each check made without Redis. Redis is retried 5 s
    after a failure."""
    prefix = f"memhub:test:rl:{uuid.uuid4().hex}:"
    made: list[FailoverLimiter] = []

    def make(*, refuse: bool = False) -> tuple[FailoverLimiter, list[None]]:
        failures: list[None] = []
        limiter = FailoverLimiter(
            RedisRateLimiter(gate.url, prefix=prefix, clock=clock),
            MemoryRateLimiter(clock),
            refuse=refuse,
            on_failure=lambda: failures.append(None),
            retry_after=5,
            clock=clock,
        )
        made.append(limiter)
        return limiter, failures

    yield make
    for limiter in made:
        await limiter.close()
    await delete_prefix(redis_url, prefix)


@pytest.mark.redis
async def test_redis_down_falls_back_to_the_in_process_window(
    failover: Failover, gate: RedisGate, clock: FakeClock
) -> None:
    limiter, failures = failover()
    assert [(await limiter.hit("k", 3, 10)).allowed for _ in range(2)] == [True, True]
    assert failures == []
    gate.shut()
    # in-process from here: a window of its own, still enforced
    decisions = await hits(limiter, 4)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 10
    assert len(failures) == 4  # every check is counted
    # Redis was tried once, then left alone for the pause
    tried = gate.connections
    clock.advance(4.9)
    assert not (await limiter.hit("k", 3, 10)).allowed
    assert gate.connections == tried
    # after the pause Redis is tried again; once it answers, its window is the one
    gate.open = True
    clock.advance(0.1)
    back = await limiter.hit("k", 3, 10)
    assert gate.connections > tried
    assert back.allowed
    assert back.remaining == 0  # the two hits made in Redis before it went away, and this
    assert len(failures) == 5


@pytest.mark.redis
async def test_redis_down_with_refuse_is_503(
    failover: Failover, gate: RedisGate, clock: FakeClock
) -> None:
    limiter, failures = failover(refuse=True)
    assert (await limiter.hit("k", 3, 10)).allowed
    gate.shut()
    for _ in range(2):  # the first finds Redis down, the second is refused at once
        with pytest.raises(StorageUnavailable) as caught:
            await limiter.hit("k", 3, 10)
        assert caught.value.status == 503
        assert "Redis" in str(caught.value)
        assert "MEMHUB_RATE_LIMIT_ON_REDIS_FAILURE" in (caught.value.hint or "")
    tried = gate.connections
    clock.advance(4.9)
    with pytest.raises(StorageUnavailable):
        await limiter.hit("k", 3, 10)
    assert gate.connections == tried  # refused without asking Redis during the pause
    gate.open = True
    clock.advance(0.1)
    assert (await limiter.hit("k", 3, 10)).allowed
    assert len(failures) == 3
