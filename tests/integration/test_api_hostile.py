"""Hostile input over HTTP: never a 500, always a JSON error body, nothing written.

Bad paths (sent pre-encoded so the client does not normalise them, and once
straight to the ASGI app), bodies over the limit (declared and streamed),
malformed JSON, out-of-range numbers and long header values, and a
hypothesis run of random path strings against ``PUT /blob/{path}``.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from apiclient import (
    WS,
    api_client,
    asgi_json,
    asgi_request,
    assert_error,
    build_app,
    sha256,
    sync_files,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

LIMIT = 1000
BIG_INT = 10**30  # beyond every integer column (int64)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def small(tmp_path: Path) -> Iterator[TestClient]:
    """A client of an app that takes bodies of at most ``LIMIT`` bytes."""
    with api_client(tmp_path, raise_server_exceptions=False, max_body_bytes=LIMIT) as c:
        yield c


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A client over each metadata database; on PostgreSQL (shared by the session) the
    default workspace is one of this test's own."""
    options: dict[str, Any] = {"max_body_bytes": LIMIT}
    if request.param == "postgresql":
        options["database_url"] = request.getfixturevalue("postgres_url")
        options["default_workspace"] = f"hostile-{uuid.uuid4().hex[:12]}"
    with api_client(tmp_path, raise_server_exceptions=False, **options) as c:
        yield c


def assert_nothing_written(client: TestClient) -> None:
    assert sync_files(client) == {}
    workspace = client.app.state.default_workspace
    changes = client.get(f"/v1/workspaces/{workspace}/changes").json()
    assert changes["changes"] == []
    assert changes["head_rev"] == 0


# -- paths --------------------------------------------------------------------------


BAD_PATHS = {
    "dotdot": "%2e%2e/x",
    "dotdot-upper": "%2E%2E",
    "dotdot-inner": "a/%2e%2e/b",
    "dot": "a/%2e/b",
    "dot-alone": "%2e",
    "empty-segment": "a//b",
    "encoded-slashes": "a%2F%2Fb",
    "leading-slash": "%2Fetc/passwd",
    "trailing-slash": "a/b/",
    "backslash": "a%5Cb",
    "backslash-dotdot": "..%5C..%5Cwindows",
    "nul": "a%00b",
    "control-01": "a%01b",
    "newline-inside": "a%0Ab",
    "newline-trailing": "a%0A",
    "carriage-return": "a%0Db",
    "delete-char": "a%7Fb",
    "bidi-override": "a%E2%80%AEb",
    "too-long-path": "/".join(["p" * 200] * 6),
    "too-long-segment": "s" * 257,
    "too-long-multibyte-segment": quote("я" * 130),
    "empty": "",
}


@pytest.mark.parametrize("path", list(BAD_PATHS.values()), ids=list(BAD_PATHS))
def test_bad_seed_paths_are_400(client: TestClient, path: str) -> None:
    assert_error(client.put(f"/blob/{path}", content=b"x"), 400, "INVALID_PATH")
    md5_new = client.put(f"/blob/{path}", content=b"x", headers={"Content-MD5": "new"})
    assert_error(md5_new, 400, "INVALID_PATH")
    assert_error(client.get(f"/blob/{path}"), 400, "INVALID_PATH")
    assert_error(client.delete(f"/blob/{path}"), 400, "INVALID_PATH")
    assert_nothing_written(client)


@pytest.mark.parametrize("path", list(BAD_PATHS.values()), ids=list(BAD_PATHS))
def test_bad_v1_paths_are_400(client: TestClient, path: str) -> None:
    assert_error(client.put(f"{WS}/files/{path}", content=b"x"), 400, "INVALID_PATH")
    assert_error(client.get(f"{WS}/files/{path}"), 400, "INVALID_PATH")
    assert_error(client.get(f"{WS}/history/{path}"), 400, "INVALID_PATH")
    # The JSON body carries the path decoded, as a client would send it.
    manifest = {"path": unquote(path), "sha256": sha256(b""), "chunks": []}
    assert_error(client.post(f"{WS}/commits", json=manifest), 400, "INVALID_PATH")
    assert_nothing_written(client)


