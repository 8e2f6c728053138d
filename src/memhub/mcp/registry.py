"""The tool registry: a tool is one small async function in one module.

    @tool(title="Search memory")
    async def search_memory(ctx: Context, query: str, k: int = 10) -> SearchResult:
        found = await hub(ctx).search({"query": query, "k": k})
        ...

``ctx`` is the SDK's :class:`~mcp.server.mcpserver.Context`; :func:`hub` turns
it into this caller's :class:`~memhub.mcp.hub.Hub`. The parameters' types and
``Field`` descriptions become the JSON schema an LLM reads; the return type
(a pydantic model) becomes the structured output. ``write=True`` marks a tool
that changes memory: it is hidden from read-only keys on ``/mcp`` and refused
by the API if called anyway. A :class:`~memhub.errors.MemhubError` raised by a
tool becomes an MCP tool error that names the cause and the next step.

A new tool module is imported in :data:`TOOL_MODULES`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from memhub.errors import FileNotFound, MemhubError
from memhub.mcp.hub import Hub

TOOL_MODULES = (
    "memhub.mcp.tools_memory",
    "memhub.mcp.tools_files",
    "memhub.mcp.tools_items",
    "memhub.mcp.tools_sessions",
)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Connector(Protocol):
    """Where a request's hub comes from: fixed (stdio) or per HTTP request (``/mcp``)."""

    def hub(self, request: Any) -> Hub: ...

    def scopes(self, request: Any) -> frozenset[str] | None:
        """The caller's scopes when known (``/mcp``), else None (every tool is listed)."""
        ...


@dataclass(frozen=True, slots=True)
class ToolSpec:
    fn: Callable[..., Awaitable[Any]]
    title: str
    write: bool
    destructive: bool

    @property
    def name(self) -> str:
        return self.fn.__name__


TOOLS: dict[str, ToolSpec] = {}


def tool(*, title: str, write: bool = False, destructive: bool = False) -> Callable[[F], F]:
    """Register ``fn`` as an MCP tool (its name is the function's name)."""

    def register(fn: F) -> F:
        wrapped = _translating(fn)
        TOOLS[fn.__name__] = ToolSpec(wrapped, title, write, destructive)
        return fn

    return register


def load_tools() -> dict[str, ToolSpec]:
    for module in TOOL_MODULES:
        importlib.import_module(module)
    return TOOLS


def tool_annotations(spec: ToolSpec) -> ToolAnnotations:
    return ToolAnnotations(
        title=spec.title,
        read_only_hint=not spec.write,
        destructive_hint=spec.destructive if spec.write else None,
        idempotent_hint=not spec.write or None,
        open_world_hint=False,
    )


class _Recursive(Exception):
    pass


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``{"$ref": "#/$defs/X"}`` replaced by ``X`` itself, and no
    ``$defs``: the same schema, but a client's validator (the SDK's jsonschema checks
    every result against the tool's output schema) no longer resolves a reference per
    nested value, about a fifth of the check of a 10-hit search. A recursive model keeps
    its references."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in defs:
                raise _Recursive(name)
            siblings = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name], (*seen, name)), **siblings}
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    try:
        inlined: dict[str, Any] = walk(schema, ())
    except _Recursive:
        return schema
    return inlined


def connector_of(ctx: Context) -> Connector:
    return cast(Connector, ctx.request_context.lifespan_context)


def hub(ctx: Context) -> Hub:
    """This caller's hub: their credentials, their workspace."""
    return connector_of(ctx).hub(ctx.request_context.request)


# -- errors an agent can act on --------------------------------------------------------

NEXT_STEP = {
    "UNAUTHORIZED": "check the API key (MEMHUB_KEY or `memhub login`)",
    "FORBIDDEN": "this key may not do that; use a key with the needed scope",
    "WORKSPACE_NOT_FOUND": "check the workspace name (MEMHUB_WORKSPACE) and the key's workspace",
    "REVISION_NOT_FOUND": "call file_history to see the revisions that exist",
    "INVALID_PATH": "use a relative path like notes/topic.md (no .., no leading /)",
    "RATE_LIMITED": "wait a little and call again",
    "STORAGE_UNAVAILABLE": "the memhub server is not reachable; try again later",
    "PAYLOAD_TOO_LARGE": "split the content into smaller files",
    "PRECONDITION_FAILED": "it changed since the rev you gave; look at it again and call "
    "with its current rev",
    "SESSION_CONFLICT": "a committed session cannot change; if a file changed since "
    "processing, call discard_session and process_session again",
    "LLM_UNAVAILABLE": "the server's language model is not reachable; try again later",
}


def explain(exc: MemhubError) -> str:
    text = f"{exc.code}: {exc.detail}"
    step = exc.hint or NEXT_STEP.get(exc.code)
    return f"{text}. Next step: {step}." if step else text


async def close_matches(h: Hub, path: str, n: int = 5) -> list[str]:
    """Paths that look like ``path``: for a tool error about a missing file."""
    folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    paths: list[str] = []
    for prefix in dict.fromkeys((folder, "")):
        listing = await h.list_files(prefix, 1000)
        paths = [f["path"] for f in listing["files"]]
        matches = difflib.get_close_matches(path, paths, n=n, cutoff=0.75)
        if matches:
            return matches
    return [p for p in paths if p.rsplit("/", 1)[-1] == path.rsplit("/", 1)[-1]][:n]


async def _not_found_text(ctx: Context, exc: FileNotFound, path: str) -> str:
    try:
        matches = await close_matches(hub(ctx), path)
    except MemhubError:
        matches = []
    if matches:
        return f"{exc.code}: {path} does not exist. Did you mean: {', '.join(matches)}?"
    return f"{exc.code}: {path} does not exist. Next step: call list_files to see what exists."


def _translating(fn: F) -> F:
    """Run ``fn``; turn a memhub error into a tool error with the next step."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except FileNotFound as exc:
            ctx, path = kwargs.get("ctx"), kwargs.get("path")
            if isinstance(ctx, Context) and isinstance(path, str) and "rev" not in exc.detail:
                raise ToolError(await _not_found_text(ctx, exc, path)) from exc
            raise ToolError(explain(exc)) from exc
        except MemhubError as exc:
            raise ToolError(explain(exc)) from exc

    return run  # type: ignore[return-value]
