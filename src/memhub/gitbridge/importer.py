"""A git repository's history into memhub (dulwich, pure Python).

Every commit of a branch, oldest first (topological order; a merge is diffed
against its first parent), becomes one atomic multi-file write
(:meth:`Store.put_many`): a revision per changed path, carrying the commit's
author (``Name <email>``), time and message, and the session id
``git:<commit sha>`` — which is how a second import skips what it already holds.

Which branch goes where:

- ``--branch B``: that branch into the workspace given (default ``default``);
- no branch, and the repository has branches ``user/<id>`` (DiffMem's orphan
  branch per user): each into the workspace ``<id>`` (created when missing);
- no workspace either, and ``HEAD``'s tree has a ``users/`` folder (DiffMem's
  server layout, ``users/<id>/…``): each ``users/<id>/`` into the workspace ``<id>``
  (paths relative to it; files outside ``users/`` are skipped and counted);
- otherwise the branch ``HEAD`` names, into the workspace given.

Submodules and symbolic links are skipped (counted); paths memhub refuses are an
error naming the commit.
"""

from __future__ import annotations

import io
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dulwich import porcelain
from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.walk import ORDER_TOPO
from sqlalchemy import select

from memhub.errors import BadRequest, InvalidPath, MemhubError, StorageUnavailable
from memhub.store import Precondition, Store
from memhub.store.schema import revisions

USER_BRANCH = b"refs/heads/user/"
GIT_SESSION = "git:"
USERS_FOLDERS = "users/*"  # DiffMem's server layout: users/<id>/ folders on one branch


@dataclass
class ImportReport:
    workspace: str
    branch: str
    commits: int = 0
    skipped_commits: int = 0  # already imported, or with no change memhub can hold
    revisions: int = 0
    skipped_entries: int = 0  # submodules, symbolic links, files outside users/<id>/
    head: str | None = None
    workspaces: dict[str, int] = field(default_factory=dict)  # commits written per workspace

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Plan:
    branches: list[tuple[bytes, str]] = field(default_factory=list)  # (ref, workspace)


