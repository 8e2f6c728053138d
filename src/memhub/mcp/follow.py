"""Resource subscriptions fed by memhub's change feed.

A server with one caller (``memhub mcp`` over stdio) follows its workspace's
change feed (``GET …/changes?since=REV&wait=S``, a long poll) and publishes a
``ResourceUpdated(memhub://<workspace>/<path>)`` event for every change; the
SDK's ``subscriptions/listen`` handler delivers each one to the clients that
asked for that URI. ``/mcp`` serves many callers statelessly and does not
offer subscriptions: a client there re-reads or calls ``recent_changes``.
"""

from __future__ import annotations

import logging

import anyio
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.subscriptions import ResourceUpdated

from memhub.errors import MemhubError
from memhub.mcp.hub import Hub

log = logging.getLogger("memhub.mcp")

WAIT_SECONDS = 25.0
RETRY_SECONDS = 5.0
PAGE = 1000


def resource_uri(workspace: str, path: str) -> str:
    return f"memhub://{workspace}/{path}"


async def head_rev(hub: Hub) -> int | None:
    """Where following starts: the workspace's head now (None when it cannot be read:
    the follower will ask again)."""
    try:
        return int((await hub.changes(0, 1))["head_rev"])
    except MemhubError as exc:
        log.warning("change feed: %s", exc)
        return None


async def follow_changes(
    hub: Hub, bus: SubscriptionBus, since: int | None, *, wait: float = WAIT_SECONDS
) -> None:
    """Publish an event per change after ``since``, until cancelled. A failing request
    is logged and retried (the agent keeps its tools while the server is away)."""
    while True:
        try:
            if since is None:
                since = int((await hub.changes(0, 1))["head_rev"])
            page = await hub.changes(since, PAGE, wait=wait)
        except MemhubError as exc:
            log.warning("change feed: %s; retrying in %.0f s", exc, RETRY_SECONDS)
            await anyio.sleep(RETRY_SECONDS)
            continue
        for change in page["changes"]:
            await bus.publish(ResourceUpdated(uri=resource_uri(hub.workspace, change["path"])))
        since = int(page["next_since"])
