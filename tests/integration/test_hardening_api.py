"""Issue 8's regressions over HTTP, one test (or a few) per item: resource bounds,
content types, dates, seed preconditions, portable paths, rotted chunks, and
derived layers that fail loudly (storage outage → 503 → recovery → found).

Every test drives the real app in-process (a SQLite file and a local blob
directory under ``tmp_path``); a storage outage is made for real by putting a
plain file where the blob directory was.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client, asgi_request, assert_error, build_app, md5, sha256
from fastapi import FastAPI
from fastapi.testclient import TestClient

from memhub.errors import StorageCorrupt
from memhub.store.blobs import chunk_key
from memhub.store.maintenance import fsck
from raw_asgi import asgi_call


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, raise_server_exceptions=False, blob_url=file_blobs(tmp_path)) as c:
        yield c


def file_blobs(tmp_path: Path) -> str:
    """Every blob a file of its own (no inline tier), so a test can rot or remove one."""
    return f"{(tmp_path / 'blobs').as_uri()}?inline_max_bytes=0"


def store_of(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.store


def blob_file(tmp_path: Path, sha: str) -> Path:
    return tmp_path / "blobs" / Path(*chunk_key(sha).split("/"))


# -- item 2: the work of one commit is bounded --


def test_a_manifest_naming_more_than_the_body_limit_is_refused_before_hashing(
    tmp_path: Path,
) -> None:
    chunk = b"x" * 1000
    with api_client(tmp_path, max_body_bytes=500_000) as client:
        assert client.put(f"{WS}/chunks/{sha256(chunk)}", content=chunk).status_code == 201
        manifest = {
            "path": "big.bin",
            "sha256": "0" * 64,
            "chunks": [{"sha256": sha256(chunk), "size": 1000}] * 1000,  # 1 MB from 1 KB
        }
        body = assert_error(client.post(f"{WS}/commits", json=manifest), 413)
        assert body["context"]["declared"] == 1_000_000


def test_a_wrong_chunk_size_is_refused_from_the_metadata(
    client: TestClient, tmp_path: Path
) -> None:
    chunk = b"y" * 20_000  # over the inline threshold: a chunk file of its own
    client.put(f"{WS}/chunks/{sha256(chunk)}", content=chunk)
    # the bytes are gone: a check that read them would answer 500, not 400
    blob_file(tmp_path, sha256(chunk)).unlink()
    manifest = {
        "path": "a.bin",
        "sha256": sha256(chunk),
        "chunks": [{"sha256": sha256(chunk), "size": 19_999}],
    }
    body = assert_error(client.post(f"{WS}/commits", json=manifest), 400, "CHECKSUM_MISMATCH")
    assert body["context"]["actual"] == 20_000


def test_a_chunk_named_many_times_commits_right(client: TestClient) -> None:
    chunk = b"z" * 4096
    client.put(f"{WS}/chunks/{sha256(chunk)}", content=chunk)
    whole = chunk * 50
    manifest = {
        "path": "rep.bin",
        "sha256": sha256(whole),
        "chunks": [{"sha256": sha256(chunk), "size": 4096}] * 50,
    }
    response = client.post(f"{WS}/commits", json=manifest)
    assert response.status_code == 201, response.text
    assert client.get(f"{WS}/files/rep.bin").content == whole


# -- item 3 and 5: memory per request ----------------------------------------------------------


def _call_without_reading(app: FastAPI, method: str, path: str, length: int, ctype: bytes) -> int:
    """Send only the head of a request; reading its body fails the test."""
    headers = [
        (b"content-length", str(length).encode()),
        (b"content-type", ctype),
        (b"authorization", f"Bearer {app.state.test_key}".encode()),
    ]
    return asgi_call(app, method, path, headers, body=None).status


def test_a_chunk_over_the_limit_is_refused_by_its_content_length(tmp_path: Path) -> None:
    app = build_app(tmp_path, max_chunk_bytes=4096, chunk_size=4096)
    path = f"{WS}/chunks/{'a' * 64}"
    assert _call_without_reading(app, "PUT", path, 300_000_000, b"application/octet-stream") == 413


def test_a_streamed_chunk_stops_at_the_limit(tmp_path: Path) -> None:
    with api_client(tmp_path, max_chunk_bytes=4096, chunk_size=4096) as client:
        pieces = iter([b"a" * 3000, b"b" * 3000, b"c" * 3000])
        response = client.put(f"{WS}/chunks/{'a' * 64}", content=pieces)
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_json_bodies_have_their_own_smaller_limit(tmp_path: Path) -> None:
    app = build_app(tmp_path, max_json_bytes=10_000)
    assert _call_without_reading(app, "POST", f"{WS}/search", 20_000, b"application/json") == 413
    with api_client(tmp_path / "b", max_json_bytes=10_000) as client:
        # a file body may still be large
        assert client.put(f"{WS}/files/big.txt", content=b"x" * 50_000).status_code == 201


def test_an_oversized_chunked_json_body_is_413_not_400(tmp_path: Path) -> None:
    with api_client(tmp_path, raise_server_exceptions=False, max_json_bytes=10_000) as client:
        body = json.dumps({"query": "a" * 9000, "k": 5}).encode() + b" " * 5000
        pieces = iter([body[:6000], body[6000:]])  # no Content-Length: chunked
        response = client.post(
            f"{WS}/search", content=pieces, headers={"content-type": "application/json"}
        )
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# -- item 4: a 500 keeps the connection (no exception escapes the app) ---------------------------


def test_an_unexpected_error_is_a_json_500_and_nothing_escapes(tmp_path: Path) -> None:
    app = build_app(tmp_path)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom-for-test", boom)
    # asgi_request lets an exception out of the app fail the test: uvicorn closes the
    # keep-alive connection on exactly that
    status, headers, body = asgi_request(app, "GET", "/boom-for-test")
    assert status == 500
    assert json.loads(body)["error_code"] == "INTERNAL_ERROR"
    assert headers["x-content-type-options"] == "nosniff"


# -- item 6: one bad file never breaks search --


def test_bad_files_do_not_break_search_and_are_reported(client: TestClient) -> None:
    assert client.put(f"{WS}/files/timeline/0000-01.md", content=b"# x\n\nyear zero").is_success
    assert client.put(f"{WS}/files/deep.json", content=b"[" * 100_000).is_success
    assert client.put(f"{WS}/files/notes/ok.md", content=b"# ok\n\nfindable words").is_success
    for _ in range(2):
        found = client.post(f"{WS}/search", json={"query": "findable"})
        assert found.status_code == 200, found.text
        assert [r["path"] for r in found.json()["results"]] == ["notes/ok.md"]
    assert client.post(f"{WS}/search", json={"query": "zero"}).json()["results"]
    assert client.post(f"{WS}/context", json={"depth": "wide"}).status_code == 200
    status = client.get(f"{WS}/index")
    assert status.status_code == 200
    problems = {p["path"]: p for p in status.json()["problems"]}
    assert problems["deep.json"]["error_code"] == "PARSED_AS_TEXT"
    assert client.post(f"{WS}/index/rebuild").status_code == 200
    assert client.post("/memory/search", json={"query": "findable"}).status_code == 200


# -- item 7: content types --


@pytest.mark.parametrize(
    "value",
    [
        b"text/plain\r\nX-Injected: 1",
        b"text%2Fplain",
        b"text/plain; charset=\xff",
        b"\xe2\x82\xac/x",
        b"text/",
        b"text/plain; charset",
        b'text/plain; a="unterminated',
    ],
)
def test_a_content_type_that_is_not_a_media_type_is_refused(tmp_path: Path, value: bytes) -> None:
    app = build_app(tmp_path)
    for method, path in (("PUT", f"{WS}/files/ct.md"), ("PUT", "/blob/ct.md")):
        status, _headers, body = asgi_request(
            app, method, path, body=b"x", headers=[(b"content-type", value)]
        )
        assert status == 400, (path, body)
        assert json.loads(body)["error_code"] == "INVALID_CONTENT_TYPE"
    status, _headers, _body = asgi_request(app, "GET", "/blob/ct.md")
    assert status == 404  # nothing was written


def test_content_types_on_batch_and_commit_are_checked(client: TestClient) -> None:
    op = {"op": "put", "path": "b.md", "content": "x", "content_type": "text/plain\nx"}
    result = client.post(f"{WS}/batch/write", json={"operations": [op]}).json()
    assert result["results"][0]["status"] == 400
    chunk = b"data"
    client.put(f"{WS}/chunks/{sha256(chunk)}", content=chunk)
    manifest = {
        "path": "c.bin",
        "sha256": sha256(chunk),
        "chunks": [{"sha256": sha256(chunk), "size": 4}],
        "content_type": "a b/c",
    }
    assert_error(client.post(f"{WS}/commits", json=manifest), 400, "INVALID_CONTENT_TYPE")


def test_what_curl_d_sends_is_stored_as_bytes_and_text_is_served_as_utf8(
    client: TestClient,
) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.put("/blob/note.md", content=b"hello", headers=form).status_code == 201
    assert client.get("/blob/note.md").headers["content-type"] == "application/octet-stream"
    typed = {"content-type": 'text/markdown; variant="GFM"'}
    client.put(f"{WS}/files/t.md", content=b"# t", headers=typed)
    served = client.get(f"{WS}/files/t.md").headers["content-type"]
    assert served == 'text/markdown; variant="GFM"; charset=utf-8'


# -- item 8: dates --


@pytest.mark.parametrize("raw", [b"1e30", b"1e400", b"NaN", b"-Infinity", b"-1e300"])
def test_out_of_range_dates_are_422(tmp_path: Path, raw: bytes) -> None:
    app = build_app(tmp_path)
    for field in (b"since", b"until"):
        body = b'{"query": "a", "' + field + b'": ' + raw + b"}"
        status, _h, answer = asgi_request(
            app,
            "POST",
            f"{WS}/search",
            body=body,
            headers=[(b"content-type", b"application/json")],
        )
        assert status == 422, answer
        assert json.loads(answer)["error_code"] == "VALIDATION_ERROR"


def test_dates_in_range_still_work(client: TestClient) -> None:
    for since in (0, -62_135_596_800, "2024-01-01", "2024-01-01T00:00:00Z"):
        assert client.post(f"{WS}/search", json={"query": "a", "since": since}).is_success


# -- item 9: seed preconditions --


def test_an_empty_if_match_on_seed_delete_deletes_nothing(client: TestClient) -> None:
    client.put("/blob/keep.md", content=b"keep")
    assert_error(client.delete("/blob/keep.md", headers={"If-Match": '""'}), 400)
    assert_error(client.delete("/blob/keep.md", headers={"If-Match": ""}), 400)
    assert client.get("/blob/keep.md").content == b"keep"


def test_seed_put_honours_if_match_and_if_none_match(client: TestClient) -> None:
    client.put("/blob/p.md", content=b"one")
    assert_error(client.put("/blob/p.md", content=b"x", headers={"If-None-Match": "*"}), 412)
    wrong = {"If-Match": f'"{md5(b"other")}"'}
    body = assert_error(client.put("/blob/p.md", content=b"x", headers=wrong), 412)
    assert body["context"]["current_md5"] == md5(b"one")
    right = {"If-Match": f'"{sha256(b"one")}"'}
    assert client.put("/blob/p.md", content=b"two", headers=right).status_code == 200
    assert client.put("/blob/new.md", content=b"n", headers={"If-Match": "*"}).status_code == 412
    create = {"If-None-Match": "*"}
    assert client.put("/blob/new.md", content=b"n", headers=create).status_code == 201
    assert client.get("/blob/p.md").content == b"two"


def test_content_md5_and_if_match_must_agree(client: TestClient) -> None:
    client.put("/blob/q.md", content=b"one")
    both = {"Content-MD5": "new", "If-Match": f'"{md5(b"one")}"'}
    assert_error(client.put("/blob/q.md", content=b"x", headers=both), 400)
    both = {"Content-MD5": md5(b"one"), "If-Match": f'"{md5(b"two")}"'}
    assert_error(client.put("/blob/q.md", content=b"x", headers=both), 400)
    agree = {"Content-MD5": md5(b"one"), "If-Match": f'"{sha256(b"one")}"'}
    assert client.put("/blob/q.md", content=b"two", headers=agree).status_code == 200
    stale = {"Content-MD5": md5(b"one"), "If-Match": f'"{sha256(b"one")}"'}
    assert_error(client.put("/blob/q.md", content=b"3", headers=stale), 412)
    assert client.get("/blob/q.md").content == b"two"


# -- item 10: paths every client can hold --


@pytest.mark.parametrize(
    "name", ["CON", "nul.txt", "a:b", "a*b", "x%3F", "dot.", "sp%20", "a%E2%80%A8b"]
)
def test_paths_a_client_cannot_write_are_400(client: TestClient, name: str) -> None:
    assert_error(client.put(f"/blob/{name}", content=b"x"), 400, "INVALID_PATH")
    assert_error(client.put(f"{WS}/files/dir/{name}", content=b"x"), 400, "INVALID_PATH")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A client over each metadata database (on PostgreSQL, a workspace of its own)."""
    options: dict[str, Any] = {}
    if request.param == "postgresql":
        options["database_url"] = request.getfixturevalue("postgres_url")
        options["default_workspace"] = f"hardening-{uuid.uuid4().hex[:12]}"
    with api_client(tmp_path, raise_server_exceptions=False, **options) as c:
        c.headers["x-test-ws"] = options.get("default_workspace", "default")
        yield c


