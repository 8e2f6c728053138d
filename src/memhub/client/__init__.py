"""The typed client of the memhub API, used by the CLI, sync and MCP.

:func:`connect` is the one way in: it returns a :class:`MemhubClient` over
HTTP when a server is configured (flag, ``MEMHUB_SERVER`` or ``memhub
login``), and over the app in this process (``httpx.ASGITransport`` on
``create_app``, the local data dir) when none is, so local and remote share
one code path::

    from memhub.client import ClientSettings, connect

    with connect(ClientSettings()) as client:
        client.search("what did we decide about caching?")

The names below are imported on first use (``memhub.client.settings`` alone
does not load httpx).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memhub.client.factory import connect
    from memhub.client.http import MemhubClient, ServerUnreachable
    from memhub.client.retry import NO_RETRY, RetryPolicy
    from memhub.client.settings import ClientSettings

_WHERE = {
    "connect": "memhub.client.factory",
    "MemhubClient": "memhub.client.http",
    "ServerUnreachable": "memhub.client.http",
    "NO_RETRY": "memhub.client.retry",
    "RetryPolicy": "memhub.client.retry",
    "ClientSettings": "memhub.client.settings",
}
__all__ = [
    "NO_RETRY",
    "ClientSettings",
    "MemhubClient",
    "RetryPolicy",
    "ServerUnreachable",
    "connect",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'memhub.client' has no attribute {name!r}")
