"""The memory proxy's README session (seed 001), against a real ``memhub serve``.

First the "Test with curl" session step by step over HTTP, then the literal
curl commands, then the "Client Sync Protocol": fetch the index, compare local
md5s, upload with ``Content-MD5: <last-synced md5>``, recover from a 412 by
re-fetching, and drop files the index marks ``is_deleted``.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

HELLO = b"Hello, World!"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_recent(moment: datetime) -> None:
    """A server timestamp is today's, not the epoch or a fixed placeholder (not a timing check)."""
    assert abs(datetime.now(UTC) - moment) < timedelta(hours=1), moment


def parse_iso_millis(value: str) -> datetime:
    assert ISO_MILLIS.match(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.fixture
def server(memhub_server: Any) -> Any:
    return memhub_server()


@pytest.fixture
def http(server: Any) -> Any:
    with server.client() as client:
        yield client


def test_readme_session_step_by_step(http: httpx.Client) -> None:
    # Health check (no auth)
    health = http.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "storage": "connected"}

    # Write file: Content-MD5: new creates it
    created = http.put(
        "/blob/test/file.txt",
        headers={
            "Content-MD5": "new",
            "Content-Type": "text/plain",
        },
        content=HELLO,
    )
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == f'"{md5(HELLO)}"'

    # ... and only creates: a second "new" is a 412 naming the current md5
    again = http.put("/blob/test/file.txt", headers={"Content-MD5": "new"}, content=b"other")
    assert again.status_code == 412
    assert again.json()["error_code"] == "PRECONDITION_FAILED"
    assert again.json()["context"]["current_md5"] == md5(HELLO)

    # Read file: the bytes, ETag (quoted md5), Last-Modified, Content-Type
    read = http.get("/blob/test/file.txt")
    assert read.status_code == 200
    assert read.content == HELLO
    assert read.headers["etag"] == f'"{md5(HELLO)}"'
    assert read.headers["content-type"] == "text/plain; charset=utf-8"
    assert_recent(parsedate_to_datetime(read.headers["last-modified"]))

    # Get sync index
    index = http.get("/sync")
    assert index.status_code == 200
    body = index.json()
    assert set(body) == {"files", "index_last_modified"}
    entry = body["files"]["test/file.txt"]
    assert entry["md5"] == md5(HELLO)
    assert entry["size"] == len(HELLO)
    assert entry["is_deleted"] is False
    assert_recent(parse_iso_millis(entry["last_modified"]))
    assert_recent(parse_iso_millis(body["index_last_modified"]))

    # Delete file: 204, then it reads as absent, the index keeps a tombstone
    deleted = http.delete("/blob/test/file.txt")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert http.get("/blob/test/file.txt").status_code == 404
    assert http.delete("/blob/test/file.txt").status_code == 404
    tombstone = http.get("/sync").json()["files"]["test/file.txt"]
    assert tombstone["is_deleted"] is True

    # A tombstone counts as absent: "new" creates the file again
    recreated = http.put("/blob/test/file.txt", headers={"Content-MD5": "new"}, content=b"again")
    assert recreated.status_code == 201
    assert http.get("/blob/test/file.txt").content == b"again"


