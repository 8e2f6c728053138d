"""The git bridge: a generated DiffMem-style repository (3 users on orphan branches
``user/<id>``, 300 commits with adds, edits, deletes and renames) imported with every
version intact; export → the same commits (same ids); mirror keeps a bare repository
current under writes; ``/repos/setup`` and ``/repos/status``; ``memhub git`` commands."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiclient import api_client, assert_error
from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit
from dulwich.refs import Ref
from dulwich.repo import Repo
from typer.testing import CliRunner

from memhub.cli.main import app as cli_app
from memhub.gitbridge.exporter import export_workspace
from memhub.gitbridge.importer import import_repo
from memhub.gitbridge.mirror import mirror_round
from memhub.store import Store, open_store

USERS = ("alice", "bob", "carol")
COMMITS_PER_USER = 100
Tree = dict[str, bytes]


def add_commit(
    repo: Repo, files: Tree, parent: bytes | None, author: str, when: int, message: bytes
) -> bytes:
    """Commit the whole tree ``files`` on top of ``parent`` (None: a root commit); its id."""
    blobs = []
    for name, data in sorted(files.items()):
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        blobs.append((name.encode(), blob.id, 0o100644))
    commit = Commit()
    commit.tree = commit_tree(repo.object_store, blobs)
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = author.encode()
    commit.author_time = commit.commit_time = when
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message
    repo.object_store.add_object(commit)
    return bytes(commit.id)


def generate(
    path: Path, seed: int = 7, per_user: int = COMMITS_PER_USER
) -> dict[str, list[tuple[bytes, Tree, str, int, bytes]]]:
    """A DiffMem memory repo: per user, an orphan branch of commits. Returns, per user,
    (commit id, full tree, author, time, message) oldest first."""
    rnd = random.Random(seed)
    repo = Repo.init_bare(str(path), mkdir=True)
    history: dict[str, list[tuple[bytes, Tree, str, int, bytes]]] = {}
    t0 = 1_700_000_000
    for u, user in enumerate(USERS):
        files: Tree = {}
        parent: bytes | None = None
        history[user] = []
        for i in range(per_user):
            people = [f"memories/people/p{j}.md" for j in range(6)]
            if i == 0:
                files[f"{user}.md"] = (
                    f"# {user}\n\n/START\n## Identity [ALWAYS_LOAD]\n/END\n".encode()
                )
            action = rnd.random()
            live = [p for p in files if p.startswith("memories/")]
            if action < 0.1 and live:
                del files[rnd.choice(live)]
            elif action < 0.18 and live:
                old = rnd.choice(live)
                files[old.replace(".md", f"-r{i}.md")] = files.pop(old)
            else:
                for target in rnd.sample([*people, f"timeline/2024-0{1 + i % 9}.md"], 2):
                    before = files.get(target, f"# {target}\n".encode())
                    fact = f"- {user} did {rnd.random():.6f}"
                    block = f"/START\n### fact {i} [Strength: Medium]\n{fact}\n/END\n"
                    files[target] = before + block.encode()
            author = f"{user.title()} Writer <{user}@example.org>"
            when = t0 + u * 1_000_000 + i * 3600
            message = f"session {i} of {user}\n\nsome body text\n".encode()
            parent = add_commit(repo, files, parent, author, when, message)
            history[user].append((parent, dict(files), author, when, message))
        repo.refs[Ref(f"refs/heads/user/{user}".encode())] = parent  # type: ignore[index]
    repo.close()
    return history


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'meta.db'}", "memory://")
    yield store
    store.close()


def replay(store: Store, workspace: str) -> list[tuple[str, Tree, str, float, str]]:
    """The workspace's history as (session id, full tree, author, time, message) per commit."""
    files: Tree = {}
    out: list[tuple[str, Tree, str, float, str]] = []
    changes = store.changes(workspace, limit=10_000).changes
    for rev in changes:
        if rev.deleted:
            files.pop(rev.path, None)
        else:
            files[rev.path] = store.read_bytes(workspace, rev.path, rev.rev)[1]
        if out and out[-1][0] == rev.session_id:
            out[-1] = (rev.session_id or "", dict(files), *out[-1][2:])
        else:
            out.append((rev.session_id or "", dict(files), rev.author or "", rev.created_at,
                        rev.message or ""))  # fmt: skip
    return out


