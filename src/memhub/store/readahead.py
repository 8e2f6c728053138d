"""Many small files' bytes read at once, for a reader that walks a whole workspace.

The search index reads every head of a workspace when it rebuilds. Read one by one, a
small file (a row of the metadata database's inline tier,
:mod:`memhub.store.blobs.metainline`) cost a failed file open, a pooled connection
and a query: about a quarter of a millisecond, a tenth of the whole build. Here the
chunks of a page of files come back in one query per 500. Each chunk passes the same
check as :meth:`Store.read_content`'s (its sha256 and size) before it is handed out;
a chunk that is not in the inline tier, or fails the check, is simply left out, and
the caller reads that file through :meth:`Store.read_content`, which finds it wherever
it is, or reports the damage (and tells the corruption listeners) as for any read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from memhub.errors import StorageUnavailable
from memhub.store.blobs.base import chunk_key
from memhub.store.blobs.metainline import MetadataInline
from memhub.store.model import ChunkRef, Revision
from memhub.store.service import Store

READ_AHEAD_BYTES = 4 * 1024 * 1024  # the files whose small chunks are read in one go


def inline_chunks(store: Store, refs: Iterable[ChunkRef]) -> dict[str, bytes]:
    """chunk sha256 → its verified bytes, for the chunks of ``refs`` kept inline."""
    tier = getattr(store.blobs, "within", None)
    if not isinstance(tier, MetadataInline):
        return {}
    wanted = {ref.sha256: ref.size for ref in refs}
    if not wanted:
        return {}
    # the blob store's own health check (what /health and every inline write ask): while
    # its directory is out, nothing is read ahead, so the caller's read through the store
    # fails with StorageUnavailable as any read does
    try:
        tier.check()
    except StorageUnavailable:
        return {}
    found = tier.get_many(chunk_key(sha) for sha in wanted)
    out: dict[str, bytes] = {}
    for sha, size in wanted.items():
        data = found.get(chunk_key(sha))
        if data is not None and len(data) == size and hashlib.sha256(data).hexdigest() == sha:
            out[sha] = data
    return out


def contents_ahead(
    store: Store, revisions: Sequence[Revision], refs: Mapping[str, list[ChunkRef]]
) -> Iterator[tuple[Revision, bytes | None]]:
    """Each revision with its bytes when all its chunks were read ahead, else None (the
    caller reads it through :meth:`Store.read_content`). ``refs`` are the chunks of each
    content (:meth:`Store.chunk_refs`); files are read ahead :data:`READ_AHEAD_BYTES` at
    a time, so memory stays bounded whatever the page holds."""
    start = 0
    while start < len(revisions):
        end, size = start, 0
        while end < len(revisions) and (
            end == start or size + revisions[end].size <= READ_AHEAD_BYTES
        ):
            size += revisions[end].size
            end += 1
        group = revisions[start:end]
        ahead = inline_chunks(store, (c for r in group for c in refs.get(r.sha256, ())))
        for revision in group:
            chunks = refs.get(revision.sha256)
            if chunks and all(ref.sha256 in ahead for ref in chunks):
                yield revision, b"".join(ahead[ref.sha256] for ref in chunks)
            else:
                yield revision, None
        start = end
