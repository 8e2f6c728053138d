"""UI sign-in sessions: an API key exchanged for a short-lived server-side session.

The browser holds only an opaque random id in an HttpOnly, SameSite=Strict
cookie scoped to ``/ui``; the server keeps the session (its principal, its
CSRF token, its expiry) and stores only the sha256 of the id. The key itself
is never kept, neither in the page nor in the session.

:class:`UiSessions` is what the admission middleware calls for requests under
``/ui``: it turns the cookie into the session's :class:`Principal` (so the UI
is rate-limited per principal like the API), re-checking on every request that
the key behind the session is still usable — a revoked key ends its sessions.

Sessions live in this process (``MemorySessionStore``); with several nodes
behind a load balancer, pin UI clients to one node (sticky sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import Scope

from memhub.auth.keys import KeyStore
from memhub.auth.principal import Principal
from memhub.errors import Unauthorized

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

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            (presented or "").encode("utf-8"), self.csrf.encode("utf-8")
        )


class MemorySessionStore:
    """Sessions of this process, by the sha256 of their id."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal) -> tuple[str, Session]:
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), now, now + self.ttl)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sweep(now)
            if len(self._sessions) >= MAX_SESSIONS:  # still full: drop the oldest
                oldest = min(self._sessions, key=lambda k: self._sessions[k].created_at)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        now = self._clock()
        key = _digest(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires_at <= now:
                del self._sessions[key]
                return None
        return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(session_id), None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def cookie_value(headers: Headers, name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw or len(raw) > 8192:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no session, never a 500
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


class UiSessions:
    """The admission middleware's session resolver for ``/ui`` requests."""

    prefix = PREFIX

    def __init__(self, store: MemorySessionStore, keys: KeyStore) -> None:
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
        session = self.store.get(session_id)
        if session is None:
            return None
        key_id = session.principal.key_id
        if key_id is not None:
            try:
                record = self.keys.verify_id(key_id, allow_io=False)
                if record is None:
                    record = await run_in_threadpool(self.keys.verify_id, key_id)
            except Unauthorized:
                self.store.delete(session_id)
                return None
        scope.setdefault("state", {})["ui_session"] = session
        scope["state"]["ui_session_id"] = session_id
        return session.principal
