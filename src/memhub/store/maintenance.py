"""Checking and collecting the store: ``memhub fsck`` and ``memhub gc``.

fsck: every revision's content is recorded, its chunks add up to its size,
and every chunk exists in the blob store and hashes to its address. Blobs no
chunk row refers to are listed as orphans (not damage: a write in progress
has its blobs before its row).

gc, in order: purge old revisions (never a path's head), then contents no
revision uses, then chunk rows no content uses (after a grace period, since a
client uploads chunks before it commits their manifest), then blobs that no
chunk row in any workspace names (after the same grace period, so that the
blobs of a write in progress survive).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, exists, func, select

from memhub.store.blobs import BlobNotFound, chunk_key
from memhub.store.blobs.base import sha_from_key
from memhub.store.model import FsckReport, GcReport
from memhub.store.schema import chunks, content_chunks, contents, files, revisions, workspaces
from memhub.store.service import Store

Progress = Callable[[int], None]


def fsck(
    store: Store, *, verify_hashes: bool = True, progress: Progress | None = None
) -> FsckReport:
    report = FsckReport()
    with store.meta.read() as conn:
        names = dict(conn.execute(select(workspaces.c.id, workspaces.c.name)).all())
        used = conn.execute(
            select(
                revisions.c.workspace_id,
                revisions.c.sha256,
                func.min(revisions.c.rev),
                func.count(),
            ).group_by(revisions.c.workspace_id, revisions.c.sha256)
        ).all()
        recorded = {
            (r.workspace_id, r.sha256): (r.size, r.chunk_count)
            for r in conn.execute(select(contents)).all()
        }
        chunk_lists: dict[tuple[int, str], list[tuple[str, int]]] = {}
        for row in conn.execute(
            select(content_chunks).order_by(
                content_chunks.c.workspace_id, content_chunks.c.content_sha256, content_chunks.c.seq
            )
        ):
            chunk_lists.setdefault((row.workspace_id, row.content_sha256), []).append(
                (row.chunk_sha256, row.size)
            )
        chunk_rows = {sha for (sha,) in conn.execute(select(chunks.c.sha256).distinct())}

    bad_chunks: set[str] = set()
    checked: set[str] = set()
    for ws_id, sha, first_rev, count in used:
        report.revisions_checked += count
        problem = _content_problem(
            store, (ws_id, sha), recorded, chunk_lists, checked, bad_chunks, report, verify_hashes
        )
        if problem:
            report.broken_revisions.append(
                {
                    "workspace": names.get(ws_id),
                    "sha256": sha,
                    "first_rev": first_rev,
                    "revisions": count,
                    "problem": problem,
                }
            )
        if progress:
            progress(count)
    for info in store.blobs.list("chunks/"):
        sha = sha_from_key(info.key)
        if sha is not None and sha not in chunk_rows:
            report.orphan_blobs.append(info.key)
    return report


def _content_problem(
    store: Store,
    key: tuple[int, str],
    recorded: dict[tuple[int, str], tuple[int, int]],
    chunk_lists: dict[tuple[int, str], list[tuple[str, int]]],
    checked: set[str],
    bad_chunks: set[str],
    report: FsckReport,
    verify_hashes: bool,
) -> str | None:
    if key not in recorded:
        return "content is not recorded"
    size, count = recorded[key]
    parts = chunk_lists.get(key, [])
    if len(parts) != count or sum(p[1] for p in parts) != size:
        return "chunk list does not add up to the content"
    problem = None
    for chunk_sha, chunk_size in parts:
        if chunk_sha not in checked:
            checked.add(chunk_sha)
            report.chunks_checked += 1
            state = _check_chunk(store, chunk_sha, chunk_size, verify_hashes)
            if state == "missing":
                report.missing_chunks.append(chunk_sha)
                bad_chunks.add(chunk_sha)
            elif state == "corrupt":
                report.corrupt_chunks.append(chunk_sha)
                bad_chunks.add(chunk_sha)
        if chunk_sha in bad_chunks:
            problem = f"chunk {chunk_sha} is missing or corrupt"
    return problem


def _check_chunk(store: Store, sha: str, size: int, verify: bool) -> str:
    key = chunk_key(sha)
    if not verify:
        return "ok" if store.blobs.exists(key) else "missing"
    digest = hashlib.sha256()
    length = 0
    try:
        for piece in store.blobs.open(key):
            digest.update(piece)
            length += len(piece)
    except BlobNotFound:
        return "missing"
    return "ok" if digest.hexdigest() == sha and length == size else "corrupt"


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep a revision when it is one of its path's newest ``keep_revisions`` or younger
    than ``keep_days``. With neither set, every revision is kept."""

    keep_days: float | None = None
    keep_revisions: int | None = None

    @property
    def active(self) -> bool:
        return self.keep_days is not None or self.keep_revisions is not None


