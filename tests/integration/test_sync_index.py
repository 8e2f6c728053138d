"""The sync index built by the database equals the one built row by row in Python, on
SQLite and PostgreSQL; and the HTTP side: ETag, 304, gzip, on ``/sync`` and ``/sync/{ns}``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from apiclient import api_client
from sqlalchemy import insert

from conftest import StoreFactory, unique_name
from memhub.api.syncindex import iso_millis
from memhub.store import Store
from memhub.store.schema import files
from memhub.store.syncindex import build_index, index_tag

NAMES = [
    "a.md",
    "ns/one.md",
    "ns/deep/two.md",
    "ns/gone.md",
    "ns0.md",  # the byte after '/': must not fall into the ns/ range
    "ns.md",
    "nsx/other.md",
    "ünï/cödé «quoted» ✓ 😀.md",
    "ns/ünï.md",
]


def reference(store: Store, workspace: str, prefix: str, versions: bool) -> dict[str, Any]:
    """The index as the seed route used to build it: a Revision per row, then a dict."""
    out: dict[str, Any] = {}
    for head in store.sync_index(workspace):
        if not head.path.startswith(prefix):
            continue
        entry: dict[str, Any] = {
            "md5": head.md5,
            "last_modified": iso_millis(head.created_at),
            "size": head.size,
        }
        if versions:
            entry["version"] = head.rev
        entry["is_deleted"] = head.deleted
        out[head.path[len(prefix) :]] = entry
    return out


def test_database_index_equals_python_reference(make_memory_store: StoreFactory) -> None:
    store = make_memory_store()
    ws = unique_name()
    store.create_workspace(ws)
    empty = build_index(store, ws)
    assert (empty.files_json, empty.count, empty.latest) == ("{}", 0, None)
    for i, name in enumerate(NAMES):
        store.put(ws, name, f"content {i} of {name}".encode())
    store.put(ws, "ns/one.md", b"second version")
    store.delete(ws, "ns/gone.md")
    for prefix in ("", "ns/", "ünï/", "missing/"):
        for versions in (False, True):
            body = build_index(store, ws, prefix, versions=versions)
            parsed = json.loads(body.files_json)
            expected = reference(store, ws, prefix, versions)
            assert parsed == expected, (prefix, versions)
            assert list(parsed) == list(expected)  # path order, key order
            for entry in parsed.values():
                assert list(entry) == [
                    "md5", "last_modified", "size", *(["version"] if versions else []),
                    "is_deleted",
                ]  # fmt: skip
            assert body.count == len(expected)
            assert body.head_rev == store.head_rev(ws)
    assert json.loads(build_index(store, ws, "ns/").files_json)["gone.md"]["is_deleted"] is True
    assert index_tag(store, ws) == (store.workspace_id(ws), store.head_rev(ws))


def test_sync_etag_304_and_gzip(tmp_path: Path) -> None:
    with api_client(tmp_path) as client:
        for i in range(40):
            assert client.put(f"/blob/notes/{i:03d}.md", content=b"x" * i).status_code == 201
        first = client.get("/sync", headers={"accept-encoding": "identity"})
        assert first.status_code == 200
        tag = first.headers["etag"]
        assert "content-encoding" not in first.headers
        assert first.headers["vary"] == "Accept-Encoding"
        assert len(first.json()["files"]) == 40

        same = client.get("/sync", headers={"if-none-match": tag})
        assert same.status_code == 304 and same.content == b""
        assert same.headers["etag"] == tag

        zipped = client.get("/sync", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["etag"] == tag[:-1] + '-gz"'
        assert zipped.json() == first.json()  # the client decodes it
        # either representation's tag answers 304
        assert (
            client.get("/sync", headers={"if-none-match": zipped.headers["etag"]}).status_code
            == 304
        )

        # a namespace's index has its own tag; a write anywhere changes every tag
        ns = client.get("/sync/notes")
        assert ns.headers["etag"] != tag
        client.put("/blob/elsewhere.md", content=b"y")
        assert client.get("/sync", headers={"if-none-match": tag}).status_code == 200
        assert (
            client.get("/sync/notes", headers={"if-none-match": ns.headers["etag"]}).status_code
            == 200
        )
        client.delete("/blob/elsewhere.md")
        after = client.get("/sync")
        assert after.json()["files"]["elsewhere.md"]["is_deleted"] is True
        assert after.headers["etag"] != tag


def test_timestamps_format_exactly_as_python_does(make_memory_store: StoreFactory) -> None:
    """Edge times: a fraction just under a millisecond (Python rounds to µs first) and just
    under a second (the carry reaches the seconds)."""
    moments = [1796293663.1729996, 1796293663.9999996, 1700000000.0, 1700000000.0005,
               1764583200.123, 1764583259.9995]  # fmt: skip
    now = [1700000000.0]
    store = make_memory_store(clock=lambda: now[0])
    ws = unique_name()
    store.create_workspace(ws)
    for i, moment in enumerate(moments):
        now[0] = moment
        store.put(ws, f"t/{i}.md", b"x")
    parsed = json.loads(build_index(store, ws).files_json)
    assert parsed == reference(store, ws, "", False)


def test_millisecond_boundaries_match_python(make_memory_store: StoreFactory) -> None:
    """Thousands of head rows whose times sit within a µs of a millisecond boundary,
    where rounding t * 1e6 instead of Python's fraction-first rounding gives another ms."""
    store = make_memory_store()
    ws = unique_name()
    store.create_workspace(ws)
    ws_id = store.workspace_id(ws)
    rng = random.Random(7)
    nudges = [-5e-7, -4.9e-7, -5.1e-7, 0.0, 4.99e-7, 5e-7, 1e-7, -1e-9, 2.5e-7]
    rows = [
        {"workspace_id": ws_id, "path": f"m/{i:05d}", "rev": i + 1, "sha256": "0" * 64,
         "md5": "0" * 32, "size": 1, "content_type": "text/plain",
         "created_at": 1764756247 + rng.randrange(10**6) + rng.randrange(1000) / 1000
         + rng.choice(nudges), "author": None, "session_id": None, "message": None,
         "deleted": False}
        for i in range(3000)
    ]  # fmt: skip
    with store.meta.write() as conn:
        conn.execute(insert(files), rows)
    parsed = json.loads(build_index(store, ws).files_json)
    wrong = [
        (r["created_at"], parsed[r["path"]]["last_modified"], iso_millis(r["created_at"]))
        for r in rows
        if parsed[r["path"]]["last_modified"] != iso_millis(r["created_at"])
    ]
    assert not wrong, wrong[:5]
