"""Applying one round's plan: a :class:`Round` owns the round's state (the folder's
sync state, the local scan, the server's heads, the report) and carries out the
planner's steps through the batch routes, updating all four as it goes.

Every upload is conditional on the head this round saw, every remote delete on
the base, so a concurrent change elsewhere fails one path (reported, retried
next round), never overwrites it.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from memhub.client.http import MemhubClient
from memhub.core.models import ErrorInfo
from memhub.errors import MemhubError
from memhub.sync.local import (
    Entry,
    LocalFile,
    State,
    delete_local,
    hash_file,
    safe_target,
    write_local,
)
from memhub.sync.planner import Action, Step, conflict_name
from memhub.sync.report import Remote, Report

BATCH_FILES = 500
BATCH_BYTES = 8 * 1024 * 1024
LARGE_FILE = 8 * 1024 * 1024  # bigger files go one request each, streamed

Progress = Callable[[str, int], None]  # (what happened, bytes)


class Round:
    def __init__(
        self,
        root: Path,
        client: MemhubClient,
        prefix: str,
        host: str,
        progress: Progress,
        *,
        state: State,
        local: dict[str, LocalFile],
        remote: dict[str, Remote],
        report: Report,
    ) -> None:
        self.root, self.client, self.prefix, self.host = root, client, prefix, host
        self.progress = progress
        self.state, self.local, self.remote, self.report = state, local, remote, report

    def apply(
        self,
        steps: list[Step],
    ) -> None:
        by_action: dict[Action, list[Step]] = {}
        for step in steps:
            by_action.setdefault(step.action, []).append(step)
        for step in by_action.get(Action.ADOPT, []):
            self._adopt(step)
        for step in by_action.get(Action.CONFLICT, []):
            self._conflict(step)
        self._download(by_action.get(Action.DOWNLOAD, []))
        for step in by_action.get(Action.DELETE_LOCAL, []):
            self._delete_local(step)
        self._upload(by_action.get(Action.UPLOAD, []))
        self._delete_remote(by_action.get(Action.DELETE_REMOTE, []))

    def _adopt(self, step: Step) -> None:
        if step.local is None:
            self.state.files.pop(step.path, None)
            return
        found = self.local[step.path]
        self.state.files[step.path] = Entry(
            step.local, self.remote[step.path].rev, found.size, found.mtime_ns
        )

    def _remote_path(self, rel: str) -> str:
        return self.prefix + rel

    def _upload(
        self,
        steps: list[Step],
    ) -> None:
        batch: list[tuple[Step, bytes]] = []
        size = 0
        for step in steps:
            path = self.root / step.path
            if self.local[step.path].size > LARGE_FILE:
                self._upload_large(step, path)
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                self.report.fail(step.path, exc)
                continue
            if hashlib.sha256(data).hexdigest() != step.local:  # changed while we synced
                self.report.skip(step.path)
                continue
            batch.append((step, data))
            size += len(data)
            if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
                self._upload_batch(batch)
                batch, size = [], 0
        if batch:
            self._upload_batch(batch)

    def _condition(self, step: Step) -> dict[str, str]:
        current = self.remote.get(step.path)
        if current is None or current.sha256 is None:
            return {"if_none_match": "*"}
        return {"if_match": f'"{current.sha256}"'}

    def _upload_batch(
        self,
        batch: list[tuple[Step, bytes]],
    ) -> None:
        operations = [
            {
                "op": "put",
                "path": self._remote_path(step.path),
                "content": base64.b64encode(data).decode("ascii"),
                "encoding": "base64",
                **self._condition(step),
            }
            for step, data in batch
        ]
        try:
            results = self.client.batch_write(operations)
        except MemhubError as exc:
            for step, _data in batch:
                self.report.fail(step.path, exc)
            return
        for (step, data), result in zip(batch, results, strict=True):
            if result.status in (200, 201) and result.revision is not None:
                self._uploaded(step, result.revision.sha256, result.revision.rev, len(data))
            else:
                self.report.fail(step.path, _failure(result.status, result.error))

    def _upload_large(
        self,
        step: Step,
        path: Path,
    ) -> None:
        condition = self._condition(step)
        try:
            with path.open("rb") as handle:
                revision = self.client.put_stream(
                    self._remote_path(step.path),
                    handle,
                    if_match=condition.get("if_match", "").strip('"') or None,
                    if_none_match="if_none_match" in condition,
                )
        except (OSError, MemhubError) as exc:
            self.report.fail(step.path, exc)
            return
        if revision.sha256 != step.local:  # changed while it was read
            self.report.skip(step.path)
            return
        self._uploaded(step, revision.sha256, revision.rev, revision.size)

    def _uploaded(
        self,
        step: Step,
        sha256: str,
        rev: int,
        size: int,
    ) -> None:
        found = self.local[step.path]
        self.state.files[step.path] = Entry(sha256, rev, found.size, found.mtime_ns)
        self.remote[step.path] = Remote(sha256, rev)
        self.report.uploaded.append(step.path)
        self.report.bytes_up += size
        self.progress("upload", size)

    def _download(self, steps: list[Step]) -> None:
        for start in range(0, len(steps), BATCH_FILES):
            chunk = steps[start : start + BATCH_FILES]
            try:
                files = self.client.batch_read([self._remote_path(s.path) for s in chunk])
            except MemhubError as exc:
                for step in chunk:
                    self.report.fail(step.path, exc)
                continue
            for step, item in zip(chunk, files, strict=True):
                if item.status == 200 and item.content is not None and item.revision:
                    data = (
                        base64.b64decode(item.content)
                        if item.encoding == "base64"
                        else item.content.encode()
                    )
                    self._store_download(step, data, item.revision.sha256, item.revision.rev)
                elif item.status == 413:
                    self._download_large(step)
                else:
                    self.report.fail(step.path, _failure(item.status, item.error))

    def _download_large(self, step: Step) -> None:
        try:
            headers, data = self.client.get(self._remote_path(step.path))
        except MemhubError as exc:
            self.report.fail(step.path, exc)
            return
        sha256 = headers.get("etag", "").strip('"')
        self._store_download(step, data, sha256, int(headers.get("x-memhub-rev", 0)))

    def _store_download(
        self,
        step: Step,
        data: bytes,
        sha256: str,
        rev: int,
    ) -> None:
        sha = hashlib.sha256(data).hexdigest()
        if sha != sha256:
            self.report.fail(step.path, "downloaded bytes fail their checksum")
            return
        current = self.root / step.path
        if step.local is not None and current.exists() and hash_file(current) != step.local:
            self.report.skip(step.path)  # edited here while we synced: next round decides
            return
        try:
            st = write_local(self.root, step.path, data)
        except (OSError, MemhubError) as exc:
            self.report.fail(step.path, exc)
            return
        self.state.files[step.path] = Entry(sha, rev, st.st_size, st.st_mtime_ns)
        self.remote[step.path] = Remote(sha, rev)
        self.report.downloaded.append(step.path)
        self.report.bytes_down += len(data)
        self.progress("download", len(data))

    def _delete_local(self, step: Step) -> None:
        path = self.root / step.path
        seen = self.local.get(step.path)
        try:
            st = path.stat()
            if seen is not None and (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                self.report.skip(step.path)  # touched since the scan
                return
            delete_local(self.root, step.path)
        except FileNotFoundError:
            pass
        except (OSError, MemhubError) as exc:
            self.report.fail(step.path, exc)
            return
        self.state.files.pop(step.path, None)
        self.report.deleted_local.append(step.path)
        self.progress("delete", 0)

    def _delete_remote(self, steps: list[Step]) -> None:
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
                    self.report.fail(step.path, exc)
                continue
            for step, result in zip(chunk, results, strict=True):
                if result.status in (200, 404):
                    self.state.files.pop(step.path, None)
                    rev = result.revision.rev if result.revision is not None else 0
                    self.remote[step.path] = Remote(None, rev)
                    self.report.deleted_remote.append(step.path)
                    self.progress("delete", 0)
                else:
                    self.report.fail(step.path, _failure(result.status, result.error))

    def _conflict(
        self,
        step: Step,
    ) -> None:
        """Keep both: the local version moves to a conflict copy (uploaded like any new
        file), the remote version takes the name."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        copy = conflict_name(step.path, self.host, stamp)
        serial = 1
        while copy in self.local or copy in self.remote or os.path.lexists(self.root / copy):
            serial += 1  # the name is taken (a conflict in the same second): never replace it
            copy = conflict_name(step.path, self.host, f"{stamp}-{serial}")
        source = self.root / step.path
        try:
            target = safe_target(self.root, copy)
            source.rename(target)
        except (OSError, MemhubError) as exc:
            self.report.fail(step.path, f"conflict copy failed: {exc}")
            return
        st = target.stat()
        self.local[copy] = LocalFile(step.local or "", st.st_size, st.st_mtime_ns)
        self.local.pop(step.path, None)
        self.report.conflicts.append({"path": step.path, "copy": copy})
        self._download([Step(step.path, Action.DOWNLOAD, step.base, None, step.remote)])
        self._upload([Step(copy, Action.UPLOAD, None, step.local, None)])


def _failure(status: int, error: ErrorInfo | None) -> str:
    """What a batch operation that failed says about it."""
    return error.detail if error is not None else f"the server answered {status}"
