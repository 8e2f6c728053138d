"""Turning store values into safe HTML: templates, markdown, snippets, diffs.

Memory is written by agents and is untrusted. Markdown is parsed by
markdown-it-py with raw HTML disabled (it is escaped, not passed through), and
its output is cleaned again by nh3 (ammonia) against a strict allow-list: no
script, no event-handler attribute, no ``style``, links only to http(s) and
mailto. Everything else reaches a page through Jinja2's autoescaping. On top
of this the pages' Content-Security-Policy runs no inline script at all.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
MAX_RENDER_BYTES = 1024**2  # larger files are offered as a download, not rendered
MAX_DIFF_LINES = 20_000

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    "table"
)
_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "img", "del",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}


def render_markdown(text: str) -> Markup:
    """Sanitised HTML of untrusted markdown."""
    html = _md.render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # cleaned by nh3 against the allow-list above


_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def snippet_html(snippet: str) -> Markup:
    """A search snippet (matches between ``**``) with matches in ``<mark>``; the text
    is escaped first, so only our own ``<mark>`` tags are HTML."""
    escaped = str(escape(snippet))
    return Markup(_BOLD.sub(r"<mark>\1</mark>", escaped))


def decode(data: bytes) -> str | None:
    """Text of a file, or None when it is not UTF-8 text."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_markdown(path: str, content_type: str) -> bool:
    return path.lower().endswith((".md", ".markdown", ".mdx")) or "markdown" in content_type


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "ctx" | "add" | "del" | "hunk"
    old: int | None
    new: int | None
    text: str


def unified_diff(old: str, new: str, context: int = 3) -> list[DiffLine]:
    """The lines of a unified diff with their old/new line numbers."""
    a, b = old.splitlines()[:MAX_DIFF_LINES], new.splitlines()[:MAX_DIFF_LINES]
    out: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        out.append(
            DiffLine(
                "hunk",
                None,
                None,
                f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@",
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [DiffLine("ctx", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)]
                continue
            out += [DiffLine("del", i + 1, None, a[i]) for i in range(i1, i2)]
            out += [DiffLine("add", None, j + 1, b[j]) for j in range(j1, j2)]
    return out


@dataclass(frozen=True, slots=True)
class SideRow:
    old_no: int | None
    old: str | None
    new_no: int | None
    new: str | None
    kind: str  # "ctx" | "chg" | "add" | "del" | "hunk"


def side_by_side(old: str, new: str, context: int = 3) -> list[SideRow]:
    a, b = old.splitlines()[:MAX_DIFF_LINES], new.splitlines()[:MAX_DIFF_LINES]
    rows: list[SideRow] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        rows.append(SideRow(None, None, None, None, "hunk"))
        for tag, i1, i2, j1, j2 in group:
            for k in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + k, j1 + k
                left = a[i] if i < i2 else None
                right = b[j] if j < j2 else None
                kind = (
                    "ctx"
                    if tag == "equal"
                    else (
                        "chg"
                        if left is not None and right is not None
                        else ("del" if right is None else "add")
                    )
                )
                rows.append(
                    SideRow(i + 1 if i < i2 else None, left, j + 1 if j < j2 else None, right, kind)
                )
    return rows


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.filters["iso"] = iso
    env.filters["snippet"] = snippet_html
    env.filters["markdown"] = render_markdown
    return env


def parents(path: str) -> list[tuple[str, str]]:
    """Breadcrumbs of a path: (name, prefix) for each directory above it."""
    parts = [p for p in path.split("/") if p]
    return [(name, "/".join(parts[: i + 1]) + "/") for i, name in enumerate(parts[:-1])]


def as_dict(value: Any) -> dict[str, Any]:
    to_dict = getattr(value, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(value)
