"""The admin API in the MemOS overlay's shapes (seed 000): create, list and revoke
keys by ``user_name`` (a workspace), mint a master key. Admin scope only; key
material is shown once, at creation, and never stored or listed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from apiclient import assert_error, build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

MASTER = "mh_master_" + "k" * 43
KEY_MATERIAL = re.compile(r"mh_[A-Za-z0-9_-]{43}")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return build_app(tmp_path, master_key_hash=sha256(MASTER), key_cache_seconds=0)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers=bearer(app.state.test_key)) as c:
        yield c


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/admin/keys", json=body)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_key_returns_the_seed_shape(client: TestClient) -> None:
    before = time.time()
    body = create(
        client,
        user_name="alice",
        scopes=["write", "read"],
        description="alice's laptop",
        expires_in_days=30,
    )
    assert {"message", "key", "key_prefix", "id", "user_name", "scopes"} <= body.keys()
    assert "won't be shown again" in body["message"]
    assert KEY_MATERIAL.fullmatch(body["key"])
    assert body["key_prefix"] == body["key"][:11]
    assert body["user_name"] == "alice"
    assert body["scopes"] == ["read", "write"]
    assert before + 30 * 86400 - 5 <= body["expires_at"] <= time.time() + 30 * 86400


def test_created_key_works_on_its_workspace_only(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "bob"})
    key = create(client, user_name="alice", scopes=["read", "write"])["key"]
    h = bearer(key)
    assert client.get("/v1/workspaces/alice", headers=h).status_code == 200  # created for it
    assert client.put("/v1/workspaces/alice/files/a.md", content=b"a", headers=h).status_code == 201
    assert client.put("/blob/b.md", content=b"b", headers=h).status_code == 201  # alice's
    assert client.get("/v1/workspaces/alice/files/b.md", headers=h).content == b"b"
    for ws in ("bob", "default"):
        assert_error(client.get(f"/v1/workspaces/{ws}", headers=h), 404, "WORKSPACE_NOT_FOUND")
    assert_error(client.get("/admin/keys", headers=h), 403)


def test_default_scope_is_read(client: TestClient) -> None:
    body = create(client, user_name="carol")
    assert body["scopes"] == ["read"]
    h = bearer(body["key"])
    assert client.get("/v1/workspaces/carol", headers=h).status_code == 200
    assert_error(client.put("/v1/workspaces/carol/files/x", content=b"x", headers=h), 403)


def test_list_never_shows_key_material(app: FastAPI, client: TestClient) -> None:
    keys = [create(client, user_name="alice", scopes=["read"])["key"] for _ in range(3)]
    keys.append(create(client, user_name="bob", scopes=["read", "admin"])["key"])
    keys.append(app.state.test_key)
    for url in ("/admin/keys?user_name=alice", "/admin/keys", "/admin/keys?user_name="):
        response = client.get(url)
        assert response.status_code == 200, response.text
        text = response.text
        assert not KEY_MATERIAL.search(text), f"{url} shows a key"
        for key in keys:
            assert key not in text
            assert sha256(key) not in text, f"{url} shows a key's hash"
    alice = client.get("/admin/keys", params={"user_name": "alice"}).json()
    assert alice["message"] == "Found 3 key(s)"
    assert {k["user_name"] for k in alice["keys"]} == {"alice"}
    assert sorted(k["key_prefix"] for k in alice["keys"]) == sorted(k[:11] for k in keys[:3])
    everyone = client.get("/admin/keys").json()["keys"]
    assert {k["user_name"] for k in everyone} >= {"alice", "bob", "default"}
    # the overlay's list shape (seed 000), with ISO 8601 times
    assert set(everyone[0]) == {
        "id", "key_prefix", "user_name", "scopes", "description",
        "created_at", "last_used_at", "expires_at", "is_active",
    }  # fmt: skip
    for k in everyone:
        assert datetime.fromisoformat(k["created_at"]).tzinfo is not None
        assert k["is_active"] is True


def test_the_database_holds_only_hashes(app: FastAPI, client: TestClient) -> None:
    key = create(client, user_name="alice", scopes=["read"])["key"]
    assert client.get("/v1/workspaces/alice", headers=bearer(key)).status_code == 200
    data_dir = app.state.settings.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.glob("memhub.db*"))
    assert key.encode() not in stored
    assert sha256(key).encode() in stored  # where it looked is where keys live


def test_revoke_key(client: TestClient) -> None:
    body = create(client, user_name="alice", scopes=["read"])
    h = bearer(body["key"])
    assert client.get("/v1/workspaces/alice", headers=h).status_code == 200  # now cached
    response = client.delete(f"/admin/keys/{body['id']}")
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert response.json()["message"]
    refused = assert_error(client.get("/v1/workspaces/alice", headers=h), 401, "UNAUTHORIZED")
    assert "revoked" in refused["detail"]
    listed = client.get("/admin/keys", params={"user_name": "alice"}).json()["keys"]
    assert [k["is_active"] for k in listed] == [False]
    # revoking it again is a 404, as in the overlay
    assert_error(client.delete(f"/admin/keys/{body['id']}"), 404, "NOT_FOUND")


def test_revoke_unknown_key_is_404(client: TestClient) -> None:
    assert_error(client.delete("/admin/keys/0000000000000000"), 404)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"user_name": "alice", "scopes": ["root"]}, 400),
        ({"user_name": "alice", "scopes": []}, 422),
        ({"user_name": "alice", "scopes": ["read", "write", "admin", "read"]}, 422),
        ({"user_name": "../etc"}, 400),
        ({"user_name": "a b"}, 400),
        ({"user_name": ""}, 422),
        ({"user_name": "x" * 65}, 422),
        ({"user_name": "alice", "expires_in_days": 0}, 422),
        ({"user_name": "alice", "expires_in_days": -1}, 422),
        ({"user_name": "alice", "description": "d" * 501}, 422),
        ({"scopes": ["read"]}, 422),
    ],
)
def test_bad_create_requests_are_4xx(client: TestClient, body: dict[str, Any], status: int) -> None:
    assert_error(client.post("/admin/keys", json=body), status)
    listed = client.get("/admin/keys").json()["keys"]
    assert [k["user_name"] for k in listed] == ["default"], "a refused request made a key"


def admin_calls(app: FastAPI) -> list[tuple[str, str]]:
    """Every /admin route the app serves, as a request that would succeed for an admin."""
    calls = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/admin"):
            continue
        for method in operations:
            calls.append((method.upper(), path.replace("{key_id}", "0123456789abcdef")))
    assert len(calls) >= 5, calls
    return calls


@pytest.mark.parametrize("scopes", [["read"], ["read", "write"], ["write"]])
def test_non_admin_keys_get_403_on_every_admin_route(
    app: FastAPI, client: TestClient, scopes: list[str]
) -> None:
    key = create(client, user_name="default", scopes=scopes)["key"]
    token = client.post("/auth/token", headers=bearer(key)).json()["access_token"]
    for credential in (key, token):
        for method, url in admin_calls(app):
            json = {"user_name": "x", "scopes": ["admin"]} if method == "POST" else None
            response = client.request(method, url, json=json, headers=bearer(credential))
            assert_error(response, 403, "FORBIDDEN")
    assert [k["user_name"] for k in client.get("/admin/keys").json()["keys"]] == [
        "default",
        "default",
    ], "a non-admin made a key"


def test_admin_routes_need_credentials(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        for method, url in admin_calls(app):
            response = anonymous.request(method, url)
            assert_error(response, 401, "UNAUTHORIZED")
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_generate_master_key_needs_the_master_key(app: FastAPI, client: TestClient) -> None:
    body = assert_error(client.post("/admin/generate-master-key"), 403, "FORBIDDEN")
    assert "master" in body["detail"]
    admin_token = client.post("/auth/token").json()["access_token"]
    assert_error(client.post("/admin/generate-master-key", headers=bearer(admin_token)), 403)

    response = client.post("/admin/generate-master-key", headers=bearer(MASTER))
    assert response.status_code == 200, response.text
    minted = response.json()
    assert minted["key_hash"] == sha256(minted["key"])
    assert minted["env_line"] == f"MEMHUB_MASTER_KEY_HASH={minted['key_hash']}"
    assert minted["key"] != MASTER and len(minted["key"]) >= 40
    # not valid until the server is configured with it …
    assert_error(client.get("/admin/health", headers=bearer(minted["key"])), 401)
    # … and then it is the master key
    again = build_app(app.state.settings.data_dir, master_key_hash=minted["key_hash"])
    with TestClient(again) as restarted:
        ok = restarted.post("/admin/generate-master-key", headers=bearer(minted["key"]))
        assert ok.status_code == 200
        assert_error(restarted.get("/admin/health", headers=bearer(MASTER)), 401)


def test_master_key_administers_keys(client: TestClient) -> None:
    h = bearer(MASTER)
    created = client.post("/admin/keys", json={"user_name": "dave"}, headers=h)
    assert created.status_code == 200
    assert (
        client.get("/v1/workspaces/dave", headers=bearer(created.json()["key"])).status_code == 200
    )
    assert client.delete(f"/admin/keys/{created.json()['id']}", headers=h).json()["success"]


def test_admin_health(client: TestClient) -> None:
    body = client.get("/admin/health").json()
    assert body == {
        "status": "ok",
        "auth_enabled": True,
        "master_key_configured": True,
        "internal_service_configured": False,
        "rate_limit_backend": "memory",
    }
