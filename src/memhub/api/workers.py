"""``memhub serve --workers N``: N server processes on one port, over one store.

uvicorn starts N processes that share the listening socket; each calls
:func:`worker_app` (an app factory) and builds its own app from the same
settings (the parent hands them on in ``MEMHUB_*`` variables, which
:class:`~memhub.config.Settings` reads). What each process keeps for itself:

- its search index: the index follows the change log like one node's among
  many, in a directory of its own (``<index>.workers/worker-K``; K is the first slot
  whose lock file nobody holds, so a restarted worker reuses a warm index);
- its rate-limit windows, unless ``MEMHUB_REDIS_URL`` shares them (so without
  Redis each worker allows the limit on its own);
- its group commit: on SQLite the processes still take turns at the single
  writer's lock (SQLite's ``busy_timeout``); PostgreSQL has no such lock.

Migrations and the local admin key are done once, by the parent, before the
workers start.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from fastapi import FastAPI

from memhub.api.app import create_app, index_dir
from memhub.config import Settings

MAX_SLOTS = 256
_held: list[IO[bytes]] = []  # the slot lock, held for the life of the worker process


def settings_env(settings: Settings, fields: tuple[str, ...]) -> dict[str, str]:
    """The ``MEMHUB_*`` variables that give a worker the values of ``fields`` (the ones
    the command line set; everything else the worker reads from the same environment)."""
    return {f"MEMHUB_{name.upper()}": str(getattr(settings, name)) for name in fields}


def claim_slot(base: Path) -> Path:
    """The first ``base/worker-K`` whose lock this process can take."""
    base.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        handle = (base / f"worker-{slot}.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return base / f"worker-{slot}"
    raise RuntimeError(f"no free worker slot under {base} ({MAX_SLOTS} in use)")


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn calls this in each)."""
    settings = Settings()
    base = index_dir(settings)
    own = claim_slot(base.with_name(base.name + ".workers"))
    app = create_app(settings.model_copy(update={"index_dir": own}))
    app.state.worker_pid = os.getpid()
    return app
