"""Real ``memhub`` processes for the end-to-end tests.

``memhub_server`` is a factory: each call starts ``memhub serve`` (the console
script of this venv) on 127.0.0.1 and a free port, with its output in a file
(a pipe could fill up and block the server), waits for ``GET /health`` to say
200 and hands back a :class:`ServerProcess`. Every server a test started is
stopped at teardown: SIGTERM, then SIGKILL.

``module_server`` is one such server shared by every test of a module (tests
keep to workspaces or keys of their own); :func:`launch` is what both use.

``memhub_cli`` runs one ``memhub`` command to completion and returns it.

Every child gets a copy of the environment without the caller's ``MEMHUB_*``
settings and with its own XDG data dir, so that nothing falls back on the
user's real data directory.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

MEMHUB = Path(sys.executable).parent / "memhub"
STARTUP_TIMEOUT = 60.0  # `serve --workers 2` spawns two full app imports: ~40 s at load 10+
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 120.0
LOG_TAIL = 6000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: ours minus MEMHUB_*, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env["XDG_DATA_HOME"] = str(home / "xdg-data")
    env["HOME"] = str(home)
    env["COLUMNS"] = "200"  # rich wraps stderr at 80 columns without a terminal
    env["PYTHONUNBUFFERED"] = "1"
    env["MEMHUB_RATE_LIMIT_ENABLED"] = "false"  # these tests are not about rate limits
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """A running ``memhub serve``; its HOME is ``env["HOME"]``."""

    base_url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    @property
    def key(self) -> str:
        """The local admin key ``memhub serve`` created in its data dir."""
        return (self.data_dir / "admin.key").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers=self.auth)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown handlers, no flushing, nothing."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if that takes too long."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)


ServerFactory = Callable[..., ServerProcess]
CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]
_logs = itertools.count(1)


def launch(
    data_dir: Path,
    home: Path,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    data_dir_from_env: bool = False,
    attempts: int = 3,
    args: Sequence[str] = (),
    started: list[ServerProcess] | None = None,
) -> ServerProcess:
    """Start ``memhub serve`` on a free port and wait until it is healthy.

    Its output goes to a file in ``log_dir``; ``home`` is its HOME (see
    :func:`child_env`). Every process started, healthy or not, is appended to
    ``started`` so that the caller stops it. Fails the test when none became
    healthy after ``attempts`` tries (another process may take the free port
    between the probe and the bind).
    """
    failure = ""
    for _ in range(attempts):
        port = free_port()
        log_path = log_dir / f"server-{next(_logs)}-{port}.log"
        server_env = child_env(home, env)
        where = ["--data-dir", str(data_dir)]
        if data_dir_from_env:
            server_env["MEMHUB_DATA_DIR"] = str(data_dir)
            where = []
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(MEMHUB), "serve", "--host", "127.0.0.1", "--port", str(port), *where, *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=server_env, start_new_session=True,
            )  # fmt: skip
        server = ServerProcess(f"http://127.0.0.1:{port}", process, data_dir, log_path, server_env)
        if started is not None:
            started.append(server)
        if _wait_healthy(server):
            return server
        server.stop()
        failure = server.log()
        if "address already in use" not in failure.lower():
            break
    pytest.fail(f"memhub serve did not become healthy; its output:\n{failure}", pytrace=False)


def stop_all(started: list[ServerProcess]) -> None:
    """Stop every server, newest first, then print the tail of each log (pytest shows
    it when the test failed)."""
    for server in reversed(started):
        server.stop()
    for server in started:
        print(f"--- {server.log_path.name} (last {LOG_TAIL} characters) ---")
        print(server.log()[-LOG_TAIL:])


@pytest.fixture
def child_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return home


@pytest.fixture
def memhub_server(tmp_path: Path, child_home: Path) -> Iterator[ServerFactory]:
    """Start ``memhub serve`` processes: ``memhub_server(data_dir=None, env=None)``.

    ``data_dir`` defaults to a new directory under ``tmp_path``; pass the same one
    again to restart on the same store (``data_dir_from_env=True`` hands it over
    as MEMHUB_DATA_DIR instead of ``--data-dir``). ``env`` adds MEMHUB_* settings
    (MEMHUB_DATABASE_URL, MEMHUB_BLOB_URL, MEMHUB_S3_ENDPOINT_URL, ...).
    """
    started: list[ServerProcess] = []
    data_dirs = itertools.count(1)

    def start(
        data_dir: Path | None = None, env: Mapping[str, str] | None = None, **options: Any
    ) -> ServerProcess:
        if data_dir is None:
            data_dir = tmp_path / f"data-{next(data_dirs)}"
        return launch(data_dir, child_home, tmp_path, env, started=started, **options)

    yield start
    stop_all(started)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``memhub serve`` for a whole module, with default settings (rate limits
    off, as everywhere here): a server per test would cost seconds each. Tests that
    share it keep to workspaces or keys of their own. Its HOME is ``.home``."""
    root = tmp_path_factory.mktemp("module-server")
    home = root / "home"
    home.mkdir()
    started: list[ServerProcess] = []
    try:
        yield launch(root / "data", home, root, started=started)
    finally:
        stop_all(started)


def _wait_healthy(server: ServerProcess) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not server.running:
                return False
            try:
                # uvicorn logs this once bound: the 200 is ours, not another process's
                if client.get("/health").status_code == 200 and "Uvicorn running" in server.log():
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return False


@pytest.fixture
def memhub_cli(child_home: Path) -> CliRunner:
    """Run ``memhub ARGS...`` to completion: ``memhub_cli("fsck", "--data-dir", d, env=...)``."""

    def run(
        *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MEMHUB), *(str(a) for a in args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=child_env(child_home, env),
            timeout=timeout,
            check=False,
        )

    return run
