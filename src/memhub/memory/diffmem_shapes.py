"""DiffMem's response shapes, built from memhub's index and store.

A workspace is DiffMem's ``users/<id>/`` folder: ``<id>.md`` is the user
entity, ``memories/{people,contexts,events}/`` the entities, ``timeline/`` the
months. Paths in answers are relative to the workspace (DiffMem's are absolute
paths on its server, which a client cannot use anyway).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from memhub.errors import FileNotFound, MemhubError
from memhub.memory.blocks import classify, clean_heading
from memhub.memory.context import MAX_ENTITIES, conversation_text
from memhub.memory.documents import Hit, SearchFilters, decode_text
from memhub.memory.extractor import KINDS
from memhub.memory.service import Memory
from memhub.store import Store

STRENGTH = {"High": 1.5, "Medium": 1.2}
TIMELINE_CHARS = 1000
RECENT_TIMELINE = 5
_TAGS = re.compile(r"\[[^\]]*\]")
_PUNCT = re.compile(r"[^\w\s]")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def block_id(header: str) -> str:
    """DiffMem's id: the header without [tags], ``*`` and punctuation, spaces → ``_``, lower."""
    text = _PUNCT.sub("", _TAGS.sub("", header).replace("*", "")).strip()
    return re.sub(r"\s+", "_", text).lower()


def _header(hit: Hit) -> str:
    first = hit.text.lstrip().split("\n", 1)[0]
    if first.startswith("#"):
        return first.lstrip("#").strip()
    return hit.heading[-1] if hit.heading else hit.path


def snippet(hit: Hit) -> dict[str, Any]:
    return {
        "id": block_id(_header(hit)),
        "content": hit.text,
        "strength": STRENGTH.get(hit.strength or "", 1.0),
        "always_load": hit.always_load,
        "file_path": hit.path,
    }


def _read(store: Store, ws: str, path: str) -> tuple[float, str] | None:
    try:
        revision, data = store.read_bytes(ws, path)
    except MemhubError as exc:
        if exc.status == 404:
            return None
        raise
    return revision.created_at, decode_text(data, revision.content_type) or ""