def test_diffmem_repo_imports_every_version_and_exports_the_same_commits(
    tmp_path: Path, store: Store
) -> None:
    history = generate(tmp_path / "memory.git")
    reports = import_repo(store, str(tmp_path / "memory.git"))
    assert sorted(r.workspace for r in reports) == sorted(USERS)
    assert sum(r.commits for r in reports) == 3 * COMMITS_PER_USER
    for user in USERS:
        got = replay(store, user)
        want = history[user]
        assert len(got) == len(want) == COMMITS_PER_USER
        for (session, tree, author, when, message), (sha, w_tree, w_author, w_when, w_msg) in zip(
            got, want, strict=True
        ):
            assert session == f"git:{sha.decode()}"
            assert tree == w_tree
            assert (author, when, message) == (w_author, float(w_when), w_msg.decode().rstrip("\n"))
    # a second import skips every commit it holds
    again = import_repo(store, str(tmp_path / "memory.git"))
    assert sum(r.commits for r in again) == 0
    assert sum(r.skipped_commits for r in again) == 3 * COMMITS_PER_USER

    # export → the very same commits (same ids: same trees, authors, times, messages)
    report = export_workspace(store, "bob", tmp_path / "bob-export", branch="user/bob", bare=True)
    assert report.commits == COMMITS_PER_USER
    assert report.head == history["bob"][-1][0].decode()
    # … and a non-bare export checks the files out
    export_workspace(store, "carol", tmp_path / "carol")
    assert (tmp_path / "carol" / "carol.md").read_bytes() == history["carol"][-1][1]["carol.md"]

    # export → import round trip into a new workspace: same contents and history
    import_repo(store, str(tmp_path / "carol"), workspace="carol-copy", branch="main")
    original = [(t, a, w, m) for _s, t, a, w, m in replay(store, "carol")]
    copy = [(t, a, w, m) for _s, t, a, w, m in replay(store, "carol-copy")]
    assert copy == original


def test_mirror_keeps_a_bare_repo_current(tmp_path: Path, store: Store) -> None:
    store.create_workspace("notes", exist_ok=True)
    bare = tmp_path / "mirror.git"
    cache = tmp_path / "cache"
    store.put("notes", "a.md", b"one\n", author="me", message="first")
    assert mirror_round(store, "notes", str(bare), cache_dir=cache).commits == 1
    for i in range(5):
        store.put("notes", f"b{i}.md", f"{i}\n".encode(), author="me")
    store.delete("notes", "a.md", author="me", message="drop a")
    report = mirror_round(store, "notes", str(bare), cache_dir=cache)
    assert report.commits == 6 and report.rev == store.head_rev("notes")
    assert mirror_round(store, "notes", str(bare), cache_dir=cache).commits == 0
    with Repo(str(bare)) as repo:
        head = repo.refs[Ref(b"refs/heads/main")]
        commits = list(repo.get_walker(include=[head]))
        assert len(commits) == 7
        assert commits[0].commit.message == b"drop a\n"
        tree = repo[repo[head].tree]  # type: ignore[attr-defined]
        assert sorted(e.path for e in tree.items()) == [f"b{i}.md".encode() for i in range(5)]
    # a branch memhub did not write is refused rather than overwritten
    with Repo(str(bare)) as repo:
        del repo.refs[Ref(b"refs/memhub/main")]
    with pytest.raises(Exception, match="not written by memhub"):
        mirror_round(store, "notes", str(bare), cache_dir=cache)


def test_repos_setup_and_status(tmp_path: Path) -> None:
    generate(tmp_path / "memory.git", per_user=12)
    url = (tmp_path / "memory.git").as_uri()
    with api_client(tmp_path / "off", raise_server_exceptions=False) as client:
        refused = client.post("/repos/setup", json={"repo_url": url, "user_id": "alice"})
        assert_error(refused, 403, "FORBIDDEN")
        assert_error(client.post("/repos/setup", json={"user_id": "x"}), 422)
    with api_client(
        tmp_path / "on", raise_server_exceptions=False, repos_allow_file_urls=True
    ) as client:
        assert client.get("/repos/status/default").json()["status"] == "local"
        done = client.post("/repos/setup", json={"repo_url": url, "user_id": "alice"})
        assert done.status_code == 200, done.text
        assert done.json()["branch"] == "user/alice"
        assert done.json()["import"]["commits"] == 12
        status = client.get("/repos/status/alice").json()
        assert status["repo_url"] == url and status["status"] == "active"
        assert status["file_count"] > 3 and status["index_stats"]["total_blocks"] > 0
        assert status["last_sync"].startswith("20")
        missing = client.post(
            "/repos/setup", json={"repo_url": url, "user_id": "alice", "branch": "nope"}
        )
        assert missing.status_code == 200  # no "nope", but user/alice exists: already imported
        assert missing.json()["import"]["commits"] == 0
        bad = client.post("/repos/setup", json={"repo_url": str(tmp_path), "user_id": "alice"})
        assert_error(bad, 400)


