"""Memory tools: search and context (``POST …/search``, ``POST …/context``)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from memhub.mcp.registry import hub, tool


class Hit(BaseModel):
    path: str
    heading: list[str] = Field(description="The heading trail of the block, outermost first.")
    line_start: int
    line_end: int
    rev: int = Field(description="The file revision the block comes from.")
    snippet: str = Field(description="The matching text; matches are marked **like this**.")
    score: float
    file_kind: str


class SearchResult(BaseModel):
    results: list[Hit]
    total: int = Field(description="How many blocks matched in all.")


@tool(title="Search memory")
async def search_memory(
    ctx: Context,
    query: Annotated[str, Field(description="What to look for, in any language.")],
    k: Annotated[int, Field(ge=1, le=100, description="How many hits to return.")] = 10,
    prefix: Annotated[
        str | None, Field(description="Only files under this path prefix, e.g. 'notes/'.")
    ] = None,
    file_kind: Annotated[
        str | None,
        Field(
            description="Only this kind of file: markdown, instructions, entity, timeline, "
            "user, item, transcript or text."
        ),
    ] = None,
    since: Annotated[
        str | None, Field(description="Only blocks written at or after this ISO date.")
    ] = None,
) -> SearchResult:
    """Search memory (full-text, multilingual). Returns the best blocks with their path,
    heading trail, line range, revision, highlighted snippet and score. Use read_file
    with the path to see a whole file."""
    body: dict[str, object] = {"query": query, "k": k}
    if prefix:
        body["path_prefix"] = prefix
    if file_kind:
        body["file_kinds"] = [file_kind]
    if since:
        body["since"] = since
    found = await hub(ctx).search(body)
    hits = [Hit.model_validate(h, from_attributes=True) for h in found.results]
    return SearchResult(results=hits, total=found.total)


class Source(BaseModel):
    section: str
    path: str
    heading: list[str] | str | None = None
    rev: int
    tokens: int
    line_start: int | None = None
    line_end: int | None = None


class ContextResult(BaseModel):
    markdown: str = Field(description="The memory to load, as markdown.")
    sources: list[Source] = Field(description="Where each part of the markdown comes from.")
    tokens: int = Field(description="Estimated tokens of the markdown (never over max_tokens).")


@tool(title="Get memory context")
async def get_context(
    ctx: Context,
    message: Annotated[str, Field(description="The conversation's latest message or topic.")],
    depth: Annotated[
        Literal["basic", "wide", "deep", "temporal"],
        Field(
            description="basic: instruction rules, always-load blocks, the user entity and "
            "the recent timeline; wide: plus search hits for the message; deep: plus whole "
            "files of the relevant entities; temporal: plus their recent diffs."
        ),
    ] = "wide",
    max_tokens: Annotated[
        int, Field(ge=100, le=200_000, description="Token budget of the result.")
    ] = 4000,
) -> ContextResult:
    """The memory an agent should load for a message: instructions, always-load blocks and
    the relevant entities, assembled as markdown under a token budget, with its sources."""
    result = await hub(ctx).context(
        {
            "conversation": [{"role": "user", "content": message}],
            "depth": depth,
            "max_tokens": max_tokens,
        }
    )
    return ContextResult.model_validate(result.model_dump())
