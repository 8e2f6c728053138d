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

import socket
import time
from pathlib import Path

from memhub.client.http import MemhubClient
from memhub.core.paths import normalize_prefix
from memhub.errors import BadRequest, Conflict
from memhub.sync.local import State, folder_lock, load_ignores, scan
from memhub.sync.planner import Action, Step, deletions, plan
from memhub.sync.report import Remote, Report, summarize
from memhub.sync.round import Progress, Round

__all__ = ["FolderSync", "Remote", "Report", "summarize", "sync_folder"]


def sync_folder(
    root: Path,
    client: MemhubClient,
    config_dir: Path,
    *,
    prefix: str | None,
    push: bool,
    pull: bool,
    dry_run: bool = False,
    max_delete: float = 50.0,
    progress: Progress | None = None,
) -> Report:
    """One round, recorded in the config dir for ``memhub status`` (the commands and the
    hooks run folders through this)."""
    from memhub.sync.state_files import remember_folder

    engine = FolderSync(root, client, prefix=prefix, progress=progress)
    report = engine.run(push=push, pull=pull, dry_run=dry_run, max_delete=max_delete)
    if not dry_run:
        remember_folder(
            config_dir,
            engine.root,
            server=client.server,
            workspace=client.workspace,
            prefix=engine.prefix,
            changed=report.changed,
            errors=len(report.errors),
        )
    return report


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
            if not push and not dry_run and self._nothing_to_pull(state):
                # a pull brings the server's changes only; with none since the last round
                # there is nothing to do, and the folder need not be scanned (the
                # SessionStart hook's common case)
                self.progress("plan", 0)
                report.seconds = time.perf_counter() - started
                return report
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
            Round(
                self.root,
                self.client,
                self.prefix,
                self.host,
                self.progress,
                state=state,
                local=local,
                remote=remote,
                report=report,
            ).apply(steps)
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

    def _nothing_to_pull(self, state: State) -> bool:
        """The folder has been synced, nothing of the server's is left unapplied, and no
        change has reached the workspace since (anywhere: one request, not a listing)."""
        if state.cursor == 0 or state.pending:
            return False
        page = self.client.changes(state.cursor, limit=1)
        return not page.changes

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
