"""The store: workspaces, versioned files, the change log, chunks and leases.

A write is two steps. First its bytes go to the blob store, chunk by chunk,
each chunk under its own sha256 and durable before the next step. Then one
metadata transaction bumps the workspace's rev (which serialises writers of
that workspace), checks the precondition and the fencing token against the
current head, and records the content, the revision and the new head. So a
metadata row never points at bytes that are not durable, a failed
precondition writes nothing, and revs commit in order: a reader of the change
log that has seen rev N has seen every rev below it.

The byte side (chunks, contents, verified reads) is :mod:`memhub.store.contents`,
leases are :mod:`memhub.store.leases`; this module keeps the write protocol and
the queries of revisions together (about 700 lines): every write path shares the
rev bump, the precondition check and the head upsert, and reading them side by
side is how one checks that they agree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any, Literal

from sqlalchemy import Connection, Row, bindparam, func, insert, or_, select, update

from memhub.core.paths import fold_case, normalize_path, normalize_prefix, validate_name
from memhub.core.protocol import MAX_MANIFEST_CHUNKS
from memhub.errors import (
    BadRequest,
    FileNotFound,
    MemhubError,
    PathConflict,
    RevisionNotFound,
    WorkspaceExists,
    WorkspaceNotFound,
)
from memhub.store.blobs import BlobStore
from memhub.store.contents import Chunks, Content
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
from memhub.store.schema import files, revisions, workspaces

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
_INSERT_REVISION = insert(revisions)
_CASE_TWIN = (
    select(files.c.path)
    .where(
        files.c.workspace_id == bindparam("ws"),
        files.c.path_fold == bindparam("fold"),
        files.c.path != bindparam("path"),
        files.c.deleted.is_(False),
    )
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class WriteMeta:
    """What a revision records about its write besides the bytes."""

    content_type: str | None = None
    author: str | None = None
    session_id: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class _Write:
    """One write: where, what (None: a tombstone) and on what condition."""

    workspace: str
    ws_id: int
    path: str
    content: Content | None
    precondition: Precondition
    fence: Fence | None = None


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
        self.chunks = Chunks(
            meta, blobs, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes, clock=clock
        )
        self.max_chunk_bytes = self.chunks.max_chunk_bytes
        self.clock = clock
        self._ws_ids: dict[str, int] = {}
        self.leases = LeaseManager(meta, self.workspace_id, clock)
        self._listeners: list[Callable[[str, int], None]] = []
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
        if precondition != Precondition() and not self._stored_by_commit(data):
            # fail fast, before any bytes are written (checked again when committing)
            with self.meta.read() as conn:
                precondition.check(path, self._current(conn, workspace, ws_id, path))
        content = self.chunks.write(data, max_bytes)
        return self._commit(
            _Write(workspace, ws_id, path, content, precondition, fence),
            WriteMeta(content_type, author, session_id, message),
            chunks="written",
        )

    def _stored_by_commit(self, data: bytes | IO[bytes]) -> bool:
        """Whether ``data`` is one small chunk that the commit itself stores (nothing is
        written before it, so a precondition need not be checked early)."""
        return isinstance(data, bytes | bytearray | memoryview) and self.chunks.writes_inline(
            len(data)
        )

    def put_each(
        self,
        workspace: str,
        writes: Sequence[tuple[str, bytes | None, Precondition]],
        *,
        content_type: str | None = None,
        author: str | None = None,
        session_id: str | None = None,
        message: str | None = None,
    ) -> list[WriteResult | MemhubError]:
        """Several small writes in one metadata transaction, each on its own: every write
        gets its rev, in order, or the error that refused it (nothing written for it).
        Used for batches of memory items. See :meth:`_put_batch`."""
        return self._put_batch(
            workspace, writes, all_or_nothing=False, content_type=content_type,
            author=author, session_id=session_id, message=message, created_at=None,
        )  # fmt: skip

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
        """Several files in one transaction, all or nothing: every precondition holds and
        every write becomes a revision, or nothing is written (the first refusal is
        raised). Used by session commits and the git import; ``created_at`` keeps an
        imported history's own times. See :meth:`_put_batch`."""
        results = self._put_batch(
            workspace, writes, all_or_nothing=True, content_type=content_type,
            author=author, session_id=session_id, message=message, created_at=created_at,
        )  # fmt: skip
        return [r for r in results if isinstance(r, WriteResult)]

    def _put_batch(
        self,
        workspace: str,
        writes: Sequence[tuple[str, bytes | None, Precondition]],
        *,
        all_or_nothing: bool,
        content_type: str | None,
        author: str | None,
        session_id: str | None,
        message: str | None,
        created_at: float | None,
    ) -> list[WriteResult | MemhubError]:
        """``(path, bytes or None to delete, precondition)`` for distinct paths. The bytes
        are made durable first (in parallel); then one transaction checks every write
        against the heads (precondition, a delete of nothing, a name that differs only in
        case from a live one) and records the accepted ones with consecutive revs, with a
        handful of set-based statements whatever the batch size."""
        ws_id = self.workspace_id(workspace)
        paths = [normalize_path(path) for path, _, _ in writes]
        if len(set(paths)) != len(paths):
            raise BadRequest("a path may appear only once in a batch of writes")
        content_type = validate_content_type(content_type)
        data = [d for _, d, _ in writes if d is not None]
        made = iter(self.chunks.write_many(data))  # durable before any metadata names them
        contents = [None if d is None else next(made) for _, d, _ in writes]
        out: list[WriteResult | MemhubError | None] = [None] * len(writes)
        now = self.clock() if created_at is None else created_at
        with self.meta.write() as conn:
            # lock the workspace row first (PostgreSQL), as every writer does
            conn.execute(_BUMP_BY, {"ws": ws_id, "n": 0})
            heads = self._heads(conn, workspace, ws_id, paths)
            new_paths = [p for p, c in zip(paths, contents, strict=True) if c is not None]
            live = self._live_by_fold(conn, ws_id, {fold_case(p) for p in new_paths})
            created: dict[str, str] = {}  # casefolded → path, of the paths this batch brings
            accepted: list[tuple[int, str, Content | None]] = []
            for n, (path, content, (_, _, precondition)) in enumerate(
                zip(paths, contents, writes, strict=True)
            ):
                head = heads.get(path)
                try:
                    precondition.check(path, head)
                    if content is None and (head is None or head.deleted):
                        raise FileNotFound(f"File not found: {path}", context={"path": path})
                    if content is not None and (head is None or head.deleted):
                        fold = fold_case(path)
                        for other in live.get(fold, ()):
                            if other != path:
                                raise _case_clash(path, other)
                        twin = created.setdefault(fold, path)
                        if twin != path:
                            raise _case_clash(path, twin)
                except MemhubError as exc:
                    if all_or_nothing:
                        raise
                    out[n] = exc
                    continue
                accepted.append((n, path, content))
            if accepted:
                top = conn.execute(_BUMP_BY, {"ws": ws_id, "n": len(accepted)}).scalar_one()
                new = [c for _, _, c in accepted if c is not None]
                self.chunks.record(conn, ws_id, new, now)
                rows = []
                for rev, (n, path, content) in enumerate(accepted, top - len(accepted) + 1):
                    head = heads.get(path)
                    fields: dict[str, Any] = {"rev": rev, "created_at": now, "author": author}
                    fields |= {"session_id": session_id, "message": message}
                    if content is None:
                        assert head is not None
                        revision = replace(head, size=0, deleted=True, **fields)
                    else:
                        revision = Revision(
                            workspace=workspace, path=path, sha256=content.sha256,
                            md5=content.md5, size=content.size,
                            content_type=content_type or DEFAULT_CONTENT_TYPE,
                            deleted=False, **fields,
                        )  # fmt: skip
                    out[n] = WriteResult(revision, created=head is None or head.deleted)
                    values = {**revision.to_dict(), "workspace_id": ws_id}
                    del values["workspace"]
                    rows.append(values)
                conn.execute(_INSERT_REVISION, rows)
                conn.execute(
                    self.meta.upsert(files, ("workspace_id", "path")), [_head_row(r) for r in rows]
                )
        done = [r for r in out if r is not None]
        written = [r.revision.rev for r in done if isinstance(r, WriteResult)]
        if written:
            self._notify(workspace, written[-1])
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
            _Write(workspace, ws_id, path, None, precondition, fence),
            WriteMeta(None, author, session_id, message),
            chunks="reused",
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
        content = Content(old.sha256, old.md5, old.size, [])
        return self._commit(
            _Write(workspace, ws_id, path, content, precondition),
            WriteMeta(old.content_type, author, None, message or f"restore of rev {rev}"),
            chunks="reused",
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
        content = self.chunks.assemble(ws_id, chunk_refs, sha256, max_bytes)
        return self._commit(
            _Write(workspace, ws_id, path, content, precondition, fence),
            WriteMeta(content_type, author, session_id, message),
            chunks="uploaded",
        )

    def _commit(
        self, write: _Write, meta: WriteMeta, *, chunks: Literal["written", "uploaded", "reused"]
    ) -> WriteResult:
        """One revision in one transaction. ``chunks`` says what the content's bytes are:
        ``written`` by this request (content and chunks recorded), ``uploaded`` earlier
        (the content recorded) or ``reused``: an existing content (a restore), or none
        (a tombstone)."""
        workspace, ws_id, path, content = write.workspace, write.ws_id, write.path, write.content
        now = self.clock()
        fields: dict[str, Any] = {"created_at": now, "author": meta.author}
        fields |= {"session_id": meta.session_id, "message": meta.message}
        with self.meta.write() as conn:
            rev = conn.execute(_BUMP_REV, {"ws": ws_id}).scalar_one()
            current = self._current(conn, workspace, ws_id, path)
            write.precondition.check(path, current)
            if write.fence is not None:
                self.leases.check_fence(conn, ws_id, write.fence)
            if content is None:
                if current is None or current.deleted:
                    raise FileNotFound(f"File not found: {path}", context={"path": path})
                revision = replace(current, rev=rev, size=0, deleted=True, **fields)
            else:
                if current is None or current.deleted:
                    self._check_case_clash(conn, ws_id, path)
                if chunks != "reused":
                    self.chunks.record(conn, ws_id, [content], now, new_chunks=chunks == "written")
                revision = Revision(
                    workspace=workspace, rev=rev, path=path, sha256=content.sha256,
                    md5=content.md5, size=content.size,
                    content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
                    deleted=False, **fields,
                )  # fmt: skip
            values = revision.to_dict()
            del values["workspace"]
            values["workspace_id"] = ws_id
            conn.execute(_INSERT_REVISION, values)
            conn.execute(self.meta.upsert(files, ("workspace_id", "path")), _head_row(values))
        self._notify(workspace, rev)
        return WriteResult(revision, created=current is None or current.deleted)

    @staticmethod
    def _live_by_fold(conn: Connection, ws_id: int, folds: set[str]) -> dict[str, list[str]]:
        """The live paths whose case fold is one of ``folds``, by fold (set-based: a batch's
        case-clash check is one query per 500 new paths)."""
        found: dict[str, list[str]] = {}
        wanted = sorted(folds)
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                select(files.c.path_fold, files.c.path).where(
                    files.c.workspace_id == ws_id,
                    files.c.path_fold.in_(wanted[start : start + 500]),
                    files.c.deleted.is_(False),
                )
            ).all()
            for fold, path in rows:
                found.setdefault(str(fold), []).append(str(path))
        return found

    @staticmethod
    def _check_case_clash(conn: Connection, ws_id: int, path: str) -> None:
        """A new path must not differ only in case from a live one: macOS and Windows
        clients could not hold both (compared by :func:`~memhub.core.paths.fold_case`,
        for every script)."""
        other = conn.execute(
            _CASE_TWIN, {"ws": ws_id, "fold": fold_case(path), "path": path}
        ).scalar()
        if other is not None:
            raise _case_clash(path, other)

    @staticmethod
    def _current(conn: Connection, workspace: str, ws_id: int, path: str) -> Revision | None:
        row = conn.execute(_HEAD, {"ws": ws_id, "path": path}).first()
        return _row_to_revision(workspace, row) if row is not None else None

    # -- chunks --------------------------------------------------------------------

    def missing_chunks(
        self, workspace: str, shas: Iterable[str], *, touch: bool = True
    ) -> list[str]:
        """The hashes in ``shas`` this workspace has not uploaded, in the order given;
        present ones are touched, so ``memhub gc`` spares them for its grace period."""
        return self.chunks.missing(self.workspace_id(workspace), shas, touch=touch)

    def put_chunk(self, workspace: str, sha256: str, data: bytes) -> bool:
        """Store one chunk after checking its hash; True when it was new to the workspace."""
        return self.chunks.put(self.workspace_id(workspace), sha256, data)

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
            refs = self.chunks.refs_of(conn, ws_id, found.sha256)
        return found, refs

    def chunk_refs(self, workspace: str, shas: Iterable[str]) -> dict[str, list[ChunkRef]]:
        """The chunks of many contents (by sha256) in one query per 500: what reading
        many files (an index catching up) needs instead of a :meth:`read_plan` each.
        A content the workspace does not hold (purged, or another's) is absent, and so is
        the empty content, which has no chunks."""
        ws_id = self.workspace_id(workspace)
        with self.meta.read() as conn:
            return self.chunks.refs_of_many(conn, ws_id, shas)

    def iter_content(self, refs: list[ChunkRef]) -> Iterator[bytes]:
        """The content, one verified chunk at a time: no byte leaves before its chunk
        passed its sha256."""
        return self.chunks.iter_content(refs)

    def read_content(self, refs: list[ChunkRef]) -> bytes:
        return self.chunks.read_content(refs)

    def add_corruption_listener(self, callback: Callable[[str], None]) -> None:
        """``callback(chunk_sha256)`` runs whenever a chunk fails its hash on read."""
        self.chunks.add_corruption_listener(callback)

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


def _head_row(values: dict[str, Any]) -> dict[str, Any]:
    """A revision's row (without its workspace name) as the head of its path."""
    return {**values, "path_fold": fold_case(values["path"])}


def _case_clash(path: str, existing: str) -> PathConflict:
    return PathConflict(
        f"{path!r} differs only in case from the live file {existing!r}; "
        "macOS and Windows cannot hold both",
        context={"path": path, "existing": existing},
        hint="write to the existing name, or delete it first",
    )


def _page(limit: int) -> int:
    if limit < 1:
        raise BadRequest("limit must be at least 1")
    return min(limit, MAX_PAGE)


__all__ = ["EMPTY_MD5", "EMPTY_SHA256", "Store"]
