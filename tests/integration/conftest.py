"""Fixtures of the store's contract suites.

``metadata_url`` runs a test once per metadata backend (SQLite file, PostgreSQL)
and ``blob_store`` once per blob store (memory, local directory, S3 on moto's
server); a test that asks for ``store`` runs against every combination. The
``clock`` is a :class:`FakeClock` a test moves by hand (leases, retention).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from memhub.store import Store
from memhub.store.blobs import BlobStore, open_blob_store
from memhub.store.blobs.memory import MemoryBlobStore
from memhub.store.metadata import Metadata

METADATA_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
BLOB_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("local", id="local"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
]


class FakeClock:
    """A clock that stands still until :meth:`advance` moves it; starts at the real time
    so that blob modification times (set by the file system or S3) compare sensibly."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unique_name(prefix: str = "ws") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of an in-process CLI test: none of the caller's ``MEMHUB_*``
    settings, a HOME (and config dir) under ``tmp_path``, and 200 columns so that
    output is not wrapped. Returns the HOME."""
    for name in list(os.environ):
        if name.startswith("MEMHUB_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database, migrated once."""
    meta = Metadata(postgres_url)
    try:
        meta.migrate()
    finally:
        meta.close()
    return postgres_url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each test gets a copy (a migration from
    nothing costs ~0.1 s, which hundreds of tests would pay again and again)."""
    path = tmp_path_factory.mktemp("template") / "meta.db"
    meta = Metadata(f"sqlite:///{path}")
    try:
        meta.migrate()
    finally:
        meta.close()
    return path


@pytest.fixture
def sqlite_url(migrated_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite metadata database of this test's own (a copy of the template)."""
    path = tmp_path / "meta.db"
    with (
        closing(sqlite3.connect(migrated_sqlite_template)) as source,
        closing(sqlite3.connect(path)) as copy,
    ):
        source.backup(copy)
    return f"sqlite:///{path}"


@pytest.fixture(params=METADATA_BACKENDS)
def metadata_url(request: pytest.FixtureRequest) -> str:
    """A migrated metadata database: a new SQLite file, or the session's PostgreSQL
    database (shared, so tests there use workspaces of their own)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture(scope="session")
def shared_s3_bucket(s3_server: str) -> str:
    """One bucket for the session's S3 blob stores, each under a prefix of its own
    (creating a bucket on moto costs ~50 ms; stores under different prefixes of one
    bucket are separate, as test_blob_stores checks)."""
    import boto3

    name = unique_name("memhub-shared")
    with closing(boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")) as client:
        client.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=BLOB_BACKENDS)
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """An empty blob store, built from its URL as the server builds it (on S3: under a
    prefix of its own in the session's bucket)."""
    if request.param == "memory":
        store: BlobStore = open_blob_store("memory://")
    elif request.param == "local":
        store = open_blob_store((tmp_path / "blobs").as_uri())
    else:
        endpoint = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("shared_s3_bucket")
        store = open_blob_store(f"s3://{bucket}/{unique_name('test')}", s3_endpoint_url=endpoint)
    yield store
    store.close()


StoreFactory = Callable[..., Store]


def _store_factory(metadata_url: str, blobs: BlobStore) -> Iterator[StoreFactory]:
    opened: list[Metadata] = []

    def make(
        *,
        chunk_size: int = 1024,
        max_chunk_bytes: int = 16 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> Store:
        meta = Metadata(metadata_url)
        opened.append(meta)
        return Store(
            meta, blobs, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes, clock=clock
        )

    yield make
    for meta in opened:
        meta.close()  # the blob store belongs to its own fixture


@pytest.fixture
def make_store(metadata_url: str, blob_store: BlobStore) -> Iterator[StoreFactory]:
    """Build stores over one metadata database and one blob store (every combination)."""
    yield from _store_factory(metadata_url, blob_store)


@pytest.fixture
def make_memory_store(metadata_url: str) -> Iterator[StoreFactory]:
    """Build stores over one metadata database (every backend) and an in-memory blob store,
    for tests about metadata only (leases, concurrency)."""
    yield from _store_factory(metadata_url, MemoryBlobStore())


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()


@pytest.fixture
def new_name() -> Callable[..., str]:
    """``new_name("ws")`` → ``"ws-<12 hex digits>"``, unique across the session."""
    return unique_name


@pytest.fixture
def workspace(store: Store) -> str:
    """A new workspace in ``store``."""
    return str(store.create_workspace(unique_name())["name"])
