"""API keys: ``mh_`` + 32 random bytes (base64url). Only the sha256 of a key and a
display prefix are stored; the key itself is shown once, at creation.

Verification looks a key up by its hash. Verified keys are cached for a few
seconds, so a hot key costs no database round trip; a revocation is seen at
once by the node that made it and within ``cache_seconds`` by other nodes.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, insert, select, update

from memhub.auth.principal import SCOPES, Principal, PrincipalKind
from memhub.core.paths import validate_name
from memhub.errors import BadRequest, MemhubError, NotFound, Unauthorized
from memhub.store.metadata import Metadata
from memhub.store.schema import api_keys

KEY_PREFIX = "mh_"
KEY_BODY_CHARS = 43  # 32 bytes in unpadded base64url
MAX_KEY_CHARS = 256
LAST_USED_EVERY = 60.0  # seconds between last_used_at updates of one key

log = logging.getLogger("memhub.auth")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | Iterable[str]) -> frozenset[str]:
    items = [s.strip().lower() for s in (raw.split(",") if isinstance(raw, str) else raw)]
    scopes = frozenset(s for s in items if s)
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise BadRequest(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)}",
            context={"unknown": sorted(unknown)},
        )
    return scopes


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    prefix: str
    workspace: str
    scopes: frozenset[str]
    description: str | None
    created_by: str | None
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked: bool

    def usable(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def principal(self, kind: PrincipalKind = "key") -> Principal:
        return Principal(
            name=f"key:{self.prefix}",
            workspace=self.workspace,
            scopes=self.scopes,
            key_id=self.id,
            kind=kind,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "workspace": self.workspace,
            "user_name": self.workspace,
            "scopes": sorted(self.scopes),
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked,
        }


def _row_to_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        workspace=row.workspace,
        scopes=frozenset(row.scopes.split(",")),
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked=bool(row.revoked),
    )


def looks_like_key(value: str) -> bool:
    return (
        value.startswith(KEY_PREFIX)
        and len(value) <= MAX_KEY_CHARS
        and value.isascii()
        and value.isprintable()
    )


class KeyStore:
    def __init__(
        self,
        meta: Metadata,
        *,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 5.0,
    ) -> None:
        self._meta = meta
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(
        self,
        workspace: str,
        scopes: Iterable[str] | str,
        *,
        description: str | None = None,
        created_by: str | None = None,
        expires_in_days: float | None = None,
    ) -> tuple[str, ApiKey]:
        """Create a key; returns (the full key — shown only now —, its record)."""
        workspace = validate_name(workspace, "workspace")
        scope_set = parse_scopes(scopes)
        if expires_in_days is not None and expires_in_days <= 0:
            raise BadRequest("expires_in_days must be positive")
        if description is not None and len(description) > 1000:
            raise BadRequest("description is limited to 1000 characters")
        key = generate_key()
        now = self._clock()
        record = ApiKey(
            id=secrets.token_hex(8),
            prefix=key[:11],
            workspace=workspace,
            scopes=scope_set,
            description=description,
            created_by=created_by,
            created_at=now,
            expires_at=now + expires_in_days * 86400 if expires_in_days else None,
            last_used_at=None,
            revoked=False,
        )
        with self._meta.write() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=record.id,
                    key_hash=hash_key(key),
                    prefix=record.prefix,
                    workspace=workspace,
                    scopes=",".join(sorted(scope_set)),
                    description=description,
                    created_by=created_by,
                    created_at=now,
                    expires_at=record.expires_at,
                    revoked=False,
                )
            )
        return key, record

    def list(self, workspace: str | None = None, *, include_revoked: bool = True) -> list[ApiKey]:
        stmt = select(api_keys).order_by(api_keys.c.created_at)
        if workspace is not None:
            stmt = stmt.where(api_keys.c.workspace == workspace)
        if not include_revoked:
            stmt = stmt.where(api_keys.c.revoked.is_(False))
        with self._meta.read() as conn:
            return [_row_to_key(r) for r in conn.execute(stmt).all()]

    def get(self, key_id: str) -> ApiKey:
        with self._meta.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return _row_to_key(row)

    def revoke(self, key_id: str) -> ApiKey:
        with self._meta.write() as conn:
            done = conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(revoked=True)
            ).rowcount
        if not done:
            raise NotFound(f"no API key with id {key_id!r}")
        with self._lock:
            self._cache = {
                h: v for h, v in self._cache.items() if not (v[1] is not None and v[1].id == key_id)
            }
        return self.get(key_id)

    def count_usable(self) -> int:
        now = self._clock()
        return sum(1 for k in self.list(include_revoked=False) if k.usable(now))

    def verify(self, key: str, *, allow_io: bool = True) -> ApiKey | None:
        """The record of a usable key, or :class:`Unauthorized`.

        With ``allow_io=False`` only the cache is consulted and None means
        "not cached: ask again with I/O allowed" (the event loop's fast path).
        """
        if not looks_like_key(key):
            raise Unauthorized("malformed API key")
        key_hash = hash_key(key)
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            record = cached[1]
        elif not allow_io:
            return None
        else:
            record = self._load(key_hash, now)
        if record is None:
            raise Unauthorized("unknown API key")
        if record.revoked:
            raise Unauthorized("this API key was revoked")
        if not record.usable(now):
            raise Unauthorized("this API key has expired")
        if allow_io:
            self._touch(record.id, now)
        return record

    def verify_id(self, key_id: str, *, allow_io: bool = True) -> ApiKey | None:
        """For JWTs: the key a token was issued for must still be usable."""
        now = self._clock()
        cached = self._cache.get(f"id:{key_id}")
        if cached is not None and cached[0] > now and cached[1] is not None:
            record = cached[1]
        elif not allow_io:
            return None
        else:
            try:
                record = self.get(key_id)
            except NotFound:
                raise Unauthorized("the key behind this token no longer exists") from None
            with self._lock:
                self._cache[f"id:{key_id}"] = (now + self._cache_seconds, record)
        if not record.usable(now):
            raise Unauthorized("the key behind this token was revoked or has expired")
        return record

    def _load(self, key_hash: str, now: float) -> ApiKey | None:
        with self._meta.read() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        record = _row_to_key(row) if row is not None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (now + self._cache_seconds, record)
        return record

    def _touch(self, key_id: str, now: float) -> None:
        last = self._last_used.get(key_id, 0.0)
        if now - last < LAST_USED_EVERY:
            return
        self._last_used[key_id] = now
        try:
            with self._meta.write() as conn:
                conn.execute(
                    update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
                )
        except MemhubError as exc:  # bookkeeping must not fail the request it rides on
            log.warning("could not record last use of key %s: %s", key_id, exc)
            self._last_used[key_id] = last
