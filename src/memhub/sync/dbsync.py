"""Push live SQLite databases: snapshot, chunks the server lacks, a leased conditional commit.

Remote layout for a database named NAME (by default the file's stem):

- ``dbs/NAME.sqlite``: the snapshot, a revision per push, committed from
  fixed-size chunks (a multiple of the page size) of which only those the
  server lacks are uploaded;
- ``dbs/NAME.manifest.json``: host, time, size, sha256, page size and row
  counts of that snapshot, with its rev.

A push runs under the lease ``db:NAME`` and commits with its fencing token,
so a writer whose lease was taken over cannot commit; and with ``if_match`` =
the sha256 this file last synced (``if_none_match: *`` the first time), so a
push never overwrites a revision it has not seen. Three versions decide what
push and pull (:mod:`memhub.sync.dbpull`) do, the base being the local state
(:mod:`memhub.sync.dbstate`):

=====================  =====================  ==========================================
local vs base          remote vs base         push / pull
=====================  =====================  ==========================================
unchanged              unchanged              skip / skip
changed                unchanged              upload / skip (``local-newer``)
unchanged              changed                skip (``remote-newer``) / download
changed                changed                refused unless ``--overwrite``
=====================  =====================  ==========================================

(About 410 lines: one push's flow and the answers it gives; hashing is in
:mod:`memhub.sync.dbhashes`, reading in :mod:`memhub.sync.dbsource`.)
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from memhub.client.http import MemhubClient
from memhub.core.models import WriteInfo
from memhub.core.paths import validate_name
from memhub.core.protocol import MAX_MANIFEST_CHUNKS
from memhub.errors import (
    FencingTokenRejected,
    FileNotFound,
    InvalidChecksum,
    InvalidPath,
    PreconditionFailed,
)
from memhub.sync import chunkupload, dbhashes, dbsource
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbstate import DEFAULT_TTL, LeaseGuard, SyncState, default_holder

DEFAULT_CHUNK_SIZE = 64 * 1024
# with the default chunk size, chunks grow (by doubling) until a push needs at most this
# many chunk uploads: a push of any size fits memhub's default write rate limit
TARGET_CHUNKS = 512
UPLOAD_THREADS = 4
MISSING_BATCH = 50_000
CONTENT_TYPE = "application/vnd.sqlite3"


class Reporter(Protocol):
    """Progress: a phase starts (with a byte total when it moves bytes), bytes move."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int) -> None: ...


class NullReporter:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


def check_name(name: str) -> str:
    name = validate_name(name, "database name")
    if len(name.encode()) > 61:  # the lease is "db:" + name: at most 64 bytes
        raise InvalidPath("a database name may be at most 61 bytes long")
    return name


def remote_paths(name: str) -> tuple[str, str]:
    return f"dbs/{name}.sqlite", f"dbs/{name}.manifest.json"


def remote_head(client: MemhubClient, path: str) -> dict[str, Any] | None:
    """The live head revision of ``path``, or None (absent or deleted)."""
    revisions = client.history(path, limit=1).revisions
    return revisions[0].model_dump() if revisions and not revisions[0].deleted else None


def fingerprint(file: Path) -> dict[str, Any]:
    fp: dict[str, Any] = sq.fingerprint(file)
    if fp["wal"] is not None and fp["wal"][0] == 0:
        fp["wal"] = None  # an empty -wal holds nothing: as good as none
    return fp


def local_sha(file: Path) -> str:
    """sha256 of a backup-API snapshot of ``file`` (or of the file pinned in place,
    the same bytes): what a push would send."""
    tmp = sq.temp_path(file.parent, file.name)
    try:
        with dbsource.open_source(file, tmp) as source:
            return source.sha256()
    finally:
        tmp.unlink(missing_ok=True)


