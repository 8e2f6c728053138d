"""Orchestrated search: plan several queries from a conversation, run each, fuse
the rankings with reciprocal rank fusion (RRF, k = 60; the one :func:`fuse` that
item and block vectors use too).

The plan comes from the LLM when one is configured (:func:`plan_queries`),
otherwise from the conversation itself: the last user message, the last
message of any role, the whole conversation, and the capitalised names in it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from memhub.memory.context import conversation_text
from memhub.memory.documents import Hit
from memhub.memory.embeddings import fuse
from memhub.memory.extractor import names_in
from memhub.memory.llm import ChatProvider
from memhub.memory.llm_extractor import plan_queries
from memhub.memory.service import Memory

PER_QUERY = 20
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Orchestrated:
    queries: list[str]
    planner: str  # offline | llm:<model>
    hits: list[Hit]  # fused, best first; ``score`` is the RRF score


def offline_plan(conversation: list[dict[str, Any]]) -> list[str]:
    messages = [str(m.get("content") or "") for m in conversation if m.get("content")]
    user = [str(m.get("content") or "") for m in conversation if m.get("role") == "user"]
    plan = []
    if user:
        plan.append(user[-1])
    if messages:
        plan.append(messages[-1])
    plan.append(conversation_text(conversation))
    names = names_in("\n".join(messages[-4:]))
    if names:
        plan.append(" ".join(names[:12]))
    unique = [q[:MAX_QUERY_CHARS] for q in dict.fromkeys(p.strip() for p in plan) if q]
    return unique[:6]


def rrf(rankings: list[list[Hit]]) -> list[Hit]:
    """The rankings fused (:func:`~memhub.memory.embeddings.fuse`, k = 60); a block found
    by several queries is one hit, ties broken by path and line."""
    first: dict[str, Hit] = {}
    keyed = []
    for ranking in rankings:
        keys = []
        for hit in ranking:
            key = f"{hit.path}\n{hit.line_start}"
            first.setdefault(key, hit)
            keys.append(key)
        keyed.append(keys)
    scores = dict(fuse(keyed))
    ordered = sorted(scores, key=lambda key: (-scores[key], first[key].path, first[key].line_start))
    return [replace(first[key], score=round(scores[key], 6)) for key in ordered]


def orchestrated_search(
    memory: Memory,
    workspace: str,
    conversation: list[dict[str, Any]],
    *,
    k: int = 10,
    provider: ChatProvider | None = None,
) -> Orchestrated:
    if provider is not None:
        queries = plan_queries(provider, conversation_text(conversation))
        planner = f"llm:{provider.model}"
    else:
        queries = offline_plan(conversation)
        planner = "offline"
    index = memory.index.current(workspace)
    rankings = [index.search(q[:MAX_QUERY_CHARS], k=max(k, PER_QUERY))[0] for q in queries]
    return Orchestrated(queries, planner, rrf(rankings)[:k])
