"""``memhub git mirror REMOTE``: keep a git repository current with a workspace.

Each round exports the revisions written since the last round as commits
(:class:`~memhub.gitbridge.exporter.Exporter`, which remembers the last rev in
``refs/memhub/<branch>``). A local repository (a path or ``file://``) is written
directly; any other remote gets the commits from a bare cache repository under
the data dir, pushed with ``git push``'s protocol (dulwich). Rounds run when the
workspace's head rev moves (the change feed), polled every ``interval`` seconds.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

from dulwich import porcelain
from dulwich.repo import Repo

from memhub.errors import StorageUnavailable
from memhub.gitbridge.exporter import Exporter, ExportReport
from memhub.store import Store


def is_local(remote: str) -> bool:
    return "://" not in remote or remote.startswith("file://")


def local_path(remote: str) -> Path:
    return Path(remote[7:] if remote.startswith("file://") else remote)


def mirror_round(
    store: Store, workspace: str, remote: str, *, branch: str = "main", cache_dir: Path
) -> ExportReport:
    if is_local(remote):
        path = local_path(remote)
        if not path.exists():
            path.mkdir(parents=True)
            Repo.init_bare(str(path)).close()
        with Repo(str(path)) as repo:
            return Exporter(store, workspace, repo, branch).run()
    cache = cache_dir / hashlib.sha256(f"{remote}\n{workspace}".encode()).hexdigest()[:16]
    if not cache.exists():
        cache.mkdir(parents=True)
        Repo.init_bare(str(cache)).close()
    with Repo(str(cache)) as repo:
        report = Exporter(store, workspace, repo, branch).run()
        if report.commits:
            try:
                porcelain.push(
                    repo,
                    remote,
                    [f"refs/heads/{branch}".encode()],
                    outstream=io.BytesIO(),
                    errstream=io.BytesIO(),
                )
            except Exception as exc:  # network, auth, protocol: dulwich raises many kinds
                raise StorageUnavailable(
                    f"could not push to {remote}: {exc}",
                    hint="the commits stay in the cache and go with the next round",
                ) from exc
    return report


def mirror(
    store: Store,
    workspace: str,
    remote: str,
    *,
    branch: str = "main",
    cache_dir: Path,
    interval: float = 2.0,
    rounds: int | None = None,
    on_round: Callable[[ExportReport], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run rounds until ``rounds`` have run (None: forever); a round only when the
    workspace's head rev moved since the last one."""
    seen = -1
    done = 0
    while rounds is None or done < rounds:
        head = store.head_rev(workspace)
        if head != seen:
            report = mirror_round(store, workspace, remote, branch=branch, cache_dir=cache_dir)
            seen = head
            if on_round is not None:
                on_round(report)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)
