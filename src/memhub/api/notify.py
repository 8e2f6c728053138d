"""Waking long-polls of the change feed.

Writes through this process wake waiters at once; writes through other nodes
are seen by the waiters' periodic re-check of the database.

A group commit ends with a burst of notifications from one thread (one per
write in the batch). Each would cost the event loop a wake-up and a new
``asyncio.Event``; one wake-up does for all that arrive before it runs, since a
woken waiter re-reads the database and so sees every write committed by then.
"""

from __future__ import annotations

import asyncio


class ChangeNotifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._scheduled = False  # a _fire is on its way to the loop

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self, _workspace: str, _rev: int) -> None:
        """Called from any thread after a commit."""
        loop = self._loop
        if self._scheduled or loop is None or loop.is_closed():
            return  # the wake-up on its way runs after this commit: it covers it
        self._scheduled = True
        loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self._scheduled = False  # first: a commit from now on schedules its own wake-up
        event = self._event
        if event is not None:
            event.set()
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
