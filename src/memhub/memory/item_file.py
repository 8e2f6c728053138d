"""A memory item and its file: ``items/<cube>/<id>.md``, YAML front matter + the text.

::

    ---
    id: 0b6c…
    cube_id: alice
    memory_type: LongTermMemory
    key: I moved to Lisbon
    tags: [travel]
    …
    ---
    I moved to Lisbon in March.

The file is canonical (it has history, tombstones and sync like any file);
everything else about items is derived from it. Front matter is written and read
with PyYAML's safe dumper and loader (libyaml's when present) under a size budget.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import yaml

from memhub.errors import BadRequest

ITEMS_ROOT = "items/"
MAX_TEXT = 100_000  # characters of one item's text
MAX_FILE_BYTES = 1024 * 1024  # larger files under items/ are not items
MEMORY_TYPES = ("LongTermMemory", "UserMemory", "WorkingMemory", "OuterMemory")
KEY_WORDS = 8
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)
_SPACE = re.compile(r"\s+")
# libyaml's safe loader and dumper when PyYAML has them (10x faster), else the pure ones
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_NAMESPACE = uuid.UUID("5d1f3a70-8f0e-4d2b-9a55-6d656d687562")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise(text: str) -> str:
    """The form two texts share when they state the same fact: NFKC, case-folded,
    whitespace collapsed, trailing punctuation dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", folded).strip().rstrip(".!?;,:。！？ ").strip()


def fact_id(cube: str, text: str) -> str:
    """The id a new fact gets: the same fact in the same cube always gets the same id,
    so two racing adds of it meet at one path (the store's create-only write decides)."""
    return str(uuid.uuid5(_NAMESPACE, f"{cube}\n{normalise(text)}"))


def key_of(text: str) -> str:
    words = text.split()
    key = " ".join(words[:KEY_WORDS])
    return key if len(key) <= 80 else key[:79] + "…"


def item_path(cube: str, item_id: str) -> str:
    return f"{ITEMS_ROOT}{cube}/{item_id}.md"


def check_id(item_id: str) -> str:
    """Item ids are UUIDs (canonical lower-case form)."""
    try:
        return str(uuid.UUID(item_id))
    except (ValueError, AttributeError, TypeError) as exc:
        raise BadRequest("an item id is a UUID", context={"id": item_id}) from exc


def parse_path(path: str) -> tuple[str, str] | None:
    """(cube, id) of an item path, or None for any other path."""
    if not path.startswith(ITEMS_ROOT) or not path.endswith(".md"):
        return None
    rest = path[len(ITEMS_ROOT) : -3]
    cube, sep, stem = rest.partition("/")
    if not sep or not cube or "/" in stem:
        return None
    try:
        return cube, str(uuid.UUID(stem))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    cube_id: str
    memory: str
    memory_type: str = "LongTermMemory"
    key: str = ""
    tags: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    sources: tuple[dict[str, Any], ...] = ()
    session_id: str | None = None
    user_id: str | None = None
    status: str = "activated"
    created_at: str = ""
    updated_at: str = ""
    rev: int = 0  # the store revision of this version (0 before it is written)
    sha256: str = ""

    @property
    def path(self) -> str:
        return item_path(self.cube_id, self.id)

    @property
    def norm(self) -> str:
        return hashlib.sha256(normalise(self.memory).encode()).hexdigest()

    def fields(self) -> dict[str, Any]:
        """What filters see (:mod:`memhub.memory.item_filter`)."""
        return {
            "id": self.id,
            "cube_id": self.cube_id,
            "memory": self.memory,
            "memory_type": self.memory_type,
            "key": self.key,
            "tags": list(self.tags),
            "info": self.info,
            "source": self.source,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fields(),
            "sources": [dict(s) for s in self.sources],
            "path": self.path,
            "rev": self.rev,
        }

    def front_matter(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.fields().items() if k != "memory"}
        meta["sources"] = [dict(s) for s in self.sources]
        return meta

    def with_rev(self, rev: int, sha256: str) -> Item:
        return replace(self, rev=rev, sha256=sha256)


def render(item: Item) -> bytes:
    meta = yaml.dump(
        item.front_matter(),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return f"---\n{meta}---\n{item.memory}\n".encode()


def parse(path: str, data: bytes) -> Item | None:
    """The item a file holds, or None when the file is not a well-formed item."""
    where = parse_path(path)
    if where is None or len(data) > MAX_FILE_BYTES:
        return None
    text = data.decode("utf-8", errors="replace")
    match = _FRONT_MATTER.match(text)
    if not match:
        return None
    try:
        meta = yaml.load(match.group(1), Loader=_Loader)  # a safe loader (see _Loader)
    except yaml.YAMLError:
        return None
    if not isinstance(meta, dict):
        return None
    body = text[match.end() :]
    memory = body[:-1] if body.endswith("\n") else body
    cube, item_id = where
    return Item(
        id=item_id,
        cube_id=cube,
        memory=memory,
        memory_type=_text(meta.get("memory_type")) or "LongTermMemory",
        key=_text(meta.get("key")) or key_of(memory),
        tags=tuple(_text(t) or "" for t in _list(meta.get("tags"))),
        info=plain(meta["info"]) if isinstance(meta.get("info"), dict) else {},
        source=_text(meta.get("source")),
        sources=tuple(plain(s) for s in _list(meta.get("sources")) if isinstance(s, dict)),
        session_id=_text(meta.get("session_id")),
        user_id=_text(meta.get("user_id")),
        status=_text(meta.get("status")) or "activated",
        created_at=_time(meta.get("created_at")),
        updated_at=_time(meta.get("updated_at") or meta.get("created_at")),
    )


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it: what a hand-edited file's YAML adds (dates,
    non-string keys, NaN) becomes strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _time(value: Any) -> str:
    if isinstance(value, datetime):  # an unquoted timestamp in a hand-edited file
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value) if value else ""
