"""Waking long-polls of the change feed.

Writes through this process wake waiters at once; writes through other nodes
are seen by the waiters' periodic re-check of the database.
"""

from __future__ import annotations

import asyncio


class ChangeNotifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self, _workspace: str, _rev: int) -> None:
        """Called from any thread after a commit."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return after the next commit in this process, or after ``timeout`` seconds."""
        if self._event is None:
            self.bind(asyncio.get_running_loop())
        assert self._event is not None
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return
