"""The memory proxy's routes (seed 001) over HTTP: /health, /blob/{path}, /sync.

Walks the seed's curl session step by step and then the corners around it:
conditional writes by Content-MD5, tombstones, the read headers, the sync
index, non-ASCII paths and bodies too large to hold in memory.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from apiclient import ISO_MILLIS, RFC1123, Response, api_client, assert_error, md5, sync_files
from fastapi.testclient import TestClient

HELLO = b"Hello, World!"
BIG = 5 * 1024 * 1024  # over the 1 MiB in-memory threshold: spooled in, streamed out


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        yield c


def put(client: TestClient, path: str, body: bytes, **headers: str) -> Response:
    return client.put(f"/blob/{path}", content=body, headers=headers)


def put_md5(client: TestClient, path: str, body: bytes, expected: str) -> Response:
    return client.put(f"/blob/{path}", content=body, headers={"Content-MD5": expected})


# -- the seed's curl session -----------------------------------------------------------


def test_health_is_exactly_the_seed_body(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "storage": "connected"}
    assert response.headers["content-type"] == "application/json"


def test_curl_session_write_read_sync_delete(client: TestClient) -> None:
    # Write file: Content-MD5: new → 201, empty body, ETag the quoted md5.
    created = put_md5(client, "test/file.txt", HELLO, "new")
    assert created.status_code == 201
    assert created.content == b""
    assert created.headers["etag"] == f'"{md5(HELLO)}"'

    # Read file.
    read = client.get("/blob/test/file.txt")
    assert read.status_code == 200
    assert read.content == HELLO
    assert read.headers["etag"] == f'"{md5(HELLO)}"'
    assert read.headers["content-type"] == "application/octet-stream"
    assert read.headers["content-length"] == str(len(HELLO))
    assert RFC1123.match(read.headers["last-modified"]), read.headers["last-modified"]

    # Sync index.
    index = client.get("/sync")
    assert index.status_code == 200
    body = index.json()
    assert set(body) == {"files", "index_last_modified"}
    entry = body["files"]["test/file.txt"]
    assert set(entry) == {"md5", "last_modified", "size", "is_deleted"}
    assert entry["md5"] == md5(HELLO)
    assert entry["size"] == len(HELLO)
    assert entry["is_deleted"] is False
    assert ISO_MILLIS.match(entry["last_modified"]), entry["last_modified"]
    assert ISO_MILLIS.match(body["index_last_modified"]), body["index_last_modified"]

    # Delete file: 204, empty.
    deleted = client.delete("/blob/test/file.txt")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(client.get("/blob/test/file.txt"), 404, "FILE_NOT_FOUND")


# -- conditional writes by Content-MD5 ---------------------------------------------------


def test_new_on_existing_file_is_412_with_current_md5(client: TestClient) -> None:
    assert put_md5(client, "test/file.txt", HELLO, "new").status_code == 201
    again = put_md5(client, "test/file.txt", b"other", "new")
    body = assert_error(again, 412, "PRECONDITION_FAILED")
    assert body["context"] == {"current_md5": md5(HELLO), "provided_md5": "new"}
    assert client.get("/blob/test/file.txt").content == HELLO


def test_update_with_current_md5_is_200_with_new_etag(client: TestClient) -> None:
    put_md5(client, "notes.md", b"v1", "new")
    updated = put_md5(client, "notes.md", b"v2", md5(b"v1"))
    assert updated.status_code == 200
    assert updated.content == b""
    assert updated.headers["etag"] == f'"{md5(b"v2")}"'
    assert client.get("/blob/notes.md").content == b"v2"
    # The md5 may be sent quoted, as it came in the ETag.
    quoted = put_md5(client, "notes.md", b"v3", f'"{md5(b"v2")}"')
    assert quoted.status_code == 200
    assert client.get("/blob/notes.md").content == b"v3"


def test_update_with_stale_md5_is_412_and_keeps_content(client: TestClient) -> None:
    put_md5(client, "notes.md", b"v1", "new")
    put_md5(client, "notes.md", b"v2", md5(b"v1"))
    stale = put_md5(client, "notes.md", b"v3", md5(b"v1"))
    body = assert_error(stale, 412, "PRECONDITION_FAILED")
    assert body["context"] == {"current_md5": md5(b"v2"), "provided_md5": md5(b"v1")}
    assert client.get("/blob/notes.md").content == b"v2"


def test_md5_on_a_missing_file_is_412_with_current_none(client: TestClient) -> None:
    response = put_md5(client, "missing.txt", HELLO, md5(b"whatever"))
    body = assert_error(response, 412, "PRECONDITION_FAILED")
    assert body["context"] == {"current_md5": "none", "provided_md5": md5(b"whatever")}
    assert "missing.txt" not in sync_files(client)


def test_no_content_md5_writes_unconditionally(client: TestClient) -> None:
    first = put(client, "free.txt", b"one")
    assert first.status_code == 201
    assert first.headers["etag"] == f'"{md5(b"one")}"'
    second = put(client, "free.txt", b"two")
    assert second.status_code == 200
    assert second.headers["etag"] == f'"{md5(b"two")}"'
    assert client.get("/blob/free.txt").content == b"two"


def test_rewriting_the_same_bytes_is_a_200_update(client: TestClient) -> None:
    put_md5(client, "same.txt", b"same", "new")
    again = put_md5(client, "same.txt", b"same", md5(b"same"))
    assert again.status_code == 200
    assert again.headers["etag"] == f'"{md5(b"same")}"'


def test_empty_body_is_a_valid_file(client: TestClient) -> None:
    created = put_md5(client, "empty", b"", "new")
    assert created.status_code == 201
    assert created.headers["etag"] == f'"{md5(b"")}"'
    read = client.get("/blob/empty")
    assert read.status_code == 200
    assert read.content == b""
    assert sync_files(client)["empty"]["size"] == 0


# -- read headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/markdown", "text/plain", "application/json", "text/plain; charset=utf-8"],
)
def test_content_type_is_returned_exactly_as_stored(client: TestClient, content_type: str) -> None:
    put(client, "typed", b"# title\n", **{"Content-Type": content_type})
    read = client.get("/blob/typed")
    assert read.status_code == 200
    # text without a charset is served as UTF-8 (issue 8, item 7)
    expected = content_type if "charset" in content_type else content_type + "; charset=utf-8"
    assert read.headers["content-type"] == (
        expected if content_type.startswith("text/") else content_type
    )


def test_default_content_type_is_octet_stream(client: TestClient) -> None:
    # No Content-Type header at all (httpx sends none for raw bytes).
    response = client.put("/blob/raw.bin", content=b"\x00\x01")
    assert response.status_code == 201
    assert client.get("/blob/raw.bin").headers["content-type"] == "application/octet-stream"


def test_last_modified_matches_the_sync_index(client: TestClient) -> None:
    put(client, "when.txt", b"now")
    read = client.get("/blob/when.txt")
    stamp = parsedate_to_datetime(read.headers["last-modified"])
    assert stamp.tzinfo is not None
    listed = sync_files(client)["when.txt"]["last_modified"]
    indexed = datetime.strptime(listed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((indexed - stamp).total_seconds()) < 1.0
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 300


def test_read_of_a_missing_file_is_404_json(client: TestClient) -> None:
    body = assert_error(client.get("/blob/nope/never.txt"), 404, "FILE_NOT_FOUND")
    assert "context" in body


# -- deletes and tombstones ------------------------------------------------------------


def test_delete_with_wrong_if_match_is_412(client: TestClient) -> None:
    put(client, "keep.txt", b"keep")
    response = client.delete("/blob/keep.txt", headers={"If-Match": md5(b"other")})
    body = assert_error(response, 412, "PRECONDITION_FAILED")
    assert body["context"] == {"current_md5": md5(b"keep"), "provided_md5": md5(b"other")}
    assert client.get("/blob/keep.txt").content == b"keep"


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted", "bare"])
def test_delete_with_matching_if_match_is_204(client: TestClient, quoted: bool) -> None:
    put(client, "gone.txt", b"bye")
    tag = f'"{md5(b"bye")}"' if quoted else md5(b"bye")
    response = client.delete("/blob/gone.txt", headers={"If-Match": tag})
    assert response.status_code == 204
    assert response.content == b""
    assert_error(client.get("/blob/gone.txt"), 404, "FILE_NOT_FOUND")


def test_tombstone_in_sync_index_and_second_delete_is_404(client: TestClient) -> None:
    put(client, "gone.txt", b"bye")
    assert client.delete("/blob/gone.txt").status_code == 204
    entry = sync_files(client)["gone.txt"]
    assert entry["is_deleted"] is True
    assert entry["size"] == 0
    assert ISO_MILLIS.match(entry["last_modified"])
    assert_error(client.delete("/blob/gone.txt"), 404, "FILE_NOT_FOUND")
    assert_error(client.delete("/blob/never-was.txt"), 404, "FILE_NOT_FOUND")


def test_a_tombstone_counts_as_absent(client: TestClient) -> None:
    put(client, "phoenix.txt", b"first life")
    client.delete("/blob/phoenix.txt")
    # An md5 precondition against a tombstone fails as for a missing file.
    stale = put_md5(client, "phoenix.txt", b"x", md5(b"first life"))
    assert assert_error(stale, 412)["context"]["current_md5"] == "none"
    # "new" succeeds and the file is live again.
    reborn = put_md5(client, "phoenix.txt", b"second life", "new")
    assert reborn.status_code == 201
    assert client.get("/blob/phoenix.txt").content == b"second life"
    entry = sync_files(client)["phoenix.txt"]
    assert entry == {
        "md5": md5(b"second life"),
        "last_modified": entry["last_modified"],
        "size": len(b"second life"),
        "is_deleted": False,
    }


def test_unconditional_put_after_delete_is_201(client: TestClient) -> None:
    put(client, "again.txt", b"1")
    client.delete("/blob/again.txt")
    assert put(client, "again.txt", b"2").status_code == 201


# -- the sync index --------------------------------------------------------------------


def test_sync_of_an_empty_store(client: TestClient) -> None:
    body = client.get("/sync").json()
    assert body["files"] == {}
    assert ISO_MILLIS.match(body["index_last_modified"])


def test_sync_lists_every_file_and_index_time_is_the_latest(client: TestClient) -> None:
    contents = {"a.md": b"a", "dir/b.md": b"bb", "dir/sub/c.md": b"ccc"}
    for path, data in contents.items():
        put(client, path, data)
    client.delete("/blob/a.md")
    body = client.get("/sync").json()
    assert set(body["files"]) == set(contents)
    assert body["files"]["dir/b.md"] == {
        "md5": md5(b"bb"),
        "last_modified": body["files"]["dir/b.md"]["last_modified"],
        "size": 2,
        "is_deleted": False,
    }
    assert body["files"]["a.md"]["is_deleted"] is True
    stamps = [entry["last_modified"] for entry in body["files"].values()]
    assert body["index_last_modified"] == max(stamps)


# -- paths and sizes -------------------------------------------------------------------


def test_cyrillic_path_round_trips(client: TestClient) -> None:
    path = "заметки/проект/файл.md"
    data = "Привет, мир!".encode()
    created = client.put("/blob/" + quote(path), content=data, headers={"Content-MD5": "new"})
    assert created.status_code == 201
    read = client.get("/blob/" + quote(path))
    assert read.status_code == 200
    assert read.content == data
    assert read.headers["etag"] == f'"{md5(data)}"'
    assert path in sync_files(client)
    assert client.delete("/blob/" + quote(path)).status_code == 204
    assert sync_files(client)[path]["is_deleted"] is True


def test_spaces_and_reserved_characters_in_paths(client: TestClient) -> None:
    path = "my notes/2024 #1&=+.md"  # no "?": Windows refuses it in names
    assert client.put("/blob/" + quote(path), content=b"x").status_code == 201
    assert client.get("/blob/" + quote(path)).content == b"x"
    assert path in sync_files(client)


def test_five_mib_body_round_trips_byte_exact(client: TestClient) -> None:
    data = random.Random(1).randbytes(BIG)
    created = put_md5(client, "big/blob.bin", data, "new")
    assert created.status_code == 201
    assert created.headers["etag"] == f'"{md5(data)}"'
    read = client.get("/blob/big/blob.bin")
    assert read.status_code == 200
    assert read.headers["content-length"] == str(BIG)
    assert read.headers["etag"] == f'"{md5(data)}"'
    assert read.content == data
    assert sync_files(client)["big/blob.bin"]["size"] == BIG


def test_five_mib_chunked_upload_without_content_length(client: TestClient) -> None:
    data = random.Random(2).randbytes(BIG)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    created = client.put("/blob/streamed.bin", content=pieces(), headers={"Content-MD5": "new"})
    assert created.status_code == 201
    assert created.headers["etag"] == f'"{md5(data)}"'
    assert client.get("/blob/streamed.bin").content == data


def test_large_markdown_keeps_its_content_type_when_streamed(client: TestClient) -> None:
    data = b"# big\n" + b"x" * (2 * 1024 * 1024)
    put(client, "big.md", data, **{"Content-Type": "text/markdown"})
    read = client.get("/blob/big.md")
    assert read.headers["content-type"] == "text/markdown; charset=utf-8"
    assert read.content == data


# -- health when storage is gone -------------------------------------------------------


def test_health_is_503_when_the_blob_directory_is_a_file(tmp_path: Path) -> None:
    with api_client(tmp_path) as client:
        assert client.get("/health").status_code == 200
        blobs = tmp_path / "blobs"
        shutil.rmtree(blobs)
        blobs.write_bytes(b"not a directory")  # root ignores chmod; a file cannot hold blobs
        response = client.get("/health")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "error"
        assert body["storage"] == "disconnected"
        # And a write cannot pretend to succeed.
        failed = client.put("/blob/x.txt", content=b"x")
        assert_error(failed, 503, "STORAGE_UNAVAILABLE")


def test_health_is_503_when_the_blob_directory_is_gone(tmp_path: Path) -> None:
    with api_client(tmp_path) as client:
        shutil.rmtree(tmp_path / "blobs")
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "error"
        assert response.json()["storage"] == "disconnected"


def test_health_and_reads_are_503_when_the_database_is_corrupt(tmp_path: Path) -> None:
    with api_client(tmp_path, raise_server_exceptions=False) as client:
        assert client.put("/blob/a.txt", content=b"a").status_code == 201
        # Overwrite the database and its WAL files in place: every connection the
        # server holds now reads garbage ("file is not a database").
        for file in tmp_path.glob("memhub.db*"):
            file.write_bytes(b"this is not a database!!" * 2048)
        response = client.get("/health")
        assert response.status_code == 503, response.text
        assert response.json()["status"] == "error"
        assert response.json()["storage"] == "disconnected"
        assert_error(client.get("/sync"), 503, "STORAGE_UNAVAILABLE")
        assert_error(client.get("/blob/a.txt"), 503, "STORAGE_UNAVAILABLE")
