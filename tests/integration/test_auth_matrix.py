"""Tenant isolation: every route × every kind of credential → the expected status,
and not one byte of workspace A in an answer to a caller who cannot read A.

The routes come from the app itself (``app.openapi()["paths"]`` plus the routes
hidden from the schema: ``/docs``, ``/metrics``, …), so a route added without an
expectation here fails :func:`test_every_route_has_an_expectation`.

Workspace A (``alpha``) holds a secret marker in a file's path and content, in a
revision message, in a lease name and in a search-indexed markdown file;
workspace B (``beta``) holds a marker of its own. The credentials:

==========  ==============================================================
none        no credentials at all
malformed   ``Bearer not-a-key!``
unknown     a well-formed ``mh_…`` key the server never issued
other       a read/write key of workspace B
read        a read-only key of A
write       a read/write key of A
admin       an admin key of A (admin reaches every workspace)
revoked     a read/write key of A, revoked
expired     a read/write key of A whose ``expires_at`` has passed
master      the master key (``MEMHUB_MASTER_KEY_HASH``): admin, home ``default``
==========  ==============================================================

Every cell uses names of its own (``scratch/v1-<who>.txt``, lease ``ren-<who>``, …)
so the cells do not depend on each other's order.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from apiclient import build_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import update

from memhub.auth.keys import generate_key
from memhub.core.chunkbatch import encode
from memhub.memory.items import Draft, Items
from memhub.store.schema import api_keys

A, B, DEFAULT = "alpha", "beta", "default"
MARKER_A = "Zorblaxquintessa"  # one word: the analyzer indexes it as one token
MARKER_B = "Wumplefrobnitzer"
MASTER_KEY = "mh_master_" + "m" * 43

PRINCIPALS = (
    "none",
    "malformed",
    "unknown",
    "other",
    "read",
    "write",
    "admin",
    "revoked",
    "expired",
    "master",
)
INVALID = frozenset({"malformed", "unknown", "revoked", "expired"})
SCOPES = {
    "other": {"read", "write"},
    "read": {"read"},
    "write": {"read", "write"},
    "admin": {"read", "write", "admin"},
    "master": {"read", "write", "admin"},
}
# whose answers may carry A's data (they can read A); everyone else must never see it
READS_A = frozenset({"read", "write", "admin", "master"})
# whose answers may carry B's data
READS_B = frozenset({"other", "admin", "master"})


@dataclass
class World:
    app: FastAPI
    client: TestClient
    headers: dict[str, dict[str, str]]
    vault_rev: int
    restore_revs: dict[str, int]
    victim_key_ids: dict[str, str]
    commit_chunks: dict[str, tuple[str, int]]
    item_id: str = ""  # a memory item of A holding A's marker
    victim_items: dict[str, str] = field(default_factory=dict)  # "<route>-<who>" -> item id


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


Expected = tuple[int, str | None]  # status, error_code (None: a success, or not checked)


@dataclass(frozen=True)
class Case:
    """How to call one route as ``who``, and what its access rule is.

    access: ``public`` (no auth at all), ``token`` (/auth/token), ``github``,
    ``any`` (any valid credential), ``admin``, ``master``, ``ws:<scope>`` (workspace A
    named in the URL or body), ``own:<scope>`` (the caller's own workspace: seed routes).
    ``foreign`` is the status an ``own:`` route gives a caller whose own workspace is
    not A (B's key, the master key), which acts on its own workspace instead."""

    call: Callable[[World, str], Call]
    access: str
    ok: int = 200
    foreign: Expected | None = None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


V1 = f"/v1/workspaces/{A}"
VAULT = "vault/secret.txt"  # markers never go in a URL: a 404 may echo what was asked


def _c(method: str, url: str, **kw: Any) -> Callable[[World, str], Call]:
    return lambda _w, _p: Call(method, url, **kw)


def _session(session_id: str, user_id: str | None = None) -> dict[str, Any]:
    body = {"memory_input": "Met Ingrid at the Oslo office.", "session_id": session_id}
    return {**body, "user_id": user_id} if user_id else body


def _stage(world: World, session_id: str) -> str:
    """Stage a session of A just before a commit cell runs (commits of one workspace
    touch the same user entity, so each is staged against the current heads)."""
    world.app.state.sessions.process(A, session_id, "Met Ingrid at the Oslo office.")
    return session_id


CASES: dict[tuple[str, str], Case] = {
    # seed routes: the caller's own workspace
    ("GET", "/health"): Case(_c("GET", "/health"), "public"),
    ("GET", "/blob/{path}"): Case(
        _c("GET", f"/blob/{VAULT}"), "own:read", foreign=(404, "FILE_NOT_FOUND")
    ),
    ("PUT", "/blob/{path}"): Case(
        lambda _w, p: Call("PUT", f"/blob/scratch/blob-{p}.txt", content=b"hello"),
        "own:write",
        ok=201,
        foreign=(201, None),
    ),
    ("DELETE", "/blob/{path}"): Case(
        lambda _w, p: Call("DELETE", f"/blob/victims/blob-{p}.txt"),
        "own:write",
        ok=204,
        foreign=(204, None),
    ),
    ("GET", "/sync"): Case(_c("GET", "/sync"), "own:read", foreign=(200, None)),
    # the memory proxy's namespaced routes: a path prefix in the caller's own workspace
    ("GET", "/sync/{namespace}"): Case(_c("GET", "/sync/vault"), "own:read", foreign=(200, None)),
    ("GET", "/{namespace}/blob/{path}"): Case(
        _c("GET", "/vault/blob/secret.txt"), "own:read", foreign=(404, "FILE_NOT_FOUND")
    ),
    ("PUT", "/{namespace}/blob/{path}"): Case(
        lambda _w, p: Call(
            "PUT", f"/scratch/blob/ns-{p}.txt", content=b"hi", headers={"If-Match-Version": "0"}
        ),
        "own:write",
        ok=201,
        foreign=(201, None),
    ),
    ("DELETE", "/{namespace}/blob/{path}"): Case(
        lambda _w, p: Call("DELETE", f"/victims/blob/ns-{p}.txt"),
        "own:write",
        foreign=(200, None),
    ),
    # /v1: workspace A in the URL
    ("GET", "/v1/workspaces"): Case(_c("GET", "/v1/workspaces"), "any"),
    ("POST", "/v1/workspaces"): Case(
        lambda _w, p: Call("POST", "/v1/workspaces", json={"name": f"new-{p}"}), "admin", ok=201
    ),
    ("GET", "/v1/workspaces/{workspace}"): Case(_c("GET", V1), "ws:read"),
    ("GET", "/v1/workspaces/{workspace}/files"): Case(_c("GET", f"{V1}/files"), "ws:read"),
    ("HEAD", "/v1/workspaces/{workspace}/files/{path}"): Case(
        _c("HEAD", f"{V1}/files/{VAULT}"), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/files/{path}"): Case(
        _c("GET", f"{V1}/files/{VAULT}"), "ws:read"
    ),
    ("PUT", "/v1/workspaces/{workspace}/files/{path}"): Case(
        lambda _w, p: Call("PUT", f"{V1}/files/scratch/v1-{p}.txt", content=b"hello"),
        "ws:write",
        ok=201,
    ),
    ("DELETE", "/v1/workspaces/{workspace}/files/{path}"): Case(
        lambda _w, p: Call("DELETE", f"{V1}/files/victims/v1-{p}.txt"), "ws:write"
    ),
    ("GET", "/v1/workspaces/{workspace}/history/{path}"): Case(
        _c("GET", f"{V1}/history/{VAULT}"), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/revisions/{rev}"): Case(
        lambda w, _p: Call("GET", f"{V1}/revisions/{w.vault_rev}"), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/revisions/{rev}/content"): Case(
        lambda w, _p: Call("GET", f"{V1}/revisions/{w.vault_rev}/content"), "ws:read"
    ),
    ("POST", "/v1/workspaces/{workspace}/restore/{path}"): Case(
        lambda w, p: Call("POST", f"{V1}/restore/restore/{p}.txt", json={"rev": w.restore_revs[p]}),
        "ws:write",
    ),
    ("GET", "/v1/workspaces/{workspace}/changes"): Case(_c("GET", f"{V1}/changes"), "ws:read"),
    ("POST", "/v1/workspaces/{workspace}/chunks/missing"): Case(
        _c("POST", f"{V1}/chunks/missing", json={"chunks": [sha(b"nothing")]}), "ws:write"
    ),
    ("POST", "/v1/workspaces/{workspace}/chunks/batch"): Case(
        lambda _w, p: Call(
            "POST", f"{V1}/chunks/batch", content=encode([f"batch-{p}".encode()], compress=False)[0]
        ),
        "ws:write",
    ),
    ("PUT", "/v1/workspaces/{workspace}/chunks/{sha256}"): Case(
        lambda _w, p: Call(
            "PUT", f"{V1}/chunks/{sha(f'chunk-{p}'.encode())}", content=f"chunk-{p}".encode()
        ),
        "ws:write",
        ok=201,
    ),
    ("POST", "/v1/workspaces/{workspace}/commits"): Case(
        lambda w, p: Call(
            "POST",
            f"{V1}/commits",
            json={
                "path": f"commits/{p}.txt",
                "sha256": w.commit_chunks[p][0],
                "chunks": [{"sha256": w.commit_chunks[p][0], "size": w.commit_chunks[p][1]}],
                "if_none_match": "*",
            },
        ),
        "ws:write",
        ok=201,
    ),
    ("POST", "/v1/workspaces/{workspace}/batch/read"): Case(
        _c("POST", f"{V1}/batch/read", json={"paths": ["notes/secret.md"], "encoding": "utf-8"}),
        "ws:read",
    ),
    ("POST", "/v1/workspaces/{workspace}/batch/write"): Case(
        lambda _w, p: Call(
            "POST",
            f"{V1}/batch/write",
            json={"operations": [{"op": "put", "path": f"batch/{p}.txt", "content": "x"}]},
        ),
        "ws:write",
    ),
    ("GET", "/v1/workspaces/{workspace}/leases"): Case(_c("GET", f"{V1}/leases"), "ws:read"),
    ("GET", "/v1/workspaces/{workspace}/leases/{name}"): Case(
        lambda _w, p: Call("GET", f"{V1}/leases/get-{p}"), "ws:read"
    ),
    ("POST", "/v1/workspaces/{workspace}/leases/{name}"): Case(
        lambda _w, p: Call("POST", f"{V1}/leases/acq-{p}", json={"holder": "me", "ttl": 60}),
        "ws:write",
    ),
    ("DELETE", "/v1/workspaces/{workspace}/leases/{name}"): Case(
        lambda _w, p: Call("DELETE", f"{V1}/leases/del-{p}"), "ws:write"
    ),
    ("POST", "/v1/workspaces/{workspace}/leases/{name}/renew"): Case(
        lambda _w, p: Call(
            "POST", f"{V1}/leases/ren-{p}/renew", json={"holder": "keeper", "token": 1}
        ),
        "ws:write",
    ),
    ("POST", "/v1/workspaces/{workspace}/leases/{name}/release"): Case(
        lambda _w, p: Call(
            "POST", f"{V1}/leases/rel-{p}/release", json={"holder": "keeper", "token": 1}
        ),
        "ws:write",
    ),
    ("POST", "/v1/workspaces/{workspace}/search"): Case(
        _c("POST", f"{V1}/search", json={"query": "vault word"}), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/search"): Case(
        _c("GET", f"{V1}/search?q=vault+word"), "ws:read"
    ),
    ("POST", "/v1/workspaces/{workspace}/context"): Case(
        _c(
            "POST",
            f"{V1}/context",
            json={"conversation": [{"role": "user", "content": "vault word"}], "depth": "wide"},
        ),
        "ws:read",
    ),
    ("GET", "/v1/workspaces/{workspace}/index"): Case(_c("GET", f"{V1}/index"), "ws:read"),
    ("POST", "/v1/workspaces/{workspace}/index/rebuild"): Case(
        _c("POST", f"{V1}/index/rebuild"), "ws:write"
    ),
    # DiffMem's routes: user_id names workspace A
    ("POST", "/memory/search"): Case(
        _c("POST", "/memory/search", json={"query": "vault word", "user_id": A}), "ws:read"
    ),
    ("POST", "/memory/orchestrated-search"): Case(
        _c(
            "POST",
            "/memory/orchestrated-search",
            json={"conversation": [{"role": "user", "content": "vault word"}], "user_id": A},
        ),
        "ws:read",
    ),
    ("POST", "/memory/context"): Case(
        _c(
            "POST",
            "/memory/context",
            json={
                "conversation": [{"role": "user", "content": "vault word"}],
                "depth": "wide",
                "user_id": A,
            },
        ),
        "ws:read",
    ),
    ("POST", "/memory/rebuild-index"): Case(
        _c("POST", "/memory/rebuild-index", json={"user_id": A}), "ws:write"
    ),
    # sessions (issue 12): seed routes, /v1 and DiffMem's real /memory/{user_id}/… routes
    ("POST", "/memory/process-session"): Case(
        lambda _w, p: Call("POST", "/memory/process-session", json=_session(f"p-{p}", A)),
        "ws:write",
    ),
    ("POST", "/memory/commit-session"): Case(
        lambda w, p: Call(
            "POST", "/memory/commit-session", json={"session_id": _stage(w, f"c-{p}"), "user_id": A}
        ),
        "ws:write",
    ),
    ("POST", "/memory/process-and-commit"): Case(
        lambda _w, p: Call("POST", "/memory/process-and-commit", json=_session(f"pc-{p}", A)),
        "ws:write",
    ),
    ("POST", "/v1/workspaces/{workspace}/sessions"): Case(
        lambda _w, p: Call("POST", f"{V1}/sessions", json=_session(f"v-{p}")), "ws:write", ok=201
    ),
    ("GET", "/v1/workspaces/{workspace}/sessions"): Case(_c("GET", f"{V1}/sessions"), "ws:read"),
    ("GET", "/v1/workspaces/{workspace}/sessions/{session_id}"): Case(
        lambda _w, p: Call("GET", f"{V1}/sessions/get-{p}"), "ws:read"
    ),
    ("POST", "/v1/workspaces/{workspace}/sessions/{session_id}/commit"): Case(
        lambda w, p: Call("POST", f"{V1}/sessions/{_stage(w, f'vc-{p}')}/commit"), "ws:write"
    ),
    ("DELETE", "/v1/workspaces/{workspace}/sessions/{session_id}"): Case(
        lambda _w, p: Call("DELETE", f"{V1}/sessions/discard-{p}"), "ws:write", ok=204
    ),
    ("POST", "/memory/{user_id}/context"): Case(
        _c("POST", f"/memory/{A}/context", json={"conversation": [], "depth": "temporal"}),
        "ws:read",
    ),
    ("POST", "/memory/{user_id}/search"): Case(
        _c("POST", f"/memory/{A}/search", json={"query": "vault word"}), "ws:read"
    ),
    ("POST", "/memory/{user_id}/orchestrated-search"): Case(
        _c(
            "POST",
            f"/memory/{A}/orchestrated-search",
            json={"conversation": [{"role": "user", "content": "vault word"}]},
        ),
        "ws:read",
    ),
    ("GET", "/memory/{user_id}/user-entity"): Case(
        _c("GET", f"/memory/{A}/user-entity"), "ws:read"
    ),
    ("GET", "/memory/{user_id}/recent-timeline"): Case(
        _c("GET", f"/memory/{A}/recent-timeline?days_back=7"), "ws:read"
    ),
    ("POST", "/memory/{user_id}/process-session"): Case(
        lambda _w, p: Call("POST", f"/memory/{A}/process-session", json=_session(f"rp-{p}")),
        "ws:write",
    ),
    ("POST", "/memory/{user_id}/commit-session"): Case(
        lambda w, p: Call(
            "POST", f"/memory/{A}/commit-session", json={"session_id": _stage(w, f"rc-{p}")}
        ),
        "ws:write",
    ),
    ("POST", "/memory/{user_id}/process-and-commit"): Case(
        lambda _w, p: Call("POST", f"/memory/{A}/process-and-commit", json=_session(f"rpc-{p}")),
        "ws:write",
    ),
    ("POST", "/memory/{user_id}/rebuild-index"): Case(
        _c("POST", f"/memory/{A}/rebuild-index"), "ws:write"
    ),
    ("GET", "/memory/{user_id}/status"): Case(_c("GET", f"/memory/{A}/status"), "ws:read"),
    ("GET", "/memory/{user_id}/validate"): Case(_c("GET", f"/memory/{A}/validate"), "ws:read"),
    ("GET", "/memory/{user_id}/onboard-status"): Case(
        _c("GET", f"/memory/{A}/onboard-status"), "ws:read"
    ),
    ("POST", "/memory/{user_id}/onboard"): Case(
        _c("POST", f"/memory/{A}/onboard", json={"user_info": "I am Alpha, a tester."}),
        "ws:write",
    ),
    ("POST", "/repos/setup"): Case(  # file:// is off here: allowed callers get 403 too
        _c("POST", "/repos/setup", json={"repo_url": "file:///tmp/x.git", "user_id": A}),
        "ws:write",
        ok=403,
    ),
    ("GET", "/repos/status/{user_id}"): Case(_c("GET", f"/repos/status/{A}"), "ws:read"),
    ("GET", "/server/users"): Case(_c("GET", "/server/users"), "any"),
    ("POST", "/server/sync"): Case(_c("POST", "/server/sync"), "any"),
    # the MemOS overlay's admin and auth routes
    ("POST", "/admin/keys"): Case(
        lambda _w, p: Call(
            "POST", "/admin/keys", json={"user_name": f"minted-{p}", "scopes": ["read"]}
        ),
        "admin",
    ),
    ("GET", "/admin/keys"): Case(_c("GET", f"/admin/keys?user_name={A}"), "admin"),
    ("DELETE", "/admin/keys/{key_id}"): Case(
        lambda w, p: Call("DELETE", f"/admin/keys/{w.victim_key_ids[p]}"), "admin"
    ),
    ("POST", "/admin/generate-master-key"): Case(
        _c("POST", "/admin/generate-master-key"), "master"
    ),
    ("GET", "/admin/health"): Case(_c("GET", "/admin/health"), "admin"),
    # memory items (/v1) and MemOS's /product/* (cube = workspace A)
    ("POST", "/v1/workspaces/{workspace}/items"): Case(
        lambda _w, p: Call("POST", f"{V1}/items", json={"items": [{"memory": f"note of {p}"}]}),
        "ws:write",
    ),
    ("GET", "/v1/workspaces/{workspace}/items"): Case(_c("GET", f"{V1}/items"), "ws:read"),
    ("POST", "/v1/workspaces/{workspace}/items/query"): Case(
        _c("POST", f"{V1}/items/query", json={"filter": {"memory": {"contains": "vault"}}}),
        "ws:read",
    ),
    ("POST", "/v1/workspaces/{workspace}/items/search"): Case(
        _c("POST", f"{V1}/items/search", json={"query": "vault word"}), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/items/{item_id}"): Case(
        lambda w, _p: Call("GET", f"{V1}/items/{w.item_id}"), "ws:read"
    ),
    ("GET", "/v1/workspaces/{workspace}/items/{item_id}/history"): Case(
        lambda w, _p: Call("GET", f"{V1}/items/{w.item_id}/history"), "ws:read"
    ),
    ("PATCH", "/v1/workspaces/{workspace}/items/{item_id}"): Case(
        lambda w, p: Call(
            "PATCH", f"{V1}/items/{w.victim_items[f'patch-{p}']}", json={"tags": ["t"]}
        ),
        "ws:write",
    ),
    ("DELETE", "/v1/workspaces/{workspace}/items/{item_id}"): Case(
        lambda w, p: Call("DELETE", f"{V1}/items/{w.victim_items[f'delete-{p}']}"), "ws:write"
    ),
    ("POST", "/product/add"): Case(
        lambda _w, p: Call(
            "POST", "/product/add", json={"writable_cube_ids": [A], "memory_content": f"fact {p}"}
        ),
        "ws:write",
    ),
    ("POST", "/product/search"): Case(
        _c(
            "POST",
            "/product/search",
            json={"query": "vault word", "user_id": "u", "readable_cube_ids": [A]},
        ),
        "ws:read",
    ),
    ("POST", "/product/get_all"): Case(
        _c(
            "POST",
            "/product/get_all",
            json={"user_id": "u", "memory_type": "text_mem", "mem_cube_ids": [A]},
        ),
        "ws:read",
    ),
    ("POST", "/product/get_memory"): Case(
        _c("POST", "/product/get_memory", json={"mem_cube_id": A}), "ws:read"
    ),
    # by id: from the cubes the key reaches (another cube's item is "not found", HTTP 200)
    ("GET", "/product/get_memory/{memory_id}"): Case(
        lambda w, _p: Call("GET", f"/product/get_memory/{w.item_id}"), "any"
    ),
    ("POST", "/product/get_memory_by_ids"): Case(
        lambda w, _p: Call("POST", "/product/get_memory_by_ids", json=[w.item_id]), "any"
    ),
    ("POST", "/product/delete_memory"): Case(
        lambda w, p: Call(
            "POST",
            "/product/delete_memory",
            json={"writable_cube_ids": [A], "memory_ids": [w.victim_items[f"product-{p}"]]},
        ),
        "ws:write",
    ),
    ("POST", "/product/exist_mem_cube_id"): Case(
        _c("POST", "/product/exist_mem_cube_id", json={"mem_cube_id": A}), "any"
    ),
    ("POST", "/auth/token"): Case(_c("POST", "/auth/token"), "token"),
    ("POST", "/auth/github"): Case(_c("POST", "/auth/github?github_token=gho_x"), "github"),
    # hidden from the schema
    ("GET", "/docs"): Case(_c("GET", "/docs"), "public"),
    ("GET", "/docs/oauth2-redirect"): Case(_c("GET", "/docs/oauth2-redirect"), "public"),
    ("GET", "/openapi.json"): Case(_c("GET", "/openapi.json"), "public"),
    # Swagger UI's assets, served from the swagger-ui-bundle package (no CDN)
    ("GET", "/docs/swagger-ui-bundle.js"): Case(_c("GET", "/docs/swagger-ui-bundle.js"), "public"),
    ("GET", "/docs/swagger-ui.css"): Case(_c("GET", "/docs/swagger-ui.css"), "public"),
    ("GET", "/docs/favicon-32x32.png"): Case(_c("GET", "/docs/favicon-32x32.png"), "public"),
    ("GET", "/metrics"): Case(_c("GET", "/metrics"), "metrics"),
    # MCP over streamable HTTP (stateless: one POST is a whole tool call); the tool
    # runs as the caller on the caller's own workspace, so B's key finds only B
    ("POST", "/mcp"): Case(
        _c(
            "POST",
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "search_memory", "arguments": {"query": "vault word"}},
            },
        ),
        "any",
    ),
}


