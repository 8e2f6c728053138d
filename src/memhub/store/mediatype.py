"""Content types a revision may carry: RFC 9110 media types, checked on every write.

A stored content type is sent back verbatim in ``Content-Type``, so it must be
a valid header value: ``type "/" subtype *( OWS ";" OWS token "=" ( token /
quoted-string ) )`` in visible ASCII (no CR/LF, no percent-decoding, nothing
outside Latin-1 — obs-text is refused too). What ``curl -d`` sends for a
file (``application/x-www-form-urlencoded``) describes a form, not the file,
and is stored as ``application/octet-stream``. ``text/*`` is served with
``charset=utf-8`` unless it names a charset.
"""

from __future__ import annotations

import re

from memhub.errors import InvalidContentType

MAX_CONTENT_TYPE = 255
OCTET_STREAM = "application/octet-stream"

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_MEDIA_TYPE = re.compile(
    rf"({_TOKEN})/({_TOKEN})((?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*)[ \t]*"
)
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def validate_content_type(raw: str | None) -> str | None:
    """The content type to store (None: the store's default), or InvalidContentType."""
    if raw is None:
        return None
    value = raw.strip(" \t")
    if not value:
        return None
    if len(value) > MAX_CONTENT_TYPE:
        raise InvalidContentType(
            f"Content-Type is limited to {MAX_CONTENT_TYPE} characters",
            context={"max_chars": MAX_CONTENT_TYPE},
        )
    match = _MEDIA_TYPE.fullmatch(value)
    if match is None:
        raise InvalidContentType(
            "Content-Type is not a media type (type/subtype; name=value, visible ASCII only)",
            context={"content_type": value.encode("unicode_escape").decode("ascii")[:300]},
            hint='send for example "text/markdown; charset=utf-8"',
        )
    if f"{match.group(1)}/{match.group(2)}".lower() in _FORM_TYPES:
        return OCTET_STREAM
    return value


def served_content_type(stored: str) -> str:
    """The Content-Type to send for a stored value (older rows may predate the check)."""
    try:
        value = validate_content_type(stored) or OCTET_STREAM
    except InvalidContentType:
        return OCTET_STREAM
    if value.lower().startswith("text/") and "charset=" not in value.lower():
        return f"{value}; charset=utf-8"
    return value