def gc(
    store: Store,
    *,
    retention: Retention = Retention(),
    grace_seconds: float = 24 * 3600,
    dry_run: bool = False,
) -> GcReport:
    report = GcReport(dry_run=dry_run)
    now = store.clock()
    with store.meta.write() as conn:
        # A dry run does every step in a savepoint and rolls it back, so that what it
        # reports is what the real run would do (each step sees the previous ones).
        steps = conn.begin_nested()
        if retention.active:
            report.revisions_purged = _purge_revisions(conn, retention, now)
        unused_contents = ~exists().where(
            revisions.c.workspace_id == contents.c.workspace_id,
            revisions.c.sha256 == contents.c.sha256,
        )
        doomed = conn.execute(
            select(contents.c.workspace_id, contents.c.sha256).where(unused_contents)
        ).all()
        report.contents_deleted = len(doomed)
        for ws_id, sha in doomed:
            conn.execute(
                delete(content_chunks).where(
                    content_chunks.c.workspace_id == ws_id,
                    content_chunks.c.content_sha256 == sha,
                )
            )
            conn.execute(
                delete(contents).where(contents.c.workspace_id == ws_id, contents.c.sha256 == sha)
            )
        unused_chunks = and_(
            chunks.c.created_at < now - grace_seconds,
            ~exists().where(
                content_chunks.c.workspace_id == chunks.c.workspace_id,
                content_chunks.c.chunk_sha256 == chunks.c.sha256,
            ),
        )
        report.chunks_deleted = int(
            conn.execute(select(func.count()).select_from(chunks).where(unused_chunks)).scalar_one()
        )
        conn.execute(delete(chunks).where(unused_chunks))
        live = {sha for (sha,) in conn.execute(select(chunks.c.sha256).distinct())}
        if dry_run:
            steps.rollback()
        else:
            steps.commit()
    doomed_keys = []
    for info in store.blobs.list("chunks/"):
        sha = sha_from_key(info.key)
        if sha is not None and sha not in live and info.modified < now - grace_seconds:
            doomed_keys.append(info.key)
            report.bytes_freed += info.size
    report.blobs_deleted = len(doomed_keys)
    if not dry_run:
        store.blobs.delete(doomed_keys)
        _remove_stale_temp_files(store, now - grace_seconds)
    return report


def _purge_revisions(conn: Connection, retention: Retention, now: float) -> int:
    rows = conn.execute(
        select(revisions.c.workspace_id, revisions.c.path, revisions.c.rev, revisions.c.created_at)
        .where(
            ~exists().where(
                files.c.workspace_id == revisions.c.workspace_id,
                files.c.rev == revisions.c.rev,
            )
        )
        .order_by(revisions.c.workspace_id, revisions.c.path, revisions.c.rev.desc())
    ).all()
    seen: dict[tuple[int, str], int] = {}
    doomed: list[tuple[int, int]] = []
    for ws_id, path, rev, created_at in rows:
        rank = seen[(ws_id, path)] = seen.get((ws_id, path), 1) + 1  # the head is rank 1
        young = retention.keep_days is not None and created_at >= now - retention.keep_days * 86400
        recent = retention.keep_revisions is not None and rank <= retention.keep_revisions
        if not (young or recent):
            doomed.append((ws_id, rev))
    for ws_id, rev in doomed:
        conn.execute(
            delete(revisions).where(revisions.c.workspace_id == ws_id, revisions.c.rev == rev)
        )
    return len(doomed)


def _remove_stale_temp_files(store: Store, older_than: float) -> None:
    lister = getattr(store.blobs, "list_temp_files", None)
    if lister is None:
        return
    for path in lister():
        try:
            if path.stat().st_mtime < older_than:
                os.unlink(path)
        except FileNotFoundError:
            continue
