"""The memory proxy client's own sync scenarios against a real ``memhub serve``.

The client is restated in ``proxy_v2_client.py`` from the spec. Scenarios, as its test
suite has them: first upload, download on a second machine, concurrent edit → version
conflict → resolution (and the 412 → re-plan retry), delete and recreate, namespace
isolation (memory and history namespaces, compressed history files). One server for
the module; each test works in namespaces of its own (``test-<hex>/…``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proxy_v2_client import (
    AuthenticationError,
    MemoryProxyClient,
    NotFoundError,
    Plan,
    SyncEngine,
    VersionConflictError,
    md5,
)

from conftest import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> tuple[str, str]:
    """The module's one ``memhub serve``: its base URL and admin key."""
    return module_server.base_url, module_server.key


@pytest.fixture
def client(server: tuple[str, str]) -> Iterator[MemoryProxyClient]:
    c = MemoryProxyClient(*server)
    yield c
    c.close()


@pytest.fixture
def ns() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/personas/alice/memory"


def merge(_path: str, local: bytes, remote: bytes) -> bytes:
    """The LLM merger's fake: both sides' lines, remote first, without duplicates."""
    lines = dict.fromkeys(remote.decode().splitlines() + local.decode().splitlines())
    return ("\n".join(lines) + "\n").encode()


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_first_upload_then_download_on_a_second_machine(
    client: MemoryProxyClient, ns: str, tmp_path: Path
) -> None:
    a = SyncEngine(client, ns, tmp_path / "a")
    write(a.root, "notes.md", "# notes\n")
    write(a.root, "projects/alpha.md", "alpha\n")
    write(a.root, "persona.md", "I am alice\n")
    plan = a.plan()
    assert sorted(plan.uploads) == [("notes.md", 0), ("persona.md", 0), ("projects/alpha.md", 0)]
    assert a.sync_with_retry() == 1
    remote = client.sync_index(ns)
    assert set(remote.files) == {"notes.md", "persona.md", "projects/alpha.md"}
    index = a.load_index()
    for path, entry in remote.files.items():
        assert entry.version > 0 and not entry.is_deleted
        assert index[path].version == entry.version  # manifest-on-write kept it current
        assert index[path].md5 == entry.md5
    assert remote.index_version >= max(e.version for e in remote.files.values())

    b = SyncEngine(client, ns, tmp_path / "b")
    assert sorted(b.plan().downloads) == sorted(remote.files)
    b.sync_with_retry()
    assert b.local_files() == a.local_files()
    assert {k: v.version for k, v in b.load_index().items()} == {
        k: v.version for k, v in remote.files.items()
    }
    # nothing left to do on either side
    for engine in (a, b):
        again = engine.plan()
        assert not (again.uploads or again.downloads or again.conflicts or again.delete_remote)


def test_concurrent_edit_conflict_and_resolution(
    client: MemoryProxyClient, ns: str, tmp_path: Path
) -> None:
    a, b = SyncEngine(client, ns, tmp_path / "a"), SyncEngine(client, ns, tmp_path / "b")
    write(a.root, "notes.md", "base\n")
    a.sync_with_retry()
    b.sync_with_retry()
    v1 = client.sync_index(ns).files["notes.md"].version

    write(a.root, "notes.md", "base\nfrom a\n")
    a.sync_with_retry()
    v2 = client.sync_index(ns).files["notes.md"].version
    assert v2 > v1

    # b edited the same file meanwhile: a stale write is refused with the proxy's 412
    with pytest.raises(VersionConflictError) as refused:
        client.write_blob(ns, "notes.md", b"base\nfrom b\n", v1)
    assert refused.value.current == str(v2) and refused.value.provided == str(v1)

    write(b.root, "notes.md", "base\nfrom b\n")
    plan = b.plan()
    assert plan.conflicts == ["notes.md"]
    b.sync_with_retry(resolver=merge)
    merged = b"base\nfrom a\nfrom b\n"
    assert (b.root / "notes.md").read_bytes() == merged
    remote = client.sync_index(ns).files["notes.md"]
    assert remote.md5 == md5(merged) and remote.version > v2
    assert b.load_index()["notes.md"].version == remote.version

    a.sync_with_retry()
    assert (a.root / "notes.md").read_bytes() == merged


