"""The store: workspaces, versioned files, the change log, chunks and leases.

A write is two steps. First its bytes go to the blob store, chunk by chunk,
each chunk under its own sha256 and durable before the next step. Then one
metadata transaction bumps the workspace's rev (which serialises writers of
that workspace), checks the precondition and the fencing token against the
current head, and records the content, the revision and the new head. So a
metadata row never points at bytes that are not durable, a failed
precondition writes nothing, and revs commit in order: a reader of the change
log that has seen rev N has seen every rev below it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import IO, Any

from sqlalchemy import Connection, Row, bindparam, func, insert, or_, select, update

from memhub.core.paths import normalize_path, normalize_prefix, validate_name
from memhub.core.protocol import MAX_MANIFEST_CHUNKS
from memhub.errors import (
    BadRequest,
    BlobMissing,
    ChunksMissing,
    FileNotFound,
    InvalidChecksum,
    PathConflict,
    PayloadTooLarge,
    PreconditionFailed,
    RevisionNotFound,
    StorageCorrupt,
    WorkspaceExists,
    WorkspaceNotFound,
)
from memhub.store.blobs import BlobNotFound, BlobStore, chunk_key
from memhub.store.leases import LeaseManager
from memhub.store.mediatype import validate_content_type
from memhub.store.metadata import Metadata
from memhub.store.model import (
    DEFAULT_CONTENT_TYPE,
    EMPTY_MD5,
    EMPTY_SHA256,
    ChangePage,
    ChunkRef,
    Fence,
    Precondition,
    Revision,
    WriteResult,
)
from memhub.store.schema import chunks, content_chunks, contents, files, revisions, workspaces

SHA256_HEX = frozenset("0123456789abcdef")
MAX_PAGE = 10_000

# The hot statements, built once: SQLAlchemy then reuses their compiled form.
_BUMP_REV = (
    update(workspaces)
    .where(workspaces.c.id == bindparam("ws"))
    .values(head_rev=workspaces.c.head_rev + 1)
    .returning(workspaces.c.head_rev)
)
_BUMP_BY = (
    update(workspaces)
    .where(workspaces.c.id == bindparam("ws"))
    .values(head_rev=workspaces.c.head_rev + bindparam("n"))
    .returning(workspaces.c.head_rev)
)
_HEAD = select(files).where(
    files.c.workspace_id == bindparam("ws"), files.c.path == bindparam("path")
)
_REVISION = select(revisions).where(
    revisions.c.workspace_id == bindparam("ws"), revisions.c.rev == bindparam("rev")
)
_CHUNKS_OF = (
    select(content_chunks.c.chunk_sha256, content_chunks.c.size)
    .where(
        content_chunks.c.workspace_id == bindparam("ws"),
        content_chunks.c.content_sha256 == bindparam("sha"),
    )
    .order_by(content_chunks.c.seq)
)
_INSERT_REVISION = insert(revisions)
_INSERT_CONTENT_CHUNKS = insert(content_chunks)


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= SHA256_HEX


def _row_to_revision(workspace: str, row: Row[Any]) -> Revision:
    return Revision(
        workspace=workspace,
        rev=row.rev,
        path=row.path,
        sha256=row.sha256,
        md5=row.md5,
        size=row.size,
        content_type=row.content_type,
        created_at=row.created_at,
        author=row.author,
        session_id=row.session_id,
        message=row.message,
        deleted=bool(row.deleted),
    )


class _Content:
    """The identity of a content and the chunks it is made of."""

    __slots__ = ("chunks", "md5", "sha256", "size")

    def __init__(self, sha256: str, md5: str, size: int, chunk_refs: list[ChunkRef]) -> None:
        self.sha256 = sha256
        self.md5 = md5
        self.size = size
        self.chunks = chunk_refs


class Store:
    def __init__(
        self,
        meta: Metadata,
        blobs: BlobStore,
        *,
        chunk_size: int = 4 * 1024**2,
        max_chunk_bytes: int = 16 * 1024**2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max(max_chunk_bytes, chunk_size)
        self.clock = clock
        self._ws_ids: dict[str, int] = {}
        self.leases = LeaseManager(meta, self.workspace_id, clock)
        self._listeners: list[Callable[[str, int], None]] = []
        self._corruption_listeners: list[Callable[[str], None]] = []
        self._listeners_lock = threading.Lock()

    # -- workspaces --------------------------------------------------------------

    def workspace_id(self, name: str) -> int:
        cached = self._ws_ids.get(name)
        if cached is not None:
            return cached
        with self.meta.read() as conn:
            ws_id = conn.execute(select(workspaces.c.id).where(workspaces.c.name == name)).scalar()
        if ws_id is None:
            raise WorkspaceNotFound(
                f"workspace {name!r} does not exist", context={"workspace": name}
            )
        self._ws_ids[name] = ws_id
        return int(ws_id)

    def create_workspace(self, name: str, *, exist_ok: bool = False) -> dict[str, Any]:
        name = validate_name(name, "workspace")
        with self.meta.write() as conn:
            inserted = conn.execute(
                self.meta.insert_ignore(workspaces),
                {"name": name, "created_at": self.clock(), "head_rev": 0},
            ).rowcount
        if not inserted and not exist_ok:
            raise WorkspaceExists(f"workspace {name!r} already exists")
        return self.get_workspace(name)

    def get_workspace(self, name: str) -> dict[str, Any]:
        with self.meta.read() as conn:
            row = conn.execute(select(workspaces).where(workspaces.c.name == name)).first()
            if row is None:
                raise WorkspaceNotFound(f"workspace {name!r} does not exist")
            counts = conn.execute(
                select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(
                    files.c.workspace_id == row.id, files.c.deleted.is_(False)
                )
            ).one()
        return {
            "name": row.name,
            "created_at": row.created_at,
            "head_rev": row.head_rev,
            "files": counts[0],
            "bytes": int(counts[1]),
        }

    def list_workspaces(self) -> list[dict[str, Any]]:
        with self.meta.read() as conn:
            rows = conn.execute(select(workspaces).order_by(workspaces.c.name)).all()
        return [{"name": r.name, "created_at": r.created_at, "head_rev": r.head_rev} for r in rows]

    def head_rev(self, workspace: str) -> int:
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            return int(
                conn.execute(
                    select(workspaces.c.head_rev).where(workspaces.c.id == ws_id)
                ).scalar_one()
            )

    # -- change listeners (wake long-polls in this process) ---------------------

    def add_listener(self, callback: Callable[[str, int], None]) -> None:
        with self._listeners_lock:
            self._listeners.append(callback)

    def _notify(self, workspace: str, rev: int) -> None:
        for callback in list(self._listeners):
            callback(workspace, rev)

    # -- writing -----------------------------------------------------------------

    def put(
        self,
        workspace: str,
        path: str,
        data: bytes | IO[bytes],
        *,
        precondition: Precondition = Precondition(),
        content_type: str | None = None,
        author: str | None = None,
        session_id: str | None = None,
        message: str | None = None,
        fence: Fence | None = None,
        max_bytes: int | None = None,
    ) -> WriteResult:
        """Store ``data`` (bytes or a binary stream, read in bounded pieces) as a new revision."""
        path = normalize_path(path)
        content_type = validate_content_type(content_type)
        ws_id = self.workspace_id(workspace)
        if precondition != Precondition():
            # fail fast, before any bytes are written (checked again when committing)
            with self.meta.read() as conn:
                precondition.check(path, self._current(conn, workspace, ws_id, path))
        content = self._write_chunks(data, max_bytes)
        return self._commit(
            workspace,
            ws_id,
            path,
            content,
            precondition=precondition,
            content_type=content_type,
            author=author,
            session_id=session_id,
            message=message,
            fence=fence,
            new_chunks=True,
        )

    def put_each(
        self,
        workspace: str,
        writes: list[tuple[str, bytes, Precondition]],
        *,
        content_type: str | None = None,
        author: str | None = None,
        message: str | None = None,
    ) -> list[WriteResult | PreconditionFailed]:
        """Small writes in one metadata transaction (their blobs written in parallel, each
        durable first): each write gets its own rev, in order, or its PreconditionFailed
        (nothing written for it). Paths must be distinct. Used for batches of memory
        items; a handful of set-based statements whatever the batch size."""
        ws_id = self.workspace_id(workspace)
        paths = [normalize_path(path) for path, _, _ in writes]
        if len(set(paths)) != len(paths):
            raise BadRequest("put_each: the paths of one batch must be distinct")
        with ThreadPoolExecutor(max_workers=8) as pool:
            made = list(pool.map(lambda w: self._write_chunks(w[1], None), writes))
        out: list[WriteResult | PreconditionFailed | None] = [None] * len(writes)
        now = self.clock()
        with self.meta.write() as conn:
            # lock the workspace row first (PostgreSQL), as every writer does
            conn.execute(_BUMP_BY, {"ws": ws_id, "n": 0})
            heads = self._heads(conn, workspace, ws_id, paths)
            accepted: list[tuple[int, str, _Content]] = []
            for n, (path, content, (_, _, precondition)) in enumerate(
                zip(paths, made, writes, strict=True)
            ):
                try:
                    precondition.check(path, heads.get(path))
                except PreconditionFailed as exc:
                    out[n] = exc
                    continue
                accepted.append((n, path, content))
            if accepted:
                top = conn.execute(_BUMP_BY, {"ws": ws_id, "n": len(accepted)}).scalar_one()
                self._record_contents(conn, ws_id, [c for _, _, c in accepted], now)
                rows = []
                for offset, (n, path, content) in enumerate(accepted):
                    revision = Revision(
                        workspace, top - len(accepted) + 1 + offset, path, content.sha256,
                        content.md5, content.size, content_type or DEFAULT_CONTENT_TYPE, now,
                        author, None, message, False,
                    )  # fmt: skip
                    head = heads.get(path)
                    out[n] = WriteResult(revision, created=head is None or head.deleted)
                    values = {**revision.to_dict(), "workspace_id": ws_id}
                    del values["workspace"]
                    rows.append(values)
                conn.execute(_INSERT_REVISION, rows)
                conn.execute(self.meta.upsert(files, ("workspace_id", "path")), rows)
        done = [r for r in out if r is not None]
        for result in done:
            if isinstance(result, WriteResult):
                self._notify(workspace, result.revision.rev)
        return done

    def _heads(
        self, conn: Connection, workspace: str, ws_id: int, paths: list[str]
    ) -> dict[str, Revision]:
        heads: dict[str, Revision] = {}
        for start in range(0, len(paths), 500):
            rows = conn.execute(
                select(files).where(
                    files.c.workspace_id == ws_id, files.c.path.in_(paths[start : start + 500])
                )
            ).all()
            heads.update((r.path, _row_to_revision(workspace, r)) for r in rows)
        return heads

    def _record_contents(
        self, conn: Connection, ws_id: int, made: list[_Content], now: float
    ) -> None:
        """:meth:`_record_content` for many contents (the workspace row is locked)."""
        unique = {c.sha256: c for c in made}
        known: set[str] = set()
        shas = list(unique)
        for start in range(0, len(shas), 500):
            known.update(
                conn.execute(
                    select(contents.c.sha256).where(
                        contents.c.workspace_id == ws_id,
                        contents.c.sha256.in_(shas[start : start + 500]),
                    )
                ).scalars()
            )
        sizes = {ref.sha256: ref.size for c in unique.values() for ref in c.chunks}
        if sizes:
            conn.execute(
                self.meta.insert_ignore(chunks),
                [
                    {"workspace_id": ws_id, "sha256": sha, "size": size, "created_at": now}
                    for sha, size in sizes.items()
                ],
            )
        fresh = [c for sha, c in unique.items() if sha not in known]
        if not fresh:
            return
        conn.execute(
            self.meta.insert_ignore(contents),
            [
                {"workspace_id": ws_id, "sha256": c.sha256, "md5": c.md5, "size": c.size,
                 "chunk_count": len(c.chunks), "created_at": now}
                for c in fresh
            ],
        )  # fmt: skip
        links = [
            {"workspace_id": ws_id, "content_sha256": c.sha256, "seq": seq,
             "chunk_sha256": ref.sha256, "size": ref.size}
            for c in fresh
            for seq, ref in enumerate(c.chunks)
        ]  # fmt: skip
        if links:
            conn.execute(_INSERT_CONTENT_CHUNKS, links)

    def _write_chunks(self, data: bytes | IO[bytes], max_bytes: int | None) -> _Content:
        whole_sha = hashlib.sha256()
        whole_md5 = hashlib.md5()
        refs: list[ChunkRef] = []
        size = 0
        for piece in _pieces(data, self.chunk_size):
            size += len(piece)
            if max_bytes is not None and size > max_bytes:
                raise PayloadTooLarge(
                    f"the body is larger than the limit of {max_bytes} bytes",
                    context={"max_bytes": max_bytes},
                )
            whole_sha.update(piece)
            whole_md5.update(piece)
            chunk_sha = hashlib.sha256(piece).hexdigest()
            self.blobs.put(chunk_key(chunk_sha), piece)
            refs.append(ChunkRef(chunk_sha, len(piece)))
        return _Content(whole_sha.hexdigest(), whole_md5.hexdigest(), size, refs)

    def delete(
        self,
        workspace: str,
        path: str,
        *,
        precondition: Precondition = Precondition(),
        author: str | None = None,
        session_id: str | None = None,
        message: str | None = None,
        fence: Fence | None = None,
    ) -> Revision:
        """Record a tombstone. Deleting a path that is absent or deleted is FileNotFound."""
        path = normalize_path(path)
        ws_id = self.workspace_id(workspace)
        result = self._commit(
            workspace,
            ws_id,
            path,
            None,
            precondition=precondition,
            content_type=None,
            author=author,
            session_id=session_id,
            message=message,
            fence=fence,
            new_chunks=False,
        )
        return result.revision

    def restore(
        self,
        workspace: str,
        path: str,
        rev: int,
        *,
        precondition: Precondition = Precondition(),
        author: str | None = None,
        message: str | None = None,
    ) -> WriteResult:
        """A new revision of ``path`` with the content it had at ``rev``."""
        old = self.revision(workspace, rev)
        path = normalize_path(path)
        if old.path != path:
            raise RevisionNotFound(f"rev {rev} is not a revision of {path!r}")
        if old.deleted:
            raise BadRequest(f"rev {rev} is a tombstone; restore a revision with content")
        ws_id = self.workspace_id(workspace)
        content = _Content(old.sha256, old.md5, old.size, [])
        return self._commit(
            workspace,
            ws_id,
            path,
            content,
            precondition=precondition,
            content_type=old.content_type,
            author=author,
            session_id=None,
            message=message or f"restore of rev {rev}",
            fence=None,
            new_chunks=False,
            reuse=True,
        )

    def commit_manifest(
        self,
        workspace: str,
        path: str,
        chunk_refs: list[ChunkRef],
        sha256: str,
        *,
        precondition: Precondition = Precondition(),
        content_type: str | None = None,
        author: str | None = None,
        session_id: str | None = None,
        message: str | None = None,
        fence: Fence | None = None,
        max_bytes: int | None = None,
    ) -> WriteResult:
        """Commit a revision made of chunks uploaded earlier with :meth:`put_chunk`.

        The server reads the chunks back to check ``sha256`` of the whole and to
        compute its md5, so a manifest can never name content it does not hold.
        The work is bounded before any byte is read: the manifest may name at most
        ``max_bytes`` in all, and each chunk's declared size must be the size it was
        uploaded with; a chunk named many times is read and verified once.
        """
        path = normalize_path(path)
        content_type = validate_content_type(content_type)
        ws_id = self.workspace_id(workspace)
        if len(chunk_refs) > MAX_MANIFEST_CHUNKS:
            raise BadRequest(f"a manifest may list at most {MAX_MANIFEST_CHUNKS} chunks")
        sha256 = sha256.lower()
        if not _is_sha256(sha256):
            raise BadRequest("sha256 must be 64 hex digits")
        chunk_refs = [ChunkRef(c.sha256.lower(), c.size) for c in chunk_refs]
        self._check_manifest(ws_id, chunk_refs, max_bytes)
        whole_sha = hashlib.sha256()
        whole_md5 = hashlib.md5()
        size = 0
        repeated = _RepeatCache(chunk_refs)
        for ref in chunk_refs:
            data = repeated.get(ref.sha256)
            if data is None:
                data = self._verified_chunk(ref)
                repeated.keep(ref.sha256, data)
            whole_sha.update(data)
            whole_md5.update(data)
            size += len(data)
        if whole_sha.hexdigest() != sha256:
            raise InvalidChecksum(
                "the chunks do not add up to the declared sha256",
                context={"declared": sha256, "actual": whole_sha.hexdigest()},
            )
        refs = [ChunkRef(r.sha256, r.size) for r in chunk_refs]
        content = _Content(sha256, whole_md5.hexdigest(), size, refs)
        return self._commit(
            workspace,
            ws_id,
            path,
            content,
            precondition=precondition,
            content_type=content_type,
            author=author,
            session_id=session_id,
            message=message,
            fence=fence,
            new_chunks=False,
        )

    def _commit(
        self,
        workspace: str,
        ws_id: int,
        path: str,
        content: _Content | None,
        *,
        precondition: Precondition,
        content_type: str | None,
        author: str | None,
        session_id: str | None,
        message: str | None,
        fence: Fence | None,
        new_chunks: bool,
        reuse: bool = False,
    ) -> WriteResult:
        now = self.clock()
        with self.meta.write() as conn:
            rev = conn.execute(_BUMP_REV, {"ws": ws_id}).scalar_one()
            current = self._current(conn, workspace, ws_id, path)
            precondition.check(path, current)
            if fence is not None:
                self.leases.check_fence(conn, ws_id, fence)
            if content is None:
                if current is None or current.deleted:
                    raise FileNotFound(f"File not found: {path}", context={"path": path})
                revision = replace(
                    current,
                    rev=rev,
                    size=0,
                    created_at=now,
                    author=author,
                    session_id=session_id,
                    message=message,
                    deleted=True,
                )
            else:
                if current is None or current.deleted:
                    self._check_case_clash(conn, ws_id, path)
                if not reuse:
                    self._record_content(conn, ws_id, content, now, new_chunks)
                revision = Revision(
                    workspace=workspace,
                    rev=rev,
                    path=path,
                    sha256=content.sha256,
                    md5=content.md5,
                    size=content.size,
                    content_type=content_type or DEFAULT_CONTENT_TYPE,
                    created_at=now,
                    author=author,
                    session_id=session_id,
                    message=message,
                    deleted=False,
                )
            values = revision.to_dict()
            del values["workspace"]
            values["workspace_id"] = ws_id
            conn.execute(_INSERT_REVISION, values)
            conn.execute(self.meta.upsert(files, ("workspace_id", "path")), values)
        self._notify(workspace, rev)
        return WriteResult(revision, created=current is None or current.deleted)

    def put_many(
        self,
        workspace: str,
        writes: Sequence[tuple[str, bytes | None, Precondition]],
        *,
        content_type: str | None = None,
        author: str | None = None,
        session_id: str | None = None,
        message: str | None = None,
        created_at: float | None = None,
    ) -> list[WriteResult]:
        """Several files in one transaction: ``(path, bytes or None to delete, precondition)``.
        Every precondition holds and every write becomes a revision, or nothing is
        written (the first failed precondition is raised). Bytes are made durable first.
        ``created_at`` keeps an imported history's own times (the git bridge)."""
        ws_id = self.workspace_id(workspace)
        planned = [
            (normalize_path(p), None if d is None else self._write_chunks(d, None), c)
            for p, d, c in writes
        ]
        if len({p for p, _, _ in planned}) != len(planned):
            raise BadRequest("a path may appear only once in a multi-file commit")
        now = self.clock() if created_at is None else created_at
        results: list[WriteResult] = []
        with self.meta.write() as conn:
            for path, content, precondition in planned:
                rev = conn.execute(_BUMP_REV, {"ws": ws_id}).scalar_one()
                current = self._current(conn, workspace, ws_id, path)
                precondition.check(path, current)
                fields: dict[str, Any] = {"rev": rev, "created_at": now, "author": author}
                fields |= {"session_id": session_id, "message": message}
                if content is None:
                    if current is None or current.deleted:
                        raise FileNotFound(f"File not found: {path}", context={"path": path})
                    revision = replace(current, size=0, deleted=True, **fields)
                else:
                    self._record_content(conn, ws_id, content, now, True)
                    revision = Revision(
                        workspace=workspace,
                        path=path,
                        sha256=content.sha256,
                        md5=content.md5,
                        size=content.size,
                        content_type=content_type or DEFAULT_CONTENT_TYPE,
                        deleted=False,
                        **fields,
                    )
                values = revision.to_dict()
                del values["workspace"]
                values["workspace_id"] = ws_id
                conn.execute(_INSERT_REVISION, values)
                conn.execute(self.meta.upsert(files, ("workspace_id", "path")), values)
                results.append(WriteResult(revision, current is None or current.deleted))
        if results:
            self._notify(workspace, results[-1].revision.rev)
        return results

    def _record_content(
        self, conn: Connection, ws_id: int, content: _Content, now: float, new_chunks: bool
    ) -> None:
        if new_chunks and content.chunks:
            unique = {c.sha256: c.size for c in content.chunks}
            conn.execute(
                self.meta.insert_ignore(chunks),
                [
                    {"workspace_id": ws_id, "sha256": sha, "size": size, "created_at": now}
                    for sha, size in unique.items()
                ],
            )
        inserted = conn.execute(
            self.meta.insert_ignore(contents),
            {
                "workspace_id": ws_id,
                "sha256": content.sha256,
                "md5": content.md5,
                "size": content.size,
                "chunk_count": len(content.chunks),
                "created_at": now,
            },
        ).rowcount
        if inserted and content.chunks:
            conn.execute(
                _INSERT_CONTENT_CHUNKS,
                [
                    {
                        "workspace_id": ws_id,
                        "content_sha256": content.sha256,
                        "seq": seq,
                        "chunk_sha256": ref.sha256,
                        "size": ref.size,
                    }
                    for seq, ref in enumerate(content.chunks)
                ],
            )

    @staticmethod
    def _check_case_clash(conn: Connection, ws_id: int, path: str) -> None:
        """A new path must not differ only in case from a live one: macOS and Windows
        clients could not hold both. (The database folds ASCII case; the casefold
        comparison below confirms, for every script, what it finds.)"""
        rows = conn.execute(
            select(files.c.path).where(
                files.c.workspace_id == ws_id,
                func.lower(files.c.path) == path.lower(),
                files.c.path != path,
                files.c.deleted.is_(False),
            )
        ).scalars()
        for other in rows:
            if other.casefold() == path.casefold():
                raise PathConflict(
                    f"{path!r} differs only in case from the live file {other!r}; "
                    "macOS and Windows cannot hold both",
                    context={"path": path, "existing": other},
                    hint="write to the existing name, or delete it first",
                )

    @staticmethod
    def _current(conn: Connection, workspace: str, ws_id: int, path: str) -> Revision | None:
        row = conn.execute(_HEAD, {"ws": ws_id, "path": path}).first()
        return _row_to_revision(workspace, row) if row is not None else None

    # -- chunks --------------------------------------------------------------------

    def missing_chunks(
        self, workspace: str, shas: Iterable[str], *, touch: bool = True
    ) -> list[str]:
        """The hashes in ``shas`` this workspace has not uploaded, in the order given.

        Present chunks are touched, so ``memhub gc`` leaves them alone for its
        grace period while the client commits a manifest that uses them.
        """
        wanted = list(dict.fromkeys(s.lower() for s in shas))
        bad = [s for s in wanted if not _is_sha256(s)]
        if bad:
            raise BadRequest("chunk hashes must be 64 hex digits", context={"invalid": bad[:10]})
        ws_id = self.workspace_id(workspace)
        present: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            with self.meta.read() as conn:
                present.update(
                    conn.execute(
                        select(chunks.c.sha256).where(
                            chunks.c.workspace_id == ws_id, chunks.c.sha256.in_(batch)
                        )
                    ).scalars()
                )
            if touch and present:
                with self.meta.write() as conn:
                    conn.execute(
                        update(chunks)
                        .where(
                            chunks.c.workspace_id == ws_id,
                            chunks.c.sha256.in_([s for s in batch if s in present]),
                        )
                        .values(created_at=self.clock())
                    )
        return [s for s in wanted if s not in present]

    def put_chunk(self, workspace: str, sha256: str, data: bytes) -> bool:
        """Store one chunk after checking its hash; True when it was new to the workspace."""
        sha256 = sha256.lower()
        if not _is_sha256(sha256):
            raise BadRequest("a chunk is addressed by 64 hex digits of its sha256")
        if len(data) > self.max_chunk_bytes:
            raise PayloadTooLarge(
                f"a chunk may be at most {self.max_chunk_bytes} bytes",
                context={"max_bytes": self.max_chunk_bytes},
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise InvalidChecksum(
                "the chunk's bytes do not hash to its address",
                context={"declared": sha256, "actual": actual},
            )
        ws_id = self.workspace_id(workspace)
        self.blobs.put(chunk_key(sha256), data)
        with self.meta.write() as conn:
            inserted = conn.execute(
                self.meta.insert_ignore(chunks),
                {
                    "workspace_id": ws_id,
                    "sha256": sha256,
                    "size": len(data),
                    "created_at": self.clock(),
                },
            ).rowcount
        return bool(inserted)

    def _check_manifest(self, ws_id: int, refs: list[ChunkRef], max_bytes: int | None) -> None:
        """Refuse a manifest from the metadata alone: too many bytes, chunks never
        uploaded by this workspace, or sizes other than the uploaded ones."""
        declared = sum(ref.size for ref in refs)
        if max_bytes is not None and declared > max_bytes:
            raise PayloadTooLarge(
                f"the manifest names {declared} bytes, more than the limit of {max_bytes}",
                context={"declared": declared, "max_bytes": max_bytes},
            )
        wanted = list(dict.fromkeys(ref.sha256 for ref in refs))
        bad = [s for s in wanted if not _is_sha256(s)]
        if bad:
            raise BadRequest("chunk hashes must be 64 hex digits", context={"invalid": bad[:10]})
        sizes: dict[str, int] = {}
        with self.meta.read() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(chunks.c.sha256, chunks.c.size).where(
                        chunks.c.workspace_id == ws_id,
                        chunks.c.sha256.in_(wanted[start : start + 500]),
                    )
                ).all()
                sizes.update((row[0], int(row[1])) for row in rows)
        missing = [s for s in wanted if s not in sizes]
        if missing:
            raise ChunksMissing(
                f"{len(missing)} chunks of the manifest were never uploaded",
                context={"missing": missing[:100]},
                hint="upload them with PUT …/chunks/{sha256}, then commit again",
            )
        for ref in refs:
            if sizes[ref.sha256] != ref.size:
                raise InvalidChecksum(
                    f"chunk {ref.sha256} is {sizes[ref.sha256]} bytes, the manifest says "
                    f"{ref.size}",
                    context={
                        "chunk": ref.sha256,
                        "declared": ref.size,
                        "actual": sizes[ref.sha256],
                    },
                )

    # -- reading -------------------------------------------------------------------

    def stat(self, workspace: str, path: str, *, include_deleted: bool = False) -> Revision:
        path = normalize_path(path)
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            current = self._current(conn, workspace, ws_id, path)
        if current is None or (current.deleted and not include_deleted):
            raise FileNotFound(f"File not found: {path}", context={"path": path})
        return current

    def read_plan(
        self, workspace: str, path: str, rev: int | None = None
    ) -> tuple[Revision, list[ChunkRef]]:
        """The revision to read (the head, or ``rev``) and the chunks of its content."""
        path = normalize_path(path)
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            if rev is None:
                found = self._current(conn, workspace, ws_id, path)
                if found is None or found.deleted:
                    raise FileNotFound(f"File not found: {path}", context={"path": path})
            else:
                found = self._revision(conn, workspace, ws_id, rev)
                if found.path != path:
                    raise RevisionNotFound(f"rev {rev} is not a revision of {path!r}")
                if found.deleted:
                    raise FileNotFound(
                        f"rev {rev} of {path} is a tombstone", context={"path": path}
                    )
            refs = self._chunks_of(conn, ws_id, found.sha256)
        return found, refs

    @staticmethod
    def _chunks_of(conn: Connection, ws_id: int, sha256: str) -> list[ChunkRef]:
        rows = conn.execute(_CHUNKS_OF, {"ws": ws_id, "sha": sha256}).all()
        return [ChunkRef(r[0], r[1]) for r in rows]

    def iter_content(self, refs: list[ChunkRef]) -> Iterator[bytes]:
        """The content, one verified chunk at a time (a chunk is at most
        ``max_chunk_bytes``): no byte leaves before its chunk passed its sha256."""
        for ref in refs:
            yield self._verified_chunk(ref)

    def read_content(self, refs: list[ChunkRef]) -> bytes:
        return b"".join(self._verified_chunk(ref) for ref in refs)

    def _verified_chunk(self, ref: ChunkRef) -> bytes:
        try:
            data = self.blobs.get(chunk_key(ref.sha256))
        except BlobNotFound:
            raise BlobMissing(
                f"chunk {ref.sha256} is missing from the blob store",
                hint="the store is damaged: run `memhub fsck`",
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256 or len(data) != ref.size:
            self._report_corrupt(ref.sha256)
            raise StorageCorrupt(
                f"chunk {ref.sha256} failed its sha256 check on read",
                context={"chunk": ref.sha256, "actual": actual, "size": len(data)},
                hint="the stored bytes rotted: run `memhub fsck` and restore the chunk "
                "from a backup or another revision",
            )
        return data

    def add_corruption_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(chunk_sha256)`` runs whenever a chunk fails its hash on read."""
        with self._listeners_lock:
            self._corruption_listeners.append(callback)

    def _report_corrupt(self, sha256: str) -> None:
        for callback in list(self._corruption_listeners):
            callback(sha256)

    def read_bytes(
        self, workspace: str, path: str, rev: int | None = None
    ) -> tuple[Revision, bytes]:
        revision, refs = self.read_plan(workspace, path, rev)
        return revision, self.read_content(refs)

    def revision(self, workspace: str, rev: int) -> Revision:
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            return self._revision(conn, workspace, ws_id, rev)

    @staticmethod
    def _revision(conn: Connection, workspace: str, ws_id: int, rev: int) -> Revision:
        row = conn.execute(_REVISION, {"ws": ws_id, "rev": rev}).first()
        if row is None:
            raise RevisionNotFound(f"no revision {rev} in workspace {workspace!r}")
        return _row_to_revision(workspace, row)

    def history(
        self, workspace: str, path: str, *, limit: int = 100, before: int | None = None
    ) -> list[Revision]:
        """Revisions of ``path``, newest first."""
        path = normalize_path(path)
        ws_id = self.workspace_id(workspace)
        stmt = select(revisions).where(revisions.c.workspace_id == ws_id, revisions.c.path == path)
        if before is not None:
            stmt = stmt.where(revisions.c.rev < before)
        stmt = stmt.order_by(revisions.c.rev.desc()).limit(_page(limit))
        with self.meta.read() as conn:
            rows = conn.execute(stmt).all()
        return [_row_to_revision(workspace, r) for r in rows]

    def changes(self, workspace: str, since: int = 0, *, limit: int = 1000) -> ChangePage:
        """Revisions with rev > ``since``, in rev order; costs what it returns."""
        if since < 0:
            raise BadRequest("since must be >= 0")
        limit = _page(limit)
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            rows = conn.execute(
                select(revisions)
                .where(revisions.c.workspace_id == ws_id, revisions.c.rev > since)
                .order_by(revisions.c.rev)
                .limit(limit + 1)
            ).all()
            head = conn.execute(
                select(workspaces.c.head_rev).where(workspaces.c.id == ws_id)
            ).scalar_one()
        has_more = len(rows) > limit
        items = [_row_to_revision(workspace, r) for r in rows[:limit]]
        next_since = items[-1].rev if items else since
        return ChangePage(items, next_since, int(head), has_more)

    def list_files(
        self,
        workspace: str,
        *,
        prefix: str = "",
        include_deleted: bool = False,
        after: str | None = None,
        limit: int = 1000,
    ) -> list[Revision]:
        """Heads of paths under ``prefix`` in path order, ``limit`` at a time after ``after``."""
        ws_id = self.workspace_id(workspace)
        prefix = normalize_prefix(prefix)
        stmt = select(files).where(files.c.workspace_id == ws_id)
        if prefix:
            stmt = stmt.where(func.substr(files.c.path, 1, len(prefix)) == prefix)
        if not include_deleted:
            stmt = stmt.where(files.c.deleted.is_(False))
        if after:
            stmt = stmt.where(files.c.path > after)
        stmt = stmt.order_by(files.c.path).limit(_page(limit))
        with self.meta.read() as conn:
            rows = conn.execute(stmt).all()
        return [_row_to_revision(workspace, r) for r in rows]

    def live_paths(self, workspace: str, *, containing: Sequence[str] = ()) -> list[str]:
        """Paths of the live files; with ``containing``, only those whose lower-cased path
        contains one of these strings (a cheap prefilter: a caller decides exactly)."""
        ws_id = self.workspace_id(workspace)
        stmt = select(files.c.path).where(files.c.workspace_id == ws_id, files.c.deleted.is_(False))
        if containing:
            lower = func.lower(files.c.path)
            stmt = stmt.where(
                or_(*(lower.contains(s.lower(), autoescape=True) for s in containing))
            )
        with self.meta.read() as conn:
            return [str(r[0]) for r in conn.execute(stmt.order_by(files.c.path)).all()]

    def path_activity(
        self, workspace: str, paths: Sequence[str] | None = None
    ) -> list[tuple[str, int, float]]:
        """(path, how many revisions it has, when the newest was written) for every path
        with history, or only for ``paths`` (by the path index: no scan of every
        revision). What ranks entities by activity."""
        ws_id = self.workspace_id(workspace)
        stmt = (
            select(revisions.c.path, func.count(), func.max(revisions.c.created_at))
            .where(revisions.c.workspace_id == ws_id)
            .group_by(revisions.c.path)
        )
        if paths is None:
            batches: list[Sequence[str] | None] = [None]
        else:
            batches = [paths[i : i + 500] for i in range(0, len(paths), 500)]
        rows: list[Any] = []
        with self.meta.read() as conn:
            for batch in batches:
                chosen = stmt if batch is None else stmt.where(revisions.c.path.in_(batch))
                rows += conn.execute(chosen).all()
        return [(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    def sync_index(self, workspace: str) -> list[Revision]:
        """The head of every path, tombstones included (the seed's ``GET /sync``)."""
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            rows = conn.execute(
                select(files).where(files.c.workspace_id == ws_id).order_by(files.c.path)
            ).all()
        return [_row_to_revision(workspace, r) for r in rows]

    # -- health ------------------------------------------------------------------------

    def ping(self) -> None:
        self.meta.ping()
        self.blobs.ping()

    def close(self) -> None:
        self.meta.close()
        self.blobs.close()


class _RepeatCache:
    """The bytes of chunks a manifest names more than once, kept (up to a budget)
    so that each is read and verified once."""

    BUDGET = 64 * 1024 * 1024

    def __init__(self, refs: list[ChunkRef]) -> None:
        counts: dict[str, int] = {}
        for ref in refs:
            counts[ref.sha256] = counts.get(ref.sha256, 0) + 1
        self._repeats = {sha for sha, n in counts.items() if n > 1}
        self._kept: dict[str, bytes] = {}
        self._room = self.BUDGET

    def get(self, sha256: str) -> bytes | None:
        return self._kept.get(sha256)

    def keep(self, sha256: str, data: bytes) -> None:
        if sha256 in self._repeats and len(data) <= self._room:
            self._kept[sha256] = data
            self._room -= len(data)


def _page(limit: int) -> int:
    if limit < 1:
        raise BadRequest("limit must be at least 1")
    return min(limit, MAX_PAGE)


def _pieces(data: bytes | IO[bytes], size: int) -> Iterator[bytes]:
    """Cut ``data`` into pieces of exactly ``size`` bytes (the last may be shorter)."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = bytes(data)
        for start in range(0, len(view), size):
            yield view[start : start + size]
        return
    while True:
        buf = bytearray()
        while len(buf) < size:
            piece = data.read(size - len(buf))
            if not piece:
                break
            buf += piece
        if buf:
            yield bytes(buf)
        if len(buf) < size:
            return


__all__ = ["EMPTY_MD5", "EMPTY_SHA256", "Store"]