def expected(case: Case, who: str, *, metrics_public: bool = True) -> Expected:
    access = case.access
    if access == "public":
        return case.ok, None
    if who in INVALID:
        return 401, "UNAUTHORIZED"
    if who == "none":
        if access == "github":  # takes its credential in the query; sign-in is off here
            return 403, "FORBIDDEN"
        if access == "metrics" and metrics_public:
            return 200, None
        return 401, "UNAUTHORIZED"
    scopes = SCOPES[who]
    if access == "metrics":
        return (200, None) if metrics_public or "admin" in scopes else (403, "FORBIDDEN")
    if access in ("token", "any"):
        return case.ok, None
    if access == "github":
        return 403, "FORBIDDEN"
    if access == "admin":
        return (case.ok, None) if "admin" in scopes else (403, "FORBIDDEN")
    if access == "master":
        return (case.ok, None) if who == "master" else (403, "FORBIDDEN")
    kind, _, scope = access.partition(":")
    allowed = scope in scopes or "admin" in scopes
    if kind == "ws":
        if who == "other":
            return 404, "WORKSPACE_NOT_FOUND"
        return (case.ok, None) if allowed else (403, "FORBIDDEN")
    if kind == "own":
        if not allowed:
            return 403, "FORBIDDEN"
        if who in ("other", "master"):  # their own workspace is not A
            assert case.foreign is not None
            return case.foreign
        return case.ok, None
    raise AssertionError(f"unknown access rule {access!r}")