def test_a_race_between_plan_and_execute_replans(
    client: MemoryProxyClient, ns: str, tmp_path: Path
) -> None:
    a = SyncEngine(client, ns, tmp_path / "a")
    write(a.root, "todo.md", "one\n")
    a.sync_with_retry()
    write(a.root, "todo.md", "one\ntwo\n")
    version = client.sync_index(ns).files["todo.md"].version
    real_plan = a.plan
    calls = 0

    def plan_then_race() -> Plan:
        nonlocal calls
        calls += 1
        plan = real_plan()
        if calls == 1:  # another device writes between this plan and its execution
            client.write_blob(ns, "todo.md", b"one\nthree\n", version)
        return plan

    a.plan = plan_then_race  # type: ignore[method-assign]  # a race, injected
    assert a.sync_with_retry(resolver=merge) == 2  # 412 on the first attempt, then re-planned
    assert (a.root / "todo.md").read_bytes() == b"one\nthree\ntwo\n"
    assert client.read_blob(ns, "todo.md").data == b"one\nthree\ntwo\n"


def test_delete_and_recreate(client: MemoryProxyClient, ns: str, tmp_path: Path) -> None:
    a, b = SyncEngine(client, ns, tmp_path / "a"), SyncEngine(client, ns, tmp_path / "b")
    write(a.root, "old.md", "old\n")
    write(a.root, "keep.md", "keep\n")
    a.sync_with_retry()
    b.sync_with_retry()

    (a.root / "old.md").unlink()
    plan = a.plan()
    live = client.sync_index(ns).files["old.md"].version
    assert plan.delete_remote == [("old.md", live)]
    a.sync_with_retry()
    tomb = client.sync_index(ns).files["old.md"]
    assert tomb.is_deleted and tomb.version > live and tomb.size == 0
    assert tomb.md5 == md5(b"old\n")
    with pytest.raises(NotFoundError):
        client.read_blob(ns, "old.md")

    assert b.plan().delete_local == ["old.md"]
    b.sync_with_retry()
    assert not (b.root / "old.md").exists() and (b.root / "keep.md").exists()

    # recreated on b: uploaded with version 0 over the tombstone, then downloaded by a
    write(b.root, "old.md", "new life\n")
    assert b.plan().uploads == [("old.md", 0)]
    b.sync_with_retry()
    again = client.sync_index(ns).files["old.md"]
    assert not again.is_deleted and again.version > tomb.version
    a.sync_with_retry()
    assert (a.root / "old.md").read_text() == "new life\n"

    # deleting what was never written is a 404
    with pytest.raises(NotFoundError):
        client.delete_blob(ns, "never.md")


def test_namespace_isolation_and_compressed_history(
    client: MemoryProxyClient, tmp_path: Path, server: tuple[str, str]
) -> None:
    run = f"test-{uuid.uuid4().hex[:8]}"
    memory = SyncEngine(client, f"{run}/personas/alice/memory", tmp_path / "memory")
    history = SyncEngine(
        client, f"{run}/personas/alice/history/s1", tmp_path / "history", compress=True
    )
    bob = SyncEngine(client, f"{run}/personas/bob/memory", tmp_path / "bob")
    write(memory.root, "persona.md", "alice\n")
    write(bob.root, "persona.md", "bob\n")
    big = "".join(f'{{"turn": {i}, "text": "hello again"}}\n' for i in range(200))
    write(history.root, "session.jsonl", big)
    write(history.root, "tiny.json", "{}")
    for engine in (memory, history, bob):
        engine.sync_with_retry()

    assert set(client.sync_index(memory.namespace).files) == {"persona.md"}
    assert set(client.sync_index(bob.namespace).files) == {"persona.md"}
    assert set(client.sync_index(history.namespace).files) == {"session.jsonl.gz", "tiny.json"}
    gz = client.read_blob(history.namespace, "session.jsonl.gz")
    assert gz.content_type == "application/gzip" and len(gz.data) < len(big)
    assert client.read_blob(bob.namespace, "persona.md").data == b"bob\n"
    assert client.sync_index(f"{run}/personas/carol/memory").files == {}

    replay = SyncEngine(client, history.namespace, tmp_path / "history-2", compress=True)
    replay.sync_with_retry()
    assert replay.local_files() == history.local_files()

    # another workspace's key reaches none of it through the same namespace names
    base_url, admin = server
    made = httpx.post(
        f"{base_url}/admin/keys",
        json={"user_name": f"ws-{run}", "scopes": ["read", "write"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 200, made.text
    key = made.json()["key"]
    foreign = MemoryProxyClient(base_url, key)
    try:
        assert foreign.sync_index(memory.namespace).files == {}
        with pytest.raises(NotFoundError):
            foreign.read_blob(memory.namespace, "persona.md")
    finally:
        foreign.close()
    stranger = MemoryProxyClient(base_url, "not-a-key")
    try:
        with pytest.raises(AuthenticationError):
            stranger.sync_index(memory.namespace)
    finally:
        stranger.close()
