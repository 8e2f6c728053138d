"""Memory-item tools: short facts kept as items (``/v1/workspaces/{ws}/items…``).

An item is one fact (a preference, a decision, a person's detail) stored as its
own file ``items/<cube>/<id>.md`` with metadata; adding the same fact twice
updates the first item instead of creating a second one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from memhub.errors import NotFound
from memhub.mcp.registry import hub, tool

Cube = Annotated[
    str | None,
    Field(
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="A named group of memories (e.g. a project or a person); default: the "
        "workspace's own group.",
    ),
]


class Memory(BaseModel):
    id: str = Field(description="The memory's id: pass it to delete_memory.")
    text: str
    memory_type: str
    key: str = Field(description="A short title of the memory.")
    tags: list[str]
    cube: str
    session_id: str | None
    source: str | None
    created_at: str
    updated_at: str
    path: str = Field(description="The file that holds it (read_file, file_history work on it).")
    rev: int = Field(description="Its revision: pass it as base_rev to delete_memory.")


def memory_of(item: dict[str, Any]) -> Memory:
    return Memory(
        id=item["id"],
        text=item["memory"],
        memory_type=item["memory_type"],
        key=item["key"],
        tags=item["tags"],
        cube=item["cube_id"],
        session_id=item["session_id"],
        source=item["source"],
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        path=item["path"],
        rev=item["rev"],
    )


class Added(BaseModel):
    action: Literal["created", "updated"] = Field(
        description="created, or updated when the same fact was already stored (then the "
        "existing memory was updated instead of adding a duplicate)."
    )
    memory: Memory


@tool(title="Add a memory", write=True)
async def add_memory(
    ctx: Context,
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100_000,
            description="The fact to remember, as one self-contained sentence or paragraph.",
        ),
    ],
    memory_type: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="Its kind: LongTermMemory (default), UserMemory (about the user) or "
            "WorkingMemory (short-lived).",
        ),
    ] = "LongTermMemory",
    tags: Annotated[
        list[str] | None, Field(max_length=100, description="Labels to filter by later.")
    ] = None,
    key: Annotated[
        str | None,
        Field(max_length=200, description="A short title; default: derived from the text."),
    ] = None,
    cube: Cube = None,
) -> Added:
    """Remember one fact as a memory item. Adding a fact that is already stored updates the
    existing memory (action: updated) instead of creating a duplicate. Use write_file for
    longer notes."""
    item: dict[str, Any] = {"memory": text, "memory_type": memory_type, "tags": tags or []}
    if key is not None:
        item["key"] = key
    if cube is not None:
        item["cube_id"] = cube
    (added,) = await hub(ctx).add_items([item])
    return Added(action=added["action"], memory=memory_of(added))


class MemoryPage(BaseModel):
    memories: list[Memory] = Field(description="Newest first.")
    total: int = Field(description="How many memories there are in all.")
    next_cursor: int | None = Field(description="Pass as cursor to get the next page.")


@tool(title="List memories")
async def list_memories(
    ctx: Context,
    cube: Cube = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many.")] = 50,
    cursor: Annotated[
        int | None, Field(ge=0, description="next_cursor of the previous page; default: start.")
    ] = None,
) -> MemoryPage:
    """The stored memory items, newest first, a page at a time."""
    page = await hub(ctx).list_items(cube, cursor or 0, limit)
    return MemoryPage(
        memories=[memory_of(i) for i in page["items"]],
        total=page["total"],
        next_cursor=page["next_offset"],
    )


class MemoryHit(BaseModel):
    memory: Memory
    score: float
    relativity: float = Field(description="score / the best score (1.0 for the best hit).")


class MemorySearch(BaseModel):
    results: list[MemoryHit]
    mode: str = Field(description="bm25, or hybrid when vector search is configured.")


@tool(title="Search memories")
async def search_memories(
    ctx: Context,
    query: Annotated[str, Field(max_length=10_000, description="What to look for.")],
    k: Annotated[int, Field(ge=1, le=100, description="How many memories to return.")] = 10,
    cube: Cube = None,
) -> MemorySearch:
    """Search the memory items only (facts added with add_memory or extracted from sessions),
    best first. search_memory searches every file."""
    body: dict[str, Any] = {"query": query, "k": k}
    if cube is not None:
        body["cube_id"] = cube
    found = await hub(ctx).search_items(body)
    return MemorySearch(
        results=[
            MemoryHit(memory=memory_of(h["item"]), score=h["score"], relativity=h["relativity"])
            for h in found["results"]
        ],
        mode=found["mode"],
    )


class DeletedMemory(BaseModel):
    id: str
    deleted: bool
    rev: int = Field(description="The deletion's revision (history keeps the memory).")


@tool(title="Delete a memory", write=True, destructive=True)
async def delete_memory(
    ctx: Context,
    id: Annotated[
        str,
        Field(
            pattern=r"^[0-9A-Fa-f-]{32,36}$",
            description="The memory's id (a UUID, from list_memories or search_memories).",
        ),
    ],
    base_rev: Annotated[
        int | None,
        Field(
            ge=1,
            description="The rev you saw (from list_memories or search_memories): delete only "
            "if the memory has not changed since. Default: delete whatever it says now.",
        ),
    ] = None,
) -> DeletedMemory:
    """Delete a memory item. Its history is kept (file_history on its path; restore_file
    brings it back)."""
    try:
        return DeletedMemory.model_validate(await hub(ctx).delete_item(id, base_rev))
    except NotFound as exc:
        if exc.code != NotFound.code:  # the workspace, not the memory
            raise
        raise ToolError(
            f"{exc.code}: {exc.detail}. Next step: call list_memories or search_memories "
            "for the ids that exist."
        ) from exc
