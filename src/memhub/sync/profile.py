"""Where the client finds its server: a profile in the user's config dir.

``memhub login`` writes ``<config dir>/profile.json`` (mode 0600); the
environment (``MEMHUB_SERVER``, ``MEMHUB_KEY``, ``MEMHUB_WORKSPACE``) and
command-line flags override it. With no key anywhere and a server on
loopback, the local admin key of the embedded default
(``<data dir>/admin.key``) is used, so a laptop needs no set-up at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from platformdirs import user_config_dir

from memhub.auth.local import read_local_admin_key
from memhub.client import MemhubClient
from memhub.config import default_data_dir
from memhub.errors import BadRequest
from memhub.store.blobs.local import write_durably
from memhub.store.paths import validate_name

DEFAULT_SERVER = "http://127.0.0.1:8000"


def config_dir() -> Path:
    override = os.environ.get("MEMHUB_CONFIG_DIR")
    return Path(override) if override else Path(user_config_dir("memhub", appauthor=False))


def profile_path() -> Path:
    return config_dir() / "profile.json"


@dataclass(frozen=True, slots=True)
class Profile:
    server: str = DEFAULT_SERVER
    key: str | None = None
    workspace: str = "default"
    source: str = "default"  # where the key came from: profile | env | flag | local | none
    explicit: bool = False  # the server was named (flag, MEMHUB_SERVER or a saved profile)

    def client(self, timeout: float = 60.0) -> MemhubClient:
        return MemhubClient(self.server, self.key, self.workspace, timeout=timeout)

    def redacted(self) -> dict[str, str | None]:
        key = self.key
        return {
            "server": self.server,
            "workspace": self.workspace,
            "key": f"{key[:11]}…" if key else None,
            "key_source": self.source,
            "profile": str(profile_path()),
        }


def _check_server(server: str) -> str:
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadRequest(f"server must be an http(s) URL, not {server!r}")
    return server.rstrip("/")


def save_profile(server: str, key: str, workspace: str = "default") -> Path:
    data = {
        "server": _check_server(server),
        "key": key,
        "workspace": validate_name(workspace, "workspace"),
    }
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)
    try:
        write_durably(path, (json.dumps(data, indent=2) + "\n").encode())
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return path


def _stored() -> dict[str, str]:
    try:
        data = json.loads(profile_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: str(v) for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
    )


def load_profile(
    server: str | None = None, key: str | None = None, workspace: str | None = None
) -> Profile:
    """Flags beat the environment, which beats the profile file, which beats defaults."""
    stored = _stored()
    chosen_server = (
        server or os.environ.get("MEMHUB_SERVER") or stored.get("server") or DEFAULT_SERVER
    )
    chosen_ws = (
        workspace or os.environ.get("MEMHUB_WORKSPACE") or stored.get("workspace") or "default"
    )
    chosen_key: str | None
    if key:
        chosen_key, source = key, "flag"
    elif os.environ.get("MEMHUB_KEY"):
        chosen_key, source = os.environ["MEMHUB_KEY"], "env"
    elif stored.get("key"):
        chosen_key, source = stored["key"], "profile"
    else:
        chosen_key, source = _local_key(chosen_server), "local"
        if chosen_key is None:
            source = "none"
    explicit = bool(server or os.environ.get("MEMHUB_SERVER") or stored.get("server"))
    return Profile(
        _check_server(chosen_server),
        chosen_key,
        validate_name(chosen_ws, "workspace"),
        source,
        explicit,
    )


def _local_key(server: str) -> str | None:
    host = urlparse(server).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    data_dir = (
        Path(os.environ["MEMHUB_DATA_DIR"])
        if os.environ.get("MEMHUB_DATA_DIR")
        else default_data_dir()
    )
    return read_local_admin_key(data_dir)
