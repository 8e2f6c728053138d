"""What the DB sync remembers between runs, and the lease that guards a push.

:class:`SyncState` is ``<config dir>/dbsync.json``: for every (server,
workspace, name, local file) the sha256 and rev last pushed or pulled and the
file's fingerprint ((size, mtime_ns) of the database and its ``-wal``) at that
moment. An unchanged fingerprint means an unchanged database, so a no-op push
or pull costs no hashing; the recorded sha256 is the base a push commits
against (``if_match``), so a push never overwrites what it has not seen.

:class:`LeaseGuard` holds the lease ``db:<name>`` for the length of a push: it
acquires (the same holder may re-acquire; ``force`` takes it over), renews in
a background thread, and releases on the way out, after a failure too.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock

from memhub.client.http import MemhubClient
from memhub.core.durable import write_durably
from memhub.errors import LeaseHeld, LeaseLost, LeaseNotFound, MemhubError
from memhub.sync.state_files import DBSYNC_FILE

DEFAULT_TTL = 7200.0
MAX_RENEW_INTERVAL = 300.0


def default_holder(host_id: str | None = None) -> str:
    """Who holds a lease: ``MEMHUB_HOST_ID`` or the host name (the same host may re-acquire)."""
    return host_id or socket.gethostname()


class SyncState:
    """A small JSON file of records, updated under an advisory lock."""

    FILE = DBSYNC_FILE  # in the client's config dir

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(server: str, workspace: str, name: str, file: Path) -> str:
        return json.dumps([server.rstrip("/"), workspace, name, str(file)])

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged cache only costs a re-hash; the server has the truth
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        record = self._read().get(key)
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        with self._locked():
            data = self._read()
            data[key] = record
            write_durably(self.path, (json.dumps(data, indent=1) + "\n").encode())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_name(self.path.name + ".lock")):
            yield


class LeaseGuard:
    """``with LeaseGuard(client, name, holder) as lease:`` … ``lease.fence`` in commits."""

    def __init__(
        self,
        client: MemhubClient,
        name: str,
        holder: str,
        *,
        ttl: float = DEFAULT_TTL,
        force: bool = False,
    ) -> None:
        self.client = client
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.force = force
        self.token = 0
        self.took_over: str | None = None  # the holder a --force push displaced
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fence(self) -> dict[str, Any]:
        return {"name": self.name, "token": self.token}

    def __enter__(self) -> LeaseGuard:
        if self.force:
            for current in self.client.leases():
                if current.name == self.name and current.holder not in (None, self.holder):
                    self.took_over = str(current.holder)  # to_dict shows active holders only
        try:
            lease = self.client.acquire(self.name, self.holder, self.ttl, force=self.force)
        except LeaseHeld as exc:
            held = exc.context or {}
            raise LeaseHeld(
                f"lease {self.name!r} is held by {held.get('holder')} "
                f"(token {held.get('token')}, {int(held.get('ttl_remaining') or 0)} s left): "
                "another push of this database is running",
                context=held,
                hint="wait for it, or take the lease over with --force "
                "(the other writer's commit is then refused)",
            ) from exc
        self.token = lease.token
        self._thread = threading.Thread(target=self._renew, name=f"renew {self.name}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        interval = min(self.ttl / 3, MAX_RENEW_INTERVAL)
        while not self._stop.wait(interval):
            try:
                self.client.renew(self.name, self.holder, self.token, self.ttl)
            except (LeaseLost, LeaseNotFound) as exc:
                self.warnings.append(f"lost the lease while pushing: {exc}")
                return  # the commit's fencing token check will refuse the write
            except MemhubError as exc:  # unreachable for a moment: try again next round
                self.warnings.append(f"could not renew the lease: {exc}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.client.release(self.name, self.holder, self.token)
        except (LeaseLost, LeaseNotFound) as error:
            self.warnings.append(f"the lease was taken over before it was released: {error}")
        except MemhubError as error:
            self.warnings.append(
                f"could not release the lease {self.name!r} (it expires in {int(self.ttl)} s, "
                f"or run `memhub lease release {self.name}`): {error}"
            )
