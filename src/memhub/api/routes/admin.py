"""The MemOS overlay's admin API (seed 000): API keys by ``user_name`` (a workspace)."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from memhub.api.context import get_principal
from memhub.api.routes.common import StrictBody
from memhub.auth.keys import ApiKey, KeyStore
from memhub.auth.principal import Principal
from memhub.errors import Forbidden, NotFound
from memhub.store import Store

router = APIRouter(prefix="/admin", tags=["admin"])


async def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this route needs the 'admin' scope")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]
Keys = Annotated[KeyStore, Depends(get_keys)]


class CreateKeyRequest(StrictBody):
    user_name: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(default_factory=lambda: ["read"], min_length=1, max_length=3)
    description: str | None = Field(default=None, max_length=500)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


@router.post("/keys")
def create_key(
    body: CreateKeyRequest, admin: Admin, keys: Keys, request: Request
) -> dict[str, Any]:
    """Create a key for the workspace ``user_name`` (created if new). The key is shown once."""
    store: Store = request.app.state.store
    store.create_workspace(body.user_name, exist_ok=True)
    key, record = keys.create(
        body.user_name,
        body.scopes,
        description=body.description,
        created_by=admin.name,
        expires_in_days=body.expires_in_days,
    )
    return {
        "message": "API key created successfully. Store this key securely - "
        "it won't be shown again!",
        "key": key,
        "key_prefix": record.prefix,
        "id": record.id,
        "user_name": record.workspace,
        "scopes": sorted(record.scopes),
        "expires_at": record.expires_at,
    }


@router.get("/keys")
def list_keys(
    _admin: Admin, keys: Keys, user_name: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    """Keys (all, or of one ``user_name``): prefixes and metadata, never the keys."""
    items = [overlay_key(k) for k in keys.list(user_name)]
    return {"message": f"Found {len(items)} key(s)", "keys": items}


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def overlay_key(key: ApiKey) -> dict[str, Any]:
    """A key as the overlay lists it: ISO 8601 times, ``is_active``."""
    return {
        "id": key.id,
        "key_prefix": key.prefix,
        "user_name": key.workspace,
        "scopes": sorted(key.scopes),
        "description": key.description,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "expires_at": _iso(key.expires_at),
        "is_active": key.usable(time.time()),
    }


@router.delete("/keys/{key_id}")
def revoke_key(key_id: str, _admin: Admin, keys: Keys) -> dict[str, Any]:
    """Revoke a key (kept for audit, refused from now on); an already revoked key is 404,
    as in the overlay."""
    if keys.get(key_id).revoked:
        raise NotFound(f"no active API key with id {key_id!r}")
    keys.revoke(key_id)
    return {"message": "API key revoked successfully", "success": True}


@router.post("/generate-master-key")
def generate_master_key(admin: Admin) -> dict[str, Any]:
    """A new master key and its hash, for MEMHUB_MASTER_KEY_HASH (master key only)."""
    if admin.kind != "master":
        raise Forbidden("only the master key can generate a new master key")
    key = "mh_master_" + secrets.token_urlsafe(32)
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    return {
        "message": "Master key generated. Set MEMHUB_MASTER_KEY_HASH and restart the server!",
        "key": key,
        "key_hash": key_hash,
        "env_line": f"MEMHUB_MASTER_KEY_HASH={key_hash}",
    }


@router.get("/health")
def admin_health(_admin: Admin, request: Request) -> dict[str, Any]:
    """Auth configuration at a glance."""
    settings = request.app.state.settings
    return {
        "status": "ok",
        "auth_enabled": True,
        "master_key_configured": bool(settings.master_key_hash),
        "internal_service_configured": bool(settings.internal_service_secret),
        "rate_limit_backend": "redis" if settings.redis_url else "memory",
    }
