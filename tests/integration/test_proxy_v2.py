"""The memory proxy's later protocol in process: namespaced routes, If-Match-Version,
the 412/422 bodies, the raw-path split, namespace isolation, and the rule that no write
ignores a precondition header it does not support (every write route)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from apiclient import RFC1123, api_client, asgi_json, asgi_request, assert_error, md5
from fastapi.testclient import TestClient

NS = "personas/alice/memory"
Q = quote(NS, safe="")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        yield c


def put(client: TestClient, path: str, body: bytes, version: int, ns: str = Q) -> object:
    return client.put(
        f"/{ns}/blob/{quote(path, safe='')}",
        content=body,
        headers={"If-Match-Version": str(version), "Content-Type": "text/markdown"},
    )


def test_write_read_index_versions(client: TestClient) -> None:
    created = client.put(
        f"/{Q}/blob/notes.md",
        content=b"v1",
        headers={"If-Match-Version": "0", "Content-Type": "text/markdown"},
    )
    assert created.status_code == 201, created.text
    v1 = int(created.headers["x-version"])
    assert created.headers["etag"] == f'"{md5(b"v1")}"'
    index = created.json()  # manifest-on-write: the namespace's whole index
    assert set(index) == {"files", "index_last_modified", "index_version"}
    assert index["files"]["notes.md"] == {
        "md5": md5(b"v1"),
        "last_modified": index["files"]["notes.md"]["last_modified"],
        "size": 2,
        "version": v1,
        "is_deleted": False,
    }
    read = client.get(f"/{Q}/blob/notes.md")
    assert read.status_code == 200 and read.content == b"v1"
    assert read.headers["x-version"] == str(v1)
    assert read.headers["etag"] == f'"{md5(b"v1")}"'
    assert read.headers["content-type"] == "text/markdown; charset=utf-8"  # text/*: utf-8
    assert RFC1123.match(read.headers["last-modified"])

    # 0 again: exists → 412 with the proxy's string context
    again = client.put(f"/{Q}/blob/notes.md", content=b"x", headers={"If-Match-Version": "0"})
    body = assert_error(again, 412, "PRECONDITION_FAILED")
    assert body["context"] == {"current_version": str(v1), "provided_version": "0"}
    stale = client.put(
        f"/{Q}/blob/notes.md", content=b"x", headers={"If-Match-Version": str(v1 + 100)}
    )
    assert assert_error(stale, 412)["context"] == {
        "current_version": str(v1),
        "provided_version": str(v1 + 100),
    }
    updated = client.put(
        f"/{Q}/blob/notes.md", content=b"v2", headers={"If-Match-Version": str(v1)}
    )
    assert updated.status_code == 200
    v2 = int(updated.headers["x-version"])
    assert v2 > v1
    assert updated.json()["index_version"] >= v2

    # a version on a file that was never written: 412 with current "none"
    ghost = client.put(f"/{Q}/blob/ghost.md", content=b"x", headers={"If-Match-Version": "7"})
    assert assert_error(ghost, 412)["context"]["current_version"] == "none"

    # the file is an ordinary memhub file under the namespace prefix
    assert client.get(f"/blob/{NS}/notes.md").content == b"v2"
    assert client.get("/v1/workspaces/default/files/" + f"{NS}/notes.md").content == b"v2"


def test_missing_or_bad_version_is_422(client: TestClient) -> None:
    assert_error(client.put(f"/{Q}/blob/a.md", content=b"x"), 422)
    for bad in ("abc", "1.5", "-1", ""):
        response = client.put(f"/{Q}/blob/a.md", content=b"x", headers={"If-Match-Version": bad})
        assert_error(response, 422)
    assert client.get(f"/sync/{Q}").json()["files"] == {}  # nothing was written


@pytest.mark.parametrize("bad", ["", " ", "null", "abc", "-1", "1.5", "1" * 16])
def test_a_delete_with_a_bad_version_is_422_and_deletes_nothing(
    client: TestClient, bad: str
) -> None:
    """Only an absent If-Match-Version means "unconditional": an empty or non-digit one is
    a 422, never taken as no condition (as ``If-Match: ""`` must not be on the seed)."""
    put(client, "keep.md", b"kept", 0)
    response = client.delete(f"/{Q}/blob/keep.md", headers={"If-Match-Version": bad})
    assert_error(response, 422, "VALIDATION_ERROR")
    assert client.get(f"/{Q}/blob/keep.md").content == b"kept"
    assert client.delete(f"/{Q}/blob/keep.md").status_code == 200  # absent: unconditional


def test_the_document_describes_versions_and_bodies_as_they_are(client: TestClient) -> None:
    """If-Match-Version is text of digits (what a header is), required on PUT, optional but
    never null on DELETE; the PUT's raw body and the GET's raw bytes are declared."""
    paths = client.get("/openapi.json").json()["paths"]["/{namespace}/blob/{path}"]
    for method, required in (("put", True), ("delete", False)):
        [version] = [p for p in paths[method]["parameters"] if p["name"] == "If-Match-Version"]
        assert version["required"] is required
        assert version["schema"]["type"] == "string" and "anyOf" not in version["schema"]
        assert version["schema"]["pattern"] == "^[0-9]{1,15}$"
    assert "application/octet-stream" in paths["put"]["requestBody"]["content"]
    assert {"200", "201", "412", "422"} <= paths["put"]["responses"].keys()
    assert "*/*" in paths["get"]["responses"]["200"]["content"]
    # a header not in the document is ignored, as HTTP has it (proxies add their own)
    extra = {"If-Match-Version": "0", "X-Forwarded-Proto": "https", "X-Unknown": "42"}
    assert client.put(f"/{Q}/blob/extra.md", content=b"x", headers=extra).status_code == 201


def test_delete_tombstone_and_recreate(client: TestClient) -> None:
    v1 = int(put(client, "doc.md", b"one", 0).headers["x-version"])  # type: ignore[attr-defined]
    stale = client.delete(f"/{Q}/blob/doc.md", headers={"If-Match-Version": str(v1 + 5)})
    assert assert_error(stale, 412)["context"]["current_version"] == str(v1)
    deleted = client.delete(f"/{Q}/blob/doc.md", headers={"If-Match-Version": str(v1)})
    assert deleted.status_code == 200, deleted.text
    tomb = int(deleted.headers["x-version"])
    assert tomb > v1
    entry = deleted.json()["files"]["doc.md"]
    assert entry["is_deleted"] is True and entry["version"] == tomb and entry["size"] == 0
    assert entry["md5"] == md5(b"one")
    assert_error(client.get(f"/{Q}/blob/doc.md"), 404)
    assert_error(client.delete(f"/{Q}/blob/doc.md"), 404)  # memhub: a tombstone is absent
    assert_error(client.delete(f"/{Q}/blob/never.md"), 404)
    # recreate: with 0 (a tombstone counts as absent) or with the tombstone's version
    again = put(client, "doc.md", b"two", 0)
    assert again.status_code == 201  # type: ignore[attr-defined]
    client.delete(f"/{Q}/blob/doc.md")
    tomb2 = client.get(f"/sync/{Q}").json()["files"]["doc.md"]["version"]
    third = put(client, "doc.md", b"three", tomb2)
    assert third.status_code == 201  # type: ignore[attr-defined]


def test_namespaces_are_isolated_prefixes(client: TestClient, tmp_path: Path) -> None:
    put(client, "persona.md", b"alice", 0)
    other = quote("personas/bob/memory", safe="")
    put(client, "persona.md", b"bob", 0, ns=other)
    history = quote("personas/alice/history/s1", safe="")
    put(client, "log.json", b"[]", 0, ns=history)
    alice = client.get(f"/sync/{Q}").json()["files"]
    assert set(alice) == {"persona.md"}
    assert set(client.get(f"/sync/{other}").json()["files"]) == {"persona.md"}
    assert set(client.get(f"/sync/{history}").json()["files"]) == {"log.json"}
    assert client.get(f"/sync/{quote('nobody/here', safe='')}").json()["files"] == {}
    assert client.get(f"/{other}/blob/persona.md").content == b"bob"
    # a namespace never leaves the key's workspace: another workspace's key sees nothing
    app = client.app
    keys = app.state.keys  # type: ignore[attr-defined]
    app.state.store.create_workspace("other")  # type: ignore[attr-defined]
    foreign, _ = keys.create("other", ["read", "write"])
    auth = {"authorization": f"Bearer {foreign}"}
    assert client.get(f"/sync/{Q}", headers=auth).json()["files"] == {}
    assert_error(client.get(f"/{Q}/blob/persona.md", headers=auth), 404)
    # .. and other escapes are refused as paths
    for bad in ("..", "a/../b", ".", "a//b"):
        status, _, body = asgi_request(app, "GET", f"/sync/{bad}")  # type: ignore[arg-type]
        assert status == 400, (bad, body)
    for reserved in ("blob", "sync", "v1/x", "memory", "admin/x"):
        response = client.put(
            f"/{quote(reserved, safe='')}/blob/a.md",
            content=b"x",
            headers={"If-Match-Version": "0"},
        )
        assert response.status_code in (400, 404, 405), (reserved, response.status_code)
        assert response.status_code != 201


def test_raw_path_split_at_the_literal_blob(client: TestClient) -> None:
    """The client encodes both parts: a namespace or a path holding 'blob' segments
    still splits where the raw path has its one literal /blob/."""
    app = client.app
    cases = [
        ("a/blob/b", "c.md"),  # a namespace with a blob segment
        ("a", "blob/c.md"),  # a path with one
        ("x/blob", "blob/blob.md"),
    ]
    for ns, path in cases:
        raw = f"/{quote(ns, safe='')}/blob/{quote(path, safe='')}"
        status, _, body = asgi_request(
            app,  # type: ignore[arg-type]
            "PUT",
            f"/{ns}/blob/{path}",
            body=f"{ns}|{path}".encode(),
            raw_path=raw.encode(),
            headers=[(b"if-match-version", b"0")],
        )
        assert status == 201, body
        assert set(asgi_json(body)["files"]) >= {path}, (ns, path)
        assert client.get(f"/blob/{ns}/{path}").content == f"{ns}|{path}".encode()
    assert set(client.get(f"/sync/{quote('a/blob/b', safe='')}").json()["files"]) == {"c.md"}


def test_content_md5_is_an_integrity_check(client: TestClient) -> None:
    good_hex = client.put(
        f"/{Q}/blob/a.md",
        content=b"abc",
        headers={"If-Match-Version": "0", "Content-MD5": md5(b"abc")},
    )
    assert good_hex.status_code == 201
    b64 = base64.b64encode(hashlib.md5(b"xyz").digest()).decode()
    good_b64 = client.put(
        f"/{Q}/blob/b.md", content=b"xyz", headers={"If-Match-Version": "0", "Content-MD5": b64}
    )
    assert good_b64.status_code == 201
    bad = client.put(
        f"/{Q}/blob/c.md",
        content=b"abc",
        headers={"If-Match-Version": "0", "Content-MD5": md5(b"other")},
    )
    assert_error(bad, 400, "CHECKSUM_MISMATCH")
    junk = client.put(
        f"/{Q}/blob/c.md", content=b"abc", headers={"If-Match-Version": "0", "Content-MD5": "new"}
    )
    assert_error(junk, 400)
    assert "c.md" not in client.get(f"/sync/{Q}").json()["files"]


def test_unsupported_precondition_headers_are_refused(client: TestClient) -> None:
    """A write never ignores a precondition header: the seed routes, /v1, and v2."""
    client.put("/blob/seed.md", content=b"s")
    refused = [
        ("PUT", "/blob/seed.md", {"If-Match-Version": "1"}),
        ("DELETE", "/blob/seed.md", {"If-Match-Version": "1"}),
        ("PUT", "/blob/seed.md", {"If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}),
        ("PUT", "/v1/workspaces/default/files/seed.md", {"If-Match-Version": "1"}),
        ("PUT", "/v1/workspaces/default/files/seed.md", {"Content-MD5": md5(b"s")}),
        ("DELETE", "/v1/workspaces/default/files/seed.md", {"If-Match-Version": "1"}),
        ("POST", "/v1/workspaces/default/commits", {"If-Match-Version": "1"}),
        ("POST", "/v1/workspaces/default/batch/write", {"If-Match": '"x"'}),
        ("PUT", f"/{Q}/blob/seed.md", {"If-Match-Version": "0", "If-Match": md5(b"s")}),
        ("DELETE", f"/{Q}/blob/seed.md", {"If-None-Match": "*"}),
    ]
    for method, url, headers in refused:
        response = client.request(method, url, content=b"new", headers=headers)
        body = assert_error(response, 400, "UNSUPPORTED_PRECONDITION")
        assert body["context"]["method"] == method
    # nothing was written by any of them
    assert client.get("/blob/seed.md").content == b"s"
    assert client.get(f"/sync/{Q}").json()["files"] == {}
    # the supported ones still work, and reads are not writes
    assert (
        client.put("/blob/seed.md", content=b"t", headers={"Content-MD5": md5(b"s")}).status_code
        == 200
    )
    assert client.get("/blob/seed.md", headers={"If-Match-Version": "1"}).status_code == 200
    v1_put = client.put(
        "/v1/workspaces/default/files/seed.md", content=b"u", headers={"If-Match": md5(b"t")}
    )
    assert v1_put.status_code == 200, v1_put.text
    # no route: the router's 404, not the guard's 400
    assert client.put("/nowhere", headers={"If-Match": "x"}).status_code in (404, 405)


def test_unauthenticated_is_401(tmp_path: Path) -> None:
    with api_client(tmp_path) as client:
        anonymous = {"authorization": ""}
        for method, url in (
            ("GET", f"/sync/{Q}"),
            ("GET", f"/{Q}/blob/a"),
            ("PUT", f"/{Q}/blob/a"),
        ):
            response = client.request(method, url, headers={**anonymous, "If-Match-Version": "0"})
            assert response.status_code == 401, (method, url, response.status_code)
