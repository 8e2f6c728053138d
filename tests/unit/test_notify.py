"""ChangeNotifier: a burst of commits from a writer thread wakes the long-poll once,
and no commit after a wake-up goes unannounced."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from memhub.api.notify import ChangeNotifier


class CountingLoop:
    """The running loop, counting the wake-ups handed to it from other threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.wakeups = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any) -> Any:
        self.wakeups += 1
        return self.loop.call_soon_threadsafe(callback, *args)

    def is_closed(self) -> bool:
        return self.loop.is_closed()


def in_thread(fn: Any) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join()


def test_a_burst_wakes_once_and_later_commits_wake_again() -> None:
    async def main() -> None:
        notifier = ChangeNotifier()
        loop = CountingLoop(asyncio.get_running_loop())
        notifier.bind(loop)  # type: ignore[arg-type]

        waiter = asyncio.create_task(notifier.wait(30))
        await asyncio.sleep(0)

        def burst() -> None:  # a group commit's callers, one after another
            for rev in range(1, 101):
                notifier.notify("default", rev)

        in_thread(burst)
        await asyncio.wait_for(waiter, 10)  # woken, long before its timeout
        assert loop.wakeups == 1  # 100 commits, one wake-up of the loop

        # the next commit, after that wake-up ran, is announced again
        again = asyncio.create_task(notifier.wait(30))
        await asyncio.sleep(0)
        in_thread(lambda: notifier.notify("default", 101))
        await asyncio.wait_for(again, 10)
        assert loop.wakeups == 2

        # with nobody waiting, a wait that starts later still times out normally
        started = asyncio.get_running_loop().time()
        await notifier.wait(0.05)
        assert asyncio.get_running_loop().time() - started >= 0.04

    asyncio.run(main())