def _name(path: str, text: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return clean_heading(line[2:])
    return path.rsplit("/", 1)[-1].removesuffix(".md")


def user_entity(store: Store, ws: str, required: bool) -> dict[str, Any] | None:
    loaded = _read(store, ws, f"{ws}.md")
    if loaded is None:
        if required:
            raise FileNotFound(
                f"User {ws} not found or memory setup invalid. Use /onboard endpoint "
                "to create user.",
                context={"user_id": ws, "path": f"{ws}.md"},
            )
        return None
    return {
        "entity_name": _name(f"{ws}.md", loaded[1]),
        "file_path": f"{ws}.md",
        "content": loaded[1],
        "strength_score": 1.0,
        "type": "complete_user_entity",
    }


def recent_timeline(store: Store, ws: str, days_back: int, limit: int) -> list[dict[str, Any]]:
    since = time.time() - days_back * 86400
    heads = [
        h
        for h in store.list_files(ws, prefix="timeline/", limit=1000)
        if classify(h.path) == "timeline" and h.created_at >= since
    ]
    heads.sort(key=lambda h: (h.path, h.created_at), reverse=True)
    items = []
    for head in heads[:limit]:
        loaded = _read(store, ws, head.path)
        if loaded is None:
            continue
        text = loaded[1]
        content = text if len(text) <= TIMELINE_CHARS else text[-TIMELINE_CHARS:] + "…"
        items.append(
            {
                "file_path": head.path,
                "date": iso(head.created_at),
                "content": content,
                "type": "recent_timeline",
            }
        )
    return items


def context(
    memory: Memory, ws: str, conversation: list[dict[str, Any]], depth: str
) -> dict[str, Any]:
    index = memory.index.current(ws)
    query = conversation_text(conversation)
    hits = index.search(query, k=30)[0] if query.strip() and depth != "basic" else []
    ranked = memory.assembler.rank_entities(ws, hits)[:MAX_ENTITIES]
    top = [path for path, _ in ranked]
    always: list[dict[str, Any]] = []
    user = user_entity(memory.store, ws, False)
    if user is not None:
        always.append(user)
    loaded = index.search("", k=500, filters=SearchFilters(always_load_only=True))[0]
    for hit in loaded:
        if hit.path == f"{ws}.md" or (hit.file_kind == "entity" and hit.path not in top):
            continue
        always.append(
            {
                "file_path": hit.path,
                "header": _header(hit),
                "content": hit.text,
                "type": "always_load",
            }
        )
    names = []
    complete = []
    for path in top:
        found = _read(memory.store, ws, path)
        if found is None:
            continue
        name = _name(path, found[1])
        names.append(name)
        if depth in ("deep", "temporal"):
            complete.append(
                {
                    "entity_name": name,
                    "file_path": path,
                    "content": found[1],
                    "type": "complete_entity",
                    "subdir": path.split("/")[1] if path.count("/") >= 2 else "",
                }
            )
    built: dict[str, Any] = {
        "always_load_blocks": always,
        "recent_timeline": recent_timeline(memory.store, ws, 30, RECENT_TIMELINE),
        "session_metadata": {
            "user_id": ws,
            "depth": depth,
            "timestamp": iso(time.time()),
            "entities_found": names,
            "mode_info": _MODES[depth],
        },
    }
    if depth in ("deep", "temporal"):
        built["complete_entities"] = complete
    if depth == "temporal":
        built["temporal_evolution"] = [_evolution(memory.store, ws, e) for e in complete]
    return built


_MODES = {
    "basic": "Core entities ranked by activity, with their ALWAYS_LOAD blocks",
    "wide": "Entities found by search over the conversation, with ALWAYS_LOAD blocks",
    "deep": "Complete files of the entities found",
    "temporal": "Complete files with their revision history",
}


def _evolution(store: Store, ws: str, entity: dict[str, Any]) -> dict[str, Any]:
    history = store.history(ws, entity["file_path"], limit=10)
    changes = [
        {
            "hash": r.sha256[:12],
            "author": r.author or "",
            "date": iso(r.created_at),
            "message": r.message or f"rev {r.rev}",
            "changes_description": "deleted" if r.deleted else f"{r.size} bytes",
            "diff_summary": f"rev {r.rev}" + (f", session {r.session_id}" if r.session_id else ""),
        }
        for r in history
    ]
    return {
        "file_path": entity["file_path"],
        "entity_name": entity["entity_name"],
        "content": entity["content"],
        "summary": f"{len(changes)} revisions",
        "change_history": changes,
    }


def repo_status(memory: Memory, ws: str) -> dict[str, Any]:
    onboarded = user_entity(memory.store, ws, False) is not None
    if not onboarded:
        return {"repo_path": ws, "user_id": ws, "onboarded": False, "error": "User not onboarded"}
    index = memory.index.current(ws)
    heads = memory.store.list_files(ws, limit=10_000)
    memories = [h for h in heads if h.path.startswith("memories/")]
    blocks = index.num_docs()
    return {
        "repo_path": ws,
        "user_id": ws,
        "user_path": ws,
        "onboarded": True,
        "index_stats": {
            "total_blocks": blocks,
            "avg_tokens": round(sum(h.size for h in heads) / 4 / blocks, 1) if blocks else 0.0,
        },
        "memory_files_count": len(memories),
        "has_timeline": any(h.path.startswith("timeline/") for h in heads),
        "has_master_index": any(h.path == "index.md" for h in heads),
    }


def validation(store: Store, ws: str, llm: bool) -> dict[str, Any]:
    heads = {h.path for h in store.list_files(ws, limit=10_000)}
    onboarded = f"{ws}.md" in heads
    issues: list[str] = []
    warnings: list[str] = []
    if not onboarded:
        issues.append(f"missing user entity {ws}.md")
    if not any(p.startswith("memories/") for p in heads):
        issues.append("missing memories/ directory")
    for kind in KINDS:
        if not any(p.startswith(f"memories/{kind}/") for p in heads):
            warnings.append(f"no memories/{kind}/ files yet")
    if not any(p.startswith("timeline/") for p in heads):
        warnings.append("no timeline/ files yet")
    if not llm:
        warnings.append("no LLM configured: the offline extractor is used")
    return {
        "valid": not issues,
        "onboarded": onboarded,
        "issues": issues,
        "warnings": warnings,
        "user_id": ws,
        "repo_path": ws,
    }