# -- the routes the app serves --------------------------------------------------------


def _hidden_routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from _hidden_routes(original.routes)
            continue
        path = getattr(route, "path", None)
        if path is None or getattr(route, "include_in_schema", True):
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                yield method, path


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route: the OpenAPI ones and the hidden ones."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    return found | set(_hidden_routes(app.routes))


# -- the world: two workspaces, ten credentials ------------------------------------------


def make_credentials(app: FastAPI) -> dict[str, dict[str, str]]:
    """The headers of every principal (workspaces A and B must exist)."""
    store = app.state.store
    keys = app.state.keys
    headers: dict[str, dict[str, str]] = {
        "none": {},
        "malformed": {"authorization": "Bearer not-a-key!"},
        "unknown": {"authorization": f"Bearer {generate_key()}"},
        "master": {"authorization": f"Bearer {MASTER_KEY}"},
    }
    for who, ws, scopes in [
        ("other", B, ["read", "write"]),
        ("read", A, ["read"]),
        ("write", A, ["read", "write"]),
        ("admin", A, ["read", "write", "admin"]),
        ("revoked", A, ["read", "write"]),
        ("expired", A, ["read", "write"]),
    ]:
        key, record = keys.create(
            ws, scopes, description=f"matrix {who}", expires_in_days=1 if who == "expired" else None
        )
        headers[who] = {"authorization": f"Bearer {key}"}
        if who == "revoked":
            keys.revoke(record.id)
        if who == "expired":  # its expiry passed a minute ago
            with store.meta.write() as conn:
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.id == record.id)
                    .values(expires_at=time.time() - 60)
                )
    return headers


