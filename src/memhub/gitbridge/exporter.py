"""A workspace's history out as git commits (dulwich), whole or incrementally.

Revisions are grouped into commits in rev order: consecutive revisions with the
same session id (a committed session, an imported git commit, a multi-file
write), author and message make one commit; any other revision is a commit of
its own. A commit's author and committer are the revision's author (``Name
<email>`` as imported, else ``<author> <author@memhub>``), its time the
revision's time, its message the revision's message (or ``memhub rev N: path``).
So an imported repository exports back to the same trees, messages, authors and
times.

:class:`Exporter` appends to a branch: it starts from the branch's tree and the
last rev it exported (``refs/memhub/<branch>`` holds a blob with that rev), so the
mirror can call it again and again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from memhub.errors import Conflict
from memhub.store import Revision, Store

_IDENTITY = re.compile(r"^[^<>\n]+ <[^<>\n]*>$")
FILE_MODE = 0o100644
BATCH = 1000


@dataclass
class ExportReport:
    workspace: str
    branch: str
    commits: int
    revisions: int
    head: str | None
    rev: int

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def identity(author: str | None) -> bytes:
    name = (author or "memhub").strip() or "memhub"
    if _IDENTITY.match(name):
        return name.encode()
    safe = re.sub(r"[<>\n]", "", name)
    return f"{safe} <{safe.replace(' ', '.')}@memhub>".encode()


def groups(revs: list[Revision]) -> Iterator[list[Revision]]:
    current: list[Revision] = []
    for rev in revs:
        key = (rev.session_id, rev.author, rev.message)
        if (
            current
            and rev.session_id is not None
            and key == (current[-1].session_id, current[-1].author, current[-1].message)
            and rev.path not in {r.path for r in current}
        ):
            current.append(rev)
            continue
        if current:
            yield current
        current = [rev]
    if current:
        yield current


class Exporter:
    def __init__(self, store: Store, workspace: str, repo: Repo, branch: str = "main") -> None:
        self.store = store
        self.workspace = workspace
        self.repo = repo
        self.branch = branch
        self.ref = Ref(f"refs/heads/{branch}".encode())
        self.state_ref = Ref(f"refs/memhub/{branch}".encode())

    def _state(self) -> tuple[ObjectID | None, int, dict[bytes, ObjectID]]:
        """(branch head, last exported rev, path → blob id of the head's tree)."""
        refs = self.repo.get_refs()
        head = refs.get(self.ref)
        if head is None:
            return None, 0, {}
        state = refs.get(self.state_ref)
        if state is None:
            raise Conflict(
                f"branch {self.branch!r} exists and was not written by memhub",
                hint="export into an empty repository or another --branch",
            )
        blob = self.repo[state]
        rev_text = blob.as_raw_string().decode().strip() if isinstance(blob, Blob) else "0"
        commit = self.repo[head]
        assert isinstance(commit, Commit)
        files = {
            entry.path: entry.sha
            for entry in self.repo.object_store.iter_tree_contents(commit.tree)
            if entry.path is not None and entry.sha is not None
        }
        return head, int(rev_text), files

    def run(self) -> ExportReport:
        head, since, files = self._state()
        commits = revisions = 0
        last = since
        while True:
            page = self.store.changes(self.workspace, since=last, limit=BATCH)
            for group in groups(page.changes):
                head = self._commit(group, head, files)
                commits += 1
                revisions += len(group)
            last = page.next_since
            if not page.has_more:
                break
        if head is not None and commits:
            self.repo.refs[self.ref] = head
            marker = Blob.from_string(f"{last}\n".encode())
            self.repo.object_store.add_object(marker)
            self.repo.refs[self.state_ref] = marker.id
            target = self.repo.refs.follow(Ref(b"HEAD"))[0][-1]
            if target not in self.repo.get_refs():  # HEAD names a branch with no commits
                self.repo.refs.set_symbolic_ref(Ref(b"HEAD"), self.ref)
        return ExportReport(
            self.workspace,
            self.branch,
            commits,
            revisions,
            head.decode() if head else None,
            last,
        )

    def _commit(
        self, group: list[Revision], parent: ObjectID | None, files: dict[bytes, ObjectID]
    ) -> ObjectID:
        for rev in group:
            path = rev.path.encode()
            if rev.deleted:
                files.pop(path, None)
                continue
            data = self.store.read_bytes(self.workspace, rev.path, rev.rev)[1]
            blob = Blob.from_string(data)
            self.repo.object_store.add_object(blob)
            files[path] = blob.id
        tree = commit_tree(
            self.repo.object_store, [(p, sha, FILE_MODE) for p, sha in sorted(files.items())]
        )
        if not files:  # git has no empty tree commit problem, but make it explicit
            empty = Tree()
            self.repo.object_store.add_object(empty)
            tree = empty.id
        first = group[0]
        commit = Commit()
        commit.tree = tree
        commit.parents = [parent] if parent else []
        commit.author = commit.committer = identity(first.author)
        commit.author_time = commit.commit_time = int(first.created_at)
        commit.author_timezone = commit.commit_timezone = 0
        message = first.message or f"memhub rev {first.rev}: {first.path}"
        commit.message = (message if message.endswith("\n") else message + "\n").encode()
        self.repo.object_store.add_object(commit)
        return commit.id


def export_workspace(
    store: Store, workspace: str, directory: Path, *, branch: str = "main", bare: bool = False
) -> ExportReport:
    """Write ``workspace`` with its history into the git repository at ``directory``
    (created when missing); a non-bare repository gets the files checked out."""
    directory.mkdir(parents=True, exist_ok=True)
    is_repo = (directory / ".git").exists() or (directory / "HEAD").exists()
    if is_repo:
        repo = Repo(str(directory))
    else:
        repo = Repo.init_bare(str(directory)) if bare else Repo.init(str(directory))
    with repo:
        report = Exporter(store, workspace, repo, branch).run()
        if not bare and not repo.bare and report.head is not None:
            repo.get_worktree().reset_index()
    return report
