"""The canonical state: workspaces, versioned files, blobs, the change log, leases."""

from __future__ import annotations

from memhub.store.blobs import open_blob_store
from memhub.store.metadata import Metadata
from memhub.store.model import ChunkRef, Fence, Lease, Precondition, Revision, WriteResult
from memhub.store.service import Store

__all__ = [
    "ChunkRef",
    "Fence",
    "Lease",
    "Precondition",
    "Revision",
    "Store",
    "WriteResult",
    "open_store",
]


def open_store(
    database_url: str,
    blob_url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str = "us-east-1",
    chunk_size: int = 4 * 1024**2,
    max_chunk_bytes: int = 16 * 1024**2,
    migrate: bool = True,
) -> Store:
    """Open (and by default migrate) the store named by two URLs."""
    meta = Metadata(database_url)
    if migrate:
        meta.migrate()
    blobs = open_blob_store(
        blob_url, s3_endpoint_url=s3_endpoint_url, s3_region=s3_region, metadata=meta
    )
    return Store(meta, blobs, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes)
