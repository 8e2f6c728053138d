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
from memhub.store.digests import Midstates, Resume, digest_chunks, whole_digests
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


def test_digests_resumed_after_a_known_prefix_read_only_the_chunks_after_it() -> None:
    parts = [os.urandom(1000 + i) for i in range(12)]
    blobs = {sha256(p): p for p in parts}
    refs = [ChunkRef(sha256(p), len(p)) for p in parts]
    reads: list[str] = []

    def read(ref: ChunkRef) -> bytes:
        reads.append(ref.sha256)
        return blobs[ref.sha256]

    first = digest_chunks(read, refs, window=3000, keep=True)
    assert first.states is not None and len(first.states) == len(refs)
    changed = os.urandom(1007)
    blobs[sha256(changed)] = changed
    new_refs = [*refs[:7], ChunkRef(sha256(changed), len(changed)), *refs[8:]]
    reads.clear()

    again = digest_chunks(read, new_refs, window=3000, start=Resume(7, first.states[:7]), keep=True)

    whole = b"".join(blobs[r.sha256] for r in new_refs)
    assert (again.sha256, again.md5) == (sha256(whole), hashlib.md5(whole).hexdigest())
    assert again.resumed == 7 and reads == [r.sha256 for r in new_refs[7:]]
    assert again.states is not None and len(again.states) == len(new_refs)
    # the first digest's states were copied, not moved on: resuming from them again agrees
    twice = digest_chunks(read, new_refs, window=1, start=Resume(7, first.states[:7]))
    assert (twice.sha256, twice.md5) == (again.sha256, again.md5)
    assert first.sha256 == sha256(b"".join(parts))


def test_midstates_resume_the_longest_prefix_of_the_same_workspace_within_bounds() -> None:
    def refs(*names: str) -> list[ChunkRef]:
        return [ChunkRef(sha256(n.encode()), 1) for n in names]

    def states(n: int) -> list[tuple[Any, Any]]:
        return [(hashlib.sha256(), hashlib.md5()) for _ in range(n)]

    known = Midstates(max_contents=2, max_states=10, min_chunks=3)
    known.remember(1, "a", refs("p", "q", "r", "s"), states(4))
    known.remember(1, "b", refs("p", "q", "x"), states(3))
    known.remember(1, "tiny", refs("p", "q"), states(2))  # under min_chunks: not kept

    start = known.start(1, refs("p", "q", "r", "z", "w"))
    assert start is not None and start.count == 3 and len(start.states) == 3
    assert known.start(2, refs("p", "q", "r")) is None  # another workspace's contents
    assert known.start(1, refs("z", "p")) is None

    known.remember(1, "c", refs("z", "p", "q", "r"), states(4))  # "b" is least recently used
    assert len(known) == 2 and known.start(1, refs("p", "q", "x"))
    assert known.start(1, refs("p", "q", "x")).count == 3 - 1  # only "a" shares p, q
    known.remember(1, "d", refs(*"abcdefghij"), states(10))  # alone fills max_states
    assert len(known) == 1 and known.start(1, refs("z")) is None


def test_a_commit_that_starts_like_the_last_one_reads_only_what_follows(
    tmp_path: Path,
) -> None:
    """Resumed digests are right; a chunk of the resumed prefix is not read at commit, but
    every later read still verifies it; a restarted server reads it again."""
    parts = [os.urandom(4096) for _ in range(10)]
    changed = [*parts[:6], os.urandom(4096), *parts[7:]]
    blob_url = file_blobs(tmp_path)
    with api_client(tmp_path, raise_server_exceptions=False, blob_url=blob_url) as client:
        for part in [*parts, changed[6]]:
            assert client.put(f"{WS}/chunks/{sha256(part)}", content=part).status_code == 201
        assert client.post(f"{WS}/commits", json=manifest(parts)).status_code == 201
        blob_file(tmp_path, sha256(parts[0])).write_bytes(b"R" * 4096)  # rots after that

        response = client.post(
            f"{WS}/commits", json=manifest(changed) | {"if_match": sha256(b"".join(parts))}
        )

        assert response.status_code == 200, response.text  # a new revision of the path
        whole = b"".join(changed)
        assert response.json()["md5"] == hashlib.md5(whole).hexdigest()
        assert response.json()["sha256"] == sha256(whole)
        body = assert_error(client.get(f"{WS}/files/db.sqlite"), 500, "STORAGE_CORRUPT")
        assert body["context"]["chunk"] == sha256(parts[0])

    with api_client(tmp_path, raise_server_exceptions=False, blob_url=blob_url) as client:
        again = manifest(changed, path="copy.sqlite")
        body = assert_error(client.post(f"{WS}/commits", json=again), 500, "STORAGE_CORRUPT")
        assert body["context"]["chunk"] == sha256(parts[0])
