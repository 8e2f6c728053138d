"""``memhub sync DIR --watch`` as a user leaves it running: a real server, a real
watcher process. A file written on the server appears in the folder, and an edit in
the folder reaches the server, each within a generous timeout; SIGINT stops it cleanly
and SIGTERM stops it too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MEMHUB = Path(sys.executable).parent / "memhub"
TIMEOUT = 20.0  # seconds for a change to travel; generous for a busy machine
WS = "default"


def wait_for(what: str, check: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {TIMEOUT:.0f} s; the watcher said:\n{log.read_text()[-4000:]}")


def remote_content(server: Any, path: str) -> bytes | None:
    with server.client() as http:
        response = http.get(f"/v1/workspaces/{WS}/files/{quote(path)}")
    return response.content if response.status_code == 200 else None


@pytest.fixture
def watcher(
    memhub_server: Any, tmp_path: Path
) -> Iterator[tuple[Any, Path, subprocess.Popen[bytes], Path]]:
    server = memhub_server()
    folder = tmp_path / "watched"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "before.md").write_text("there before the watcher started")
    log = tmp_path / "watch.log"
    env = {k: v for k, v in server.env.items() if not k.startswith("MEMHUB_")}
    env |= {
        "MEMHUB_SERVER": server.base_url,
        "MEMHUB_KEY": server.key,
        "MEMHUB_CONFIG_DIR": str(tmp_path / "config"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MEMHUB), "sync", str(folder), "--watch"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        yield server, folder, process, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_watch_keeps_a_folder_in_sync(
    watcher: tuple[Any, Path, subprocess.Popen[bytes], Path],
) -> None:
    server, folder, process, log = watcher
    wait_for(
        "the first round did not upload the folder",
        lambda: remote_content(server, "notes/before.md") == b"there before the watcher started",
        log,
    )

    # written on the server through the API → appears in the folder (change-feed long-poll)
    with server.client() as http:
        response = http.put(f"/v1/workspaces/{WS}/files/from-server.md", content=b"hello folder")
        assert response.status_code == 201, response.text
    target = folder / "from-server.md"
    wait_for(
        "a file written on the server did not appear in the folder",
        lambda: target.exists() and target.read_bytes() == b"hello folder",
        log,
    )

    # written in the folder → appears on the server (local file watcher)
    (folder / "notes" / "local.md").write_text("hello server")
    wait_for(
        "a file written in the folder did not reach the server",
        lambda: remote_content(server, "notes/local.md") == b"hello server",
        log,
    )
    (folder / "notes" / "before.md").write_text("edited while watched")
    wait_for(
        "an edit in the folder did not reach the server",
        lambda: remote_content(server, "notes/before.md") == b"edited while watched",
        log,
    )

    # deleted on the server → deleted in the folder (the folder keeps 3 files: 25% < 50%)
    with server.client() as http:
        assert http.delete(f"/v1/workspaces/{WS}/files/from-server.md").status_code == 200
    wait_for("a delete on the server did not reach the folder", lambda: not target.exists(), log)
    assert process.poll() is None, log.read_text()

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0, log.read_text()
    output = log.read_text()
    assert "Traceback" not in output
    assert "watching" in output
    state = json.loads((folder / ".memhub" / "state.json").read_text())
    assert sorted(state["files"]) == ["notes/before.md", "notes/local.md"]


def test_watch_stops_on_sigterm(
    watcher: tuple[Any, Path, subprocess.Popen[bytes], Path],
) -> None:
    server, _folder, process, log = watcher
    wait_for(
        "the first round did not upload the folder",
        lambda: remote_content(server, "notes/before.md") is not None,
        log,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == -signal.SIGTERM
