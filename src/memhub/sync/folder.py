"""Folder sync: a local directory and a prefix of a workspace, reconciled both ways.

One round: lock the folder, scan it (hashing only what changed since the last
round), learn what changed on the server from the change feed since the saved
cursor (the whole listing only on the first round), plan with
:mod:`memhub.sync.planner`, refuse mass deletions, then apply the plan through
the batch routes — uploads conditional on the base each side agreed on, so a
concurrent change elsewhere is a 412 that leaves the path for the next round,
never an overwrite.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memhub.client.http import MemhubClient
from memhub.core.paths import normalize_prefix
from memhub.errors import BadRequest, Conflict, MemhubError
from memhub.sync.local import (
    Entry,
    LocalFile,
    State,
    delete_local,
    folder_lock,
    hash_file,
    load_ignores,
    safe_target,
    scan,
    write_local,
)
from memhub.sync.planner import Action, Step, conflict_name, deletions, plan

BATCH_FILES = 500
BATCH_BYTES = 8 * 1024 * 1024
LARGE_FILE = 8 * 1024 * 1024  # bigger files go one request each, streamed

Progress = Callable[[str, int], None]  # (what happened, bytes)


@dataclass(slots=True)
class Report:
    uploaded: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    planned: list[dict[str, str]] = field(default_factory=list)
    blocked: str | None = None  # a dry run that the mass-delete guard would refuse
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return (
            len(self.uploaded) + len(self.downloaded) + len(self.deleted_local)
            + len(self.deleted_remote) + len(self.conflicts)
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "uploaded": self.uploaded,
            "downloaded": self.downloaded,
            "deleted_local": self.deleted_local,
            "deleted_remote": self.deleted_remote,
            "conflicts": self.conflicts,
            "skipped": self.skipped,
            "errors": self.errors,
            "planned": self.planned,
            "blocked": self.blocked,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class Remote:
    sha256: str | None  # None: absent or deleted
    rev: int


class FolderSync:
    def __init__(
        self,
        root: Path,
        client: MemhubClient,
        *,
        prefix: str | None = None,
        host: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.root = root.resolve()
        self.client = client
        # None: the prefix the folder's state recorded on its last sync (or the root)
        self.prefix_given = prefix is not None
        self.prefix = self._normal(prefix or "")
        self.host = host or socket.gethostname()
        self.progress = progress or (lambda _what, _n: None)

    @staticmethod
    def _normal(prefix: str) -> str:
        return normalize_prefix(prefix.strip("/") + "/" if prefix.strip("/") else "")

    # -- one round ------------------------------------------------------------------

    def run(
        self,
        *,
        push: bool = True,
        pull: bool = True,
        dry_run: bool = False,
        max_delete: float = 50.0,
    ) -> Report:
        started = time.perf_counter()
        if not self.root.is_dir():
            raise BadRequest(f"{self.root} is not a directory")
        report = Report(dry_run=dry_run)
        with folder_lock(self.root):
            state = self._state()
            scanned_at = time.time()
            ignores = load_ignores(self.root)
            local = scan(self.root, state, ignores, report.skipped)
            remote, cursor = self._remote(state)

            # ignored paths are out of the sync on both sides: never downloaded, and never
            # deleted remotely because the scan did not list them (what the scan listed
            # is not ignored, which spares matching the rules again)
            def synced(p: str) -> bool:
                return p in local or not ignores.match_file(p)

            base = {p: e.sha256 for p, e in state.files.items() if synced(p)}
            steps = plan(
                base,
                {p: f.sha256 for p, f in local.items()},
                {p: r.sha256 for p, r in remote.items() if r.sha256 is not None and synced(p)},
                push=push,
                pull=pull,
            )
            report.planned = [{"path": s.path, "action": s.action.value} for s in steps]
            try:
                self._check_deletions(steps, max(len(base), len(local), 1), max_delete)
            except Conflict as exc:
                if not dry_run:
                    raise
                report.blocked = str(exc)
            self.progress("plan", sum(1 for s in steps if s.action is not Action.ADOPT))
            if dry_run:
                report.seconds = time.perf_counter() - started
                return report
            self._apply(steps, state, local, remote, report)
            state.pending = {
                p: {"sha256": r.sha256, "rev": r.rev}
                for p, r in remote.items()
                if r.sha256 != (state.files[p].sha256 if p in state.files else None)
            }
            state.cursor = cursor
            state.last_sync = scanned_at  # what scan() compares mtimes with next time
            state.save(self.root)
        report.seconds = time.perf_counter() - started
        return report

    def _state(self) -> State:
        state = State.load(self.root)
        if not self.prefix_given and state.server:
            self.prefix = state.prefix
        if state.server and (
            state.server != self.client.server
            or state.workspace != self.client.workspace
            or state.prefix != self.prefix
        ):
            raise Conflict(
                f"{self.root} is synced with {state.server} workspace {state.workspace!r} "
                f"prefix {state.prefix!r}",
                hint="sync it with the same server, workspace and prefix, or remove "
                f"{self.root / '.memhub'} to start over",
            )
        state.server, state.workspace, state.prefix = (
            self.client.server,
            self.client.workspace,
            self.prefix,
        )
        return state

    def _check_deletions(self, steps: list[Step], total: int, max_delete: float) -> None:
        count = deletions(steps)
        if count and count * 100.0 / total > max_delete:
            raise Conflict(
                f"this sync would delete {count} of {total} files "
                f"(more than {max_delete:g}%); nothing was changed",
                context={"deletions": count, "files": total},
                hint="check the folder and the server; pass --max-delete 100 if it is intended",
            )

    # -- the server's side -----------------------------------------------------------

    def _remote(self, state: State) -> tuple[dict[str, Remote], int]:
        """The server's head of every path under the prefix, and the cursor to save."""
        if state.cursor == 0:
            head = self.client.changes(0, limit=1).head_rev
            remote: dict[str, Remote] = {}
            for item in self.client.list_files(prefix=self.prefix, include_deleted=True):
                rel = item.path[len(self.prefix) :]
                remote[rel] = Remote(None if item.deleted else item.sha256, item.rev)
            return remote, head
        remote = {p: Remote(e.sha256, e.rev) for p, e in state.files.items()}
        for p, pending in state.pending.items():
            remote[p] = Remote(pending.get("sha256"), int(pending.get("rev") or 0))
        cursor = state.cursor
        while True:
            page = self.client.changes(cursor, limit=5000)
            for change in page.changes:
                path = change.path
                if path.startswith(self.prefix):
                    sha = None if change.deleted else change.sha256
                    remote[path[len(self.prefix) :]] = Remote(sha, change.rev)
            cursor = page.next_since
            if not page.has_more:
                return remote, cursor

    # -- applying the plan ---------------------------------------------------------------

    def _apply(
        self,
        steps: list[Step],
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        by_action: dict[Action, list[Step]] = {}
        for step in steps:
            by_action.setdefault(step.action, []).append(step)
        for step in by_action.get(Action.ADOPT, []):
            self._adopt(step, state, local, remote)
        for step in by_action.get(Action.CONFLICT, []):
            self._conflict(step, state, local, remote, report)
        self._download(by_action.get(Action.DOWNLOAD, []), state, remote, report)
        for step in by_action.get(Action.DELETE_LOCAL, []):
            self._delete_local(step, state, local, report)
        self._upload(by_action.get(Action.UPLOAD, []), state, local, remote, report)
        self._delete_remote(by_action.get(Action.DELETE_REMOTE, []), state, remote, report)

    def _adopt(
        self, step: Step, state: State, local: dict[str, LocalFile], remote: dict[str, Remote]
    ) -> None:
        if step.local is None:
            state.files.pop(step.path, None)
            return
        found = local[step.path]
        state.files[step.path] = Entry(
            step.local, remote[step.path].rev, found.size, found.mtime_ns
        )

    def _remote_path(self, rel: str) -> str:
        return self.prefix + rel

    def _upload(
        self,
        steps: list[Step],
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        batch: list[tuple[Step, bytes]] = []
        size = 0
        for step in steps:
            path = self.root / step.path
            if local[step.path].size > LARGE_FILE:
                self._upload_large(step, path, state, local, remote, report)
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.errors.append({"path": step.path, "error": str(exc)})
                continue
            if hashlib.sha256(data).hexdigest() != step.local:  # changed while we synced
                report.skipped.append(step.path)
                continue
            batch.append((step, data))
            size += len(data)
            if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
                self._upload_batch(batch, state, local, remote, report)
                batch, size = [], 0
        if batch:
            self._upload_batch(batch, state, local, remote, report)

    def _condition(self, step: Step, remote: dict[str, Remote]) -> dict[str, str]:
        current = remote.get(step.path)
        if current is None or current.sha256 is None:
            return {"if_none_match": "*"}
        return {"if_match": f'"{current.sha256}"'}

    def _upload_batch(
        self,
        batch: list[tuple[Step, bytes]],
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        operations = [
            {
                "op": "put",
                "path": self._remote_path(step.path),
                "content": base64.b64encode(data).decode("ascii"),
                "encoding": "base64",
                **self._condition(step, remote),
            }
            for step, data in batch
        ]
        try:
            results = self.client.batch_write(operations)
        except MemhubError as exc:
            for step, _data in batch:
                report.errors.append({"path": step.path, "error": str(exc)})
            return
        for (step, data), result in zip(batch, results, strict=True):
            if result["status"] in (200, 201):
                self._uploaded(step, result["revision"], len(data), state, local, remote, report)
            else:
                report.errors.append({"path": step.path, "error": result["error"]["detail"]})

    def _upload_large(
        self,
        step: Step,
        path: Path,
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        condition = self._condition(step, remote)
        try:
            with path.open("rb") as handle:
                revision = self.client.put_stream(
                    self._remote_path(step.path),
                    handle,
                    if_match=condition.get("if_match", "").strip('"') or None,
                    if_none_match="if_none_match" in condition,
                ).model_dump()
        except (OSError, MemhubError) as exc:
            report.errors.append({"path": step.path, "error": str(exc)})
            return
        if revision["sha256"] != step.local:  # changed while it was read
            report.skipped.append(step.path)
            return
        self._uploaded(step, revision, revision["size"], state, local, remote, report)

    def _uploaded(
        self,
        step: Step,
        revision: dict[str, Any],
        size: int,
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        found = local[step.path]
        state.files[step.path] = Entry(
            revision["sha256"], revision["rev"], found.size, found.mtime_ns
        )
        remote[step.path] = Remote(revision["sha256"], revision["rev"])
        report.uploaded.append(step.path)
        report.bytes_up += size
        self.progress("upload", size)

    def _download(
        self, steps: list[Step], state: State, remote: dict[str, Remote], report: Report
    ) -> None:
        for start in range(0, len(steps), BATCH_FILES):
            chunk = steps[start : start + BATCH_FILES]
            try:
                files = self.client.batch_read([self._remote_path(s.path) for s in chunk])
            except MemhubError as exc:
                for step in chunk:
                    report.errors.append({"path": step.path, "error": str(exc)})
                continue
            for step, item in zip(chunk, files, strict=True):
                if item["status"] == 200:
                    data = (
                        base64.b64decode(item["content"])
                        if item["encoding"] == "base64"
                        else item["content"].encode()
                    )
                    self._store_download(step, data, item["revision"], state, remote, report)
                elif item["status"] == 413:
                    self._download_large(step, state, remote, report)
                else:
                    report.errors.append({"path": step.path, "error": item["error"]["detail"]})

    def _download_large(
        self, step: Step, state: State, remote: dict[str, Remote], report: Report
    ) -> None:
        try:
            headers, data = self.client.get(self._remote_path(step.path))
        except MemhubError as exc:
            report.errors.append({"path": step.path, "error": str(exc)})
            return
        revision = {
            "sha256": headers.get("etag", "").strip('"'),
            "rev": int(headers.get("x-memhub-rev", 0)),
        }
        self._store_download(step, data, revision, state, remote, report)

    def _store_download(
        self,
        step: Step,
        data: bytes,
        revision: dict[str, Any],
        state: State,
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        sha = hashlib.sha256(data).hexdigest()
        if sha != revision["sha256"]:
            report.errors.append(
                {"path": step.path, "error": "downloaded bytes fail their checksum"}
            )
            return
        current = self.root / step.path
        if step.local is not None and current.exists() and hash_file(current) != step.local:
            report.skipped.append(step.path)  # edited here while we synced: next round decides
            return
        try:
            st = write_local(self.root, step.path, data)
        except (OSError, MemhubError) as exc:
            report.errors.append({"path": step.path, "error": str(exc)})
            return
        state.files[step.path] = Entry(sha, revision["rev"], st.st_size, st.st_mtime_ns)
        remote[step.path] = Remote(sha, revision["rev"])
        report.downloaded.append(step.path)
        report.bytes_down += len(data)
        self.progress("download", len(data))

    def _delete_local(
        self, step: Step, state: State, local: dict[str, LocalFile], report: Report
    ) -> None:
        path = self.root / step.path
        seen = local.get(step.path)
        try:
            st = path.stat()
            if seen is not None and (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                report.skipped.append(step.path)  # touched since the scan
                return
            delete_local(self.root, step.path)
        except FileNotFoundError:
            pass
        except (OSError, MemhubError) as exc:
            report.errors.append({"path": step.path, "error": str(exc)})
            return
        state.files.pop(step.path, None)
        report.deleted_local.append(step.path)
        self.progress("delete", 0)

    def _delete_remote(
        self, steps: list[Step], state: State, remote: dict[str, Remote], report: Report
    ) -> None:
        for start in range(0, len(steps), BATCH_FILES):
            chunk = steps[start : start + BATCH_FILES]
            operations = [
                {"op": "delete", "path": self._remote_path(s.path), "if_match": f'"{s.base}"'}
                for s in chunk
            ]
            try:
                results = self.client.batch_write(operations)
            except MemhubError as exc:
                for step in chunk:
                    report.errors.append({"path": step.path, "error": str(exc)})
                continue
            for step, result in zip(chunk, results, strict=True):
                if result["status"] == 200 or result["status"] == 404:
                    state.files.pop(step.path, None)
                    rev = result.get("revision", {}).get("rev", 0)
                    remote[step.path] = Remote(None, rev)
                    report.deleted_remote.append(step.path)
                    self.progress("delete", 0)
                else:
                    report.errors.append({"path": step.path, "error": result["error"]["detail"]})

    def _conflict(
        self,
        step: Step,
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        """Keep both: the local version moves to a conflict copy (uploaded like any new
        file), the remote version takes the name."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        copy = conflict_name(step.path, self.host, stamp)
        serial = 1
        while copy in local or copy in remote or os.path.lexists(self.root / copy):
            serial += 1  # the name is taken (a conflict in the same second): never replace it
            copy = conflict_name(step.path, self.host, f"{stamp}-{serial}")
        source = self.root / step.path
        try:
            target = safe_target(self.root, copy)
            source.rename(target)
        except (OSError, MemhubError) as exc:
            report.errors.append({"path": step.path, "error": f"conflict copy failed: {exc}"})
            return
        st = target.stat()
        local[copy] = LocalFile(step.local or "", st.st_size, st.st_mtime_ns)
        local.pop(step.path, None)
        report.conflicts.append({"path": step.path, "copy": copy})
        self._download(
            [Step(step.path, Action.DOWNLOAD, step.base, None, step.remote)], state, remote, report
        )
        self._upload(
            [Step(copy, Action.UPLOAD, None, step.local, None)], state, local, remote, report
        )


def summarize(paths: Iterable[str], limit: int = 10) -> str:
    items = list(paths)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
