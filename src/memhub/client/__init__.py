"""The typed client of the memhub API, used by the CLI, sync and MCP.

:func:`connect` is the one way in: it returns a :class:`MemhubClient` over
HTTP when a server is configured (flag, ``MEMHUB_SERVER`` or ``memhub
login``), and over the app in this process (``httpx.ASGITransport`` on
``create_app``, the local data dir) when none is, so local and remote share
one code path::

    from memhub.client import ClientSettings, connect

    with connect(ClientSettings()) as client:
        client.search("what did we decide about caching?")
"""

from memhub.client.connect import connect
from memhub.client.http import MemhubClient, ServerUnreachable
from memhub.client.retry import NO_RETRY, RetryPolicy
from memhub.client.settings import ClientSettings

__all__ = [
    "NO_RETRY",
    "ClientSettings",
    "MemhubClient",
    "RetryPolicy",
    "ServerUnreachable",
    "connect",
]
