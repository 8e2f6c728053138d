"""Admission: authenticate, rate-limit, and stamp the rate-limit headers.

One pure ASGI middleware, in this order for every request:

1. ``OPTIONS`` and the exempt paths (``/health``, ``/docs``, ``/openapi.json``)
   pass untouched: no credentials needed, no rate limit.
2. Credentials, if any, are verified (from the cache on the event loop; a
   cache miss reads the key table in a worker thread).
3. The request counts against its principal's window, or its client IP's
   when it has no valid principal; over the limit → 429 with ``Retry-After``.
4. A bad credential → 401; none on a route that needs one → 401 with
   ``WWW-Authenticate``. Only then does the route run, with
   ``scope["state"]["principal"]`` set.

Paths under a :class:`SessionResolver`'s prefix (the web UI at ``/ui``) take a
session cookie instead of a header credential: the resolver turns it into the
principal (so those requests count against the same per-key windows), and a
request without one is passed on unsigned for the UI to send to its sign-in page.

An MCP tool call is counted once, as its ``/mcp`` request: the tools call the
services in process (``memhub/mcp/services.py``), never the app again.

Every response that passed step 1 carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a Unix time).
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memhub.auth.authenticator import Authenticator, extract_credential
from memhub.auth.principal import Principal
from memhub.auth.ratelimit import Decision, RateLimiter
from memhub.errors import MemhubError, RateLimited, Unauthorized

EXEMPT_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
EXEMPT_PATHS |= {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/favicon-32x32.png"}
CREDENTIAL_PATHS = frozenset({"/auth/token", "/auth/github"})  # they take credentials in the body

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SessionResolver(Protocol):
    """Cookie sessions for the paths under ``prefix`` (the web UI): those paths take
    no header credential as required; the UI itself sends the unsigned-in to sign in."""

    prefix: str

    async def resolve(self, scope: Scope, headers: Headers) -> Principal | None: ...


def parse_networks(raw: str | None) -> tuple[Network, ...]:
    if not raw:
        return ()
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip())


def parse_scope_limits(raw: str | None) -> dict[str, int]:
    limits: dict[str, int] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        scope, _, value = part.partition("=")
        limits[scope.strip()] = int(value)
    return limits


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    limit: int = 100
    window: float = 60.0
    enabled: bool = True
    scope_limits: dict[str, int] = field(default_factory=dict)
    trusted_proxies: tuple[Network, ...] = ()
    public_paths: frozenset[str] = frozenset()

    def limit_for(self, principal: Principal | None) -> int:
        if principal is None:
            return self.limit
        overrides = [self.scope_limits[s] for s in principal.scopes if s in self.scope_limits]
        return max(overrides) if overrides else self.limit


def client_ip(scope: Scope, headers: Headers, trusted: Iterable[Network]) -> str:
    """The peer address, or the nearest untrusted hop of X-Forwarded-For when the
    peer is a trusted proxy."""
    peer = scope.get("client")
    address = peer[0] if peer else "unknown"
    trusted = tuple(trusted)
    if not trusted or not _in(address, trusted):
        return address
    forwarded = headers.get("x-forwarded-for")
    if not forwarded:
        return address
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else address


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class AdmissionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        policy: AdmissionPolicy,
        on_reject: Callable[[str], None] = lambda _reason: None,
        sessions: SessionResolver | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        self.policy = policy
        self.on_reject = on_reject
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        principal: Principal | None = None
        failure: MemhubError | None = None
        try:
            principal = await self._authenticate(headers)
        except MemhubError as exc:
            failure = exc
        path = scope["path"]
        in_sessions = self.sessions is not None and (
            path == self.sessions.prefix or path.startswith(self.sessions.prefix + "/")
        )
        if in_sessions and principal is None and failure is None and self.sessions is not None:
            principal = await self.sessions.resolve(scope, headers)

        decision: Decision | None = None
        if self.policy.enabled:
            key = (
                principal.rate_key
                if principal
                else f"ip:{client_ip(scope, headers, self.policy.trusted_proxies)}"
            )
            try:
                decision = await self.limiter.hit(
                    key, self.policy.limit_for(principal), self.policy.window
                )
            except MemhubError as exc:
                await _send_error(send, exc, None)
                return
            if not decision.allowed:
                self.on_reject("rate_limited")
                await _send_error(send, _too_many(decision), decision)
                return

        if (
            failure is None
            and principal is None
            and not (in_sessions or path in self.policy.public_paths or path in CREDENTIAL_PATHS)
        ):
            failure = Unauthorized("this route needs an API key or a token")
        if failure is not None:
            self.on_reject("unauthorized" if failure.status == 401 else "bad_request")
            await _send_error(send, _with_challenge(failure), decision)
            return

        scope.setdefault("state", {})["principal"] = principal
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = _rate_headers(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _authenticate(self, headers: Headers) -> Principal | None:
        internal = self.authenticator.internal(headers)
        if internal is not None:
            return internal
        credential = extract_credential(headers)
        if credential is None:
            return None
        principal = self.authenticator.authenticate(credential, allow_io=False)
        if principal is None:
            principal = await run_in_threadpool(self.authenticator.authenticate, credential)
        return principal


def _too_many(decision: Decision) -> RateLimited:
    return RateLimited(
        "Too many requests. Please slow down.",
        context={"limit": decision.limit, "retry_after": decision.retry_after},
        headers={"retry-after": str(decision.retry_after)},
    )


def _with_challenge(error: MemhubError) -> MemhubError:
    if error.status == 401:
        error.headers = {**(error.headers or {}), "www-authenticate": 'Bearer realm="memhub"'}
    return error


def _rate_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    reset = math.ceil(time.time() + decision.reset_after)
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(reset).encode()),
    ]


async def _send_error(send: Send, error: MemhubError, decision: Decision | None) -> None:
    body_dict = error.to_dict()
    if isinstance(error, RateLimited) and decision is not None:
        body_dict["retry_after"] = decision.retry_after
    body = json.dumps(body_dict).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *[(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()],
    ]
    if decision is not None:
        headers.extend(_rate_headers(decision))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