def test_git_cli_import_and_export(tmp_path: Path) -> None:
    generate(tmp_path / "memory.git", per_user=12)
    data = tmp_path / "data"
    runner = CliRunner()
    done = runner.invoke(
        cli_app,
        ["git", "import", str(tmp_path / "memory.git"), "--branch", "user/carol",
         "--workspace", "default", "--data-dir", str(data), "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert '"commits": 12' in done.output
    out = runner.invoke(cli_app, ["git", "export", str(tmp_path / "out"), "--data-dir", str(data)])
    assert out.exit_code == 0, out.output
    assert "12 commits" in out.output
    mirrored = runner.invoke(
        cli_app, ["git", "mirror", str(tmp_path / "m.git"), "--once", "--data-dir", str(data)]
    )
    assert mirrored.exit_code == 0, mirrored.output
    assert (tmp_path / "m.git" / "refs" / "heads" / "main").exists()


def test_diffmem_server_layout_users_folders(tmp_path: Path, store: Store) -> None:
    """DiffMem's server keeps every user in ``users/<id>/`` of one branch."""
    repo = Repo.init_bare(str(tmp_path / "server.git"), mkdir=True)
    files: Tree = {"repo_guide.md": b"# guide\n"}
    parent: bytes | None = None
    for i in range(10):
        user = ("alex", "sam")[i % 2]
        files[f"users/{user}/{user}.md"] = f"# {user}\n\nv{i}\n".encode()
        if i == 9:  # one commit for both users
            files["users/alex/memories/people/sam.md"] = b"# Sam\n"
        parent = add_commit(
            repo,
            files,
            parent,
            "DiffMem <bot@diffmem>",
            1_700_000_000 + i,
            f"commit {i}\n".encode(),
        )
    repo.refs[Ref(b"refs/heads/main")] = parent  # type: ignore[index]
    repo.close()
    (report,) = import_repo(store, str(tmp_path / "server.git"))
    assert report.workspace == "users/*" and report.commits == 10
    assert report.workspaces == {"alex": 6, "sam": 5}  # commit 9 touched both
    assert report.skipped_entries == 1  # repo_guide.md
    assert store.read_bytes("alex", "alex.md")[1] == b"# alex\n\nv8\n"
    assert store.read_bytes("alex", "memories/people/sam.md")[1] == b"# Sam\n"
    assert store.read_bytes("sam", "sam.md")[1] == b"# sam\n\nv9\n"
    assert len(store.history("alex", "alex.md")) == 5
    (again,) = import_repo(store, str(tmp_path / "server.git"))
    assert again.commits == 0 and again.skipped_commits == 10


def test_mirror_follows_writes_as_they_happen(tmp_path: Path, store: Store) -> None:
    """The mirror loop runs in a thread while a writer writes; after the writer stops
    and one more round, the bare repository holds every revision as a commit."""
    import threading

    from memhub.gitbridge.mirror import mirror

    store.create_workspace("live", exist_ok=True)
    bare = tmp_path / "live.git"
    stop = threading.Event()
    rounds: list[int] = []

    def writer() -> None:
        for i in range(40):
            store.put("live", f"n{i % 7}.md", f"version {i}\n".encode(), author="w")
        stop.set()

    def sleep(_seconds: float) -> None:
        stop.wait(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    mirror(store, "live", str(bare), cache_dir=tmp_path / "c", rounds=300, sleep=sleep,
           on_round=lambda r: rounds.append(r.commits))  # fmt: skip
    thread.join(timeout=60)
    rounds.append(mirror_round(store, "live", str(bare), cache_dir=tmp_path / "c").commits)
    assert sum(rounds) == 40 and len([n for n in rounds if n]) >= 2
    with Repo(str(bare)) as repo:
        head = repo.refs[Ref(b"refs/heads/main")]
        assert len(list(repo.get_walker(include=[head]))) == 40
        tree = repo[repo[head].tree]  # type: ignore[attr-defined]
        for entry in tree.items():
            name = entry.path.decode()
            assert repo[entry.sha].as_raw_string() == store.read_bytes("live", name)[1]
