"""The client's small JSON files in its config dir, as pydantic models.

- ``folders.json``: the last sync of each folder (``memhub status``)
- ``dbsync.json``:  what each database was last pushed or pulled as
  (written by :class:`memhub.sync.dbstate.SyncState`, read here for ``status``)

``profile.json`` is :class:`memhub.client.profile.StoredProfile`, ``hooks.json``
:class:`memhub.sync.hooks.HookConfig`; a folder's own ``.memhub/state.json`` is
:class:`memhub.sync.local.State` (hand-encoded: it is the hot path of a no-op sync).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from memhub.core.durable import write_durably

FOLDERS_FILE = "folders.json"
DBSYNC_FILE = "dbsync.json"


class FolderRecord(BaseModel):
    server: str
    workspace: str
    prefix: str = ""
    last_sync: float = 0.0
    changed: int = 0
    errors: int = 0


_FOLDERS = TypeAdapter(dict[str, FolderRecord])


def load_folders(config_dir: Path) -> dict[str, FolderRecord]:
    """The folders synced from this machine; a damaged file counts as none (it is a log)."""
    try:
        return _FOLDERS.validate_json((config_dir / FOLDERS_FILE).read_bytes())
    except (OSError, ValidationError):
        return {}


def remember_folder(
    config_dir: Path,
    root: Path,
    *,
    server: str,
    workspace: str,
    prefix: str,
    changed: int,
    errors: int,
) -> None:
    folders = load_folders(config_dir)
    folders[str(root)] = FolderRecord(
        server=server,
        workspace=workspace,
        prefix=prefix,
        last_sync=time.time(),
        changed=changed,
        errors=errors,
    )
    config_dir.mkdir(parents=True, exist_ok=True)
    write_durably(config_dir / FOLDERS_FILE, _FOLDERS.dump_json(folders, indent=1))


def load_databases(config_dir: Path) -> list[dict[str, Any]]:
    """One row per database pushed or pulled from here: name, file, rev, size, last op."""
    try:
        data = json.loads((config_dir / DBSYNC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows: list[dict[str, Any]] = []
    for record in data.values() if isinstance(data, dict) else []:
        if not isinstance(record, dict):
            continue
        stamp = record.get("synced_at")
        try:
            synced = datetime.fromisoformat(stamp).timestamp() if stamp else None
        except (TypeError, ValueError):
            synced = None
        fingerprint = record.get("fingerprint") or {}
        db = fingerprint.get("db") if isinstance(fingerprint, dict) else None
        rows.append(
            {
                "name": str(record.get("name", "?")),
                "file": str(record.get("file", "?")),
                "rev": record.get("rev"),
                "size": db[0] if isinstance(db, list) and db else None,
                "direction": str(record.get("op", "?")),
                "synced_at": synced,
            }
        )
    return rows
