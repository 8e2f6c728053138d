"""The typed client over the in-process app (``connect`` without a server): the same
routes, auth and errors as over HTTP, and the server's answers fit the wire models in
:mod:`memhub.core.models` field for field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from memhub.client import ClientSettings, MemhubClient, connect
from memhub.client.profile import load_profile
from memhub.core import models
from memhub.errors import FileNotFound, InvalidPath, PreconditionFailed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MemhubClient]:
    settings = ClientSettings(data_dir=tmp_path / "data", config_dir=tmp_path / "config")
    profile = load_profile(settings)
    assert not profile.explicit  # no server named: the API runs in this process
    with connect(settings, profile) as local:
        yield local


def assert_complete(model: BaseModel, raw: dict[str, Any]) -> None:
    """Every field the model declares is in the server's JSON (nothing silently defaults)."""
    missing = set(type(model).model_fields) - set(raw)
    assert not missing, f"{type(model).__name__}: the server did not send {missing}"


def test_files_round_trip_through_typed_models(client: MemhubClient) -> None:
    created = client.put("notes/a.md", b"one\n", if_none_match=True, message="first")
    assert isinstance(created, models.WriteInfo) and created.created and created.rev == 1
    raw_revision = client.request("GET", client._ws(None) + "/revisions/1").json()
    assert_complete(models.RevisionInfo.model_validate(raw_revision), raw_revision)
    raw_write = client.request("PUT", client._ws(None) + "/files/other.md", content=b"x").json()
    assert_complete(models.WriteInfo.model_validate(raw_write), raw_write)
    with pytest.raises(PreconditionFailed):
        client.put("notes/a.md", b"two\n", if_none_match=True)
    updated = client.put("notes/a.md", b"two\n", if_match=created.sha256)
    assert updated.rev == 3 and updated.created is False

    headers, data = client.get("notes/a.md", rev=1)
    assert data == b"one\n" and headers["x-memhub-rev"] == "1"

    listed = list(client.list_files(prefix="notes/"))
    assert [(f.path, f.rev) for f in listed] == [("notes/a.md", 3)]
    raw_page = client.request("GET", client._ws(None) + "/files").json()
    assert_complete(models.FilePage.model_validate(raw_page), raw_page)

    tomb = client.delete("notes/a.md", if_match=updated.sha256)
    assert tomb.deleted and tomb.rev == 4
    with pytest.raises(FileNotFound):
        client.get("notes/a.md")
    restored = client.restore("notes/a.md", 1, if_none_match=True)
    assert restored.rev == 5 and client.get("notes/a.md")[1] == b"one\n"

    page = client.history("notes/a.md", limit=2)
    assert [r.rev for r in page.revisions] == [5, 4] and page.next_before == 4
    assert [r.rev for r in client.history("notes/a.md", before=4).revisions] == [3, 1]


def test_changes_leases_and_workspace_fit_their_models(client: MemhubClient) -> None:
    client.put("a.txt", b"a")
    changes = client.changes(0)
    assert isinstance(changes, models.ChangesPage) and changes.head_rev == 1
    raw = client.request("GET", client._ws(None) + "/changes").json()
    assert_complete(changes, raw)

    lease = client.acquire("db:x", "host-a", 60)
    leases = client.leases()
    assert [(x.name, x.holder, x.active) for x in leases] == [("db:x", "host-a", True)]
    raw_leases = client.request("GET", client._ws(None) + "/leases").json()
    assert_complete(leases[0], raw_leases["leases"][0])
    released = client.force_release("db:x")
    assert isinstance(lease, models.LeaseInfo) and lease.holder == "host-a"
    assert released.token == lease.token and not released.active

    info = client.workspace_info()
    assert (info.name, info.files, info.head_rev) == ("default", 1, 1)
    assert_complete(info, client.request("GET", client._ws(None)).json())


def test_errors_come_back_as_memhub_exceptions(client: MemhubClient) -> None:
    with pytest.raises(InvalidPath):
        client.put("../escape", b"x")
    assert client.history("never.md").revisions == []
    with pytest.raises(FileNotFound):
        client.get("never.md")
