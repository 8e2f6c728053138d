"""File paths inside a workspace.

A path is a key in the metadata database, never a path on the server's disk
(blobs are addressed by their sha256), so nothing a client sends can name a
file outside the store. The rules below keep paths portable to every client
file system the sync client writes to.
"""

from __future__ import annotations

import unicodedata

from memhub.errors import InvalidPath

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_NAME_BYTES = 64


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf") and ch not in ("\u200c", "\u200d")


def normalize_path(raw: str) -> str:
    """Return the canonical (NFC) form of ``raw`` or raise :class:`InvalidPath`."""
    if not raw:
        raise InvalidPath("path is empty")
    path = unicodedata.normalize("NFC", raw)
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPath(
            f"path is longer than {MAX_PATH_BYTES} bytes", context={"max_bytes": MAX_PATH_BYTES}
        )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPath("path is not valid UTF-8") from exc
    if "\\" in path:
        raise InvalidPath("path contains a backslash; use '/' between segments")
    if any(_is_control(ch) for ch in path):
        raise InvalidPath("path contains a NUL or control character")
    if path.startswith("/"):
        raise InvalidPath("path is absolute; give it relative to the workspace root")
    for segment in path.split("/"):
        if segment == "":
            raise InvalidPath("path has an empty segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidPath("path has a '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidPath(f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return path


def normalize_prefix(raw: str | None) -> str:
    """A listing prefix: empty, or a valid path optionally ending in '/'."""
    if not raw:
        return ""
    trailing = raw.endswith("/")
    body = normalize_path(raw.rstrip("/")) if raw.rstrip("/") else ""
    return body + ("/" if trailing and body else "")


def validate_name(raw: str, what: str = "name") -> str:
    """Workspace and lease names: 1-64 bytes of letters, digits, '-', '_', '.', ':'."""
    name = unicodedata.normalize("NFC", raw or "")
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidPath(f"{what} must be 1 to {MAX_NAME_BYTES} bytes long")
    if name in (".", ".."):
        raise InvalidPath(f"{what} cannot be '.' or '..'")
    for ch in name:
        if not (ch.isalnum() or ch in "-_.:@"):
            raise InvalidPath(
                f"{what} may hold letters, digits and '-_.:@' only", context={what: name}
            )
    return name
