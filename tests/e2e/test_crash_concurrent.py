"""``kill -9`` under a concurrent write load: group commit loses no acknowledged write.

The concurrent variant of ``test_crash.py``: more writers (so that COMMITs are
shared and small blobs go through the inline tier in batches), small bodies
beside multi-chunk ones, and a server of one process or of two workers
(``memhub serve --workers 2``; the kill takes the whole process group, as a
crash of the machine would). After each kill: ``memhub fsck`` is clean, every
acknowledged write reads back (or the one in flight on its path), and every
acknowledged rev is in a change feed without gaps.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_crash import Writer, fsck_clean, verify_after_restart

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WRITERS = 12
KILL_AFTER = (0.3, 0.9)  # seconds of load after every writer's first acknowledged write
WARM_UP_TIMEOUT = 90.0
CHUNK_SIZE = 64 * 1024


def kill_group(server: Any) -> None:
    """SIGKILL to the server and its workers at once."""
    if server.running:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


def write_until_killed(server: Any, writers: list[Writer], after: float, cycle: int) -> None:
    stop = threading.Event()
    before = sum(len(w.revisions) for w in writers)
    seen = {w.index: dict(w.revisions) for w in writers}
    threads = [
        threading.Thread(target=w.run, args=(server, stop, cycle * 100 + w.index)) for w in writers
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + WARM_UP_TIMEOUT
        while not all(len(w.revisions) > len(seen[w.index]) for w in writers):
            assert time.monotonic() < deadline, "the writers got no acknowledgement"
            stop.wait(0.02)
        stop.wait(after)
        kill_group(server)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for writer in writers:
        assert writer.unexpected == []
    acked = sum(len(w.revisions) for w in writers) - before
    assert acked >= WRITERS, f"only {acked} writes were acknowledged before the kill"


@pytest.mark.parametrize("workers", [1, 2])
def test_acknowledged_concurrent_writes_survive_kill_9(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path, workers: int
) -> None:
    env = {"MEMHUB_CHUNK_SIZE": str(CHUNK_SIZE)}
    args = ("--workers", str(workers))
    data_dir = tmp_path / "store"
    writers = [Writer(i) for i in range(WRITERS)]
    server = memhub_server(data_dir, env=env, args=args)
    for cycle, after in enumerate(KILL_AFTER):
        write_until_killed(server, writers, after, cycle)
        fsck_clean(memhub_cli, data_dir, env)
        server = memhub_server(data_dir, env=env, args=args)
        with server.client() as http:
            verify_after_restart(http, writers)
    server.stop()
    fsck_clean(memhub_cli, data_dir, env)
