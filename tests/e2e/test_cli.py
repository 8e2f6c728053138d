"""The ``memhub`` command line as a user runs it: real processes, real data dirs.

``serve`` refuses to bind beyond loopback without authentication; ``fsck``
finds a chunk damaged by hand and names it; ``gc`` purges old revisions and
leaves a clean store; ``MEMHUB_DATA_DIR`` works like ``--data-dir``.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port

pytestmark = pytest.mark.e2e


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Contents over the blob store's inline threshold (16 KiB), so that each lives in a
# chunk file of its own that these tests can look at, delete or rot by hand.
PAD = b"." * 20_000
ALPHA, BETA = b"alpha\n" + PAD, b"beta\n" + PAD


def chunk_path(data_dir: Path, sha: str) -> Path:
    return data_dir / "blobs" / "chunks" / sha[:2] / sha


def write_files(server: Any, files: dict[str, bytes]) -> None:
    with server.client() as http:
        for path, data in files.items():
            response = http.put(f"/v1/workspaces/default/files/{path}", content=data)
            assert response.status_code in (200, 201), response.text


def fsck_json(memhub_cli: Any, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    result = memhub_cli("fsck", "--json", *args, env=env)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)  # stdout is nothing but the JSON report
    assert report["ok"] is (result.returncode == 0)
    return report


def test_help_lists_the_commands(memhub_cli: Any) -> None:
    result = memhub_cli("--help")
    assert result.returncode == 0
    for command in ("serve", "fsck", "gc"):
        assert command in result.stdout


@pytest.mark.parametrize("how", ["--host 0.0.0.0", "MEMHUB_HOST=::"])
def test_serve_refuses_to_bind_beyond_loopback(memhub_cli: Any, tmp_path: Path, how: str) -> None:
    port = free_port()
    data_dir = tmp_path / "never-created"
    args: list[str | Path] = ["serve", "--port", str(port), "--data-dir", data_dir]
    env = {}
    if how.startswith("--"):
        args += how.split()
    else:
        key, value = how.split("=")
        env[key] = value
    try:
        result = memhub_cli(*args, env=env, timeout=30)
    except subprocess.TimeoutExpired:  # it is serving (and has been killed by now)
        pytest.fail(f"memhub serve {how} started on a public address")
    assert result.returncode != 0
    message = " ".join((result.stdout + result.stderr).split())
    assert "refusing to bind" in message
    assert "MEMHUB_JWT_SECRET" in message
    assert not data_dir.exists(), "it opened a store before refusing"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_memhub_data_dir_works_like_the_flag(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path, child_home: Path
) -> None:
    data_dir = tmp_path / "from-env"
    env = {"MEMHUB_DATA_DIR": str(data_dir)}
    server = memhub_server(data_dir, data_dir_from_env=True)  # no --data-dir
    write_files(server, {"a.md": ALPHA, "b.md": BETA})
    server.stop()
    assert (data_dir / "memhub.db").is_file()
    assert chunk_path(data_dir, sha256(ALPHA)).is_file()
    assert not (child_home / "xdg-data" / "memhub").exists(), "it used the default data dir"

    by_flag = fsck_json(memhub_cli, "--data-dir", data_dir)
    by_env = fsck_json(memhub_cli, env=env)
    assert by_flag == by_env
    assert (by_env["ok"], by_env["revisions_checked"], by_env["chunks_checked"]) == (True, 2, 2)

    # The flag wins over the environment
    other = fsck_json(memhub_cli, "--data-dir", tmp_path / "other", env=env)
    assert other["revisions_checked"] == 0

    chunk_path(data_dir, sha256(BETA)).unlink()
    broken = fsck_json(memhub_cli, env=env)
    assert broken["missing_chunks"] == [sha256(BETA)]

    gc = memhub_cli("gc", "--dry-run", "--json", env=env)
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["dry_run"] is True


def test_fsck_of_an_empty_data_dir_is_clean(memhub_cli: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = memhub_cli("fsck", "--data-dir", empty)
    assert result.returncode == 0, result.stderr
    assert "store is clean" in result.stderr
    report = fsck_json(memhub_cli, "--data-dir", empty)
    assert report == {
        "ok": True,
        "revisions_checked": 0,
        "chunks_checked": 0,
        "missing_chunks": [],
        "corrupt_chunks": [],
        "orphan_blobs": [],
        "broken_revisions": [],
    }


def test_fsck_names_a_chunk_corrupted_by_hand(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "store"
    good, bad = b"all is well\n" + PAD, b"this chunk will rot\n" + PAD
    server = memhub_server(data_dir)
    write_files(server, {"notes/good.md": good, "notes/bad.md": bad})
    server.stop()
    assert memhub_cli("fsck", "--data-dir", data_dir).returncode == 0

    victim = chunk_path(data_dir, sha256(bad))
    assert victim.read_bytes() == bad
    victim.write_bytes(b"this chunk has rotted\n")

    result = memhub_cli("fsck", "--data-dir", data_dir)
    assert result.returncode == 1
    assert f"corrupt chunk {sha256(bad)}" in result.stderr
    assert "store is damaged" in result.stderr
    assert sha256(good) not in result.stderr

    report = fsck_json(memhub_cli, "--data-dir", data_dir)
    assert report["ok"] is False
    assert report["corrupt_chunks"] == [sha256(bad)]
    assert report["missing_chunks"] == []
    assert [b["sha256"] for b in report["broken_revisions"]] == [sha256(bad)]

    # The server does not hand out the rotten bytes as if they were the file
    server = memhub_server(data_dir)
    with server.client() as http:
        assert http.get("/v1/workspaces/default/files/notes/good.md").content == good
        for url in ("/v1/workspaces/default/files/notes/bad.md", "/blob/notes/bad.md"):
            response = http.get(url)
            assert response.status_code == 500, response.text
            assert response.json()["error_code"] == "STORAGE_CORRUPT"
            assert b"this chunk has rotted" not in response.content
        assert "memhub_storage_corrupt_chunks_total 2.0" in http.get("/metrics").text
    server.stop()

    # --no-verify only checks that chunks exist: a corrupt one passes, a missing one not
    assert memhub_cli("fsck", "--no-verify", "--data-dir", data_dir).returncode == 0
    victim.unlink()
    result = memhub_cli("fsck", "--no-verify", "--data-dir", data_dir)
    assert result.returncode == 1
    assert f"missing chunk {sha256(bad)}" in result.stderr


def test_gc_keeps_the_newest_revision(memhub_server: Any, memhub_cli: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    versions = [f"version {n}\n".encode() + PAD for n in range(1, 6)]
    server = memhub_server(data_dir)
    with server.client() as http:
        for data in versions:
            assert http.put("/blob/diary.md", content=data).status_code in (200, 201)
        history = http.get("/v1/workspaces/default/history/diary.md").json()["revisions"]
        assert len(history) == len(versions)
    server.stop()

    dry = memhub_cli("gc", "--dry-run", "--json", "--data-dir", data_dir)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "revisions_purged": 0,
        "contents_deleted": 0,
        "chunks_deleted": 0,
        "blobs_deleted": 0,
        "bytes_freed": 0,
        "dry_run": True,
    }
    dry = memhub_cli(
        "gc", "--dry-run", "--json", "--keep-revisions", "1", "--grace-hours", "0",
        "--data-dir", data_dir,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["revisions_purged"] == len(versions) - 1
    for data in versions:  # a dry run deletes nothing
        assert chunk_path(data_dir, sha256(data)).exists()

    result = memhub_cli("gc", "--keep-revisions", "1", "--grace-hours", "0", "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr
    assert "deleted: 4 revisions" in " ".join(result.stderr.split())

    for data in versions[:-1]:
        assert not chunk_path(data_dir, sha256(data)).exists()
    assert chunk_path(data_dir, sha256(versions[-1])).exists()

    report = fsck_json(memhub_cli, "--data-dir", data_dir)
    assert report["ok"] is True
    assert report["orphan_blobs"] == []
    assert report["revisions_checked"] == 1

    server = memhub_server(data_dir)
    with server.client() as http:
        history = http.get("/v1/workspaces/default/history/diary.md").json()["revisions"]
        assert [r["sha256"] for r in history] == [sha256(versions[-1])]
        assert http.get("/blob/diary.md").content == versions[-1]
        assert http.put("/blob/diary.md", content=b"version 6\n").status_code == 200


def test_gc_rejects_bad_retention(memhub_cli: Any, tmp_path: Path) -> None:
    result = memhub_cli("gc", "--keep-revisions", "0", "--data-dir", tmp_path / "d")
    assert result.returncode != 0
    assert "--keep-revisions must be at least 1" in result.stderr
