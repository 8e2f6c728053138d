"""Editing another application's JSON settings file (Claude Code, Cursor, Claude Desktop)
without ever losing what it holds.

A file that is not a JSON object is refused, not rewritten; the first edit keeps a
one-time backup beside it (``<name>.memhub-backup``); writes are durable and atomic,
and keep the file's permissions (a new file that holds a key is readable by its
owner only).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from memhub.core.durable import write_durably
from memhub.errors import BadRequest

BACKUP_SUFFIX = ".memhub-backup"


def read_json_object(path: Path) -> dict[str, Any]:
    """The file's object; ``{}`` when it does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise BadRequest(
            f"{path} is not valid JSON; not touching it", hint="fix or move it, then try again"
        ) from exc
    if not isinstance(data, dict):
        raise BadRequest(f"{path} does not hold a JSON object; not touching it")
    return data


def write_json_object(path: Path, data: dict[str, Any], *, private: bool = False) -> None:
    """Replace the file with ``data`` (see the module doc)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode: int | None = 0o600 if private else None
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if not backup.exists():
            write_durably(backup, path.read_bytes())
            os.chmod(backup, mode)
    write_durably(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    if mode is not None:
        os.chmod(path, mode)
