"""Leases on every metadata backend: who holds them, for how long, and the fencing
token that only ever grows. Time is a FakeClock the tests move by hand."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from memhub.errors import (
    BadRequest,
    FencingTokenRejected,
    InvalidPath,
    LeaseHeld,
    LeaseLost,
    LeaseNotFound,
)
from memhub.store import Fence, Store
from memhub.store.leases import MAX_TTL

StoreFactory = Callable[..., Store]


@pytest.fixture
def store(make_memory_store: StoreFactory, clock: Callable[[], float]) -> Store:
    return make_memory_store(clock=clock)


def test_the_first_acquisition_hands_out_token_1(store: Store, workspace: str, clock: Any) -> None:
    lease = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)

    assert (lease.holder, lease.token) == ("agent-a", 1)
    assert (lease.acquired_at, lease.expires_at) == (clock.now, clock.now + 30)
    assert store.leases.get(workspace, "sync") == lease


def test_a_second_holder_is_refused_while_the_lease_is_active(
    store: Store, workspace: str, clock: Any
) -> None:
    store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    clock.advance(29)

    with pytest.raises(LeaseHeld) as failure:
        store.leases.acquire(workspace, "sync", "agent-b", ttl=30)

    assert failure.value.status == 409
    assert failure.value.context is not None
    assert failure.value.context["holder"] == "agent-a"
    assert store.leases.get(workspace, "sync").holder == "agent-a"


def test_every_acquisition_increments_the_token(store: Store, workspace: str) -> None:
    first = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    again = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    forced = store.leases.acquire(workspace, "sync", "agent-b", ttl=30, force=True)

    assert [first.token, again.token, forced.token] == [1, 2, 3]
    assert store.leases.get(workspace, "sync").holder == "agent-b"


def test_renew_extends_the_lease_only_for_its_holder_and_token(
    store: Store, workspace: str, clock: Any
) -> None:
    lease = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    clock.advance(20)

    renewed = store.leases.renew(workspace, "sync", "agent-a", lease.token, ttl=30)

    assert renewed.expires_at == clock.now + 30
    assert store.leases.get(workspace, "sync").expires_at == clock.now + 30
    for holder, token in [("agent-a", lease.token + 1), ("agent-b", lease.token)]:
        with pytest.raises(LeaseLost) as failure:
            store.leases.renew(workspace, "sync", holder, token, ttl=30)
        assert failure.value.status == 409
    with pytest.raises(LeaseNotFound):
        store.leases.renew(workspace, "never-acquired", "agent-a", 1, ttl=30)


def test_a_holder_whose_lease_was_taken_over_cannot_renew_or_release(
    store: Store, workspace: str
) -> None:
    old = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    store.leases.acquire(workspace, "sync", "agent-b", ttl=30, force=True)

    with pytest.raises(LeaseLost):
        store.leases.renew(workspace, "sync", "agent-a", old.token, ttl=30)
    with pytest.raises(LeaseLost):
        store.leases.release(workspace, "sync", "agent-a", old.token)
    assert store.leases.get(workspace, "sync").holder == "agent-b"


def test_after_release_another_holder_acquires_with_the_next_token(
    store: Store, workspace: str, clock: Any
) -> None:
    lease = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    with pytest.raises(LeaseLost):
        store.leases.release(workspace, "sync", "agent-a", lease.token + 1)

    released = store.leases.release(workspace, "sync", "agent-a", lease.token)

    assert (released.holder, released.token) == (None, 1)
    current = store.leases.get(workspace, "sync")
    assert (current.holder, current.token, current.active(clock.now)) == (None, 1, False)
    taken = store.leases.acquire(workspace, "sync", "agent-b", ttl=30)
    assert (taken.holder, taken.token) == ("agent-b", 2)
    with pytest.raises(LeaseNotFound):
        store.leases.release(workspace, "never-acquired", "agent-a", 1)


def test_an_expired_lease_can_be_taken_without_force(
    store: Store, workspace: str, clock: Any
) -> None:
    store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    clock.advance(30)

    assert not store.leases.get(workspace, "sync").active(clock.now)
    taken = store.leases.acquire(workspace, "sync", "agent-b", ttl=30)

    assert (taken.holder, taken.token) == ("agent-b", 2)


def test_a_fence_stops_working_when_its_lease_expires(
    store: Store, workspace: str, clock: Any
) -> None:
    lease = store.leases.acquire(workspace, "sync", "agent-a", ttl=30)
    fence = Fence("sync", lease.token)
    store.put(workspace, "f.md", b"in time", fence=fence)
    clock.advance(31)

    with pytest.raises(FencingTokenRejected):
        store.put(workspace, "f.md", b"too late", fence=fence)

    assert store.read_bytes(workspace, "f.md")[1] == b"in time"


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL + 1, math.inf, math.nan])
def test_a_ttl_outside_the_allowed_range_is_rejected(
    store: Store, workspace: str, ttl: float
) -> None:
    with pytest.raises(BadRequest) as failure:
        store.leases.acquire(workspace, "sync", "agent-a", ttl=ttl)
    assert failure.value.status == 400
    lease = store.leases.acquire(workspace, "sync", "agent-a", ttl=MAX_TTL)
    with pytest.raises(BadRequest):
        store.leases.renew(workspace, "sync", "agent-a", lease.token, ttl=ttl)


@pytest.mark.parametrize("name", ["", "a/b", "..", "with space", "new\nline", "x" * 65])
def test_an_invalid_lease_name_is_rejected(store: Store, workspace: str, name: str) -> None:
    with pytest.raises(InvalidPath):
        store.leases.acquire(workspace, name, "agent-a", ttl=30)
    assert store.leases.list(workspace) == []


@pytest.mark.parametrize("holder", ["", "   ", "agent\nb", "x" * 256])
def test_an_invalid_holder_is_rejected(store: Store, workspace: str, holder: str) -> None:
    with pytest.raises(BadRequest):
        store.leases.acquire(workspace, "sync", holder, ttl=30)


def test_leases_are_listed_by_name_and_belong_to_one_workspace(
    store: Store, workspace: str, new_name: Callable[..., str]
) -> None:
    other = store.create_workspace(new_name())["name"]
    store.leases.acquire(workspace, "zeta", "agent-a", ttl=30)
    store.leases.acquire(workspace, "alpha", "agent-a", ttl=30)
    store.leases.acquire(workspace, "alpha", "agent-a", ttl=30)

    assert [(lease.name, lease.token) for lease in store.leases.list(workspace)] == [
        ("alpha", 2),
        ("zeta", 1),
    ]
    assert store.leases.list(other) == []
    with pytest.raises(LeaseNotFound):
        store.leases.get(other, "alpha")
    assert store.leases.acquire(other, "alpha", "agent-b", ttl=30).token == 1


def test_force_release_frees_the_lease_and_keeps_the_token(store: Store, workspace: str) -> None:
    store.leases.acquire(workspace, "sync", "agent-a", ttl=30)

    store.leases.force_release(workspace, "sync")

    assert store.leases.get(workspace, "sync").holder is None
    assert store.leases.acquire(workspace, "sync", "agent-b", ttl=30).token == 2
    with pytest.raises(LeaseNotFound):
        store.leases.force_release(workspace, "never-acquired")


def test_racing_acquisitions_hand_out_unique_growing_tokens(store: Store, workspace: str) -> None:
    start = threading.Barrier(4, timeout=30)

    def acquire_in_turn(thread: int) -> list[int]:
        start.wait()
        return [
            store.leases.acquire(workspace, "hot", f"agent-{thread}", ttl=30, force=True).token
            for _ in range(50 // 4 + (1 if thread < 50 % 4 else 0))
        ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        per_thread = list(pool.map(acquire_in_turn, range(4)))

    everything = [token for tokens in per_thread for token in tokens]
    assert sorted(everything) == list(range(1, 51))  # 50 acquisitions, 50 distinct tokens
    for tokens in per_thread:
        assert tokens == sorted(set(tokens))  # each holder sees its tokens grow
    assert store.leases.get(workspace, "hot").token == 50


def test_racing_holders_without_force_leave_exactly_one_winner(
    store: Store, workspace: str
) -> None:
    start = threading.Barrier(6, timeout=30)

    def try_to_acquire(holder: str) -> str | None:
        start.wait()
        try:
            store.leases.acquire(workspace, "hot", holder, ttl=30)
        except LeaseHeld:
            return None
        return holder

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(try_to_acquire, [f"agent-{i}" for i in range(6)]))

    winners = [holder for holder in outcomes if holder is not None]
    assert len(winners) == 1
    lease = store.leases.get(workspace, "hot")
    assert (lease.holder, lease.token) == (winners[0], 1)