def test_a_trailing_newline_does_not_retarget_the_write(client: TestClient) -> None:
    """``a%0A`` is not ``a``: the write must not land on another file."""
    created = client.put("/blob/a", content=b"original", headers={"Content-MD5": "new"})
    assert created.status_code == 201
    response = client.put("/blob/a%0A", content=b"clobbered")
    assert_error(response, 400, "INVALID_PATH")
    assert client.get("/blob/a").content == b"original"
    assert set(sync_files(client)) == {"a"}


@pytest.mark.parametrize(
    "raw_path",
    ["/blob/../x", "/blob/a/../../x", "/blob/./x", "/blob/a/./b", "/blob/a/.."],
)
def test_dot_segments_reach_the_router_raw_and_are_400(tmp_path: Path, raw_path: str) -> None:
    app = build_app(tmp_path)
    status, headers, body = asgi_request(app, "PUT", raw_path, body=b"x")
    assert status == 400, body
    assert headers["content-type"].startswith("application/json")
    assert asgi_json(body)["error_code"] == "INVALID_PATH"
    status, _headers, body = asgi_request(app, "GET", "/sync")
    assert status == 200
    assert asgi_json(body)["files"] == {}
    app.state.store.close()


def test_bad_names_in_the_url_are_400(client: TestClient) -> None:
    for url in [
        "/v1/workspaces/%2e%2e/files/x",
        "/v1/workspaces/a%20b",
        "/v1/workspaces/" + "w" * 65,
        f"{WS}/leases/bad%20name",
        f"{WS}/leases/" + "l" * 65,
    ]:
        assert_error(client.get(url), 400, "INVALID_PATH")
    # A slash in a name is another route, which does not exist.
    assert_error(client.post(f"{WS}/leases/a%2Fb", json={"holder": "h"}), 404, "NOT_FOUND")


def test_bad_prefix_is_400(client: TestClient) -> None:
    for prefix in ["../", "a/../b", "a\x00", "/abs", "a\\b"]:
        response = client.get(f"{WS}/files", params={"prefix": prefix})
        assert_error(response, 400, "INVALID_PATH")


def test_invalid_utf8_in_the_path_never_500s(client: TestClient) -> None:
    for path in ["%FF%FE", "%C3%28", "a%ED%A0%80b"]:
        response = client.put(f"/blob/{path}", content=b"x")
        assert response.status_code in (201, 400), response.text
        if response.status_code == 400:
            assert_error(response, 400, "INVALID_PATH")


# -- body limit ----------------------------------------------------------------------


def test_declared_body_over_the_limit_is_413(small: TestClient) -> None:
    response = small.put("/blob/big.bin", content=b"x" * (2 * LIMIT))
    body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["context"] == {"max_bytes": LIMIT}
    assert_nothing_written(small)


def test_streamed_body_over_the_limit_is_413(small: TestClient) -> None:
    def pieces() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    response = small.put("/blob/big.bin", content=pieces())
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    v1 = small.put(f"{WS}/files/big.bin", content=pieces())
    assert_error(v1, 413, "PAYLOAD_TOO_LARGE")
    assert_nothing_written(small)


def test_body_at_the_limit_is_accepted(small: TestClient) -> None:
    assert small.put("/blob/exact.bin", content=b"z" * LIMIT).status_code == 201
    assert small.get("/blob/exact.bin").content == b"z" * LIMIT


def test_oversized_json_body_is_413(small: TestClient) -> None:
    operations = [{"op": "put", "path": f"f{i}", "content": "x" * 50} for i in range(40)]
    response = small.post(f"{WS}/batch/write", json={"operations": operations})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert_nothing_written(small)


def test_streamed_chunk_upload_over_the_limit_is_413(small: TestClient) -> None:
    data = b"c" * (2 * LIMIT)

    def pieces() -> Iterator[bytes]:
        yield data[:LIMIT]
        yield data[LIMIT:]

    response = small.put(f"{WS}/chunks/{sha256(data)}", content=pieces())
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    missing = small.post(f"{WS}/chunks/missing", json={"chunks": [sha256(data)]})
    assert missing.json()["missing"] == [sha256(data)]


def test_garbage_content_length_is_not_a_500(client: TestClient) -> None:
    response = client.put("/blob/x", content=b"x", headers={"Content-Length": "abc"})
    assert response.status_code < 500


# -- malformed JSON and wrong types ---------------------------------------------------


