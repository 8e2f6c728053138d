"""Constants of the wire protocol and the embedded default, shared by server and client."""

from __future__ import annotations

from pathlib import Path

API_PREFIX = "/v1"
USER_AGENT = "memhub-client"

# headers
MESSAGE_HEADER = "x-memhub-message"
RETRY_AFTER_HEADER = "retry-after"

# the commit route: the most chunks one manifest may list
MAX_MANIFEST_CHUNKS = 100_000

# the embedded default's data dir holds its local admin key (mode 0600)
ADMIN_KEY_FILE = "admin.key"
JWT_SECRET_FILE = "jwt.secret"


def read_local_admin_key(data_dir: Path) -> str | None:
    """The embedded default's admin key, or None when the data dir has none."""
    try:
        return (data_dir / ADMIN_KEY_FILE).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


# context assembly
CONTEXT_DEPTHS: tuple[str, ...] = ("basic", "wide", "deep", "temporal")
