"""Blob stores, chosen once from a URL by :func:`open_blob_store`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlparse

from memhub.errors import BadRequest
from memhub.store.blobs.base import BlobInfo, BlobNotFound, BlobStore, chunk_key, put_all

if TYPE_CHECKING:
    from memhub.store.metadata import Metadata

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore", "chunk_key", "open_blob_store", "put_all"]


def open_blob_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    metadata: Metadata | None = None,
) -> BlobStore:
    """``file:///dir`` | ``s3://bucket/prefix`` | ``memory://``. With ``metadata`` (the
    store's own database), a local store keeps its small blobs in it."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise BadRequest(
                f"blob URL {url!r} names a host ({parsed.netloc!r})",
                hint="a local directory is file:///absolute/path (three slashes)",
            )
        from memhub.store.blobs.inline import DEFAULT_INLINE_MAX
        from memhub.store.blobs.local import LocalBlobStore

        inline = parse_qs(parsed.query).get("inline_max_bytes", [str(DEFAULT_INLINE_MAX)])[-1]
        if not inline.isdigit():
            raise BadRequest(
                f"blob URL {url!r}: inline_max_bytes must be a number of bytes",
                hint="file:///dir?inline_max_bytes=16384 (0 keeps every blob in its own file)",
            )
        return LocalBlobStore(
            Path(unquote(parsed.path)), url=url, inline_max_bytes=int(inline), metadata=metadata
        )
    if parsed.scheme == "s3":
        from memhub.store.blobs.s3 import S3BlobStore

        if not parsed.netloc:
            raise BadRequest(f"blob URL {url!r} names no bucket", hint="use s3://bucket/prefix")
        return S3BlobStore(
            parsed.netloc,
            parsed.path.lstrip("/"),
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            url=url,
        )
    if parsed.scheme == "memory":
        from memhub.store.blobs.memory import MemoryBlobStore

        return MemoryBlobStore(url)
    raise BadRequest(
        f"unsupported blob URL {url!r}",
        hint="MEMHUB_BLOB_URL takes file:///dir, s3://bucket/prefix or memory://",
    )
