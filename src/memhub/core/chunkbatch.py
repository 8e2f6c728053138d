"""The wire format of a batch of chunks (``POST …/chunks/batch``), both directions.

A batch is a sequence of frames, ``sha256 (32 raw bytes) · length (4 bytes,
big-endian) · the chunk's bytes``, sent zstd-compressed (``Content-Encoding:
zstd``) or plain. Decoding is bounded: the decompressed size, the size of
each chunk and the number of chunks all have limits, checked before the bytes
are accepted, so a small compressed body cannot expand into a large one.
Pure functions, no I/O: the client encodes, the server decodes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import zstandard

from memhub.errors import BadRequest, InvalidChecksum, PayloadTooLarge

MEDIA_TYPE = "application/vnd.memhub.chunks"
ZSTD_LEVEL = 3
MAX_BATCH_BYTES = 64 * 1024**2  # decompressed
MAX_BATCH_CHUNKS = 10_000
_HEADER = struct.Struct(">32sI")


@dataclass(frozen=True, slots=True)
class Frame:
    sha256: str
    data: bytes


def encode(chunks: Iterable[bytes], *, compress: bool = True) -> tuple[bytes, list[str]]:
    """The body of one batch and the sha256 of each chunk, in order."""
    parts: list[bytes] = []
    shas: list[str] = []
    for data in chunks:
        digest = hashlib.sha256(data).digest()
        parts += [_HEADER.pack(digest, len(data)), data]
        shas.append(digest.hex())
    body = b"".join(parts)
    if compress:
        body = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    return body, shas


def decompress(body: bytes, encoding: str | None, limit: int = MAX_BATCH_BYTES) -> bytes:
    """The frames of a body sent with ``Content-Encoding: encoding`` (zstd or none)."""
    if not encoding or encoding == "identity":
        if len(body) > limit:
            raise _too_large(limit)
        return body
    if encoding != "zstd":
        raise BadRequest(
            f"unsupported Content-Encoding {encoding!r}", hint="send zstd or no encoding"
        )
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(body)
        out = reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise BadRequest(f"the batch is not valid zstd: {exc}") from exc
    if len(out) > limit:
        raise _too_large(limit)
    return bytes(out)


def decode(raw: bytes, *, max_chunk_bytes: int, verify: bool = True) -> list[Frame]:
    """The frames of a decompressed batch; every chunk's bytes checked against its hash."""
    frames: list[Frame] = []
    view = memoryview(raw)
    pos = 0
    while pos < len(raw):
        if len(raw) - pos < _HEADER.size:
            raise BadRequest("the batch ends inside a frame header")
        digest, size = _HEADER.unpack_from(raw, pos)
        pos += _HEADER.size
        if size > max_chunk_bytes:
            raise PayloadTooLarge(
                f"a chunk may be at most {max_chunk_bytes} bytes",
                context={"max_bytes": max_chunk_bytes},
            )
        if len(raw) - pos < size:
            raise BadRequest("the batch ends inside a chunk")
        data = bytes(view[pos : pos + size])
        pos += size
        sha = digest.hex()
        if verify and hashlib.sha256(data).hexdigest() != sha:
            raise InvalidChecksum(
                f"chunk {len(frames)} of the batch does not hash to its address",
                context={"index": len(frames), "declared": sha},
            )
        frames.append(Frame(sha, data))
        if len(frames) > MAX_BATCH_CHUNKS:
            raise BadRequest(f"a batch may hold at most {MAX_BATCH_CHUNKS} chunks")
    return frames


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a batch may hold at most {limit} bytes once decompressed",
        context={"max_bytes": limit},
        hint="send fewer chunks per batch",
    )
