"""The typed wire models of :mod:`memhub.core.models` against what the server answers.

The search, context, index and batch routes answer through these models
(``response_model``), and the client returns them. Each answer here must read
back into its model and dump to exactly the same JSON: a key the server sends
that the model does not declare would be dropped on the way (``extra="ignore"``),
and a key the model adds would show up in the dump. The key sets are spelled out
as well, so a change of the wire shows here first.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client, sha256
from fastapi.testclient import TestClient
from pydantic import BaseModel

from memhub.core.chunkbatch import MEDIA_TYPE, encode
from memhub.core.models import (
    BatchFiles,
    BatchResults,
    ChangesPage,
    ChunkBatch,
    ContextResult,
    FilePage,
    HistoryPage,
    IndexRebuild,
    MissingChunks,
    RevisionInfo,
    SearchPage,
    StoredChunk,
    WorkspaceInfo,
    WorkspaceList,
    WriteInfo,
)

NOTE = b"# Caching\n\nWe decided to cache search results for five minutes.\n"
REVISION_KEYS = {
    "workspace", "rev", "path", "sha256", "md5", "size", "content_type", "created_at",
    "author", "session_id", "message", "deleted",
}  # fmt: skip


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        put = c.put(f"{WS}/files/notes/caching.md", content=NOTE,
                    headers={"Content-Type": "text/markdown"})  # fmt: skip
        assert put.status_code == 201, put.text
        yield c


def same_json(model: type[BaseModel], body: Any) -> BaseModel:
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json", exclude_unset=True) == body
    return parsed


def test_search_answers_a_search_page(client: TestClient) -> None:
    body = client.post(f"{WS}/search", json={"query": "cache", "k": 5}).json()
    page = same_json(SearchPage, body)
    assert isinstance(page, SearchPage) and page.total == 1 and page.next_offset is None
    assert set(body) == {"query", "total", "offset", "results", "next_offset", "mode"}
    assert body["mode"] == "bm25"  # no embedding provider configured
    assert set(body["results"][0]) == {
        "path", "heading", "line_start", "line_end", "rev", "score", "snippet", "file_kind",
        "always_load", "strength", "turn_id", "speaker", "date",
    }  # fmt: skip
    assert page.results[0].path == "notes/caching.md"
    assert "**cache**" in page.results[0].snippet
    same_json(SearchPage, client.get(f"{WS}/search", params={"q": "cache"}).json())


def test_context_and_index_rebuild(client: TestClient) -> None:
    conversation = [{"role": "user", "content": "what about caching?"}]
    body = client.post(f"{WS}/context", json={"conversation": conversation, "depth": "wide"})
    result = same_json(ContextResult, body.json())
    assert isinstance(result, ContextResult) and "five minutes" in result.markdown
    assert set(body.json()) == {
        "workspace", "depth", "max_tokens", "tokens", "markdown", "sources", "skipped",
        "problems",
    }  # fmt: skip
    assert {s.path for s in result.sources} == {"notes/caching.md"}
    rebuilt = client.post(f"{WS}/index/rebuild").json()
    assert set(rebuilt) == {"files", "blocks", "rev", "problems"}
    assert same_json(IndexRebuild, rebuilt) == IndexRebuild(files=1, blocks=1, rev=1, problems=[])


def test_batch_answers_keep_only_the_keys_that_apply(client: TestClient) -> None:
    read = client.post(
        f"{WS}/batch/read", json={"paths": ["notes/caching.md", "absent.md"], "encoding": "base64"}
    ).json()
    files = same_json(BatchFiles, read)
    found, absent = read["files"]
    assert set(found) == {"path", "status", "revision", "content", "encoding"}
    assert set(found["revision"]) == REVISION_KEYS  # a read's revision has no "created"
    assert set(absent) == {"path", "status", "error"}  # no nulls for what does not apply
    assert absent["status"] == 404 and absent["error"]["error_code"] == "FILE_NOT_FOUND"
    assert isinstance(files, BatchFiles)
    assert base64.b64decode(files.files[0].content or "") == NOTE

    operations = [
        {"op": "put", "path": "b.md", "content": "b", "if_none_match": "*"},
        {"op": "put", "path": "notes/caching.md", "content": "x", "if_none_match": "*"},
        {"op": "delete", "path": "b.md"},
    ]
    written = client.post(f"{WS}/batch/write", json={"operations": operations}).json()
    results = same_json(BatchResults, written)
    created, refused, deleted = written["results"]
    assert set(created) == {"path", "status", "revision"} and created["status"] == 201
    assert set(created["revision"]) == REVISION_KEYS | {"created"}
    assert set(refused) == {"path", "status", "error"} and refused["status"] == 412
    assert set(deleted["revision"]) == REVISION_KEYS and deleted["revision"]["deleted"]
    assert isinstance(results, BatchResults) and results.results[0].revision is not None
    assert results.results[0].revision.created is True


def test_chunk_batch_answers_its_model(client: TestClient) -> None:
    body, shas = encode([b"one chunk", b"another"])
    zstd = {"Content-Type": MEDIA_TYPE, "Content-Encoding": "zstd"}
    answer = client.post(f"{WS}/chunks/batch", content=body, headers=zstd)
    batch = same_json(ChunkBatch, answer.json())
    assert isinstance(batch, ChunkBatch)
    assert [c.sha256 for c in batch.chunks] == shas == [sha256(b"one chunk"), sha256(b"another")]
    assert set(answer.json()) == {"chunks", "bytes", "wire_bytes"}


def test_file_and_feed_routes_answer_their_models(client: TestClient) -> None:
    """Workspaces, files, history, revisions, the change feed, chunks and commits: the
    pages among them are written straight to JSON, so this is what keeps them typed."""
    listing = same_json(WorkspaceList, client.get("/v1/workspaces").json())
    assert isinstance(listing, WorkspaceList) and "default" in {w.name for w in listing.workspaces}
    made = client.post("/v1/workspaces", json={"name": "typed"})
    assert made.status_code == 201 and isinstance(
        same_json(WorkspaceInfo, made.json()), WorkspaceInfo
    )
    assert set(same_json(WorkspaceInfo, client.get(WS).json()).model_fields_set) == {
        "name", "created_at", "head_rev", "files", "bytes"}  # fmt: skip

    put = client.put(f"{WS}/files/notes/caching.md", content=NOTE + b"More.\n",
                     headers={"If-Match": f'"{sha256(NOTE)}"'})  # fmt: skip
    assert put.status_code == 200, put.text
    written = same_json(WriteInfo, put.json())
    assert isinstance(written, WriteInfo) and set(put.json()) == REVISION_KEYS | {"created"}

    for body, model, key in (
        (client.get(f"{WS}/files?prefix=notes/").json(), FilePage, "files"),
        (client.get(f"{WS}/history/notes/caching.md").json(), HistoryPage, "revisions"),
        (client.get(f"{WS}/changes?since=0").json(), ChangesPage, "changes"),
    ):
        page = same_json(model, body)
        assert body[key] and all(set(r) == REVISION_KEYS for r in body[key]), model
        assert isinstance(page, model)
    one = client.get(f"{WS}/revisions/{written.rev}").json()
    assert isinstance(same_json(RevisionInfo, one), RevisionInfo) and set(one) == REVISION_KEYS

    chunk = b"a chunk of a manifest"
    missing = client.post(f"{WS}/chunks/missing", json={"chunks": [sha256(chunk)]}).json()
    assert same_json(MissingChunks, missing) == MissingChunks(missing=[sha256(chunk)])
    stored = client.put(f"{WS}/chunks/{sha256(chunk)}", content=chunk).json()
    assert same_json(StoredChunk, stored) == StoredChunk(sha256=sha256(chunk), size=len(chunk),
                                                         created=True)  # fmt: skip
    manifest = {"path": "notes/chunked.md", "sha256": sha256(chunk),
                "chunks": [{"sha256": sha256(chunk), "size": len(chunk)}]}  # fmt: skip
    committed = client.post(f"{WS}/commits", json=manifest)
    assert committed.status_code == 201 and set(committed.json()) == REVISION_KEYS | {"created"}
    assert isinstance(same_json(WriteInfo, committed.json()), WriteInfo)
    deleted = client.delete(f"{WS}/files/notes/chunked.md").json()
    assert same_json(RevisionInfo, deleted).deleted  # type: ignore[attr-defined]
    restored = client.post(f"{WS}/restore/notes/chunked.md", json={"rev": committed.json()["rev"]})
    assert isinstance(same_json(WriteInfo, restored.json()), WriteInfo)


def test_the_document_names_the_models(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    expected = {
        ("post", f"{WS}/search"): "SearchPage",
        ("post", f"{WS}/context"): "ContextResult",
        ("post", f"{WS}/index/rebuild"): "IndexRebuild",
        ("post", f"{WS}/batch/read"): "BatchFiles",
        ("post", f"{WS}/batch/write"): "BatchResults",
        ("post", f"{WS}/chunks/batch"): "ChunkBatch",
        ("get", f"{WS}/leases"): "LeaseList",
        ("post", f"{WS}/leases/{{name}}"): "LeaseInfo",
        ("post", f"{WS}/leases/{{name}}/renew"): "LeaseInfo",
        ("post", f"{WS}/leases/{{name}}/release"): "LeaseInfo",
        ("delete", f"{WS}/leases/{{name}}"): "LeaseInfo",
        ("get", "/v1/workspaces"): "WorkspaceList",
        ("get", WS): "WorkspaceInfo",
        ("get", f"{WS}/files"): "FilePage",
        ("put", f"{WS}/files/{{path}}"): "WriteInfo",
        ("delete", f"{WS}/files/{{path}}"): "RevisionInfo",
        ("get", f"{WS}/history/{{path}}"): "HistoryPage",
        ("get", f"{WS}/revisions/{{rev}}"): "RevisionInfo",
        ("post", f"{WS}/restore/{{path}}"): "WriteInfo",
        ("get", f"{WS}/changes"): "ChangesPage",
        ("post", f"{WS}/chunks/missing"): "MissingChunks",
        ("post", f"{WS}/commits"): "WriteInfo",
    }
    for (method, path), name in expected.items():
        templated = path.replace(WS, "/v1/workspaces/{workspace}")
        schema = paths[templated][method]["responses"]["200"]["content"]["application/json"]
        assert schema["schema"] == {"$ref": f"#/components/schemas/{name}"}, templated
        assert name in document["components"]["schemas"]
