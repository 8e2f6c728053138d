"""Orchestrated search: plan several queries from a conversation, run each, fuse
the rankings with reciprocal rank fusion (RRF, k = 60).

The plan comes from the LLM when one is configured (:func:`plan_queries`),
otherwise from the conversation itself: the last user message, the last
message of any role, the whole conversation, and the capitalised names in it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from memhub.memory.context import conversation_text
from memhub.memory.extractor import names_in
from memhub.memory.index import Hit
from memhub.memory.llm import ChatProvider
from memhub.memory.llm_extractor import plan_queries
from memhub.memory.service import Memory

RRF_K = 60
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


def rrf(rankings: list[list[Hit]], *, k: int = RRF_K) -> list[Hit]:
    scores: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            key = (hit.path, hit.line_start)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank + 1)
            first.setdefault(key, hit)
    ordered = sorted(scores, key=lambda key: (-scores[key], key))
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
