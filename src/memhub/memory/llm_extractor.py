"""The LLM's two jobs, each with the offline path's output shape.

- :func:`extract_llm`: a transcript → an :class:`Extraction` (the same writer
  then turns it into DiffMem files as for the offline extractor).
- :func:`plan_queries`: a conversation → search queries for orchestrated search.
- :func:`item_extractor`: MemOS ``mode: fine`` (an exchange → facts, one item each).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from memhub.memory.dates import resolve_dates
from memhub.memory.extractor import KINDS, MAX_FACT_CHARS, Entity, Extraction, Fact, entity_for
from memhub.memory.llm import ChatProvider

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["facts"],
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "date": {"type": ["string", "null"]},
                    "about_user": {"type": "boolean"},
                    "entities": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "kind"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1, "maxLength": 120},
                                "kind": {"enum": list(KINDS)},
                            },
                        },
                    },
                },
            },
        }
    },
}

QUERIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["queries"],
    "properties": {
        "queries": {
            "type": "array",
            "minItems": 1,
            "maxItems": 8,
            "items": {"type": "string", "minLength": 1, "maxLength": 500},
        }
    },
}


def extract_llm(
    provider: ChatProvider, transcript: str, session_date: date, user: str, known: list[Entity]
) -> Extraction:
    names = ", ".join(f"{e.name} ({e.kind})" for e in known[:300]) or "none yet"
    prompt = (
        f"The memory of {user}. Session date: {session_date.isoformat()}. Known entities: "
        f"{names}.\nExtract every fact worth remembering from the transcript below. For each "
        "fact give its text (resolve relative dates), its date as YYYY-MM-DD when known, "
        "whether it is about the user, and the entities it names (people, contexts = places "
        "and organisations, events), reusing the names of known entities.\n\n" + transcript
    )
    answer = provider.complete_json([{"role": "user", "content": prompt}], FACTS_SCHEMA)
    by_name = {e.name.lower(): e for e in known}
    for entity in known:
        for alias in entity.aliases:
            by_name.setdefault(alias.lower(), entity)
    facts: list[Fact] = []
    entities: dict[str, Entity] = {}
    for item in answer["facts"]:
        day, when = session_date, session_date.isoformat()
        if item.get("date"):
            mentions = resolve_dates(str(item["date"]), session_date)
            if mentions:
                day, when = mentions[0].day, mentions[0].value
        paths = []
        for named in item.get("entities") or []:
            entity = by_name.get(named["name"].lower()) or entity_for(named["name"], named["kind"])
            entities.setdefault(entity.path, entity)
            paths.append(entity.path)
        text = str(item["text"])[:MAX_FACT_CHARS]
        about = bool(item.get("about_user"))
        facts.append(Fact(text, day, paths, None, None, about, when))
    return Extraction(facts, entities, extractor=f"llm:{provider.model}")


def plan_queries(provider: ChatProvider, conversation_text: str) -> list[str]:
    prompt = (
        "Plan up to 5 short keyword search queries that would find, in a personal memory "
        "store, what the assistant needs to answer the last message of this conversation:"
        "\n\n" + conversation_text
    )
    answer = provider.complete_json([{"role": "user", "content": prompt}], QUERIES_SCHEMA)
    return [q.strip() for q in answer["queries"] if q.strip()]


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["response"],
    "properties": {"response": {"type": "string", "maxLength": 20_000}},
}


def answer(provider: ChatProvider, conversation_text: str, memories: list[str]) -> str:
    """DiffMem's orchestrated-search ``response``: the LLM answers from the memories found."""
    found = "\n\n".join(f"[{i + 1}] {m[:2000]}" for i, m in enumerate(memories[:10]))
    prompt = (
        "Answer the last message of this conversation from the memories below only; say "
        "so when they do not tell.\n\nConversation:\n"
        + conversation_text
        + "\n\nMemories:\n"
        + (found or "(none found)")
    )
    result = provider.complete_json([{"role": "user", "content": prompt}], ANSWER_SCHEMA)
    return str(result["response"])


def item_extractor(provider: ChatProvider) -> Callable[[list[dict[str, str]]], list[str]]:
    """MemOS ``mode: fine`` for memory items: the facts an exchange states (one item
    each), by the same prompt and schema as a session's extraction."""

    def extract(messages: list[dict[str, str]]) -> list[str]:
        transcript = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        today = datetime.now(UTC).date()
        return [fact.text for fact in extract_llm(provider, transcript, today, "user", []).facts]

    return extract