def resolve_hint(file: Path, name: str) -> str:
    """The two commands that resolve a divergence, spelled out (neither just says 'pull')."""
    target = shlex.quote(str(file))
    return (
        f"`memhub db pull {target} --name {name} --overwrite` takes the server's copy "
        f"(yours is backed up first), or `memhub db push {target} --name {name} --overwrite` "
        "replaces the server's with yours"
    )


def diverged(what: str, head: dict[str, Any], hint: str) -> PreconditionFailed:
    when = datetime.fromtimestamp(head["created_at"], UTC)
    return PreconditionFailed(
        f"{what} (the server has rev {head['rev']} by {head.get('author')}, "
        f"{when:%Y-%m-%d %H:%M:%S} UTC)",
        context={"rev": head["rev"], "sha256": head["sha256"]},
        hint=hint,
    )


def record(
    file: Path, name: str, sha: str, rev: int, fp: dict[str, Any], op: str
) -> dict[str, Any]:
    """What :class:`SyncState` keeps for a file after a push or pull."""
    return {
        "name": name,
        "file": str(file),
        "sha256": sha,
        "rev": rev,
        "fingerprint": fp,
        "op": op,
        "synced_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def push(
    client: MemhubClient,
    file: Path,
    *,
    name: str | None = None,
    chunk_size: int | None = None,
    force: bool = False,
    overwrite: bool = False,
    holder: str | None = None,
    ttl: float = DEFAULT_TTL,
    state: SyncState,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Snapshot ``file`` and commit it as ``dbs/NAME.sqlite``; returns a summary.

    ``chunk_size=None`` starts at 64 KiB and doubles until the file fits in
    ``TARGET_CHUNKS`` chunks (few requests per push); an explicit size is kept
    unless the file would exceed the server's manifest limit."""
    job = _Push(client, file, name, state, reporter or NullReporter())
    return job.run(chunk_size, force, overwrite, holder or default_holder(), ttl)


class _Push:
    def __init__(
        self,
        client: MemhubClient,
        file: Path,
        name: str | None,
        state: SyncState,
        reporter: Reporter,
    ) -> None:
        self.started = time.monotonic()
        self.client = client
        self.file = file.expanduser().resolve()
        self.name = check_name(name or self.file.stem)
        self.db_path, self.manifest_path = remote_paths(self.name)
        self.state = state
        self.key = SyncState.key(client.server, client.workspace, self.name, self.file)
        self.reporter = reporter
        self.tmp = sq.temp_path(self.file.parent, self.file.name)
        self.phases: dict[str, float] = {}
        self._clock = self.started
        self.result: dict[str, Any] = {
            "name": self.name,
            "file": str(self.file),
            "path": self.db_path,
            "skipped": False,
            "reason": None,
            "bytes_sent": 0,
            "wire_bytes_sent": 0,
            "chunks_sent": 0,
            "chunks_total": 0,
            "phases": self.phases,
            "warnings": [],
        }

    def _lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self._clock, 3)
        self._clock = now

    def _done(
        self, reason: str | None = None, head: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if reason is not None and head is not None:
            self.result.update(skipped=True, reason=reason, sha256=head["sha256"], rev=head["rev"])
        self.result["duration_s"] = round(time.monotonic() - self.started, 3)
        return self.result

    def run(
        self, chunk_size: int | None, force: bool, overwrite: bool, holder: str, ttl: float
    ) -> dict[str, Any]:
        if not self.file.is_file():
            raise FileNotFound(f"no database at {self.file}", context={"path": str(self.file)})
        base = self.state.get(self.key)
        before = fingerprint(self.file)
        head = remote_head(self.client, self.db_path)
        if base and base["fingerprint"] == before and head:  # nothing written here since
            reason = "unchanged" if head["sha256"] == base["sha256"] else "remote-newer"
            return self._done(reason, head)
        guard = LeaseGuard(self.client, f"db:{self.name}", holder, ttl=ttl, force=force)
        sq.remove_stale_temps(self.file.parent, self.file.name)
        try:
            with guard:
                self.result["lease"] = {**guard.fence, "holder": holder}
                self.result["lease"]["took_over"] = guard.took_over
                sha, rev = self._snapshot_and_commit(chunk_size, overwrite, base, guard)
                self.state.put(self.key, record(self.file, self.name, sha, rev, before, "push"))
                if not self.result["skipped"]:
                    self.result["manifest_rev"] = self._commit_manifest(guard)
        finally:
            self.tmp.unlink(missing_ok=True)
            sq.side_file(self.tmp, "-journal").unlink(missing_ok=True)
            self.result["warnings"] += guard.warnings
        return self._done()

    def _snapshot_and_commit(
        self,
        chunk_size: int | None,
        overwrite: bool,
        base: dict[str, Any] | None,
        guard: LeaseGuard,
    ) -> tuple[str, int]:
        """Snapshot (or pin), check, upload what is missing, commit: the (sha256, rev)
        this file now matches."""
        self.reporter.phase("snapshot")
        with dbsource.open_source(self.file, self.tmp) as source:
            self.result["source"] = "pinned" if source.pinned else "copy"
            self._lap("snapshot")
            return self._check_and_commit(source, chunk_size, overwrite, base, guard)

    def _check_and_commit(
        self,
        source: dbsource.Source,
        chunk_size: int | None,
        overwrite: bool,
        base: dict[str, Any] | None,
        guard: LeaseGuard,
    ) -> tuple[str, int]:
        """Hash; then, while the integrity check still runs on another thread, ask the
        server what it lacks and upload that (chunks alone are no revision: unused ones
        are collected by ``gc``). The commit, and every answer, waits for the check."""
        self.reporter.phase("check and hash")
        with ThreadPoolExecutor(1) as pool:  # integrity_check lets go of the GIL too
            checked = pool.submit(source.inspect)
            sha, chunks = self._hash(source, chunk_size)
            head = remote_head(self.client, self.db_path)  # again, now that we hold the lease
            if head and head["sha256"] == sha:
                skip: tuple[str, int] | None = ("same-as-remote", int(head["rev"]))
            elif head and base and base["sha256"] == sha:  # touched here; the server moved on
                skip = ("remote-newer", int(base["rev"]))
            else:
                skip = None
                if_match = self._if_match(head, base, overwrite)
                self._upload_missing(source, chunks)
            info = checked.result()
            self._lap("check")
        self.result.update(page_size=info.page_size, page_count=info.page_count)
        self.result["tables"] = info.tables
        if skip is not None:
            self._done(skip[0], head)
            return sha, skip[1]
        self.reporter.phase("commit")
        body: dict[str, Any] = {
            "path": self.db_path,
            "sha256": sha,
            "chunks": [{"sha256": c.sha256, "size": c.size} for c in chunks],
            "lease": guard.fence,
            "content_type": CONTENT_TYPE,
            "message": f"db push of {self.name} from {guard.holder}",
        }
        body.update({"if_match": if_match} if if_match else {"if_none_match": "*"})
        rev = self._commit(body).rev
        self._lap("commit")
        self.result.update(rev=rev, host=guard.holder)
        return sha, rev

    def _hash(self, source: dbsource.Source, chunk_size: int | None) -> tuple[str, list[sq.Chunk]]:
        """The whole file's sha256 and its chunks, from what changed since the last push
        (:mod:`memhub.sync.dbhashes`)."""
        most = TARGET_CHUNKS if chunk_size is None else MAX_MANIFEST_CHUNKS
        effective = sq.chunk_size_for(
            chunk_size or DEFAULT_CHUNK_SIZE, source.page_size, source.size, most
        )
        record = dbhashes.path_for(self.state.path.parent, self.file)
        sha, size, chunks, known = source.hash_chunks(effective, dbhashes.load(record, effective))
        dbhashes.save(record, known)  # bytes hashed, whatever the server says next
        self._lap("hash")
        self.result.update(sha256=sha, size=size, chunk_size=effective, chunks_total=len(chunks))
        self.result.update(chunks_rehashed=source.rehashed, chunks_resumed=source.resumed)
        return sha, chunks

    def _upload_missing(self, source: dbsource.Source, chunks: list[sq.Chunk]) -> None:
        """Send the chunks the server lacks in zstd-compressed batches."""
        missing = set(self._missing([c.sha256 for c in chunks]))
        todo = list({c.sha256: c for c in chunks if c.sha256 in missing}.values())
        self._lap("missing")
        self.reporter.phase("upload", sum(c.size for c in todo))
        wire = chunkupload.upload(
            self.client, todo, lambda c: source.read(c.offset, c.size), self.reporter.advance
        )
        self._lap("upload")
        self.result.update(
            chunks_sent=len(todo), bytes_sent=sum(c.size for c in todo), wire_bytes_sent=wire
        )

    def _if_match(
        self, head: dict[str, Any] | None, base: dict[str, Any] | None, overwrite: bool
    ) -> str | None:
        """The sha256 the commit must find on the server (None: nothing may be there)."""
        if head is None:
            return None
        if overwrite:
            return str(head["sha256"])
        if base is None:
            raise diverged(
                f"{self.db_path} already exists on the server and {self.file} was never "
                "synced with it",
                head,
                resolve_hint(self.file, self.name),
            )
        if base["sha256"] != head["sha256"]:
            raise diverged(
                f"both {self.file} and {self.db_path} changed since they were last synced",
                head,
                resolve_hint(self.file, self.name),
            )
        return str(base["sha256"])

    def _missing(self, shas: list[str]) -> list[str]:
        unique = list(dict.fromkeys(shas))
        found: list[str] = []
        for start in range(0, len(unique), MISSING_BATCH):
            found += self.client.missing_chunks(unique[start : start + MISSING_BATCH])
        return found

    def _commit(self, body: dict[str, Any]) -> WriteInfo:
        try:
            return self.client.commit(body)
        except FencingTokenRejected as exc:
            raise FencingTokenRejected(
                f"the lease db:{self.name} was taken over while this push ran; nothing was written",
                context=exc.context,
                hint="another host is pushing this database: pull when it is done",
            ) from exc
        except InvalidChecksum:  # the chunks do not add up: hash everything next time
            dbhashes.path_for(self.state.path.parent, self.file).unlink(missing_ok=True)
            raise
        except PreconditionFailed as exc:
            raise PreconditionFailed(
                f"{self.db_path} changed on the server while this push ran; "
                "nothing was overwritten",
                context=exc.context,
                hint=f"`memhub db pull {shlex.quote(str(self.file))} --name {self.name}` "
                "(your copy is backed up first), then push again",
            ) from exc

    def _commit_manifest(self, guard: LeaseGuard) -> int | None:
        keys = ("name", "path", "rev", "sha256", "size", "page_size", "page_count")
        manifest = {k: self.result[k] for k in keys}
        manifest.update(
            format=1,
            chunk_size=self.result["chunk_size"],
            chunks=self.result["chunks_total"],
            tables=self.result["tables"],
            host=guard.holder,
            source=str(self.file),
            pushed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        head = remote_head(self.client, self.manifest_path)
        self.client.put_chunk(data)
        body: dict[str, Any] = {
            "path": self.manifest_path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "chunks": [{"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}],
            "lease": guard.fence,
            "content_type": "application/json",
            "message": f"manifest of {self.db_path} rev {self.result['rev']}",
        }
        body.update({"if_match": head["sha256"]} if head else {"if_none_match": "*"})
        try:
            return self.client.commit(body).rev
        except PreconditionFailed as exc:  # the database itself is committed: say so
            self.result["warnings"].append(f"the manifest was not updated: {exc}")
            return None
