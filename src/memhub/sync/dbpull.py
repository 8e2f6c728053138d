"""Pull a database pushed with :mod:`memhub.sync.dbsync` over a local file, safely.

The head of ``dbs/NAME.sqlite`` is streamed (bounded memory) into a temp file
next to the target, fsync'd, checked against its sha256 and with ``PRAGMA
integrity_check``; then ``--before`` runs (a failure aborts with nothing
replaced), the local database is backed up with the backup API (WAL content
included; retention by count and age), checkpointed and atomically replaced
(:func:`memhub.sync.sqlite_snapshot.replace_database`), and ``--after`` runs.
A pull killed at any moment leaves the old database or the new one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memhub.client.http import MemhubClient
from memhub.errors import BadRequest, FileNotFound, InvalidChecksum
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbstate import SyncState
from memhub.sync.dbsync import (
    NullReporter,
    Reporter,
    check_name,
    diverged,
    fingerprint,
    local_sha,
    record,
    remote_head,
    remote_paths,
    resolve_hint,
)

DEFAULT_KEEP_BACKUPS = 5
DEFAULT_BACKUP_DAYS = 30.0


def default_backup_dir(data_dir: Path, name: str) -> Path:
    """``<MEMHUB_DATA_DIR or the user data dir>/backups/<name>``."""
    return data_dir / "backups" / name


@dataclass(frozen=True, slots=True)
class PullOptions:
    overwrite: bool = False
    keep_backups: int = DEFAULT_KEEP_BACKUPS
    backup_days: float = DEFAULT_BACKUP_DAYS
    backup_dir: Path | None = None  # required unless a pull keeps no backups
    before: str | None = None
    after: str | None = None


def pull(
    client: MemhubClient,
    file: Path,
    *,
    name: str | None = None,
    options: PullOptions | None = None,
    state: SyncState,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Replace ``file`` with the server's head of ``dbs/NAME.sqlite``; returns a summary."""
    started = time.monotonic()
    options = options or PullOptions()
    if options.keep_backups < 0 or options.backup_days < 0:
        raise BadRequest("--keep-backups and --backup-days cannot be negative")
    file = file.expanduser().resolve()
    name = check_name(name or file.stem)
    db_path = remote_paths(name)[0]
    head = remote_head(client, db_path)
    if head is None:
        raise FileNotFound(
            f"nothing was pushed as {name!r}: {db_path} does not exist on the server",
            hint="push it from the machine that has it (memhub db push FILE)",
        )
    result: dict[str, Any] = {"name": name, "file": str(file), "path": db_path}
    result.update(skipped=False, reason=None, sha256=head["sha256"], rev=head["rev"])
    result.update(size=head["size"], bytes_received=0, backup=None, pruned=[])
    key = SyncState.key(client.server, client.workspace, name, file)
    reason = _skip_reason(file, name, head, state.get(key), options.overwrite)
    if reason is not None:
        result.update(skipped=True, reason=reason)
    else:
        _replace(client, file, name, head, result, options, reporter or NullReporter())
    if reason in (None, "unchanged", "same-as-remote"):
        fp = fingerprint(file)
        state.put(key, record(file, name, head["sha256"], head["rev"], fp, "pull"))
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result


def _now() -> datetime:
    return datetime.now(UTC)


def _skip_reason(
    file: Path, name: str, head: dict[str, Any], base: dict[str, Any] | None, overwrite: bool
) -> str | None:
    """Why there is nothing to pull (None: pull). Hashes only when the file changed."""
    if not file.exists():
        return None
    if base is not None and base["fingerprint"] == fingerprint(file):
        return "unchanged" if base["sha256"] == head["sha256"] else None
    if overwrite:
        return None
    current = local_sha(file)
    if current == head["sha256"]:
        return "same-as-remote"
    if base is None or current == base["sha256"]:
        return None  # never synced (a backup is kept), or only touched: take the server's
    if base["sha256"] == head["sha256"]:
        return "local-newer"  # changes here that were never pushed; the server has nothing new
    raise diverged(
        f"both {file} and the server's copy changed since they were last synced",
        head,
        resolve_hint(file, name),
    )


def _replace(
    client: MemhubClient,
    file: Path,
    name: str,
    head: dict[str, Any],
    result: dict[str, Any],
    options: PullOptions,
    reporter: Reporter,
) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    sq.remove_stale_temps(file.parent, file.name)
    tmp = sq.temp_path(file.parent, file.name)
    try:
        reporter.phase("download", int(head["size"]))
        result["bytes_received"] = _download(client, result["path"], tmp, head, reporter, file)
        reporter.phase("integrity check")
        result["tables"] = sq.inspect(tmp).tables
        if options.before:
            result["before"] = _run_hook(options.before, file, name)
            if result["before"]["exit_code"] != 0:
                raise BadRequest(
                    f"--before failed (exit code {result['before']['exit_code']}); "
                    f"{file} was left as it was",
                    context=result["before"],
                )
        try:
            if file.exists() and options.keep_backups > 0:
                reporter.phase("backup")
                _backup(file, name, options, result)
            reporter.phase("replace")
            sq.replace_database(tmp, file)
        finally:
            if options.after:
                result["after"] = _run_hook(options.after, file, name)
    finally:
        tmp.unlink(missing_ok=True)


def _download(
    client: MemhubClient,
    path: str,
    tmp: Path,
    head: dict[str, Any],
    reporter: Reporter,
    target: Path,
) -> int:
    digest = hashlib.sha256()
    size = 0
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        for piece in client.stream(path):
            out.write(piece)
            digest.update(piece)
            size += len(piece)
            reporter.advance(len(piece))
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != head["sha256"]:
        raise InvalidChecksum(
            f"the download of {path} does not hash to rev {head['rev']}'s sha256",
            context={"expected": head["sha256"], "actual": digest.hexdigest()},
            hint="it was probably pushed again meanwhile: pull again",
        )
    return size


def _backup(file: Path, name: str, options: PullOptions, result: dict[str, Any]) -> None:
    directory = options.backup_dir
    if directory is None:
        raise BadRequest("no backup directory was given", hint="pass --backup-dir")
    now = _now()
    result["backup"] = str(sq.make_backup(file, directory, name, now=now))
    pruned = sq.prune_backups(
        directory, name, keep=options.keep_backups, max_age_days=options.backup_days, now=now
    )
    result["pruned"] = [str(p) for p in pruned]


def _run_hook(command: str, file: Path, name: str) -> dict[str, Any]:
    """Run a --before/--after shell command; its output goes to stderr (stdout is ours)."""
    env = {**os.environ, "MEMHUB_DB_FILE": str(file), "MEMHUB_DB_NAME": name}
    done = subprocess.run(
        command, shell=True, stdout=sys.stderr, stdin=subprocess.DEVNULL, env=env, check=False
    )
    return {"command": command, "exit_code": done.returncode}