def test_a_second_path_differing_only_in_case_is_409(backend_client: TestClient) -> None:
    client = backend_client
    ws = f"/v1/workspaces/{client.headers['x-test-ws']}"
    assert client.put(f"{ws}/files/Notes/Case.md", content=b"1").status_code == 201
    body = assert_error(client.put(f"{ws}/files/notes/case.md", content=b"2"), 409)
    assert body["error_code"] == "PATH_CONFLICT"
    assert body["context"]["existing"] == "Notes/Case.md"
    assert_error(client.put("/blob/NOTES/CASE.MD", content=b"3"), 409, "PATH_CONFLICT")
    # the same name is still writable, and once it is deleted the other case is free
    assert client.put(f"{ws}/files/Notes/Case.md", content=b"4").status_code == 200
    assert client.delete(f"{ws}/files/Notes/Case.md").status_code == 200
    assert client.put(f"{ws}/files/notes/case.md", content=b"5").status_code == 201


def test_invalid_utf8_in_a_percent_encoded_path_is_400(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    for raw in (b"/blob/%C0%AE%C0%AE/x", b"/blob/%FF.md", f"{WS}/files/%ED%A0%80".encode()):
        path = raw.decode("latin-1")  # what the router would see does not matter: refused first
        status, _h, body = asgi_request(app, "PUT", path, body=b"x", raw_path=raw)
        assert status == 400, (raw, body)
        assert json.loads(body)["error_code"] == "INVALID_PATH"


# -- item 12: rotted bytes are never served --


def test_a_rotted_chunk_is_a_storage_corrupt_error_counted_and_named_by_fsck(
    tmp_path: Path,
) -> None:
    with api_client(
        tmp_path, raise_server_exceptions=False, blob_url=file_blobs(tmp_path)
    ) as client:
        good = b"the original bytes\n" * 10
        client.put("/blob/rot.md", content=good)
        target = blob_file(tmp_path, sha256(good))
        target.write_bytes(b"R" * len(good))  # same size, other bytes
        for url in ("/blob/rot.md", f"{WS}/files/rot.md"):
            response = client.get(url)
            body = assert_error(response, 500, "STORAGE_CORRUPT")
            assert b"RRRR" not in response.content
            assert body["context"]["chunk"] == sha256(good)
        metrics = client.get("/metrics").text
        assert "memhub_storage_corrupt_chunks_total 2.0" in metrics
        report = fsck(store_of(client))
        assert report.corrupt_chunks == [sha256(good)]


def test_a_streamed_download_never_sends_a_rotted_chunk(tmp_path: Path) -> None:
    with api_client(tmp_path, chunk_size=1 << 20) as client:
        store = store_of(client)
        content = os.urandom(3 << 20)  # 3 MiB: 3 different chunks, streamed
        client.put(f"{WS}/files/big.bin", content=content)
        _revision, refs = store.read_plan("default", "big.bin")
        blob_file(tmp_path, refs[1].sha256).write_bytes(b"\0" * refs[1].size)
        pieces = store.iter_content(refs)
        assert next(pieces) == content[: 1 << 20]
        with pytest.raises(StorageCorrupt):  # the second chunk is never produced
            next(pieces)
        # over HTTP the headers are out: the stream is cut there (uvicorn aborts the
        # connection; the test client re-raises)
        with pytest.raises((StorageCorrupt, RuntimeError)):
            client.get(f"{WS}/files/big.bin")


# -- item 13: a storage outage is loud, and the index catches up afterwards --


def _break_blobs(tmp_path: Path) -> Path:
    """A storage outage, for real: a plain file where the blob directory was."""
    aside = tmp_path / "blobs-aside"
    (tmp_path / "blobs").rename(aside)
    (tmp_path / "blobs").write_text("not a directory")
    return aside


def _repair_blobs(tmp_path: Path, aside: Path) -> None:
    (tmp_path / "blobs").unlink()
    aside.rename(tmp_path / "blobs")


def test_storage_outage_then_recovery_then_the_file_is_found(tmp_path: Path) -> None:
    with api_client(tmp_path, raise_server_exceptions=False) as client:
        client.put(f"{WS}/files/a.md", content=b"# a\n\nfirst words")
        assert client.post(f"{WS}/search", json={"query": "first"}).json()["results"]
        client.put(f"{WS}/files/b.md", content=b"# b\n\nsecond outage words")
        aside = _break_blobs(tmp_path)
        try:
            assert_error(client.post(f"{WS}/search", json={"query": "second"}), 503)
            assert_error(client.post("/memory/search", json={"query": "second"}), 503)
            assert_error(client.get(f"{WS}/index"), 503)
        finally:
            _repair_blobs(tmp_path, aside)
        found = client.post(f"{WS}/search", json={"query": "second"}).json()["results"]
        assert [r["path"] for r in found] == ["b.md"]
        assert client.get(f"{WS}/index").json()["problems"] == []


def test_context_answers_503_when_storage_is_out(tmp_path: Path) -> None:
    with api_client(tmp_path, raise_server_exceptions=False) as client:
        client.put(f"{WS}/files/default.md", content=b"# Me\n\nI like tea.")
        ok = client.post(f"{WS}/context", json={"depth": "basic"})
        assert "I like tea" in ok.json()["markdown"]
        aside = _break_blobs(tmp_path)
        try:
            assert_error(client.post(f"{WS}/context", json={"depth": "basic"}), 503)
            assert_error(client.post("/memory/context", json={"conversation": []}), 503)
        finally:
            _repair_blobs(tmp_path, aside)
        assert "I like tea" in client.post(f"{WS}/context", json={}).json()["markdown"]


def test_a_damaged_file_is_reported_by_the_index_and_retried(tmp_path: Path) -> None:
    with api_client(
        tmp_path, raise_server_exceptions=False, blob_url=file_blobs(tmp_path)
    ) as client:
        good = b"# r\n\nrecoverable words\n"
        client.put(f"{WS}/files/r.md", content=good)
        target = blob_file(tmp_path, sha256(good))
        saved = target.read_bytes()
        target.write_bytes(b"#" * len(good))
        assert client.post(f"{WS}/search", json={"query": "recoverable"}).status_code == 200
        (problem,) = client.get(f"{WS}/index").json()["problems"]
        assert problem["path"] == "r.md" and problem["error_code"] == "STORAGE_CORRUPT"
        target.write_bytes(saved)  # restored from a backup
        index = client.app.state.memory.index.workspace("default")  # type: ignore[attr-defined]
        index._next_retry = 0.0  # the retry period has passed
        found = client.post(f"{WS}/search", json={"query": "recoverable"}).json()["results"]
        assert [r["path"] for r in found] == ["r.md"]
        assert client.get(f"{WS}/index").json()["problems"] == []


# -- item 16: the document describes the API; /docs works offline ---------------------------


def test_docs_are_served_from_the_package_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs", headers={"authorization": ""})
    assert page.status_code == 200
    assert "cdn." not in page.text and "/docs/swagger-ui-bundle.js" in page.text
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"):
        response = client.get(asset, headers={"authorization": ""})
        assert response.status_code == 200 and len(response.content) > 10_000
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_the_document_has_security_errors_summaries_and_tags(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    error = {"$ref": "#/components/schemas/ErrorBody"}
    # MemOS's routes answer in MemOS's envelope, or memhub's when admission refuses first
    memos = {"anyOf": [{"$ref": "#/components/schemas/ErrorEnvelope"}, error]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert len(op["tags"]) == 1, (method, path)
            assert not op["summary"].startswith(("Seed ", "V1 ")), op["summary"]
            if "422" in op["responses"] and method != "head":
                expected = memos if path.startswith("/product/") else error
                schema = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == expected, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    files = doc["paths"]["/v1/workspaces/{workspace}/files/{path}"]
    assert {"201", "412", "409"} <= files["put"]["responses"].keys()
    assert "304" in files["get"]["responses"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "/metrics" in doc["paths"]
    tags = {op["tags"][0] for item in doc["paths"].values() for op in item.values()}
    assert {"files (memory proxy)", "v1 files", "v1 sync", "v1 memory", "health"} <= tags


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.patch(f"{WS}/files/a.md")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT, DELETE"
    assert client.request("PATCH", f"{WS}/chunks/missing").headers["allow"] == "POST"


def test_unknown_query_parameters_and_lax_json_are_refused(client: TestClient) -> None:
    assert_error(client.get(f"{WS}/files?prefx=notes/"), 400)
    assert client.get(f"{WS}/files?prefix=notes/").status_code == 200
    lease = client.post(f"{WS}/leases/l", json={"holder": "h", "force": 0})
    assert_error(lease, 422, "VALIDATION_ERROR")
    assert_error(client.post(f"{WS}/search", json={"query": "a", "k": "5"}), 422)
    assert client.post(f"{WS}/search", json={"query": "a", "k": 5.0}).status_code == 200