def test_conditional_update_and_delete(http: httpx.Client) -> None:
    assert (
        http.put("/blob/notes.md", headers={"Content-MD5": "new"}, content=b"v1").status_code == 201
    )

    stale = http.put("/blob/notes.md", headers={"Content-MD5": md5(b"v0")}, content=b"v2")
    assert stale.status_code == 412
    assert stale.json()["context"] == {"current_md5": md5(b"v1"), "provided_md5": md5(b"v0")}
    assert http.get("/blob/notes.md").content == b"v1"

    updated = http.put("/blob/notes.md", headers={"Content-MD5": md5(b"v1")}, content=b"v2")
    assert updated.status_code == 200
    assert updated.headers["etag"] == f'"{md5(b"v2")}"'

    # Without Content-MD5 a write is unconditional
    assert http.put("/blob/notes.md", content=b"v3").status_code == 200

    assert http.delete("/blob/notes.md", headers={"If-Match": md5(b"v2")}).status_code == 412
    assert http.get("/blob/notes.md").content == b"v3"
    assert http.delete("/blob/notes.md", headers={"If-Match": f'"{md5(b"v3")}"'}).status_code == 204
    assert http.get("/blob/notes.md").status_code == 404


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_same_bytes_twice(
    memhub_server: Any, request: pytest.FixtureRequest, backend: str
) -> None:
    """Content is stored once: a second path with the same bytes, and a file that
    returns to an earlier content, are ordinary writes on every database."""
    env = {}
    if backend == "postgres":
        env["MEMHUB_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    server = memhub_server(env=env)
    with server.client() as http:
        first = http.put("/blob/a.txt", headers={"Content-MD5": "new"}, content=b"same")
        assert first.status_code == 201, first.text
        copy = http.put("/blob/b.txt", headers={"Content-MD5": "new"}, content=b"same")
        assert copy.status_code == 201, copy.text
        assert http.put("/blob/a.txt", content=b"different").status_code == 200
        back = http.put("/blob/a.txt", headers={"Content-MD5": md5(b"different")}, content=b"same")
        assert back.status_code == 200, back.text
        assert http.get("/blob/a.txt").content == http.get("/blob/b.txt").content == b"same"
        history = http.get("/v1/workspaces/default/history/a.txt").json()["revisions"]
        assert [r["md5"] for r in history] == [md5(b"same"), md5(b"different"), md5(b"same")]


def curl(*args: str) -> tuple[int, bytes]:
    """Run curl; return the HTTP status it reports and the response body."""
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30",
         "--output", "-", "--write-out", "\n%{http_code}", *args],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


def readme_curl(server: Any, command: str) -> tuple[int, bytes]:
    """One command of the README, run by bash as written, against ``server`` with its
    real key in place of YOUR_TOKEN."""
    command = command.replace("http://localhost:8000", server.base_url)
    command = command.replace("YOUR_TOKEN", server.key)
    result = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --write-out '\\n%{http_code}'"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


README_HEALTH = "curl http://localhost:8000/health"
README_PUT = """curl -X PUT http://localhost:8000/blob/test/file.txt \\
  -H "Authorization: Bearer YOUR_TOKEN" \\
  -H "Content-MD5: new" \\
  -d "Hello, World!\""""
README_GET = """curl http://localhost:8000/blob/test/file.txt \\
  -H "Authorization: Bearer YOUR_TOKEN\""""
README_SYNC = """curl http://localhost:8000/sync \\
  -H "Authorization: Bearer YOUR_TOKEN\""""
README_DELETE = """curl -X DELETE http://localhost:8000/blob/test/file.txt \\
  -H "Authorization: Bearer YOUR_TOKEN\""""


def test_readme_curl_commands(server: Any) -> None:
    import json

    status, body = readme_curl(server, README_HEALTH)
    assert (status, json.loads(body)) == (200, {"status": "ok", "storage": "connected"})

    status, _ = readme_curl(server, README_PUT)
    assert status == 201
    status, _ = readme_curl(server, README_PUT)  # "new" again: it exists now
    assert status == 412

    status, body = readme_curl(server, README_GET)
    assert (status, body) == (200, HELLO)

    status, body = readme_curl(server, README_SYNC)
    assert status == 200
    assert json.loads(body)["files"]["test/file.txt"]["md5"] == md5(HELLO)

    status, _ = readme_curl(server, README_DELETE)
    assert status == 204
    status, _ = readme_curl(server, README_GET)
    assert status == 404
    status, body = readme_curl(server, README_SYNC)
    assert json.loads(body)["files"]["test/file.txt"]["is_deleted"] is True


def test_curl_path_as_is_dot_dot_is_refused(server: Any) -> None:
    auth = ("-H", f"Authorization: Bearer {server.key}")
    status, body = curl(*auth, "--path-as-is", f"{server.base_url}/blob/a/../b")
    assert status == 400
    assert b"INVALID_PATH" in body
    status, _ = curl(
        *auth, "--path-as-is", "-X", "PUT", "-d", "x", f"{server.base_url}/blob/a/../b"
    )
    assert status == 400
    # Nothing was written under any spelling of the path
    status, body = curl(*auth, f"{server.base_url}/sync")
    assert status == 200
    assert b'"files":{}' in body.replace(b" ", b"")


# -- the Client Sync Protocol -------------------------------------------------------------


