"""``POST /v1/workspaces/{ws}/chunks/batch``: many chunks per request, zstd on the wire.

Checked as a client sees it: the chunks of a batch are then held (``chunks/missing``
says so) and a manifest of them commits; bad bodies are 4xx with an error code;
the codec refuses truncated frames and bodies that decompress past the limit.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from apiclient import WS, api_client, assert_error, sha256
from fastapi.testclient import TestClient

from memhub.core.chunkbatch import MEDIA_TYPE, decode, decompress, encode
from memhub.errors import BadRequest, PayloadTooLarge

ZSTD = {"Content-Type": MEDIA_TYPE, "Content-Encoding": "zstd"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(tmp_path) as c:
        yield c


def test_a_batch_stores_every_chunk_and_a_manifest_of_them_commits(client: TestClient) -> None:
    pieces = [os.urandom(5000), b"page " * 2000, b"", os.urandom(20_000)]
    body, shas = encode(pieces)
    assert len(body) < sum(map(len, pieces))  # the repetitive one compressed

    response = client.post(f"{WS}/chunks/batch", content=body, headers=ZSTD)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [c["sha256"] for c in answer["chunks"]] == shas
    assert [c["size"] for c in answer["chunks"]] == [len(p) for p in pieces]
    assert all(c["created"] for c in answer["chunks"])
    assert answer["wire_bytes"] == len(body)
    assert client.post(f"{WS}/chunks/missing", json={"chunks": shas}).json() == {"missing": []}

    again = client.post(f"{WS}/chunks/batch", content=body, headers=ZSTD).json()
    assert not any(c["created"] for c in again["chunks"])  # already held: 200, not new

    whole = b"".join(pieces)
    commit = client.post(
        f"{WS}/commits",
        json={"path": "db/x.sqlite", "sha256": sha256(whole),
              "chunks": [{"sha256": s, "size": len(p)} for s, p in zip(shas, pieces, strict=True)]},
    )  # fmt: skip
    assert commit.status_code == 201, commit.text
    assert client.get(f"{WS}/files/db/x.sqlite").content == whole


def test_an_uncompressed_batch_is_accepted(client: TestClient) -> None:
    body, shas = encode([b"plain"], compress=False)
    response = client.post(f"{WS}/chunks/batch", content=body, headers={"Content-Type": MEDIA_TYPE})
    assert response.status_code == 200, response.text
    assert [c["sha256"] for c in response.json()["chunks"]] == shas


def test_a_chunk_that_does_not_hash_to_its_address_is_refused(client: TestClient) -> None:
    frame = struct.pack(">32sI", hashlib.sha256(b"declared").digest(), 6) + b"actual"
    response = client.post(f"{WS}/chunks/batch", content=zstandard.compress(frame), headers=ZSTD)
    assert_error(response, 400, "CHECKSUM_MISMATCH")
    missing = client.post(f"{WS}/chunks/missing", json={"chunks": [sha256(b"declared")]})
    assert missing.json() == {"missing": [sha256(b"declared")]}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not zstd at all", ZSTD, 400),
        (b"\x00" * 10, {"Content-Type": MEDIA_TYPE}, 400),  # ends inside a frame header
        (b"x", {"Content-Type": MEDIA_TYPE, "Content-Encoding": "br"}, 400),
    ],
    ids=["bad-zstd", "truncated-frame", "unknown-encoding"],
)
def test_malformed_batches_are_400(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    assert_error(client.post(f"{WS}/chunks/batch", content=body, headers=headers), status)


def test_the_batch_route_needs_write_access_to_the_workspace(client: TestClient) -> None:
    body, _ = encode([b"x"])
    response = client.post("/v1/workspaces/nobody/chunks/batch", content=body, headers=ZSTD)
    assert response.status_code == 404


def test_decoding_is_bounded() -> None:
    bomb = zstandard.compress(b"\x00" * (2 * 1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        decompress(bomb, "zstd", limit=1024 * 1024)
    big = struct.pack(">32sI", b"\x00" * 32, 2000) + b"\x00" * 2000
    with pytest.raises(PayloadTooLarge):
        decode(big, max_chunk_bytes=1000)
    with pytest.raises(BadRequest):
        decode(struct.pack(">32sI", b"\x00" * 32, 10) + b"short", max_chunk_bytes=1000)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_batch_and_missing_are_405_naming_only_post(
    client: TestClient, method: str
) -> None:
    """``/chunks/batch`` and ``/chunks/missing`` are not chunk addresses: another method there
    is a 405 whose ``Allow`` names POST alone, not the per-chunk route's PUT."""
    for name in ("batch", "missing"):
        response = client.request(method, f"{WS}/chunks/{name}", content=b"x")
        body = assert_error(response, 405)
        assert response.headers["allow"] == "POST", name
        assert body["context"] == {"allowed": ["POST"]}
    assert client.get(f"{WS}/chunks/{'a' * 64}").headers["allow"] == "PUT"


def test_a_chunk_address_that_merely_starts_like_a_route_is_still_checked(
    client: TestClient,
) -> None:
    for address in ("batches", "missing1", "xbatch"):
        assert_error(client.put(f"{WS}/chunks/{address}", content=b"x"), 400, "BAD_REQUEST")
    data = b"a real chunk"
    assert client.put(f"{WS}/chunks/{sha256(data)}", content=data).status_code == 201