JSON_ROUTES = [
    ("POST", "/v1/workspaces"),
    ("POST", f"{WS}/restore/a.txt"),
    ("POST", f"{WS}/chunks/missing"),
    ("POST", f"{WS}/commits"),
    ("POST", f"{WS}/batch/read"),
    ("POST", f"{WS}/batch/write"),
    ("POST", f"{WS}/leases/l"),
    ("POST", f"{WS}/leases/l/renew"),
    ("POST", f"{WS}/leases/l/release"),
]
BAD_BODIES = {
    "not-json": b"{not json",
    "truncated": b'{"name": ',
    "invalid-utf8": b"\xff\xfe{}",
    "array": b"[1, 2, 3]",
    "string": b'"just a string"',
    "null": b"null",
    "empty": b"",
    "wrong-types": b'{"name": 5, "rev": "x", "chunks": "no", "paths": 1, "operations": {},'
    b' "holder": [], "token": "t", "path": 1, "sha256": 2}',
    "nan": b'{"holder": "h", "ttl": NaN, "token": 1}',
    "deep": b"[" * 500 + b"]" * 500,
}


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES, ids=[u for _, u in JSON_ROUTES])
def test_malformed_json_is_422(client: TestClient, method: str, url: str) -> None:
    for name, body in BAD_BODIES.items():
        response = client.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )
        if name == "nan":  # JSON to Python's parser; ttl NaN is refused, a release 404s
            assert 400 <= response.status_code < 500, (name, response.text)
            assert_error(response, response.status_code)
            continue
        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert isinstance(error["context"]["errors"], list), name
    assert set(sync_files(client)) == set()


