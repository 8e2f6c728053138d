"""Atomic, durable local writes, for every file memhub writes on a client or a server.

Unique temp name in the target's directory → write → fsync → ``os.replace``
→ fsync the directory; the temp file is removed on any error. A crash leaves
either the old file or the new one (plus, at worst, a temp file whose name
starts with the given prefix, which the callers' scans ignore).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):  # Windows: directories are not opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(
    target: Path, data: bytes, *, mode: int = 0o644, tmp_prefix: str = TMP_PREFIX
) -> None:
    """Write ``data`` to ``target`` atomically and durably, created with ``mode``."""
    tmp = target.with_name(f"{tmp_prefix}{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def write_private(target: Path, data: bytes) -> None:
    """A durable write readable by its owner only (mode 0600 from the first byte)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_durably(target, data, mode=0o600)
    os.chmod(target, 0o600)  # an existing file replaced keeps no wider mode
