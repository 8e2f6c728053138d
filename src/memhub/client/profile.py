"""Where the client finds its server: flags > environment > ``memhub login`` > defaults.

``memhub login`` writes ``<config dir>/profile.json`` (mode 0600, a pydantic
model). The environment (``MEMHUB_SERVER``, ``MEMHUB_KEY``,
``MEMHUB_WORKSPACE``, read once into :class:`ClientSettings`) and command-line
flags override it. With no key anywhere and a server on loopback, the local
admin key of the embedded default (``<data dir>/admin.key``) is used, so a
laptop needs no set-up at all.

A server is *configured* when a flag, the environment or a saved profile
names one; otherwise the CLI runs the API in-process (see
:func:`memhub.client.connect`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from memhub.client.settings import ClientSettings
from memhub.core.durable import write_private
from memhub.core.paths import validate_name
from memhub.core.protocol import read_local_admin_key
from memhub.errors import BadRequest

DEFAULT_SERVER = "http://127.0.0.1:8000"
KeySource = Literal["flag", "env", "profile", "local", "none"]


class StoredProfile(BaseModel):
    """``profile.json``: what ``memhub login`` saved."""

    server: str | None = None
    key: str | None = None
    workspace: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    server: str = DEFAULT_SERVER
    key: str | None = None
    workspace: str = "default"
    source: KeySource = "none"  # where the key came from
    explicit: bool = False  # the server was named (flag, MEMHUB_SERVER or a saved profile)
    path: Path | None = None  # the profile file consulted

    def redacted(self) -> dict[str, str | None]:
        key = self.key
        return {
            "server": self.server
            if self.explicit
            else f"{self.server} (none configured: sync and db use this one; search, "
            "context and the file commands run in-process on the local data dir)",
            "workspace": self.workspace,
            "key": f"{key[:11]}…" if key else None,
            "key_source": self.source,
            "profile": str(self.path) if self.path else None,
        }


def check_server(server: str) -> str:
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadRequest(
            f"server must be an http(s) URL, not {server!r}", hint="e.g. http://127.0.0.1:8000"
        )
    return server.rstrip("/")


def save_profile(settings: ClientSettings, server: str, key: str, workspace: str) -> Path:
    stored = StoredProfile(
        server=check_server(server), key=key, workspace=validate_name(workspace, "workspace")
    )
    path = settings.profile_path
    write_private(path, (stored.model_dump_json(indent=2) + "\n").encode())
    return path


def read_stored(settings: ClientSettings) -> StoredProfile:
    """The saved profile; an unreadable one is an error (a silently ignored login is worse)."""
    path = settings.profile_path
    try:
        return StoredProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return StoredProfile()
    except (OSError, ValueError, ValidationError) as exc:
        raise BadRequest(
            f"cannot read the profile {path}: {exc}",
            hint="run `memhub login` again, or remove the file",
        ) from exc


def load_profile(
    settings: ClientSettings,
    server: str | None = None,
    key: str | None = None,
    workspace: str | None = None,
) -> Profile:
    """Flags beat the environment, which beats the profile file, which beats defaults."""
    stored = read_stored(settings)
    named = server or settings.server or stored.server
    chosen_server = check_server(named or DEFAULT_SERVER)
    chosen_ws = workspace or settings.workspace or stored.workspace or "default"
    chosen_key: str | None
    source: KeySource
    if key:
        chosen_key, source = key, "flag"
    elif settings.key:
        chosen_key, source = settings.key, "env"
    elif stored.key:
        chosen_key, source = stored.key, "profile"
    else:
        chosen_key = _local_key(settings, chosen_server)
        source = "local" if chosen_key else "none"
    return Profile(
        chosen_server,
        chosen_key,
        validate_name(chosen_ws, "workspace"),
        source,
        bool(named),
        settings.profile_path,
    )


def _local_key(settings: ClientSettings, server: str) -> str | None:
    host = urlparse(server).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return read_local_admin_key(settings.data_dir)