def test_json_nested_past_the_recursion_limit_is_4xx(client: TestClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.post(
        "/v1/workspaces", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


BAD_LEASES = [
    {"holder": "h", "ttl": 0},
    {"holder": "h", "ttl": -5},
    {"holder": "h", "ttl": 7 * 24 * 3600 + 1},
    {"holder": "h", "ttl": 1e308},
    {"holder": "h", "ttl": "soon"},
    {"holder": ""},
    {"holder": "h" * 256},
    {"ttl": 60},
]


def test_bad_lease_requests_are_422(client: TestClient) -> None:
    for payload in BAD_LEASES:
        response = client.post(f"{WS}/leases/l", json=payload)
        assert_error(response, 422, "VALIDATION_ERROR")
    assert client.get(f"{WS}/leases").json() == {"leases": []}


@pytest.mark.parametrize("holder", ["   ", "bad\x00holder", "line\nbreak"])
def test_unprintable_lease_holder_is_400(client: TestClient, holder: str) -> None:
    response = client.post(f"{WS}/leases/l", json={"holder": holder, "ttl": 60})
    assert_error(response, 400, "BAD_REQUEST")


def test_bad_renew_ttl_is_4xx(client: TestClient) -> None:
    token = client.post(f"{WS}/leases/l", json={"holder": "h", "ttl": 60}).json()["token"]
    for ttl in [0, -1, 10**9]:
        response = client.post(
            f"{WS}/leases/l/renew", json={"holder": "h", "token": token, "ttl": ttl}
        )
        assert_error(response, 422, "VALIDATION_ERROR")


BAD_NUMBERS = [
    f"{WS}/changes?since=-1",
    f"{WS}/changes?since=abc",
    f"{WS}/changes?limit=0",
    f"{WS}/changes?limit=100001",
    f"{WS}/changes?wait=-1",
    f"{WS}/changes?wait=61",
    f"{WS}/changes?wait=nan",
    f"{WS}/files/a.txt?rev=abc",
    f"{WS}/files/a.txt?rev=0",
    f"{WS}/files/a.txt?rev=-3",
    f"{WS}/files/a.txt?rev=1.5",
    f"{WS}/revisions/abc",
    f"{WS}/revisions/1e3/content",
    f"{WS}/history/a.txt?before=0",
    f"{WS}/history/a.txt?limit=-1",
    f"{WS}/files?limit=0",
    f"{WS}/files?include_deleted=maybe",
]


def test_bad_query_and_path_numbers_are_422(client: TestClient) -> None:
    client.put(f"{WS}/files/a.txt", content=b"a")
    for url in BAD_NUMBERS:
        assert_error(client.get(url), 422, "VALIDATION_ERROR")


def huge_numbers(base: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    manifest = {
        "path": "m",
        "sha256": sha256(b"m"),
        "chunks": [{"sha256": sha256(b"m"), "size": BIG_INT}],
    }
    return {
        "rev": ("GET", f"{base}/files/a.txt?rev={BIG_INT}", None),
        "rev 2**63": ("GET", f"{base}/files/a.txt?rev={2**63}", None),
        "revision": ("GET", f"{base}/revisions/{BIG_INT}", None),
        "revision content": ("GET", f"{base}/revisions/{BIG_INT}/content", None),
        "since": ("GET", f"{base}/changes?since={BIG_INT}", None),
        "before": ("GET", f"{base}/history/a.txt?before={BIG_INT}", None),
        "restore": ("POST", f"{base}/restore/a.txt", {"rev": BIG_INT}),
        "renew token": ("POST", f"{base}/leases/l/renew", {"holder": "h", "token": BIG_INT}),
        "release token": ("POST", f"{base}/leases/l/release", {"holder": "h", "token": BIG_INT}),
        "chunk size": ("POST", f"{base}/commits", manifest),
    }


def test_integers_beyond_int64_are_4xx(backend_client: TestClient) -> None:
    client = backend_client
    base = f"/v1/workspaces/{client.app.state.default_workspace}"
    client.put(f"{base}/files/a.txt", content=b"a")
    client.put(f"{base}/chunks/{sha256(b'm')}", content=b"m")
    client.post(f"{base}/leases/l", json={"holder": "h", "ttl": 60})
    failures = {}
    for name, (method, url, payload) in huge_numbers(base).items():
        response = client.request(method, url, json=payload)
        if not 400 <= response.status_code < 500:
            failures[name] = (response.status_code, response.text)
        else:
            assert_error(response, response.status_code)
    assert failures == {}
    assert client.get(f"{base}/files/a.txt").content == b"a"
    assert [c["path"] for c in client.get(f"{base}/changes").json()["changes"]] == ["a.txt"]


def test_fence_token_beyond_int64_is_rejected_not_500(backend_client: TestClient) -> None:
    client = backend_client
    base = f"/v1/workspaces/{client.app.state.default_workspace}"
    client.post(f"{base}/leases/l", json={"holder": "h", "ttl": 60})
    fence = {"X-Memhub-Lease": "l", "X-Memhub-Lease-Token": str(BIG_INT)}
    response = client.put(f"{base}/files/a.txt", content=b"x", headers=fence)
    assert_error(response, 412, "FENCING_TOKEN_REJECTED")
    assert_nothing_written(client)


LONG_HEADERS = {
    "seed Content-Type": ("/blob/a.txt", {"Content-Type": "text/" + "x" * 300}),
    "v1 Content-Type": ("v1", {"Content-Type": "text/" + "x" * 300}),
    "v1 X-Memhub-Session-Id": ("v1", {"X-Memhub-Session-Id": "s" * 300}),
    "v1 X-Memhub-Message": ("v1", {"X-Memhub-Message": "m" * 5000}),
}


def test_over_long_header_values_are_400(backend_client: TestClient) -> None:
    """Longer than the columns that hold them (255): refused, on every database."""
    client = backend_client
    base = f"/v1/workspaces/{client.app.state.default_workspace}"
    failures = {}
    for name, (route, headers) in LONG_HEADERS.items():
        url = f"{base}/files/a.txt" if route == "v1" else route
        response = client.put(url, content=b"x", headers=headers)
        if response.status_code != 400:
            failures[name] = (response.status_code, response.text)
        else:
            assert_error(response, 400)
    assert failures == {}
    assert_nothing_written(client)


def test_bad_batch_items_fail_alone(client: TestClient) -> None:
    operations = [
        {"op": "put", "path": "ok.txt", "content": "fine"},
        {"op": "put", "path": "b64.txt", "content": "!!!not base64", "encoding": "base64"},
        {"op": "put", "path": "nocontent.txt"},
        {"op": "put", "path": "nul\x00.txt", "content": "x"},
        {"op": "put", "path": "garbage.txt", "content": "x", "if_match": "garbage"},
    ]
    response = client.post(f"{WS}/batch/write", json={"operations": operations})
    assert response.status_code == 200
    statuses = [(r["path"], r["status"]) for r in response.json()["results"]]
    assert statuses == [
        ("ok.txt", 201),
        ("b64.txt", 400),
        ("nocontent.txt", 400),
        ("nul\x00.txt", 400),
        ("garbage.txt", 400),
    ]
    assert set(sync_files(client)) == {"ok.txt"}


def test_batch_limits_are_422(tmp_path: Path) -> None:
    with api_client(tmp_path / "big", raise_server_exceptions=False) as roomy:
        too_many = {"operations": [{"op": "delete", "path": f"f{i}"} for i in range(1001)]}
        assert_error(roomy.post(f"{WS}/batch/write", json=too_many), 422, "VALIDATION_ERROR")
        reads = {"paths": [f"f{i}" for i in range(1001)]}
        assert_error(roomy.post(f"{WS}/batch/read", json=reads), 422, "VALIDATION_ERROR")
        bad_op = {"operations": [{"op": "chmod", "path": "x"}]}
        assert_error(roomy.post(f"{WS}/batch/write", json=bad_op), 422, "VALIDATION_ERROR")
        bad_encoding = {"paths": ["x"], "encoding": "rot13"}
        assert_error(roomy.post(f"{WS}/batch/read", json=bad_encoding), 422)


def test_batch_read_of_bad_paths_fails_per_item(client: TestClient) -> None:
    response = client.post(f"{WS}/batch/read", json={"paths": ["../x", "", "a\x00", "fine"]})
    assert response.status_code == 200
    files = response.json()["files"]
    assert [f["status"] for f in files] == [400, 400, 400, 404]
    assert [f["error"]["error_code"] for f in files] == [
        "INVALID_PATH",
        "INVALID_PATH",
        "INVALID_PATH",
        "FILE_NOT_FOUND",
    ]


# -- unknown routes and methods --------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/nope", "/v1", "/v1/nope", "/v2/workspaces", "/blobs/x", "/health/x"]
)
def test_unknown_route_is_404_json(client: TestClient, url: str) -> None:
    assert_error(client.get(url), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/health"),
        ("DELETE", "/sync"),
        ("POST", "/blob/a.txt"),
        ("PATCH", "/blob/a.txt"),
        ("PUT", "/v1/workspaces"),
        ("DELETE", f"{WS}/changes"),
        ("GET", f"{WS}/commits"),
        ("GET", f"{WS}/batch/write"),
    ],
)
def test_wrong_method_is_405_json(client: TestClient, method: str, url: str) -> None:
    response = client.request(method, url)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "allow" in response.headers


# -- random paths ----------------------------------------------------------------------

FRAGMENTS = ["/", ".", "..", "\\", "\x00", "\x01", "\n", "\r", "\t", "%", "%2e", " ", "?", "#"]
PATH_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.characters(codec="utf-8")), max_size=30).map(
        "".join
    ),
    st.lists(st.sampled_from(["a", "b", ".", "..", ""]), min_size=1, max_size=5).map("/".join),
    st.tuples(
        st.sampled_from(["", "notes/", "a/b/"]),
        st.text(st.characters(codec="ascii"), max_size=8),
        st.sampled_from(FRAGMENTS),
    ).map("".join),
)


