"""File paths inside a workspace.

A path is a key in the metadata database, never a path on the server's disk
(blobs are addressed by their sha256), so nothing a client sends can name a
file outside the store. The rules below keep paths portable to every client
file system the sync client writes to (Linux, macOS, Windows):

- NFC, at most 1024 bytes, segments of at most 255 bytes, '/' between them;
- no empty, ``.`` or ``..`` segment, no leading '/', no backslash;
- no control or format character (ZWNJ/ZWJ excepted), no line or paragraph
  separator (U+2028, U+2029, U+0085);
- none of ``< > : " | ? *`` (Windows refuses them in names);
- no segment ending in '.' or ' ' (Windows drops them, so two names alias);
- no segment named as a Windows device (CON, PRN, AUX, NUL, COM0-9, LPT0-9,
  also with an extension: ``nul.txt``), in any case.

Two live paths that differ only in case cannot coexist on macOS or Windows:
the store refuses the second one (409 ``PATH_CONFLICT``).
"""

from __future__ import annotations

import unicodedata

from memhub.errors import InvalidPath

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_NAME_BYTES = 64
WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in [*"0123456789", "¹", "²", "³"]}
)


def _is_control(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category in ("Zl", "Zp"):  # U+2028, U+2029: line and paragraph separators
        return True
    return category in ("Cc", "Cf") and ch not in ("\u200c", "\u200d")


def _check_portable(segment: str) -> None:
    """A segment every client file system can hold under this very name."""
    bad = sorted(set(segment) & WINDOWS_FORBIDDEN)
    if bad:
        raise InvalidPath(
            f"path contains {''.join(bad)!r}, which Windows refuses in file names",
            context={"segment": segment},
        )
    if segment.endswith((".", " ")):
        raise InvalidPath(
            "a path segment ends in '.' or ' ' (Windows drops them)", context={"segment": segment}
        )
    stem = segment.split(".", 1)[0].rstrip(" ").lower()
    if stem in WINDOWS_DEVICES:
        raise InvalidPath(
            f"{segment!r} is a reserved device name on Windows", context={"segment": segment}
        )


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
        _check_portable(segment)
    return path


def fold_case(path: str) -> str:
    """The key two paths share when macOS and Windows would take them for one file:
    full Unicode case folding of the NFC form (``Заметки.md`` and ``заметки.md``,
    ``STRASSE`` and ``straße``)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


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
