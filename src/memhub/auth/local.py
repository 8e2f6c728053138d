"""Secrets the embedded default keeps in its data dir (mode 0600), so a laptop
needs no setup: the JWT signing secret and a local admin key."""

from __future__ import annotations

import secrets
from pathlib import Path

from memhub.auth.keys import KeyStore
from memhub.core.durable import write_private
from memhub.core.protocol import ADMIN_KEY_FILE, JWT_SECRET_FILE, read_local_admin_key
from memhub.errors import Unauthorized


def _write_private(path: Path, text: str) -> None:
    write_private(path, text.encode("utf-8"))


def load_or_create_jwt_secret(data_dir: Path) -> str:
    path = data_dir / JWT_SECRET_FILE
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret + "\n")
    return secret


def ensure_local_admin_key(data_dir: Path, keys: KeyStore, workspace: str) -> tuple[Path, bool]:
    """Create the local admin key once; returns (its file, whether it was created now)."""
    path = data_dir / ADMIN_KEY_FILE
    existing = read_local_admin_key(data_dir)
    if existing is not None:
        try:
            keys.verify(existing)
            return path, False
        except Unauthorized:  # revoked, expired, or a database that never knew it
            pass
    key, _record = keys.create(
        workspace,
        ("read", "write", "admin"),
        description="local admin key (created by memhub serve)",
        created_by="memhub serve",
    )
    _write_private(path, key + "\n")
    return path, True


__all__ = ["ensure_local_admin_key", "load_or_create_jwt_secret", "read_local_admin_key"]