def test_random_paths_never_5xx(tmp_path: Path) -> None:
    """Random path strings at ``PUT /blob/{quoted path}``, through the ASGI app as a server
    hands them over (decoded once): a 2xx writes exactly the file named, a 4xx is JSON."""
    app = build_app(tmp_path)

    def call(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        target = "/blob/" + quote(path, safe="")
        status, _headers, content = asgi_request(
            app, method, "/blob/" + path, body=body, raw_path=target.encode("ascii")
        )
        return status, content

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: a red here is never luck
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(path=PATH_TEXT)
    @example(path="notes/a.md\n")  # the router's "$" matches before a final newline
    @example(path="a\nb")
    @example(path="%2e%2e/x")  # a literal '%': decoded once only
    @example(path="../x")
    @example(path="caf\u0065\u0301/ok.md")  # NFD in, NFC stored
    def put_random(path: str) -> None:
        status, content = call("PUT", path, b"data")
        assert status in {200, 201, 400, 404, 412}, (path, status, content)
        if status >= 400:
            error = asgi_json(content)
            assert {"detail", "error_code"} <= error.keys(), (path, error)
            return
        # The file written is the one named (in NFC), not a neighbour of it.
        _status, index = asgi_request(app, "GET", "/sync")[::2]
        assert unicodedata.normalize("NFC", path) in asgi_json(index)["files"], path
        read_status, read = call("GET", path)
        assert (read_status, read) == (200, b"data"), path

    try:
        put_random()
        assert asgi_request(app, "GET", "/health")[0] == 200
    finally:
        app.state.store.close()
