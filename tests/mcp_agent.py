"""The agent's session every MCP test drives (in memory, over ``/mcp``, over stdio):
write → read → stale conditional write → edit → history → diff → search → context,
with the errors an agent must be able to act on."""

from __future__ import annotations

from typing import Any

from mcp_types import CallToolResult

from mcp import Client

WRITE_TOOLS = {
    "write_file",
    "edit_file",
    "delete_file",
    "restore_file",
    "add_memory",
    "delete_memory",
    "process_session",
    "commit_session",
    "discard_session",
}
READ_TOOLS = {
    "search_memory",
    "get_context",
    "read_file",
    "list_files",
    "file_history",
    "diff_file",
    "recent_changes",
    "list_memories",
    "search_memories",
}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, (tool, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert result.is_error, (tool, result.structured_content)
    text = result.content[0].text  # type: ignore[union-attr]
    assert isinstance(text, str)
    return text


async def agent_flow(client: Client) -> None:
    """write → read → stale conditional write → edit → history → diff → search → context."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert names == READ_TOOLS | WRITE_TOOLS
    created = await call(
        client, "write_file", path="notes/garden.md", content="# Garden\nTomatoes need sun.\n"
    )
    assert created["created"] is True
    first = created["rev"]
    read = await call(client, "read_file", path="notes/garden.md")
    assert (read["rev"], read["content"]) == (first, "# Garden\nTomatoes need sun.\n")
    assert read["content_type"].startswith("text/")

    # creating what exists is refused, with the current rev and content
    text = await error(client, "write_file", path="notes/garden.md", content="blind")
    assert "CONFLICT" in text and f"base_rev={first}" in text and "Tomatoes need sun" in text
    second = (
        await call(
            client,
            "write_file",
            path="notes/garden.md",
            content="# Garden\nTomatoes need sun and water.\n",
            base_rev=first,
        )
    )["rev"]
    # a write based on the old rev is a conflict that says what to merge with
    text = await error(
        client, "write_file", path="notes/garden.md", content="stale", base_rev=first
    )
    assert f"current rev is {second}" in text and "sun and water" in text
    assert (await call(client, "read_file", path="notes/garden.md"))["rev"] == second

    edited = await call(
        client,
        "edit_file",
        path="notes/garden.md",
        old_text="water",
        new_text="Quokkaberry compost",
        base_rev=second,
    )
    third = edited["rev"]
    assert "does not occur" in await error(
        client, "edit_file", path="notes/garden.md", old_text="cactus", new_text="x"
    )
    await call(client, "write_file", path="notes/twice.md", content="a b a\n")
    assert "occurs 2 times" in await error(
        client, "edit_file", path="notes/twice.md", old_text="a", new_text="c"
    )
    stale_edit = await error(
        client, "edit_file", path="notes/garden.md", old_text="sun", new_text="x", base_rev=first
    )
    assert "CONFLICT" in stale_edit and f"base_rev={third}" in stale_edit

    history = await call(client, "file_history", path="notes/garden.md")
    assert [r["rev"] for r in history["revisions"]] == [third, second, first]
    diff = (await call(client, "diff_file", path="notes/garden.md", from_rev=second))["diff"]
    assert "-Tomatoes need sun and water." in diff and "+Tomatoes need sun and Quokkaberry" in diff

    hits = (await call(client, "search_memory", query="Quokkaberry"))["results"]
    assert hits and hits[0]["path"] == "notes/garden.md" and hits[0]["rev"] == third
    assert "**Quokkaberry**" in hits[0]["snippet"]
    assert not (await call(client, "search_memory", query="Quokkaberry", prefix="other/"))[
        "results"
    ]
    context = await call(client, "get_context", message="what about Quokkaberry compost?")
    assert "Quokkaberry" in context["markdown"]
    assert any(s["path"] == "notes/garden.md" for s in context["sources"])

    # line ranges, listing, the change feed
    part = await call(client, "read_file", path="notes/garden.md", line_start=2, line_end=2)
    assert part["content"] == "Tomatoes need sun and Quokkaberry compost.\n"
    assert part["total_lines"] == 2
    listed = await call(client, "list_files", prefix="notes/")
    assert [f["path"] for f in listed["files"]] == ["notes/garden.md", "notes/twice.md"]
    changes = await call(client, "recent_changes", limit=2)
    assert [c["rev"] for c in changes["changes"]] == [changes["head_rev"] - 1, changes["head_rev"]]
    assert all(c["author"] for c in changes["changes"])
    caught_up = await call(client, "recent_changes", since_rev=changes["head_rev"])
    assert caught_up["changes"] == [] and not caught_up["has_more"]

    # delete is conditional too; restore brings any rev back
    assert "CONFLICT" in await error(client, "delete_file", path="notes/garden.md", base_rev=first)
    await call(client, "delete_file", path="notes/garden.md", base_rev=third)
    missing = await error(client, "read_file", path="notes/garden.md")
    assert "FILE_NOT_FOUND" in missing
    restored = await call(client, "restore_file", path="notes/garden.md", rev=second)
    assert (await call(client, "read_file", path="notes/garden.md"))["rev"] == restored["rev"]
