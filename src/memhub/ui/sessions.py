"""UI sign-in sessions: an API key exchanged for a short-lived server-side session.

The browser holds only an opaque random id in an HttpOnly, SameSite=Strict
cookie scoped to ``/ui``; the server keeps the session (its principal, its
CSRF token, its expiry) and stores only the sha256 of the id. The key itself
is never kept, neither in the page nor in the session.

:class:`UiSessions` is what the admission middleware calls for requests under
``/ui``: it turns the cookie into the session's :class:`Principal` (so the UI
is rate-limited per principal like the API), re-checking on every request that
the key behind the session is still usable — a revoked key ends its sessions.

Sessions live in this process (:class:`MemorySessionStore`), or in Redis when
``MEMHUB_REDIS_URL`` is set (:class:`RedisSessionStore`), so that any node behind a
load balancer knows every session. A session store that cannot be reached fails
closed: the UI answers 503, it never lets a request through unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import Scope

from memhub.auth.keys import KeyStore
from memhub.auth.principal import Principal
from memhub.errors import MemhubError, StorageUnavailable, Unauthorized

COOKIE = "memhub_ui"
LOGIN_COOKIE = "memhub_ui_login"  # double-submit token of the sign-in form
PREFIX = "/ui"
MAX_SESSIONS = 10_000


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str
    created_at: float
    expires_at: float

    def masked_csrf(self) -> str:
        """The CSRF token as a page carries it: XOR-masked with a fresh random pad per
        page, so that compressed pages never repeat it (no BREACH-style recovery)."""
        token = self.csrf.encode("ascii")
        pad = secrets.token_bytes(len(token))
        return base64.urlsafe_b64encode(
            pad + bytes(a ^ b for a, b in zip(token, pad, strict=True))
        ).decode()

    def csrf_ok(self, presented: str | None) -> bool:
        if not presented or len(presented) > 256:
            return False
        try:
            raw = base64.urlsafe_b64decode(presented.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False
        half = len(raw) // 2
        if half == 0 or len(raw) != 2 * half or base64.urlsafe_b64encode(raw) != presented.encode():
            return False
        token = bytes(a ^ b for a, b in zip(raw[half:], raw[:half], strict=True))
        return hmac.compare_digest(token, self.csrf.encode("ascii"))

    def to_json(self) -> str:
        p = self.principal
        return json.dumps(
            {
                "principal": [p.name, p.workspace, sorted(p.scopes), p.key_id, p.kind],
                "csrf": self.csrf,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Session:
        data: dict[str, Any] = json.loads(raw)
        name, workspace, scopes, key_id, kind = data["principal"]
        principal = Principal(name, workspace, frozenset(scopes), key_id, kind)
        return cls(principal, data["csrf"], data["created_at"], data["expires_at"])


def new_session(principal: Principal, ttl: float, now: float) -> tuple[str, Session]:
    return secrets.token_urlsafe(32), Session(principal, secrets.token_urlsafe(32), now, now + ttl)


class SessionStore(Protocol):
    ttl: float

    async def create(self, principal: Principal) -> tuple[str, Session]: ...

    async def get(self, session_id: str) -> Session | None: ...

    async def delete(self, session_id: str) -> None: ...

    async def close(self) -> None: ...


class MemorySessionStore:
    """Sessions of this process, by the sha256 of their id."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    async def create(self, principal: Principal) -> tuple[str, Session]:
        now = self._clock()
        session_id, session = new_session(principal, self.ttl, now)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sweep(now)
            if len(self._sessions) >= MAX_SESSIONS:  # still full: drop the oldest
                oldest = min(self._sessions, key=lambda k: self._sessions[k].created_at)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = session
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        now = self._clock()
        key = _digest(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires_at <= now:
                del self._sessions[key]
                return None
        return session

    async def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(session_id), None)

    async def close(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _sweep(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


class RedisSessionStore:
    """Sessions shared by every node: one Redis key per session (by the sha256 of its id),
    expiring with the session."""

    def __init__(
        self,
        url: str,
        ttl: float,
        *,
        prefix: str = "memhub:ui:session:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio as aioredis

        self.ttl = ttl
        self._clock = clock
        self._prefix = prefix
        self._redis: Any = aioredis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
        )

    async def create(self, principal: Principal) -> tuple[str, Session]:
        session_id, session = new_session(principal, self.ttl, self._clock())
        try:
            await self._redis.set(
                self._prefix + _digest(session_id), session.to_json(), ex=max(1, int(self.ttl))
            )
        except RedisError as exc:
            raise _unavailable() from exc
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        try:
            raw = await self._redis.get(self._prefix + _digest(session_id))
        except RedisError as exc:
            raise _unavailable() from exc
        if raw is None:
            return None
        session = Session.from_json(raw)
        return session if session.expires_at > self._clock() else None

    async def delete(self, session_id: str) -> None:
        try:
            await self._redis.delete(self._prefix + _digest(session_id))
        except RedisError as exc:
            raise _unavailable() from exc

    async def close(self) -> None:
        await self._redis.aclose()


def _unavailable() -> StorageUnavailable:
    return StorageUnavailable(
        "the web UI's session store (Redis) cannot be reached",
        hint="check MEMHUB_REDIS_URL and that Redis is up; the API itself is not affected",
    )


def cookie_value(headers: Headers, name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw or len(raw) > 8192:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:  # a malformed Cookie header carries no session; never a 500
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


class UiSessions:
    """The admission middleware's session resolver for ``/ui`` requests."""

    prefix = PREFIX

    def __init__(self, store: SessionStore, keys: KeyStore) -> None:
        self.store = store
        self.keys = keys

    async def resolve(self, scope: Scope, headers: Headers) -> Principal | None:
        """The principal of the request's session cookie, or None (not signed in).

        The session is left in ``scope["state"]["ui_session"]``: UI routes act only
        on sessions, never on a bearer header (their forms carry the CSRF token of
        a session)."""
        session_id = cookie_value(headers, COOKIE)
        if session_id is None or len(session_id) > 128:
            return None
        try:
            session = await self.store.get(session_id)
        except MemhubError as exc:  # fail closed: the UI answers with this error
            scope.setdefault("state", {})["ui_error"] = exc
            return None
        if session is None:
            return None
        key_id = session.principal.key_id
        if key_id is not None:
            try:
                record = self.keys.verify_id(key_id, allow_io=False)
                if record is None:
                    record = await run_in_threadpool(self.keys.verify_id, key_id)
            except Unauthorized:
                await self.store.delete(session_id)
                return None
        scope.setdefault("state", {})["ui_session"] = session
        scope["state"]["ui_session_id"] = session_id
        return session.principal