def decode(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@contextmanager
def open_repo(source: str, *, allow_local: bool = True) -> Iterator[Repo]:
    """A local repository as is, or a URL cloned (bare) into a temporary directory."""
    path = Path(source[7:] if source.startswith("file://") else source)
    is_url = "://" in source and not source.startswith("file://")
    if not is_url:
        if not allow_local:
            raise BadRequest(
                "local and file:// repositories are off on this server",
                context={"repo_url": source},
                hint="set MEMHUB_REPOS_ALLOW_FILE_URLS=true to allow them",
            )
        try:
            repo = Repo(str(path))
        except NotGitRepository as exc:
            raise BadRequest(f"{source} is not a git repository") from exc
        with repo:
            yield repo
        return
    with tempfile.TemporaryDirectory(prefix="memhub-git-") as scratch:
        try:
            repo = porcelain.clone(
                source, scratch, bare=True, errstream=io.BytesIO(), outstream=io.BytesIO()
            )
        except Exception as exc:  # dulwich raises many kinds: network, protocol, auth
            raise StorageUnavailable(
                f"could not clone {source}: {exc}", hint="check the URL and that it is reachable"
            ) from exc
        with repo:
            yield repo


def plan(repo: Repo, workspace: str | None, branch: str | None) -> Plan:
    refs = repo.get_refs()
    if branch:
        ref = branch.encode() if branch.startswith("refs/") else b"refs/heads/" + branch.encode()
        if ref not in refs:
            raise BadRequest(f"no branch {branch!r} in the repository", context={"branch": branch})
        return Plan([(ref, workspace or "default")])
    users = sorted(r for r in refs if r.startswith(USER_BRANCH))
    if users and workspace is None:
        return Plan([(r, decode(r[len(USER_BRANCH) :])) for r in users])
    head = repo.refs.follow(Ref(b"HEAD"))[0][-1]
    heads = sorted(r for r in refs if r.startswith(b"refs/heads/"))
    if head not in refs:  # HEAD names an unborn branch: main, else the only branch
        main = Ref(b"refs/heads/main")
        head = main if main in refs else heads[0] if len(heads) == 1 else head
    if head not in refs:
        raise BadRequest("the repository has no commits on HEAD; name a --branch")
    if workspace is None and _has_users_folder(repo, refs[head]):
        return Plan([(head, USERS_FOLDERS)])
    return Plan([(head, workspace or "default")])


def _has_users_folder(repo: Repo, commit_id: bytes) -> bool:
    commit = repo[commit_id]
    assert isinstance(commit, Commit)
    tree = repo[commit.tree]
    return any(
        e.path == b"users" and stat.S_ISDIR(e.mode or 0)
        for e in tree.items()  # type: ignore[attr-defined]
    )


def imported_commits(store: Store, workspace: str) -> set[str]:
    ws_id = store.workspace_id(workspace)
    with store.meta.read() as conn:
        rows = conn.execute(
            select(revisions.c.session_id)
            .where(
                revisions.c.workspace_id == ws_id,
                revisions.c.session_id.like(GIT_SESSION + "%"),
            )
            .distinct()
        ).all()
    return {r[0][len(GIT_SESSION) :] for r in rows}


def _changes(repo: Repo, commit: Commit) -> Iterator[tuple[str, bytes | None, int]]:
    """(path, new blob id or None for a delete, mode) of one commit against its first parent."""
    parent_tree = repo[commit.parents[0]].tree if commit.parents else None  # type: ignore[attr-defined]
    for change in tree_changes(repo.object_store, parent_tree, commit.tree):
        old, new = change.old, change.new
        if old is not None and old.path is not None and (new is None or new.path != old.path):
            yield decode(old.path), None, old.mode or 0
        if new is not None and new.path is not None and new.sha is not None:
            yield decode(new.path), new.sha, new.mode or 0


def route(path: str, workspace: str) -> tuple[str, str] | None:
    """Where a repository path goes: (workspace, path in it), or None (not imported)."""
    if workspace != USERS_FOLDERS:
        return workspace, path
    parts = path.split("/", 2)
    if len(parts) == 3 and parts[0] == "users" and parts[1]:
        return parts[1], parts[2]
    return None


def import_branch(store: Store, repo: Repo, ref: bytes, workspace: str) -> ImportReport:
    """Import one branch into ``workspace`` (``users/*``: each ``users/<id>/`` folder into
    the workspace ``<id>``, one atomic write per commit and workspace)."""
    report = ImportReport(workspace, decode(ref).removeprefix("refs/heads/"))
    done: dict[str, set[str]] = {}

    def imported(ws: str) -> set[str]:
        if ws not in done:
            store.create_workspace(ws, exist_ok=True)
            done[ws] = imported_commits(store, ws)
        return done[ws]

    if workspace != USERS_FOLDERS:
        imported(workspace)
    head = repo.refs[Ref(ref)]
    report.head = decode(head)
    for entry in repo.get_walker(include=[head], order=ORDER_TOPO, reverse=True):
        commit = entry.commit
        sha = decode(commit.id)
        by_workspace: dict[str, list[tuple[str, bytes | None, Precondition]]] = {}
        for path, blob_id, mode in _changes(repo, commit):
            routed = route(path, workspace)
            if routed is None or (
                blob_id is not None and (stat.S_ISLNK(mode) or stat.S_IFMT(mode) == 0o160000)
            ):
                report.skipped_entries += 1
                continue
            data = None
            if blob_id is not None:
                blob = repo[blob_id]
                assert isinstance(blob, Blob)
                data = blob.as_raw_string()
            by_workspace.setdefault(routed[0], []).append((routed[1], data, Precondition()))
        wrote = False
        for ws, writes in by_workspace.items():
            if sha in imported(ws):
                continue
            writes = _only_live_deletes(store, ws, writes)
            if writes:
                report.revisions += _write_commit(store, ws, writes, commit, sha)
                report.workspaces[ws] = report.workspaces.get(ws, 0) + 1
                wrote = True
        if wrote:
            report.commits += 1
        else:
            report.skipped_commits += 1
    return report


def _write_commit(
    store: Store,
    workspace: str,
    writes: list[tuple[str, bytes | None, Precondition]],
    commit: Commit,
    sha: str,
) -> int:
    try:
        results = store.put_many(
            workspace,
            writes,
            author=decode(commit.author)[:255],
            session_id=GIT_SESSION + sha,
            message=decode(commit.message).rstrip("\n")[:4096],
            created_at=float(commit.commit_time),
        )
    except InvalidPath as exc:
        raise BadRequest(
            f"commit {sha[:12]} has a path memhub cannot hold: {exc.detail}",
            context={"commit": sha, **(exc.context or {})},
        ) from exc
    return len(results)


def _only_live_deletes(
    store: Store, workspace: str, writes: list[tuple[str, bytes | None, Precondition]]
) -> list[tuple[str, bytes | None, Precondition]]:
    """A delete of a path memhub does not hold (a skipped symlink) is dropped."""
    kept = []
    for path, data, pre in writes:
        if data is None:
            try:
                store.stat(workspace, path)
            except MemhubError as exc:
                if exc.status == 404:
                    continue
                raise
        kept.append((path, data, pre))
    return kept


def import_repo(
    store: Store,
    source: str,
    *,
    workspace: str | None = None,
    branch: str | None = None,
    allow_local: bool = True,
) -> list[ImportReport]:
    with open_repo(source, allow_local=allow_local) as repo:
        return [
            import_branch(store, repo, ref, ws)
            for ref, ws in plan(repo, workspace, branch).branches
        ]
