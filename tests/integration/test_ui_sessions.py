"""The UI's session stores, one contract for both (in-process, Redis), and a UI session
shared by two app nodes through Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiclient import build_app
from uiclient import sign_in, ui_client

from memhub.auth.principal import Principal
from memhub.errors import StorageUnavailable
from memhub.ui.sessions import MemorySessionStore, RedisSessionStore, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, clock: Clock) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(60, clock)
        return
    url = request.getfixturevalue("redis_url")
    yield RedisSessionStore(url, 60, prefix=f"memhub:test:{uuid.uuid4().hex}:", clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


PRINCIPAL = Principal("key:mh_abc", "alpha", frozenset({"read"}), "kid-1", "key")


def test_contract(store: SessionStore, clock: Clock) -> None:
    async def run() -> None:
        session_id, session = await store.create(PRINCIPAL)
        assert len(session_id) >= 40 and session.csrf and session.csrf != session_id
        found = await store.get(session_id)
        assert found is not None
        assert found.principal == PRINCIPAL and found.csrf == session.csrf
        masked = found.masked_csrf()
        assert masked != found.masked_csrf() and session.csrf not in masked  # fresh pad
        assert found.csrf_ok(masked) and found.csrf_ok(found.masked_csrf())
        for bad in (None, "", "x", session.csrf, masked[:-4], "%%%%", masked + "AAAA"):
            assert not found.csrf_ok(bad), bad
        assert await store.get(session_id + "x") is None
        other_id, _ = await store.create(PRINCIPAL)
        await store.delete(session_id)
        assert await store.get(session_id) is None
        assert await store.get(other_id) is not None
        clock.now += 61  # expired, whatever the backend still holds
        assert await store.get(other_id) is None
        await store.close()

    asyncio.run(run())


def test_unreachable_redis_fails_closed() -> None:
    async def run() -> None:
        store = RedisSessionStore("redis://127.0.0.1:1/0", 60)
        with pytest.raises(StorageUnavailable):
            await store.get("anything")
        with pytest.raises(StorageUnavailable):
            await store.create(PRINCIPAL)
        await store.close()

    asyncio.run(run())


@pytest.mark.redis
def test_a_session_is_known_to_every_node(tmp_path: Path, redis_url: str) -> None:
    """Two app nodes over one database and one Redis: sign in on one, browse on the other."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    blobs = (tmp_path / "blobs").as_uri()
    one = build_app(tmp_path / "one", database_url=database, blob_url=blobs, redis_url=redis_url)
    two = build_app(tmp_path / "two", database_url=database, blob_url=blobs, redis_url=redis_url)
    with ui_client(one) as first, ui_client(two) as second:
        assert sign_in(first, one.state.test_key).status_code == 303
        second.cookies.set("memhub_ui", first.cookies["memhub_ui"], path="/ui")
        assert second.get("/ui/w/default/files/").status_code == 200
        assert first.get("/ui/w/default/files/").status_code == 200


def test_ui_answers_503_when_its_session_store_is_down(tmp_path: Path) -> None:
    app = build_app(tmp_path, redis_url="redis://127.0.0.1:1/0")
    with ui_client(app) as client:
        client.cookies.set("memhub_ui", "a" * 43, path="/ui")
        response = client.get("/ui/w/default/files/")
        assert response.status_code == 503
        assert "STORAGE_UNAVAILABLE" in response.text
