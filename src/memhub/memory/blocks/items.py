"""Memory items (``items/**.md``): one block, YAML front matter parsed.

Front matter is read with PyYAML's safe loader (libyaml's when present: ten times
faster, which is most of an index rebuild over many items) (so ``always_load: true # pinned``
is true and lists are lists), within a budget: at most
:data:`MAX_FRONT_MATTER_BYTES` of YAML and :data:`MAX_META_NODES` values once
loaded (aliases could otherwise expand a small document into a huge one).
Front matter that is not a YAML mapping, or is over budget, raises
:class:`FrontMatterError`; the item is then kept with its text and no metadata.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import yaml

from memhub.memory.blocks.model import Block, leading_blank

MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_META_NODES = 2000
_TRUE = frozenset({"true", "yes", "on", "1"})
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a safe loader either way


class FrontMatterError(ValueError):
    """Front matter that is not a YAML mapping within the budget."""


def _fence_end(lines: list[str]) -> int | None:
    """The index of the closing ``---`` of front matter opened on line 0, or None."""
    if not lines or lines[0].rstrip(" \t\r") != "---":
        return None
    budget = MAX_FRONT_MATTER_BYTES
    for i in range(1, len(lines)):
        if lines[i].rstrip(" \t\r") == "---":
            return i
        budget -= len(lines[i]) + 1
        if budget < 0:
            raise FrontMatterError(f"front matter is over {MAX_FRONT_MATTER_BYTES} bytes")
    return None


def parse_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """(front matter as plain JSON-able values, the body, lines the front matter took).

    No front matter: ``({}, text, 0)``. Bad front matter: :class:`FrontMatterError`."""
    lines = text.split("\n")
    end = _fence_end(lines)
    if end is None:
        return {}, text, 0
    source = "\n".join(lines[1:end])
    try:
        loaded = yaml.load(source, Loader=_LOADER) if source.strip() else {}
    except yaml.YAMLError as exc:
        raise FrontMatterError(f"front matter is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise FrontMatterError("front matter is nested too deeply") from exc
    if not isinstance(loaded, dict):
        raise FrontMatterError("front matter must be a mapping of keys to values")
    meta = _plain(loaded, [MAX_META_NODES])
    assert isinstance(meta, dict)
    return meta, "\n".join(lines[end + 1 :]), end + 1


def _plain(value: Any, budget: list[int]) -> Any:
    """``value`` as JSON types (dates as ISO strings), counting every node."""
    budget[0] -= 1
    if budget[0] < 0:
        raise FrontMatterError(f"front matter holds more than {MAX_META_NODES} values")
    if isinstance(value, dict):
        return {str(k): _plain(v, budget) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v, budget) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def split_item(path: str, text: str) -> tuple[list[Block], str | None]:
    """The item's block and the front matter's error, if it had a bad one."""
    error = None
    try:
        meta, body, skipped = parse_front_matter(text)
    except FrontMatterError as exc:
        meta, body, skipped, error = {}, text, 0, str(exc)
    if not body.strip():
        return [], error
    body_lines = body.split("\n")
    leading = leading_blank(body_lines)
    skipped += leading
    body = "\n".join(body_lines[leading:])
    title = meta.get("title")
    if not isinstance(title, str | int | float) or isinstance(title, bool) or title == "":
        title = body.strip().split("\n", 1)[0].lstrip("# ")[:80]
    block = Block(
        path=path,
        seq=0,
        kind="item",
        file_kind="item",
        heading=(str(title)[:300],),
        text=body.strip(),
        line_start=skipped + 1,
        line_end=skipped + body.rstrip().count("\n") + 1,
        always_load=_truthy(meta.get("always_load")),
        timestamp=parse_time(meta.get("created_at") or meta.get("date")),
        meta=meta,
    )
    return [block], error


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE if value is not None else False


def parse_time(value: Any) -> float | None:
    """A Unix time from an ISO date (``Z`` allowed; naive means UTC), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if -62_135_596_800 <= value <= 253_402_300_799 else None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