def _seed(app: FastAPI) -> World:
    store = app.state.store
    keys = app.state.keys
    for ws in (A, B):
        store.create_workspace(ws, exist_ok=True)
    vault = store.put(A, VAULT, f"top secret: {MARKER_A}\n".encode(), message=f"hide {MARKER_A}")
    store.put(A, "notes/secret.md", f"# Secret\n\nThe vault word is {MARKER_A}.\n".encode())
    store.put(A, f"names/{MARKER_A}.txt", b"a path that names the marker")
    store.put(A, f"{A}.md", b"# Alpha\n\nThe user entity of A (DiffMem's routes).\n")
    store.leases.acquire(A, f"lease-{MARKER_A}", "keeper", 3600)
    store.put(B, f"names/{MARKER_B}.txt", f"other secret: {MARKER_B}\n".encode())
    store.put(B, "notes/secret.md", f"# Secret\n\nThe vault word is {MARKER_B}.\n".encode())

    headers = make_credentials(app)

    restore_revs: dict[str, int] = {}
    victims: dict[str, str] = {}
    commit_chunks: dict[str, tuple[str, int]] = {}
    for who in PRINCIPALS:
        for ws in (A, B, DEFAULT):
            store.put(ws, f"victims/blob-{who}.txt", b"delete me")
            store.put(ws, f"victims/ns-{who}.txt", b"delete me")
        store.put(A, f"victims/v1-{who}.txt", b"delete me")
        restore_revs[who] = store.put(A, f"restore/{who}.txt", b"v1").revision.rev
        store.put(A, f"restore/{who}.txt", b"v2")
        for lease in ("get", "ren", "rel", "del"):
            store.leases.acquire(A, f"{lease}-{who}", "keeper", 3600)
        data = f"commit-{who}".encode()
        store.put_chunk(A, sha(data), data)
        commit_chunks[who] = (sha(data), len(data))
        victims[who] = keys.create(B, ["read"], description=f"victim of {who}")[1].id
        for session in (f"get-{who}", f"discard-{who}"):
            app.state.sessions.process(A, session, "Met Ingrid at the Oslo office.")
    items: Items = app.state.items
    item_id = items.add(A, [Draft(f"The vault word is {MARKER_A}.", cube_id=A)])[0].item.id
    victim_items = {
        f"{route}-{who}": items.add(A, [Draft(f"victim {route} {who}", cube_id=A)])[0].item.id
        for who in PRINCIPALS
        for route in ("patch", "delete", "product")
    }
    return World(
        app=app,
        client=TestClient(app),  # replaced by the fixture's, whose lifespan runs
        headers=headers,
        vault_rev=vault.revision.rev,
        restore_revs=restore_revs,
        victim_key_ids=victims,
        commit_chunks=commit_chunks,
        item_id=item_id,
        victim_items=victim_items,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = build_app(
        tmp_path_factory.mktemp("matrix"),
        master_key_hash=hashlib.sha256(MASTER_KEY.encode()).hexdigest(),
    )
    w = _seed(app)
    with TestClient(app) as client:
        w.client = client
        yield w


def send(client: TestClient, call: Call, headers: dict[str, str]) -> Response:
    return client.request(
        call.method,
        call.url,
        json=call.json,
        content=call.content,
        headers={**(call.headers or {}), **headers},
    )


def check_cell(
    response: Response, call: Call, want: Expected, where: str, problems: list[str]
) -> None:
    status, code = want
    if response.status_code != status:
        problems.append(f"{where}: {response.status_code} (want {status}) {response.text[:200]}")
        return
    if status >= 400 and call.method != "HEAD":
        body = response.json()
        if not ({"detail", "error_code"} <= body.keys()):
            problems.append(f"{where}: error body without detail/error_code: {body}")
        elif code is not None and body["error_code"] != code:
            problems.append(f"{where}: error_code {body['error_code']} (want {code})")
    if status == 401 and "bearer" not in response.headers.get("www-authenticate", "").lower():
        problems.append(f"{where}: 401 without WWW-Authenticate")


def leaks(text: str, who: str) -> list[str]:
    found = []
    if who not in READS_A and MARKER_A.lower() in text.lower():
        found.append("A's marker")
    if who not in READS_B and MARKER_B.lower() in text.lower():
        found.append("B's marker")
    return found


# -- the tests ---------------------------------------------------------------------------


def test_every_route_has_an_expectation(world: World) -> None:
    served = served_routes(world.app)
    missing = sorted(served - CASES.keys())
    assert not missing, f"routes without an expectation in the auth matrix: {missing}"
    stale = sorted(CASES.keys() - served)
    assert not stale, f"expectations for routes the app no longer serves: {stale}"


@pytest.mark.parametrize("who", PRINCIPALS)
def test_matrix(world: World, who: str) -> None:
    problems: list[str] = []
    for (method, template), case in sorted(CASES.items()):
        call = case.call(world, who)
        response = send(world.client, call, world.headers[who])
        where = f"{who} {method} {template} ({call.method} {call.url})"
        check_cell(response, call, expected(case, who), where, problems)
        problems += [f"{where}: {leak} in the answer" for leak in leaks(response.text, who)]
        for name, value in response.headers.items():
            if leaks(value, who):
                problems.append(f"{where}: a marker in the {name} header")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("who", sorted(READS_A - {"master"}))
def test_keys_of_a_do_see_a(world: World, who: str) -> None:
    """The leak check can fail: the same requests do carry A's marker for A's keys."""
    h = world.headers[who]
    for url in (f"/blob/{VAULT}", f"{V1}/files/{VAULT}", "/sync", f"{V1}/changes"):
        response = world.client.get(url, headers=h)
        assert response.status_code == 200, (url, response.text)
        assert MARKER_A in response.text, url
    found = world.client.post(f"{V1}/search", json={"query": "vault word"}, headers=h)
    assert MARKER_A in found.text
    assert MARKER_B not in found.text
    mcp_call = CASES[("POST", "/mcp")].call(world, who)
    via_mcp = send(world.client, mcp_call, h)
    assert MARKER_A in via_mcp.text and MARKER_B not in via_mcp.text, via_mcp.text


def test_other_workspace_key_acts_on_its_own_workspace(world: World) -> None:
    """B's key on the seed routes sees B, never A; naming A anywhere is a 404 as for a
    workspace that does not exist."""
    h = world.headers["other"]
    c = world.client
    assert MARKER_B in c.get("/blob/notes/secret.md", headers=h).text
    sync = c.get("/sync", headers=h).json()["files"]
    assert f"names/{MARKER_B}.txt" in sync
    assert not any(MARKER_A in path for path in sync)
    assert c.get(f"/blob/{VAULT}", headers=h).status_code == 404
    found = c.post("/memory/search", json={"query": "vault word"}, headers=h)
    assert found.status_code == 200
    assert MARKER_B in found.text and MARKER_A not in found.text
    names = [w["name"] for w in c.get("/v1/workspaces", headers=h).json()["workspaces"]]
    assert names == [B]
    missing = c.get("/v1/workspaces/no-such-workspace", headers=h)
    hidden = c.get(V1, headers=h)
    assert (missing.status_code, missing.json()["error_code"]) == (
        hidden.status_code,
        hidden.json()["error_code"],
    )
    assert hidden.json()["error_code"] == "WORKSPACE_NOT_FOUND"
    # a key of B in X-API-Key is the same key
    via_header = c.get(V1, headers={"x-api-key": h["authorization"].removeprefix("Bearer ")})
    assert via_header.status_code == 404


def test_the_revoked_and_expired_keys_were_good_keys(world: World) -> None:
    """Their 401s come from revocation and expiry, not from a typo in the fixture: the
    key store still knows both keys."""
    keys = world.app.state.keys
    records = {k.prefix: k for k in keys.list(A)}
    for who, state in (("revoked", "revoked"), ("expired", "expired")):
        key = world.headers[who]["authorization"].removeprefix("Bearer ")
        record = records[key[:11]]
        assert record.revoked is (state == "revoked")
        if state == "expired":
            assert record.expires_at is not None and record.expires_at < time.time()
        body = world.client.get(V1, headers=world.headers[who]).json()
        assert state in body["detail"], body


def test_master_key_reaches_every_workspace(world: World) -> None:
    h = world.headers["master"]
    for ws, marker in ((A, MARKER_A), (B, MARKER_B)):
        response = world.client.get(f"/v1/workspaces/{ws}/changes", headers=h)
        assert response.status_code == 200
        assert marker in response.text
    # its own workspace (seed routes) is the default one
    assert world.client.get("/sync", headers=h).json()["files"].keys() >= {
        "victims/blob-master.txt"
    }


def test_metrics_private(tmp_path: Path) -> None:
    """MEMHUB_METRICS_PUBLIC=false: 401 without a valid key, 403 without admin."""
    app = build_app(
        tmp_path,
        metrics_public=False,
        master_key_hash=hashlib.sha256(MASTER_KEY.encode()).hexdigest(),
    )
    for ws in (A, B):
        app.state.store.create_workspace(ws, exist_ok=True)
    headers = make_credentials(app)
    case = CASES[("GET", "/metrics")]
    problems: list[str] = []
    with TestClient(app) as client:
        for who in PRINCIPALS:
            response = client.get("/metrics", headers=headers[who])
            want = expected(case, who, metrics_public=False)
            check_cell(response, Call("GET", "/metrics"), want, who, problems)
            if response.status_code == 200 and "memhub_http_requests_total" not in response.text:
                problems.append(f"{who}: 200 without the metrics")
    assert not problems, "\n".join(problems)
