"""Tokens: ``POST /auth/token`` turns a key into a short-lived JWT with the key's
workspace and scopes; ``POST /auth/github`` does the same for a GitHub user on the
server's list. GitHub cannot run here, so its ``GET /user`` is a small HTTP server
on loopback that this module starts (the only fake: every memhub part is real).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from apiclient import assert_error, build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from memhub.store.schema import api_keys

SECRET = "tokens-test-secret-" + "s" * 40


def decode(token: str, secret: str = SECRET) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], issuer="memhub")
    return claims


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = build_app(tmp_path, jwt_secret=SECRET, key_cache_seconds=0)
    for ws in ("alpha", "beta"):
        app.state.store.create_workspace(ws)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def exchange(client: TestClient, key: str) -> str:
    response = client.post("/auth/token", headers=bearer(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].count(".") == 2
    return str(body["access_token"])


# -- /auth/token ------------------------------------------------------------------------


def test_token_carries_the_keys_workspace_and_scopes(app: FastAPI, client: TestClient) -> None:
    key, record = app.state.keys.create("alpha", ["read"])
    token = exchange(client, key)
    claims = decode(token)
    assert claims["ws"] == "alpha"
    assert claims["scopes"] == ["read"]
    assert claims["kid"] == record.id
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    h = bearer(token)
    assert client.get("/v1/workspaces/alpha", headers=h).status_code == 200
    assert client.get("/v1/workspaces/alpha/files", headers={"x-api-key": token}).status_code == 200
    assert_error(client.put("/v1/workspaces/alpha/files/a.txt", content=b"x", headers=h), 403)
    assert_error(client.get("/v1/workspaces/beta", headers=h), 404, "WORKSPACE_NOT_FOUND")
    assert_error(client.get("/admin/keys", headers=h), 403)
    # the seed routes act on the token's workspace
    assert client.get("/sync", headers=h).status_code == 200
    assert_error(client.put("/blob/a.txt", content=b"x", headers=h), 403)


def test_write_token_writes_as_its_key(app: FastAPI, client: TestClient) -> None:
    key, record = app.state.keys.create("alpha", ["read", "write"])
    h = bearer(exchange(client, key))
    response = client.put("/v1/workspaces/alpha/files/a.txt", content=b"hello", headers=h)
    assert response.status_code == 201, response.text
    assert response.json()["author"] == f"key:{record.prefix}"
    assert client.get("/v1/workspaces/alpha/files/a.txt", headers=h).content == b"hello"
    assert client.put("/blob/b.txt", content=b"seed", headers=h).status_code == 201
    assert app.state.store.read_bytes("alpha", "b.txt")[1] == b"seed"


def test_admin_token_is_admin(app: FastAPI, client: TestClient) -> None:
    token = exchange(client, app.state.test_key)
    assert decode(token)["scopes"] == ["admin", "read", "write"]
    h = bearer(token)
    assert client.get("/admin/health", headers=h).status_code == 200
    assert client.get("/v1/workspaces/beta", headers=h).status_code == 200
    created = client.post("/admin/keys", json={"user_name": "gamma"}, headers=h)
    assert created.status_code == 200, created.text


def test_master_key_gets_a_token(tmp_path: Path) -> None:
    import hashlib

    master = "mh_master_" + "q" * 43
    app = build_app(
        tmp_path, jwt_secret=SECRET, master_key_hash=hashlib.sha256(master.encode()).hexdigest()
    )
    with TestClient(app) as client:
        token = exchange(client, master)
        claims = decode(token)
        assert claims["ws"] == "default" and "admin" in claims["scopes"]
        assert client.get("/admin/health", headers=bearer(token)).status_code == 200
        # the master token is a token: not a master key, so it cannot mint master keys
        assert_error(client.post("/admin/generate-master-key", headers=bearer(token)), 403)


def test_token_without_credentials_is_401(client: TestClient) -> None:
    response = client.post("/auth/token")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_cannot_be_exchanged_for_a_token(app: FastAPI, client: TestClient) -> None:
    token = exchange(client, app.state.test_key)
    for headers in (bearer(token), {"x-api-key": token}):
        body = assert_error(client.post("/auth/token", headers=headers), 403, "FORBIDDEN")
        assert "token" in body["detail"]


def test_revoking_the_key_kills_its_tokens(app: FastAPI, client: TestClient) -> None:
    key, record = app.state.keys.create("alpha", ["read"])
    first, second = exchange(client, key), exchange(client, key)
    assert first != second
    for token in (first, second):
        assert client.get("/v1/workspaces/alpha", headers=bearer(token)).status_code == 200
    revoked = client.delete(f"/admin/keys/{record.id}", headers=bearer(app.state.test_key))
    assert revoked.status_code == 200
    for credential in (first, second, key):
        response = client.get("/v1/workspaces/alpha", headers=bearer(credential))
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_revocation_on_another_node_reaches_tokens(app: FastAPI, client: TestClient) -> None:
    """Two apps over one database (two nodes), no key cache: a key revoked through one
    node stops its tokens on the other at once."""
    key, record = app.state.keys.create("alpha", ["read"])
    token = exchange(client, key)
    assert client.get("/v1/workspaces/alpha", headers=bearer(token)).status_code == 200
    other = build_app(app.state.settings.data_dir, jwt_secret=SECRET, key_cache_seconds=0)
    with TestClient(other) as node2:
        # the same secret: a token of one node works on the other
        assert node2.get("/v1/workspaces/alpha", headers=bearer(token)).status_code == 200
        revoked = node2.delete(f"/admin/keys/{record.id}", headers=bearer(other.state.test_key))
        assert revoked.status_code == 200
    assert_error(client.get("/v1/workspaces/alpha", headers=bearer(token)), 401)


def test_expired_key_kills_its_tokens(app: FastAPI, client: TestClient) -> None:
    key, record = app.state.keys.create("alpha", ["read"], expires_in_days=1)
    token = exchange(client, key)
    assert client.get("/v1/workspaces/alpha", headers=bearer(token)).status_code == 200
    with app.state.store.meta.write() as conn:
        conn.execute(
            update(api_keys).where(api_keys.c.id == record.id).values(expires_at=time.time() - 1)
        )
    body = assert_error(client.get("/v1/workspaces/alpha", headers=bearer(token)), 401)
    assert "expired" in body["detail"]


def test_tokens_of_another_secret_are_401(app: FastAPI, client: TestClient, tmp_path: Path) -> None:
    other = build_app(tmp_path / "other", jwt_secret="a-different-secret-" + "d" * 40)
    with TestClient(other) as foreign:
        token = exchange(foreign, other.state.test_key)
    assert_error(client.get("/v1/workspaces/default", headers=bearer(token)), 401)


# -- /auth/github against a GitHub of our own -------------------------------------------


class FakeGitHub:
    """``GET /user`` as GitHub answers it: the login for a good token, 401 otherwise."""

    def __init__(self) -> None:
        self.users = {
            "tok-octocat": "octocat",
            "tok-octocat-caps": "OctoCat",
            "tok-mallory": "mallory",
        }
        self.seen: list[tuple[str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                fake.seen.append((self.path, auth))
                token = (auth or "").removeprefix("Bearer ")
                if self.path != "/user":
                    self.reply(404, {"message": "Not Found"})
                elif token == "tok-broken":
                    self.reply(500, {"message": "Server Error"})
                elif token == "tok-nologin":
                    self.reply(200, {"id": 1})
                elif token in fake.users:
                    self.reply(200, {"login": fake.users[token], "id": 583231})
                else:
                    self.reply(401, {"message": "Bad credentials"})

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def gh_app(tmp_path: Path, github: FakeGitHub) -> Iterator[tuple[FastAPI, TestClient]]:
    app = build_app(
        tmp_path,
        jwt_secret=SECRET,
        github_api_url=github.url,
        github_users="octocat=team, bare",
    )
    with TestClient(app) as client:
        yield app, client


def sign_in(client: TestClient, github_token: str) -> Any:
    return client.post("/auth/github", params={"github_token": github_token})


def test_github_user_on_the_list_gets_a_token(
    gh_app: tuple[FastAPI, TestClient], github: FakeGitHub
) -> None:
    app, client = gh_app
    assert "team" not in {w["name"] for w in app.state.store.list_workspaces()}
    response = sign_in(client, "tok-octocat")
    assert response.status_code == 200, response.text
    assert github.seen[-1] == ("/user", "Bearer tok-octocat")
    token = response.json()["access_token"]
    claims = decode(token)
    assert (claims["ws"], claims["scopes"], claims["sub"]) == (
        "team",
        ["read", "write"],
        "github:octocat",
    )
    h = bearer(token)
    assert client.get("/v1/workspaces/team", headers=h).status_code == 200  # created
    put = client.put("/v1/workspaces/team/files/hello.md", content=b"hi", headers=h)
    assert put.status_code == 201
    assert put.json()["author"] == "github:octocat"
    assert_error(client.get("/v1/workspaces/default", headers=h), 404, "WORKSPACE_NOT_FOUND")
    assert_error(client.get("/admin/keys", headers=h), 403)
    assert_error(client.post("/auth/token", headers=h), 403)  # not exchangeable either


def test_github_login_is_matched_without_case(gh_app: tuple[FastAPI, TestClient]) -> None:
    _app, client = gh_app
    response = sign_in(client, "tok-octocat-caps")
    assert response.status_code == 200, response.text
    assert decode(response.json()["access_token"])["ws"] == "team"


def test_github_user_not_on_the_list_is_403(
    gh_app: tuple[FastAPI, TestClient], github: FakeGitHub
) -> None:
    app, client = gh_app
    body = assert_error(sign_in(client, "tok-mallory"), 403, "FORBIDDEN")
    assert "mallory" in body["detail"]
    assert github.seen[-1] == ("/user", "Bearer tok-mallory")
    assert "mallory" not in {w["name"] for w in app.state.store.list_workspaces()}


def test_bad_github_token_is_401(gh_app: tuple[FastAPI, TestClient]) -> None:
    _app, client = gh_app
    assert_error(sign_in(client, "tok-stolen"), 401, "UNAUTHORIZED")
    assert_error(sign_in(client, "tok-ключ"), 401, "UNAUTHORIZED")  # never sent on


@pytest.mark.parametrize("token", ["tok-broken", "tok-nologin"])
def test_github_answering_nonsense_is_503(gh_app: tuple[FastAPI, TestClient], token: str) -> None:
    _app, client = gh_app
    assert_error(sign_in(client, token), 503, "STORAGE_UNAVAILABLE")


def test_github_token_is_required(gh_app: tuple[FastAPI, TestClient]) -> None:
    _app, client = gh_app
    assert_error(client.post("/auth/github"), 422)
    assert_error(sign_in(client, ""), 422)


def test_github_unreachable_is_503(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    app = build_app(
        tmp_path, github_api_url=f"http://127.0.0.1:{closed}", github_users="octocat=team"
    )
    with TestClient(app) as client:
        body = assert_error(sign_in(client, "tok-octocat"), 503, "STORAGE_UNAVAILABLE")
    assert "GitHub" in body["detail"]


def test_github_sign_in_off_without_a_user_list(tmp_path: Path, github: FakeGitHub) -> None:
    app = build_app(tmp_path, github_api_url=github.url)  # no github_users
    before = len(github.seen)
    with TestClient(app) as client:
        body = assert_error(sign_in(client, "tok-octocat"), 403, "FORBIDDEN")
    assert "MEMHUB_GITHUB_USERS" in body["detail"]
    assert len(github.seen) == before, "it asked GitHub although sign-in is off"


def test_github_user_without_a_workspace_mapping_gets_their_login(
    gh_app: tuple[FastAPI, TestClient], github: FakeGitHub
) -> None:
    github.users["tok-bare"] = "bare"
    try:
        _app, client = gh_app
        response = sign_in(client, "tok-bare")
        assert response.status_code == 200, response.text
        assert decode(response.json()["access_token"])["ws"] == "bare"
    finally:
        del github.users["tok-bare"]


def test_github_sign_in_with_a_bad_key_alongside_is_401(gh_app: tuple[FastAPI, TestClient]) -> None:
    _app, client = gh_app
    response = client.post(
        "/auth/github", params={"github_token": "tok-octocat"}, headers=bearer("mh_nope")
    )
    assert_error(response, 401)