class SyncClient:
    """A client of the README's "Client Sync Protocol", on a local directory.

    It remembers the md5 it last synced for each path; a local file whose md5
    differs is uploaded with ``Content-MD5: <last-synced md5>`` (``new`` for a
    file never synced). On 412 it re-fetches the index and retries with the
    server's current md5 (this client lets local changes win). Paths the index
    marks ``is_deleted`` are removed locally.
    """

    def __init__(self, http: httpx.Client, root: Path) -> None:
        self.http = http
        self.root = root
        self.synced: dict[str, str] = {}
        self.conflicts: list[str] = []
        root.mkdir(parents=True, exist_ok=True)

    def write(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def local(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def index(self) -> dict[str, Any]:
        response = self.http.get("/sync")
        assert response.status_code == 200, response.text
        files: dict[str, Any] = response.json()["files"]
        return files

    def sync(self) -> None:
        index = self.index()  # 1. fetch index
        for path, data in self.local().items():  # 2. compare, 3. upload changes
            if md5(data) != self.synced.get(path):
                self.upload(path, data)
        index = self.index()
        for path, entry in index.items():  # 5. handle deletes
            if entry["is_deleted"]:
                (self.root / path).unlink(missing_ok=True)
                self.synced.pop(path, None)

    def upload(self, path: str, data: bytes) -> None:
        expected = self.synced.get(path, "new")
        for _ in range(5):
            response = self.http.put(
                f"/blob/{path}", headers={"Content-MD5": expected}, content=data
            )
            if response.status_code in (200, 201):
                assert response.headers["etag"] == f'"{md5(data)}"'
                self.synced[path] = md5(data)
                return
            assert response.status_code == 412, response.text
            self.conflicts.append(path)
            assert response.json()["context"]["provided_md5"] == expected
            entry = self.index().get(path)  # re-fetch, retry on what the server holds now
            expected = "new" if entry is None or entry["is_deleted"] else entry["md5"]
        pytest.fail(f"upload of {path} kept failing its precondition")


def test_client_sync_protocol(http: httpx.Client, server: Any, tmp_path: Path) -> None:
    with server.client() as http_b:
        alice = SyncClient(http, tmp_path / "alice")
        bob = SyncClient(http_b, tmp_path / "bob")

        alice.write("memory/topics/ai.md", b"# AI\n")
        alice.write("memory/todo.md", b"- write tests\n")
        alice.sync()
        assert alice.conflicts == []
        index = alice.index()
        assert {p: e["md5"] for p, e in index.items()} == {
            "memory/topics/ai.md": md5(b"# AI\n"),
            "memory/todo.md": md5(b"- write tests\n"),
        }
        assert http.get("/blob/memory/todo.md").content == b"- write tests\n"

        # Nothing changed locally: a second sync uploads nothing (no new revisions)
        head = http.get("/v1/workspaces/default").json()["head_rev"]
        alice.sync()
        assert http.get("/v1/workspaces/default").json()["head_rev"] == head

        # Bob starts from the server's state, as a download would leave it
        for path in index:
            bob.write(path, http_b.get(f"/blob/{path}").content)
            bob.synced[path] = index[path]["md5"]

        # Bob edits and syncs first; Alice's upload then fails on the old md5 (412),
        # she re-fetches the index and retries with the md5 the server holds now
        bob.write("memory/todo.md", b"- write tests\n- by bob\n")
        bob.sync()
        alice.write("memory/todo.md", b"- write tests\n- by alice\n")
        alice.sync()
        assert alice.conflicts == ["memory/todo.md"]
        assert http.get("/blob/memory/todo.md").content == b"- write tests\n- by alice\n"
        history = http.get("/v1/workspaces/default/history/memory/todo.md").json()["revisions"]
        assert [r["md5"] for r in history] == [
            md5(b"- write tests\n- by alice\n"),
            md5(b"- write tests\n- by bob\n"),
            md5(b"- write tests\n"),
        ]

        # Bob deletes a file; Alice sees the tombstone in the index and removes hers
        assert http_b.delete("/blob/memory/topics/ai.md").status_code == 204
        (bob.root / "memory/topics/ai.md").unlink()
        alice.sync()
        assert "memory/topics/ai.md" not in alice.local()
        assert alice.index()["memory/topics/ai.md"]["is_deleted"] is True
        assert alice.local() == {"memory/todo.md": b"- write tests\n- by alice\n"}

        # A file Alice creates again after the delete goes up with "new"
        alice.write("memory/topics/ai.md", b"# AI, again\n")
        alice.sync()
        assert http.get("/blob/memory/topics/ai.md").content == b"# AI, again\n"
        assert alice.index()["memory/topics/ai.md"]["is_deleted"] is False
