"""A manifest commit hashes the whole content once, without re-hashing each chunk:
what it still guarantees (nothing the store does not hold is committed, a chunk that
rotted since its upload is reported as such) and that the digests are right."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from apiclient import WS, api_client, assert_error, sha256

from memhub.store.blobs import chunk_key
from memhub.store.digests import whole_digests
from memhub.store.model import ChunkRef


def file_blobs(tmp_path: Path) -> str:
    """Every blob a file of its own (no inline tier), so a test can rot one."""
    return f"{(tmp_path / 'blobs').as_uri()}?inline_max_bytes=0"


def blob_file(tmp_path: Path, sha: str) -> Path:
    return tmp_path / "blobs" / Path(*chunk_key(sha).split("/"))


def manifest(parts: list[bytes], path: str = "db.sqlite") -> dict[str, Any]:
    return {
        "path": path,
        "sha256": sha256(b"".join(parts)),
        "chunks": [{"sha256": sha256(p), "size": len(p)} for p in parts],
    }


@pytest.mark.parametrize("rotten", [b"R" * 4096, b"short"], ids=["same-size", "other-size"])
def test_a_chunk_that_rotted_after_its_upload_fails_the_commit_as_storage_corrupt(
    tmp_path: Path, rotten: bytes
) -> None:
    parts = [os.urandom(4096) for _ in range(3)]
    with api_client(
        tmp_path, raise_server_exceptions=False, blob_url=file_blobs(tmp_path)
    ) as client:
        for part in parts:
            assert client.put(f"{WS}/chunks/{sha256(part)}", content=part).status_code == 201
        blob_file(tmp_path, sha256(parts[1])).write_bytes(rotten)

        body = assert_error(client.post(f"{WS}/commits", json=manifest(parts)), 500)

        assert body["error_code"] == "STORAGE_CORRUPT"
        assert body["context"]["chunk"] == sha256(parts[1])
        assert client.get(f"{WS}/files/db.sqlite").status_code == 404
        assert "memhub_storage_corrupt_chunks_total 1.0" in client.get("/metrics").text


def test_a_manifest_that_does_not_add_up_is_refused_and_names_no_chunk(tmp_path: Path) -> None:
    parts = [b"first " * 100, b"second " * 100]
    with api_client(tmp_path, raise_server_exceptions=False) as client:
        for part in parts:
            client.put(f"{WS}/chunks/{sha256(part)}", content=part)
        wrong = manifest(parts) | {"sha256": sha256(b"something else")}

        body = assert_error(client.post(f"{WS}/commits", json=wrong), 400, "CHECKSUM_MISMATCH")

        assert body["context"]["actual"] == sha256(b"".join(parts))
        assert client.get(f"{WS}/files/db.sqlite").status_code == 404


def test_a_committed_manifest_has_the_whole_contents_sha256_md5_and_bytes(
    tmp_path: Path,
) -> None:
    parts = [os.urandom(70_000), b"\0" * 65_536, os.urandom(10), b"\0" * 65_536]
    whole = b"".join(parts)
    with api_client(tmp_path) as client:
        for part in parts:
            client.put(f"{WS}/chunks/{sha256(part)}", content=part)
        response = client.post(f"{WS}/commits", json=manifest(parts))

        assert response.status_code == 201, response.text
        got = client.get(f"{WS}/files/db.sqlite")
        assert got.content == whole
        assert got.headers["etag"] == f'"{sha256(whole)}"'
        assert response.json()["md5"] == hashlib.md5(whole).hexdigest()
        assert (response.json()["sha256"], response.json()["size"]) == (sha256(whole), len(whole))


@pytest.mark.parametrize("window", [1, 100, 1 << 20])
def test_whole_digests_match_hashlib_over_windows_and_repeated_chunks(window: int) -> None:
    blobs = {sha256(d): d for d in (os.urandom(300), os.urandom(17), b"z" * 64, b"")}
    order = [*blobs] * 3 + [next(iter(blobs))] * 5
    refs = [ChunkRef(s, len(blobs[s])) for s in order]
    reads: list[str] = []

    def read(ref: ChunkRef) -> bytes:
        reads.append(ref.sha256)
        return blobs[ref.sha256]

    whole = b"".join(blobs[s] for s in order)
    assert whole_digests(read, refs, window=window) == (
        sha256(whole),
        hashlib.md5(whole).hexdigest(),
    )
    assert whole_digests(read, [], window=window) == (sha256(b""), hashlib.md5(b"").hexdigest())
    assert set(reads) == set(blobs)
    if window == 1:  # one chunk per window: reads never overlap, so each is read once
        assert sorted(reads) == sorted(blobs)
