"""memhub's own client works under memhub's default rate limits: a 200 MB SQLite
database is pushed and pulled by ``memhub db`` processes with a read-write key
(600 requests a minute by default) against a server with every limit at its default."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE_MB = 200


def make_db(path: Path, megabytes: int) -> None:
    """A generated database of about ``megabytes`` MB (random, so nothing compresses)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB)")
        conn.executemany(
            "INSERT INTO blobs(body) VALUES (randomblob(?))", [(1024 * 1024,)] * megabytes
        )
    conn.close()


def content_sha(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT body FROM blobs ORDER BY id").fetchall()
    conn.close()
    digest = hashlib.sha256()
    for (body,) in rows:
        digest.update(body)
    return digest.hexdigest()


def test_push_and_pull_200_mb_under_default_limits(
    memhub_server: Any, memhub_cli: Any, tmp_path: Path
) -> None:
    server = memhub_server(env={"MEMHUB_RATE_LIMIT_ENABLED": "true"})  # every default
    created = memhub_cli(
        "keys", "create", "--workspace", "default", "--scopes", "read,write", "--json",
        "--data-dir", server.data_dir,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    source, copy = tmp_path / "source.db", tmp_path / "copy.db"
    make_db(source, SIZE_MB)
    assert source.stat().st_size > SIZE_MB * 1024 * 1024

    def db(*args: str | Path, host: str) -> dict[str, Any]:
        env = {
            "MEMHUB_SERVER": server.base_url,
            "MEMHUB_KEY": key,
            "MEMHUB_CONFIG_DIR": str(tmp_path / host / "config"),
            "MEMHUB_DATA_DIR": str(tmp_path / host / "data"),
            "MEMHUB_HOST_ID": host,
        }
        done = memhub_cli("db", *args, "--name", "big", "--json", env=env, timeout=600)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        result["stderr"] = done.stderr
        return result

    pushed = db("push", source, host="a")
    assert pushed["ok"] and pushed["chunks_total"] <= 512  # few requests: chunks grew
    assert pushed["chunk_size"] >= 256 * 1024
    pulled = db("pull", copy, host="b")
    assert pulled["ok"] and not pulled["skipped"] and pulled["sha256"] == pushed["sha256"]
    assert content_sha(copy) == content_sha(source)
    # a second push right after (nothing changed): still within the minute's window
    again = db("push", source, host="a")
    assert again["ok"] and again["skipped"]
