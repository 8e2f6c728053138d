"""Short-lived HS256 JWTs carrying a workspace and scopes.

Only HS256 is accepted: ``alg: none``, other HMAC sizes and asymmetric
algorithms (the HS/RS confusion) are rejected, and so are tokens without an
expiry, expired ones, ones with a bad signature, and ones whose key has been
revoked since.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt

from memhub.auth.principal import SCOPES, Principal
from memhub.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "memhub"
MAX_TOKEN_CHARS = 8192
WEAK_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "your-jwt-secret", "jwt-secret", "your-secret"}
)


def is_strong_secret(secret: str | None) -> bool:
    return bool(secret) and secret not in WEAK_SECRETS and len(secret or "") >= 32


class TokenCodec:
    def __init__(
        self, secret: str, *, ttl_seconds: int = 3600, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("a JWT secret is required")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(
        self,
        *,
        subject: str,
        workspace: str,
        scopes: frozenset[str],
        key_id: str | None = None,
        kind: str = "key",
    ) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": subject,
            "ws": workspace,
            "scopes": sorted(scopes),
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_hex(8),
            "via": kind,
        }
        if key_id is not None:
            claims["kid"] = key_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> tuple[Principal, str | None]:
        """The principal a token carries and the key id it was issued for (if any)."""
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise Unauthorized("malformed token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        workspace = claims.get("ws")
        scopes = claims.get("scopes")
        if not isinstance(workspace, str) or not isinstance(scopes, list):
            raise Unauthorized("invalid token claims")
        scope_set = frozenset(s for s in scopes if s in SCOPES)
        key_id = claims.get("kid") if isinstance(claims.get("kid"), str) else None
        principal = Principal(
            name=str(claims["sub"]),
            workspace=workspace,
            scopes=scope_set,
            key_id=key_id,
            kind="jwt",
        )
        return principal, key_id
