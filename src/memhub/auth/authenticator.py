"""Turning request headers into a :class:`Principal`, or refusing.

Credentials: ``Authorization: Bearer <key or JWT>``, ``Authorization: Token
<key>`` or ``X-API-Key: <key>``. The master key (``MEMHUB_MASTER_KEY_HASH``,
the sha256 of the key) is an admin key for every workspace.
``X-Internal-Service`` counts only when ``MEMHUB_INTERNAL_SERVICE_SECRET`` is
set and the header equals it (constant-time); otherwise it is ignored, never a
bypass. Every comparison of a secret is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from memhub.auth.keys import KeyStore
from memhub.auth.principal import SCOPES, Principal
from memhub.auth.tokens import TokenCodec
from memhub.errors import BadRequest, Unauthorized

MAX_HEADER_CHARS = 8192


def _ascii(value: str) -> str:
    if len(value) > MAX_HEADER_CHARS or not value.isascii() or not value.isprintable():
        raise Unauthorized("malformed credentials")
    return value.strip()


def extract_credential(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries, or None when it carries none."""
    authorization = headers.get("authorization")
    api_key = headers.get("x-api-key")
    if authorization is not None:
        # exactly "<scheme> <credential>": one space, one credential, nothing else
        scheme, *rest = _ascii(authorization).split(" ")
        if scheme.lower() not in ("bearer", "token") or len(rest) != 1 or not rest[0]:
            raise Unauthorized("Authorization must be 'Bearer <key or token>' or 'Token <key>'")
        credential = rest[0]
        if api_key is not None and _ascii(api_key) != credential:
            raise BadRequest("Authorization and X-API-Key disagree; send one credential")
        return credential
    if api_key is not None:
        value = _ascii(api_key)
        if not value:
            raise Unauthorized("X-API-Key is empty")
        return value
    return None


class Authenticator:
    def __init__(
        self,
        keys: KeyStore,
        tokens: TokenCodec,
        *,
        master_key_hash: str | None = None,
        internal_secret: str | None = None,
        default_workspace: str = "default",
    ) -> None:
        self.keys = keys
        self.tokens = tokens
        self._master_hash = (master_key_hash or "").strip().lower() or None
        self._internal_secret = internal_secret or None
        self._default_workspace = default_workspace

    def internal(self, headers: Mapping[str, str]) -> Principal | None:
        value = headers.get("x-internal-service")
        if value is None or self._internal_secret is None:
            return None
        if not hmac.compare_digest(value.encode("latin-1"), self._internal_secret.encode("utf-8")):
            raise Unauthorized("invalid internal service credentials")
        return Principal(
            "internal-service", self._default_workspace, frozenset(SCOPES), None, "internal"
        )

    def authenticate(self, credential: str, *, allow_io: bool = True) -> Principal | None:
        """Verify one credential. With ``allow_io=False`` nothing is read from the
        database, and None means "call again with I/O allowed, off the event loop"."""
        if self._master_hash is not None:
            presented = hashlib.sha256(credential.encode("utf-8")).hexdigest()
            if hmac.compare_digest(presented, self._master_hash):
                return Principal(
                    "master", self._default_workspace, frozenset(SCOPES), None, "master"
                )
        if credential.count(".") == 2 and not credential.startswith("mh_"):
            principal, key_id = self.tokens.verify(credential)
            if key_id is not None and self.keys.verify_id(key_id, allow_io=allow_io) is None:
                return None
            return principal
        record = self.keys.verify(credential, allow_io=allow_io)
        return record.principal() if record is not None else None
