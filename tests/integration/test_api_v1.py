"""The /v1 API over HTTP: workspaces, files, history, restore, the change feed,
chunked uploads, leases and fencing, batches, isolation and the OpenAPI document."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from apiclient import WS, Response, api_client, assert_error, md5, sha256
from fastapi.testclient import TestClient


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        yield c


def write(client: TestClient, path: str, data: bytes, **headers: str) -> Response:
    return client.put(f"{WS}/files/{path}", content=data, headers=headers)


def written(client: TestClient, path: str, data: bytes, **headers: str) -> dict[str, Any]:
    response = write(client, path, data, **headers)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def head_rev(client: TestClient, workspace: str = "default") -> int:
    rev: int = client.get(f"/v1/workspaces/{workspace}").json()["head_rev"]
    return rev


# -- workspaces ------------------------------------------------------------------------


def test_workspaces_list_get_create(client: TestClient) -> None:
    listed = client.get("/v1/workspaces")
    assert listed.status_code == 200
    assert [w["name"] for w in listed.json()["workspaces"]] == ["default"]

    created = client.post("/v1/workspaces", json={"name": "team-a"})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "team-a"
    assert body["head_rev"] == 0
    assert body["files"] == 0
    assert body["bytes"] == 0

    names = [w["name"] for w in client.get("/v1/workspaces").json()["workspaces"]]
    assert names == ["default", "team-a"]

    written(client, "a.txt", b"12345")
    info = client.get("/v1/workspaces/default").json()
    assert (info["name"], info["files"], info["bytes"], info["head_rev"]) == ("default", 1, 5, 1)


def test_duplicate_workspace_is_409(client: TestClient) -> None:
    assert client.post("/v1/workspaces", json={"name": "dup"}).status_code == 201
    assert_error(client.post("/v1/workspaces", json={"name": "dup"}), 409, "WORKSPACE_EXISTS")
    assert_error(client.post("/v1/workspaces", json={"name": "default"}), 409, "WORKSPACE_EXISTS")


@pytest.mark.parametrize("name", ["bad name", "a/b", "..", "tab\tname", "ÿ" * 40])
def test_bad_workspace_name_is_400(client: TestClient, name: str) -> None:
    assert_error(client.post("/v1/workspaces", json={"name": name}), 400, "INVALID_PATH")
    names = [w["name"] for w in client.get("/v1/workspaces").json()["workspaces"]]
    assert names == ["default"]


def test_unknown_workspace_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/workspaces/nope"), 404, "WORKSPACE_NOT_FOUND")
    assert_error(client.get("/v1/workspaces/nope/files/a.txt"), 404, "WORKSPACE_NOT_FOUND")
    response = client.put("/v1/workspaces/nope/files/a.txt", content=b"x")
    assert_error(response, 404, "WORKSPACE_NOT_FOUND")


# -- writing and reading files ----------------------------------------------------------


def test_create_only_then_update_by_etag(client: TestClient) -> None:
    created = write(client, "notes/a.md", b"v1", **{"If-None-Match": "*"})
    assert created.status_code == 201
    assert created.headers["etag"] == f'"{sha256(b"v1")}"'
    body = created.json()
    assert body["rev"] == 1
    assert body["path"] == "notes/a.md"
    assert body["sha256"] == sha256(b"v1")
    assert body["md5"] == md5(b"v1")
    assert body["size"] == 2
    assert body["created"] is True
    assert body["deleted"] is False
    assert body["workspace"] == "default"
    assert body["content_type"] == "application/octet-stream"

    updated = write(client, "notes/a.md", b"v2", **{"If-Match": created.headers["etag"]})
    assert updated.status_code == 200
    assert updated.headers["etag"] == f'"{sha256(b"v2")}"'
    assert updated.json()["created"] is False
    assert updated.json()["rev"] == 2
    assert client.get(f"{WS}/files/notes/a.md").content == b"v2"


def test_create_only_on_an_existing_file_is_412(client: TestClient) -> None:
    written(client, "a.txt", b"v1")
    response = write(client, "a.txt", b"v2", **{"If-None-Match": "*"})
    assert_error(response, 412, "PRECONDITION_FAILED")
    assert client.get(f"{WS}/files/a.txt").content == b"v1"


def test_stale_if_match_is_412_and_writes_nothing(client: TestClient) -> None:
    first = write(client, "a.txt", b"v1").headers["etag"]
    written(client, "a.txt", b"v2")
    before = head_rev(client)
    body = assert_error(write(client, "a.txt", b"v3", **{"If-Match": first}), 412)
    assert body["error_code"] == "PRECONDITION_FAILED"
    assert body["context"]["current_sha256"] == sha256(b"v2")
    assert client.get(f"{WS}/files/a.txt").content == b"v2"
    assert head_rev(client) == before


def test_if_match_by_md5_and_weak_etag(client: TestClient) -> None:
    written(client, "a.txt", b"v1")
    assert write(client, "a.txt", b"v2", **{"If-Match": md5(b"v1")}).status_code == 200
    weak = f'W/"{sha256(b"v2")}"'
    assert write(client, "a.txt", b"v3", **{"If-Match": weak}).status_code == 200


def test_if_match_star_needs_an_existing_file(client: TestClient) -> None:
    assert_error(write(client, "new.txt", b"x", **{"If-Match": "*"}), 412, "PRECONDITION_FAILED")
    assert_error(client.get(f"{WS}/files/new.txt"), 404, "FILE_NOT_FOUND")
    written(client, "new.txt", b"x")
    assert write(client, "new.txt", b"y", **{"If-Match": "*"}).status_code == 200


@pytest.mark.parametrize("value", ["garbage", '"12345"', "xyz" * 30])
def test_if_match_garbage_is_400(client: TestClient, value: str) -> None:
    assert_error(write(client, "a.txt", b"x", **{"If-Match": value}), 400, "BAD_REQUEST")
    assert head_rev(client) == 0


def test_if_none_match_on_a_write_takes_only_star(client: TestClient) -> None:
    tag = f'"{sha256(b"x")}"'
    assert_error(write(client, "a.txt", b"x", **{"If-None-Match": tag}), 400, "BAD_REQUEST")
    both = write(client, "a.txt", b"x", **{"If-Match": "*", "If-None-Match": "*"})
    assert_error(both, 400, "BAD_REQUEST")


def test_message_and_session_id_are_stored(client: TestClient) -> None:
    message = "обновил заметки ✓ 100%"
    body = written(
        client,
        "a.md",
        b"x",
        **{"X-Memhub-Message": quote(message), "X-Memhub-Session-Id": "sess-42"},
    )
    assert body["message"] == message
    assert body["session_id"] == "sess-42"
    assert body["author"].startswith("key:mh_")  # the key that wrote it (its display prefix)
    meta = client.get(f"{WS}/revisions/{body['rev']}").json()
    assert meta["message"] == message
    assert meta["session_id"] == "sess-42"
    plain = written(client, "b.md", b"x", **{"X-Memhub-Message": "plain ascii"})
    assert plain["message"] == "plain ascii"


def test_content_type_is_stored_and_returned(client: TestClient) -> None:
    written(client, "a.md", b"# hi", **{"Content-Type": "text/markdown"})
    read = client.get(f"{WS}/files/a.md")
    assert read.headers["content-type"] == "text/markdown; charset=utf-8"
    assert read.headers["etag"] == f'"{sha256(b"# hi")}"'
    assert read.headers["x-memhub-md5"] == md5(b"# hi")
    assert read.headers["x-memhub-rev"] == "1"


def test_read_an_old_revision(client: TestClient) -> None:
    one = written(client, "a.txt", b"one")["rev"]
    two = written(client, "a.txt", b"two")["rev"]
    assert client.get(f"{WS}/files/a.txt").content == b"two"
    old = client.get(f"{WS}/files/a.txt", params={"rev": one})
    assert old.status_code == 200
    assert old.content == b"one"
    assert old.headers["etag"] == f'"{sha256(b"one")}"'
    assert old.headers["x-memhub-rev"] == str(one)
    assert client.get(f"{WS}/files/a.txt", params={"rev": two}).content == b"two"
    other = written(client, "b.txt", b"b")["rev"]
    wrong_path = client.get(f"{WS}/files/a.txt", params={"rev": other})
    assert_error(wrong_path, 404, "REVISION_NOT_FOUND")
    assert_error(client.get(f"{WS}/files/a.txt", params={"rev": 999}), 404, "REVISION_NOT_FOUND")


def test_head_returns_headers_and_no_body(client: TestClient) -> None:
    written(client, "a.txt", b"hello head", **{"Content-Type": "text/plain"})
    response = client.head(f"{WS}/files/a.txt")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(b"hello head"))
    assert response.headers["etag"] == f'"{sha256(b"hello head")}"'
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert client.head(f"{WS}/files/missing.txt").status_code == 404


def test_if_none_match_on_read_is_304(client: TestClient) -> None:
    etag = write(client, "a.txt", b"cached").headers["etag"]
    not_modified = client.get(f"{WS}/files/a.txt", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    listed = client.get(f"{WS}/files/a.txt", headers={"If-None-Match": f'"{"0" * 64}", {etag}'})
    assert listed.status_code == 304
    stale = client.get(f"{WS}/files/a.txt", headers={"If-None-Match": f'"{"0" * 64}"'})
    assert stale.status_code == 200
    assert stale.content == b"cached"


def test_delete_returns_the_tombstone(client: TestClient) -> None:
    first = written(client, "a.txt", b"content")
    deleted = client.delete(f"{WS}/files/a.txt")
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["deleted"] is True
    assert body["size"] == 0
    assert body["path"] == "a.txt"
    assert body["rev"] == first["rev"] + 1
    assert deleted.headers["x-memhub-rev"] == str(body["rev"])
    assert_error(client.get(f"{WS}/files/a.txt"), 404, "FILE_NOT_FOUND")
    assert_error(client.delete(f"{WS}/files/a.txt"), 404, "FILE_NOT_FOUND")
    # The old content is still there by revision.
    old = client.get(f"{WS}/files/a.txt", params={"rev": first["rev"]})
    assert old.content == b"content"


def test_conditional_delete(client: TestClient) -> None:
    etag = write(client, "a.txt", b"v1").headers["etag"]
    stale = client.delete(f"{WS}/files/a.txt", headers={"If-Match": f'"{sha256(b"zz")}"'})
    assert_error(stale, 412, "PRECONDITION_FAILED")
    assert client.delete(f"{WS}/files/a.txt", headers={"If-Match": etag}).status_code == 200


def test_non_ascii_path_round_trips(client: TestClient) -> None:
    path = "заметки/日本語/файл.md"
    body = written(client, quote(path), "текст".encode())
    assert body["path"] == path
    read = client.get(f"{WS}/files/{quote(path)}")
    assert read.status_code == 200
    assert read.content == "текст".encode()
    # New header fields carry ASCII only (RFC 9110 5.5): the path comes percent-encoded,
    # as X-Memhub-Message goes in.
    header = read.headers["x-memhub-path"]
    assert header.isascii()
    assert unquote(header) == path


# -- history, revisions, restore --------------------------------------------------------


def test_history_newest_first_with_paging(client: TestClient) -> None:
    revs = [written(client, "h.txt", f"v{i}".encode())["rev"] for i in range(5)]
    written(client, "other.txt", b"noise")
    full = client.get(f"{WS}/history/h.txt").json()
    assert full["path"] == "h.txt"
    assert [r["rev"] for r in full["revisions"]] == revs[::-1]
    assert full["next_before"] is None

    page1 = client.get(f"{WS}/history/h.txt", params={"limit": 2}).json()
    assert [r["rev"] for r in page1["revisions"]] == [revs[4], revs[3]]
    assert page1["next_before"] == revs[3]
    page2 = client.get(
        f"{WS}/history/h.txt", params={"limit": 2, "before": page1["next_before"]}
    ).json()
    assert [r["rev"] for r in page2["revisions"]] == [revs[2], revs[1]]
    page3 = client.get(
        f"{WS}/history/h.txt", params={"limit": 2, "before": page2["next_before"]}
    ).json()
    assert [r["rev"] for r in page3["revisions"]] == [revs[0]]
    assert page3["next_before"] is None


def test_history_includes_the_tombstone(client: TestClient) -> None:
    written(client, "h.txt", b"x")
    client.delete(f"{WS}/files/h.txt")
    items = client.get(f"{WS}/history/h.txt").json()["revisions"]
    assert [r["deleted"] for r in items] == [True, False]
    assert client.get(f"{WS}/history/never.txt").json()["revisions"] == []


def test_revision_metadata_and_content(client: TestClient) -> None:
    rev = written(client, "r.txt", b"rev bytes", **{"Content-Type": "text/plain"})["rev"]
    meta = client.get(f"{WS}/revisions/{rev}")
    assert meta.status_code == 200
    assert meta.json()["path"] == "r.txt"
    assert meta.json()["sha256"] == sha256(b"rev bytes")
    content = client.get(f"{WS}/revisions/{rev}/content")
    assert content.status_code == 200
    assert content.content == b"rev bytes"
    assert content.headers["content-type"] == "text/plain; charset=utf-8"
    tomb = client.delete(f"{WS}/files/r.txt").json()["rev"]
    assert client.get(f"{WS}/revisions/{tomb}").json()["deleted"] is True
    assert_error(client.get(f"{WS}/revisions/{tomb}/content"), 404, "FILE_NOT_FOUND")
    assert_error(client.get(f"{WS}/revisions/999"), 404, "REVISION_NOT_FOUND")
    assert_error(client.get(f"{WS}/revisions/999/content"), 404, "REVISION_NOT_FOUND")


def test_restore_writes_a_new_revision_with_old_bytes(client: TestClient) -> None:
    one = written(client, "doc.md", b"original", **{"Content-Type": "text/markdown"})["rev"]
    written(client, "doc.md", b"edited")
    restored = client.post(f"{WS}/restore/doc.md", json={"rev": one})
    assert restored.status_code == 200
    body = restored.json()
    assert body["rev"] == one + 2
    assert body["sha256"] == sha256(b"original")
    assert body["created"] is False
    assert body["message"] == f"restore of rev {one}"
    assert restored.headers["etag"] == f'"{sha256(b"original")}"'
    read = client.get(f"{WS}/files/doc.md")
    assert read.content == b"original"
    assert read.headers["content-type"] == "text/markdown; charset=utf-8"


def test_restore_after_delete_is_201_and_takes_a_message(client: TestClient) -> None:
    one = written(client, "doc.md", b"original")["rev"]
    tomb = client.delete(f"{WS}/files/doc.md").json()["rev"]
    bad = client.post(f"{WS}/restore/doc.md", json={"rev": tomb})
    assert_error(bad, 400, "BAD_REQUEST")
    restored = client.post(f"{WS}/restore/doc.md", json={"rev": one, "message": "undo"})
    assert restored.status_code == 201
    assert restored.json()["created"] is True
    assert restored.json()["message"] == "undo"
    assert client.get(f"{WS}/files/doc.md").content == b"original"


def test_restore_of_another_paths_revision_is_404(client: TestClient) -> None:
    other = written(client, "other.md", b"x")["rev"]
    written(client, "doc.md", b"y")
    response = client.post(f"{WS}/restore/doc.md", json={"rev": other})
    assert_error(response, 404, "REVISION_NOT_FOUND")
    assert_error(client.post(f"{WS}/restore/doc.md", json={"rev": 999}), 404)


def test_restore_honours_if_match(client: TestClient) -> None:
    one = written(client, "doc.md", b"v1")["rev"]
    written(client, "doc.md", b"v2")
    stale = client.post(
        f"{WS}/restore/doc.md", json={"rev": one}, headers={"If-Match": f'"{sha256(b"v1")}"'}
    )
    assert_error(stale, 412, "PRECONDITION_FAILED")
    ok = client.post(
        f"{WS}/restore/doc.md", json={"rev": one}, headers={"If-Match": f'"{sha256(b"v2")}"'}
    )
    assert ok.status_code == 200


# -- the change feed -----------------------------------------------------------------


def test_changes_in_rev_order_with_paging(client: TestClient) -> None:
    for i in range(5):
        written(client, f"f{i}.txt", b"x")
    client.delete(f"{WS}/files/f0.txt")
    everything = client.get(f"{WS}/changes", params={"since": 0}).json()
    assert [c["rev"] for c in everything["changes"]] == [1, 2, 3, 4, 5, 6]
    assert everything["changes"][-1]["deleted"] is True
    assert everything["head_rev"] == 6
    assert everything["next_since"] == 6
    assert everything["has_more"] is False

    seen: list[int] = []
    since = 0
    pages = 0
    while True:
        page = client.get(f"{WS}/changes", params={"since": since, "limit": 4}).json()
        pages += 1
        seen += [c["rev"] for c in page["changes"]]
        assert page["head_rev"] == 6
        since = page["next_since"]
        if not page["has_more"]:
            break
    assert seen == [1, 2, 3, 4, 5, 6]
    assert pages == 2

    caught_up = client.get(f"{WS}/changes", params={"since": 6}).json()
    assert caught_up == {"changes": [], "next_since": 6, "head_rev": 6, "has_more": False}


def test_changes_long_poll_returns_a_change_written_meanwhile(client: TestClient) -> None:
    written(client, "before.txt", b"x")
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = client.get(f"{WS}/changes", params={"since": 1, "wait": 5})
        result["elapsed"] = time.monotonic() - started
        result["response"] = response

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    written(client, "during.txt", b"woke you")
    poller.join(timeout=30)
    assert not poller.is_alive()
    response = result["response"]
    assert response.status_code == 200
    body = response.json()
    assert [c["path"] for c in body["changes"]] == ["during.txt"]
    assert body["next_since"] == 2
    assert result["elapsed"] < 4.5  # woken by the write, not by the 5 s timeout


def test_changes_wait_times_out_empty(client: TestClient) -> None:
    response = client.get(f"{WS}/changes", params={"since": 0, "wait": 0.2})
    assert response.status_code == 200
    assert response.json() == {"changes": [], "next_since": 0, "head_rev": 0, "has_more": False}


# -- listing files -------------------------------------------------------------------


def test_list_files_with_prefix_deleted_and_paging(client: TestClient) -> None:
    for path in ["a/1.md", "a/2.md", "a/3.md", "ab.md", "b/1.md"]:
        written(client, path, path.encode())
    client.delete(f"{WS}/files/a/2.md")

    def paths(**params: Any) -> list[str]:
        response = client.get(f"{WS}/files", params=params)
        assert response.status_code == 200, response.text
        return [f["path"] for f in response.json()["files"]]

    assert paths() == ["a/1.md", "a/3.md", "ab.md", "b/1.md"]
    assert paths(prefix="a/") == ["a/1.md", "a/3.md"]
    assert paths(prefix="a") == ["a/1.md", "a/3.md", "ab.md"]
    assert paths(prefix="a/", include_deleted="true") == ["a/1.md", "a/2.md", "a/3.md"]
    assert paths(prefix="zzz/") == []

    listed = client.get(f"{WS}/files", params={"limit": 2}).json()
    assert [f["path"] for f in listed["files"]] == ["a/1.md", "a/3.md"]
    assert listed["next_after"] == "a/3.md"
    rest = client.get(f"{WS}/files", params={"limit": 2, "after": "a/3.md"}).json()
    assert [f["path"] for f in rest["files"]] == ["ab.md", "b/1.md"]
    last = client.get(f"{WS}/files", params={"limit": 2, "after": "b/1.md"}).json()
    assert last == {"files": [], "next_after": None}
    entry = client.get(f"{WS}/files", params={"prefix": "ab.md"}).json()["files"][0]
    assert entry["sha256"] == sha256(b"ab.md")
    assert entry["size"] == len(b"ab.md")


# -- chunks and manifest commits ------------------------------------------------------


def test_chunk_upload_and_commit(client: TestClient) -> None:
    parts = [b"chunk one|", b"chunk two|", b"chunk three"]
    shas = [sha256(p) for p in parts]
    missing = client.post(f"{WS}/chunks/missing", json={"chunks": shas})
    assert missing.status_code == 200
    assert missing.json() == {"missing": shas}

    first = client.put(f"{WS}/chunks/{shas[0]}", content=parts[0])
    assert first.status_code == 201
    assert first.json() == {"sha256": shas[0], "size": len(parts[0]), "created": True}
    again = client.put(f"{WS}/chunks/{shas[0]}", content=parts[0])
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert client.post(f"{WS}/chunks/missing", json={"chunks": shas}).json() == {
        "missing": shas[1:]
    }
    for sha, part in zip(shas[1:], parts[1:], strict=True):
        assert client.put(f"{WS}/chunks/{sha}", content=part).status_code == 201
    assert client.post(f"{WS}/chunks/missing", json={"chunks": shas}).json() == {"missing": []}

    whole = b"".join(parts)
    manifest = {
        "path": "db/memory.sqlite",
        "sha256": sha256(whole),
        "chunks": [{"sha256": s, "size": len(p)} for s, p in zip(shas, parts, strict=True)],
        "content_type": "application/vnd.sqlite3",
        "message": "sync",
    }
    committed = client.post(f"{WS}/commits", json=manifest)
    assert committed.status_code == 201
    body = committed.json()
    assert body["sha256"] == sha256(whole)
    assert body["md5"] == md5(whole)
    assert body["size"] == len(whole)
    assert body["created"] is True
    assert committed.headers["etag"] == f'"{sha256(whole)}"'
    read = client.get(f"{WS}/files/db/memory.sqlite")
    assert read.content == whole
    assert read.headers["content-type"] == "application/vnd.sqlite3"

    # The same manifest again, as an update guarded by the ETag: 200.
    manifest["if_match"] = committed.headers["etag"]
    assert client.post(f"{WS}/commits", json=manifest).status_code == 200


def test_chunk_whose_bytes_do_not_match_is_400(client: TestClient) -> None:
    response = client.put(f"{WS}/chunks/{sha256(b'declared')}", content=b"actual")
    body = assert_error(response, 400, "CHECKSUM_MISMATCH")
    assert body["context"] == {"declared": sha256(b"declared"), "actual": sha256(b"actual")}
    missing = client.post(f"{WS}/chunks/missing", json={"chunks": [sha256(b"declared")]})
    assert missing.json()["missing"] == [sha256(b"declared")]


@pytest.mark.parametrize("address", ["not-hex", "g" * 64, "ab" * 31, "ab" * 33])
def test_chunk_address_must_be_64_hex_digits(client: TestClient, address: str) -> None:
    assert_error(client.put(f"{WS}/chunks/{address}", content=b"x"), 400, "BAD_REQUEST")


def test_missing_with_bad_hashes_is_400(client: TestClient) -> None:
    response = client.post(f"{WS}/chunks/missing", json={"chunks": ["nope"]})
    assert_error(response, 400, "BAD_REQUEST")


def test_commit_with_wrong_sha256_is_400_and_writes_nothing(client: TestClient) -> None:
    part = b"only chunk"
    client.put(f"{WS}/chunks/{sha256(part)}", content=part)
    manifest = {
        "path": "x.bin",
        "sha256": sha256(b"something else"),
        "chunks": [{"sha256": sha256(part), "size": len(part)}],
    }
    body = assert_error(client.post(f"{WS}/commits", json=manifest), 400, "CHECKSUM_MISMATCH")
    assert body["context"]["actual"] == sha256(part)
    assert_error(client.get(f"{WS}/files/x.bin"), 404, "FILE_NOT_FOUND")
    assert head_rev(client) == 0


def test_commit_with_a_missing_chunk_is_400(client: TestClient) -> None:
    have, lack = b"have", b"lack"
    client.put(f"{WS}/chunks/{sha256(have)}", content=have)
    manifest = {
        "path": "x.bin",
        "sha256": sha256(have + lack),
        "chunks": [
            {"sha256": sha256(have), "size": len(have)},
            {"sha256": sha256(lack), "size": len(lack)},
        ],
    }
    body = assert_error(client.post(f"{WS}/commits", json=manifest), 400, "CHUNKS_MISSING")
    assert body["context"]["missing"] == [sha256(lack)]
    assert head_rev(client) == 0


def test_commit_of_no_chunks_is_the_empty_file(client: TestClient) -> None:
    manifest = {"path": "empty", "sha256": sha256(b""), "chunks": []}
    assert client.post(f"{WS}/commits", json=manifest).status_code == 201
    read = client.get(f"{WS}/files/empty")
    assert read.status_code == 200
    assert read.content == b""


# -- leases and fencing ----------------------------------------------------------------


def lease(client: TestClient, name: str, holder: str, **extra: Any) -> Response:
    return client.post(f"{WS}/leases/{name}", json={"holder": holder, "ttl": 60, **extra})


def test_lease_lifecycle(client: TestClient) -> None:
    first = lease(client, "sync", "alice")
    assert first.status_code == 200
    body = first.json()
    assert body["token"] == 1
    assert body["holder"] == "alice"
    assert body["active"] is True
    assert 0 < body["ttl_remaining"] <= 60

    held = lease(client, "sync", "bob")
    held_body = assert_error(held, 409, "LEASE_HELD")
    assert held_body["context"]["holder"] == "alice"

    assert lease(client, "sync", "alice").json()["token"] == 2
    forced = lease(client, "sync", "bob", force=True)
    assert forced.status_code == 200
    assert forced.json()["token"] == 3
    assert forced.json()["holder"] == "bob"

    lost = client.post(f"{WS}/leases/sync/renew", json={"holder": "alice", "token": 2, "ttl": 60})
    assert_error(lost, 409, "LEASE_LOST")
    renewed = client.post(f"{WS}/leases/sync/renew", json={"holder": "bob", "token": 3, "ttl": 120})
    assert renewed.status_code == 200
    assert renewed.json()["token"] == 3
    assert 60 < renewed.json()["ttl_remaining"] <= 120

    got = client.get(f"{WS}/leases/sync").json()
    assert (got["holder"], got["token"], got["active"]) == ("bob", 3, True)

    wrong_release = client.post(f"{WS}/leases/sync/release", json={"holder": "bob", "token": 2})
    assert_error(wrong_release, 409, "LEASE_LOST")
    released = client.post(f"{WS}/leases/sync/release", json={"holder": "bob", "token": 3})
    assert released.status_code == 200
    assert released.json()["active"] is False
    assert released.json()["holder"] is None

    # Free again: a new holder gets the next token.
    assert lease(client, "sync", "carol").json()["token"] == 4
    broken = client.delete(f"{WS}/leases/sync")
    assert broken.status_code == 200
    assert broken.json()["active"] is False
    assert lease(client, "sync", "dave").json()["token"] == 5

    lease(client, "other", "erin")
    listed = client.get(f"{WS}/leases")
    assert listed.status_code == 200
    summary = [(item["name"], item["holder"], item["token"]) for item in listed.json()["leases"]]
    assert summary == [("other", "erin", 1), ("sync", "dave", 5)]


def test_unknown_lease_is_404(client: TestClient) -> None:
    assert_error(client.get(f"{WS}/leases/none"), 404, "LEASE_NOT_FOUND")
    assert_error(client.delete(f"{WS}/leases/none"), 404, "LEASE_NOT_FOUND")
    renew = client.post(f"{WS}/leases/none/renew", json={"holder": "a", "token": 1})
    assert_error(renew, 404, "LEASE_NOT_FOUND")


def test_put_fenced_by_the_current_token_only(client: TestClient) -> None:
    token = lease(client, "writer", "alice").json()["token"]
    fence = {"X-Memhub-Lease": "writer", "X-Memhub-Lease-Token": str(token)}
    assert write(client, "fenced.txt", b"by alice", **fence).status_code == 201

    takeover = lease(client, "writer", "bob", force=True).json()["token"]
    assert takeover == token + 1
    before = head_rev(client)
    stale = write(client, "fenced.txt", b"late alice", **fence)
    body = assert_error(stale, 412, "FENCING_TOKEN_REJECTED")
    assert body["context"] == {
        "lease": "writer",
        "provided_token": token,
        "current_token": takeover,
    }
    assert client.get(f"{WS}/files/fenced.txt").content == b"by alice"
    assert head_rev(client) == before

    stale_delete = client.delete(f"{WS}/files/fenced.txt", headers=fence)
    assert_error(stale_delete, 412, "FENCING_TOKEN_REJECTED")
    assert client.get(f"{WS}/files/fenced.txt").status_code == 200

    bob = {"X-Memhub-Lease": "writer", "X-Memhub-Lease-Token": str(takeover)}
    assert write(client, "fenced.txt", b"by bob", **bob).status_code == 200
    assert client.delete(f"{WS}/files/fenced.txt", headers=bob).status_code == 200


def test_fence_on_a_released_lease_is_rejected(client: TestClient) -> None:
    token = lease(client, "w", "alice").json()["token"]
    client.post(f"{WS}/leases/w/release", json={"holder": "alice", "token": token})
    fence = {"X-Memhub-Lease": "w", "X-Memhub-Lease-Token": str(token)}
    assert_error(write(client, "a.txt", b"x", **fence), 412, "FENCING_TOKEN_REJECTED")
    nolease = {"X-Memhub-Lease": "never", "X-Memhub-Lease-Token": "1"}
    assert_error(write(client, "a.txt", b"x", **nolease), 412, "FENCING_TOKEN_REJECTED")
    assert head_rev(client) == 0


def test_half_a_fence_is_400(client: TestClient) -> None:
    only_name = write(client, "a.txt", b"x", **{"X-Memhub-Lease": "w"})
    assert_error(only_name, 400, "BAD_REQUEST")
    only_token = write(client, "a.txt", b"x", **{"X-Memhub-Lease-Token": "1"})
    assert_error(only_token, 400, "BAD_REQUEST")
    not_int = write(client, "a.txt", b"x", **{"X-Memhub-Lease": "w", "X-Memhub-Lease-Token": "one"})
    assert_error(not_int, 400, "BAD_REQUEST")


def test_commit_fenced_by_the_lease_in_its_body(client: TestClient) -> None:
    part = b"fenced chunk"
    client.put(f"{WS}/chunks/{sha256(part)}", content=part)
    token = lease(client, "db", "alice").json()["token"]
    manifest: dict[str, Any] = {
        "path": "db.sqlite",
        "sha256": sha256(part),
        "chunks": [{"sha256": sha256(part), "size": len(part)}],
        "lease": {"name": "db", "token": token},
    }
    assert client.post(f"{WS}/commits", json=manifest).status_code == 201
    lease(client, "db", "bob", force=True)
    before = head_rev(client)
    rejected = client.post(f"{WS}/commits", json=manifest)
    assert_error(rejected, 412, "FENCING_TOKEN_REJECTED")
    assert head_rev(client) == before
    manifest["lease"]["token"] = token + 1
    assert client.post(f"{WS}/commits", json=manifest).status_code == 200


# -- batches ------------------------------------------------------------------------------


def test_batch_write_mixed_results(client: TestClient) -> None:
    written(client, "exists.txt", b"old")
    written(client, "doomed.txt", b"bye")
    operations = [
        {"op": "put", "path": "new.txt", "content": "hello", "if_none_match": "*"},
        {"op": "put", "path": "exists.txt", "content": "x", "if_none_match": "*"},
        {
            "op": "put",
            "path": "exists.txt",
            "content": "new",
            "if_match": f'"{sha256(b"old")}"',
            "content_type": "text/plain",
            "message": "edit",
        },
        {"op": "put", "path": "bin.dat", "content": base64.b64encode(b"\x00\xff").decode(),
         "encoding": "base64"},
        {"op": "delete", "path": "doomed.txt"},
        {"op": "delete", "path": "never.txt"},
        {"op": "put", "path": "bad/../path", "content": "x"},
        {"op": "put", "path": "stale.txt", "content": "x", "if_match": f'"{sha256(b"no")}"'},
    ]  # fmt: skip
    response = client.post(f"{WS}/batch/write", json={"operations": operations, "session_id": "s1"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["path"], r["status"]) for r in results] == [
        ("new.txt", 201),
        ("exists.txt", 412),
        ("exists.txt", 200),
        ("bin.dat", 201),
        ("doomed.txt", 200),
        ("never.txt", 404),
        ("bad/../path", 400),
        ("stale.txt", 412),
    ]
    assert results[0]["revision"]["created"] is True
    assert results[0]["revision"]["session_id"] == "s1"
    assert results[1]["error"]["error_code"] == "PRECONDITION_FAILED"
    assert results[2]["revision"]["message"] == "edit"
    assert results[4]["revision"]["deleted"] is True
    assert results[5]["error"]["error_code"] == "FILE_NOT_FOUND"
    assert results[6]["error"]["error_code"] == "INVALID_PATH"
    assert set(results[7]["error"]) >= {"detail", "error_code", "context"}

    assert client.get(f"{WS}/files/new.txt").content == b"hello"
    assert client.get(f"{WS}/files/exists.txt").content == b"new"
    assert (
        client.get(f"{WS}/files/exists.txt").headers["content-type"] == "text/plain; charset=utf-8"
    )
    assert client.get(f"{WS}/files/bin.dat").content == b"\x00\xff"
    assert client.get(f"{WS}/files/doomed.txt").status_code == 404
    assert client.get(f"{WS}/files/stale.txt").status_code == 404


def test_batch_read_encodings_and_missing(client: TestClient) -> None:
    written(client, "text.md", "привет".encode())
    written(client, "binary.bin", b"\xff\xfe\x00")
    paths = ["text.md", "binary.bin", "missing.md"]

    as_text = client.post(f"{WS}/batch/read", json={"paths": paths, "encoding": "utf-8"})
    assert as_text.status_code == 200
    files = as_text.json()["files"]
    assert [(f["path"], f["status"]) for f in files] == [
        ("text.md", 200),
        ("binary.bin", 200),
        ("missing.md", 404),
    ]
    assert files[0]["encoding"] == "utf-8"
    assert files[0]["content"] == "привет"
    assert files[0]["revision"]["sha256"] == sha256("привет".encode())
    assert files[1]["encoding"] == "base64"  # not UTF-8: falls back
    assert base64.b64decode(files[1]["content"]) == b"\xff\xfe\x00"
    assert files[2]["error"]["error_code"] == "FILE_NOT_FOUND"

    default = client.post(f"{WS}/batch/read", json={"paths": ["text.md"]}).json()["files"][0]
    assert default["encoding"] == "base64"
    assert base64.b64decode(default["content"]) == "привет".encode()


# -- workspace isolation -------------------------------------------------------------


def test_workspaces_are_isolated(client: TestClient) -> None:
    assert client.post("/v1/workspaces", json={"name": "other"}).status_code == 201
    other = "/v1/workspaces/other"
    assert client.put(f"{other}/files/secret.md", content=b"theirs").status_code == 201
    written(client, "mine.md", b"mine")

    assert_error(client.get(f"{WS}/files/secret.md"), 404, "FILE_NOT_FOUND")
    assert_error(client.get(f"{other}/files/mine.md"), 404, "FILE_NOT_FOUND")
    assert [f["path"] for f in client.get(f"{other}/files").json()["files"]] == ["secret.md"]
    assert [f["path"] for f in client.get(f"{WS}/files").json()["files"]] == ["mine.md"]
    other_changes = client.get(f"{other}/changes").json()["changes"]
    assert [c["path"] for c in other_changes] == ["secret.md"]
    assert client.get(f"{other}/history/mine.md").json()["revisions"] == []
    # Revision numbers are per workspace: rev 1 of each is its own file.
    assert client.get(f"{other}/revisions/1").json()["path"] == "secret.md"
    assert client.get(f"{WS}/revisions/1").json()["path"] == "mine.md"
    # The seed routes serve the default workspace only.
    assert set(client.get("/sync").json()["files"]) == {"mine.md"}
    assert_error(client.get("/blob/secret.md"), 404, "FILE_NOT_FOUND")
    # Chunks are per workspace too.
    part = b"chunk of other"
    client.put(f"{other}/chunks/{sha256(part)}", content=part)
    assert client.post(f"{WS}/chunks/missing", json={"chunks": [sha256(part)]}).json() == {
        "missing": [sha256(part)]
    }
    # Leases are per workspace.
    assert lease(client, "same", "a").json()["token"] == 1
    other_lease = client.post(f"{other}/leases/same", json={"holder": "b", "ttl": 60})
    assert other_lease.json()["token"] == 1


def test_seed_and_v1_see_the_same_files(client: TestClient) -> None:
    client.put("/blob/shared.md", content=b"from seed", headers={"Content-MD5": "new"})
    read = client.get(f"{WS}/files/shared.md")
    assert read.content == b"from seed"
    written(client, "shared.md", b"from v1", **{"If-Match": md5(b"from seed")})
    assert client.get("/blob/shared.md").content == b"from v1"
    assert client.get("/sync").json()["files"]["shared.md"]["md5"] == md5(b"from v1")


# -- documentation -----------------------------------------------------------------------


def test_docs_and_openapi(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    paths = document["paths"]
    assert {"/health", "/blob/{path}", "/sync"} <= set(paths)
    assert {"get", "put", "delete"} <= set(paths["/blob/{path}"])
    expected_v1 = {
        "/v1/workspaces",
        "/v1/workspaces/{workspace}",
        "/v1/workspaces/{workspace}/files",
        "/v1/workspaces/{workspace}/files/{path}",
        "/v1/workspaces/{workspace}/history/{path}",
        "/v1/workspaces/{workspace}/revisions/{rev}",
        "/v1/workspaces/{workspace}/revisions/{rev}/content",
        "/v1/workspaces/{workspace}/restore/{path}",
        "/v1/workspaces/{workspace}/changes",
        "/v1/workspaces/{workspace}/chunks/missing",
        "/v1/workspaces/{workspace}/chunks/{sha256}",
        "/v1/workspaces/{workspace}/commits",
        "/v1/workspaces/{workspace}/batch/read",
        "/v1/workspaces/{workspace}/batch/write",
        "/v1/workspaces/{workspace}/leases",
        "/v1/workspaces/{workspace}/leases/{name}",
        "/v1/workspaces/{workspace}/leases/{name}/renew",
        "/v1/workspaces/{workspace}/leases/{name}/release",
    }
    assert expected_v1 <= set(paths), expected_v1 - set(paths)
    assert document["info"]["title"] == "memhub"
