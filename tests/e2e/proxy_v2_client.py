"""The memory proxy's current sync client, restated from ../shared/specs/memory-proxy-v2.md.

Not memhub code: a stand-in for silica's ``MemoryProxyClient`` and ``SyncEngine``
(the real client is not installable here), written from the spec's description of
them so that the e2e tests drive memhub the way that client does: percent-encoded
namespace and path, ``If-Match-Version``, pydantic validation of every index (with
``version`` and ``index_version`` required), ``Last-Modified`` parsed with the
client's format, manifest-on-write, plan → resolve → execute, and three attempts.

Where the spec is silent the choice is written down: an index entry that records a
tombstone the client already applied does not count as "known" (so a file recreated
on either side is uploaded with version 0 or downloaded, never deleted again).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel


class FileMetadata(BaseModel):
    md5: str
    last_modified: datetime
    size: int
    version: int
    is_deleted: bool = False


class SyncIndex(BaseModel):
    files: dict[str, FileMetadata]
    index_last_modified: datetime
    index_version: int


class MemoryProxyError(Exception):
    pass


class NotFoundError(MemoryProxyError):
    pass


class VersionConflictError(MemoryProxyError):
    def __init__(self, current: str, provided: str) -> None:
        super().__init__(f"version conflict: current {current}, provided {provided}")
        self.current, self.provided = current, provided


class AuthenticationError(MemoryProxyError):
    pass


@dataclass
class Blob:
    data: bytes
    md5: str
    version: int
    last_modified: datetime
    content_type: str


class MemoryProxyClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _url(namespace: str, path: str) -> str:
        return f"/{quote(namespace, safe='')}/blob/{quote(path, safe='')}"

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 300:
            return
        if response.status_code == 404:
            raise NotFoundError(response.text)
        if response.status_code == 401:
            raise AuthenticationError(response.text)
        if response.status_code == 412:
            context = response.json()["context"]
            assert context["current_version"] == "none" or context["current_version"].isdigit()
            assert context["provided_version"].isdigit()
            raise VersionConflictError(context["current_version"], context["provided_version"])
        raise MemoryProxyError(f"{response.status_code}: {response.text}")

    def sync_index(self, namespace: str) -> SyncIndex:
        response = self.http.get(f"/sync/{quote(namespace, safe='')}")
        self._check(response)
        return SyncIndex.model_validate(response.json())

    def read_blob(self, namespace: str, path: str) -> Blob:
        response = self.http.get(self._url(namespace, path))
        self._check(response)
        modified = datetime.strptime(response.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S %Z")
        return Blob(
            response.content,
            response.headers["ETag"].strip('"'),
            int(response.headers["X-Version"]),
            modified,
            response.headers["Content-Type"],
        )

    def write_blob(
        self,
        namespace: str,
        path: str,
        data: bytes,
        expected_version: int,
        content_type: str = "text/markdown",
    ) -> tuple[int, SyncIndex]:
        response = self.http.put(
            self._url(namespace, path),
            content=data,
            headers={"If-Match-Version": str(expected_version), "Content-Type": content_type},
        )
        self._check(response)
        assert response.headers["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        return int(response.headers["X-Version"]), SyncIndex.model_validate(response.json())

    def delete_blob(
        self, namespace: str, path: str, expected_version: int | None = None
    ) -> tuple[int, SyncIndex]:
        headers = {} if expected_version is None else {"If-Match-Version": str(expected_version)}
        response = self.http.delete(self._url(namespace, path), headers=headers)
        self._check(response)
        return int(response.headers["X-Version"]), SyncIndex.model_validate(response.json())


Resolver = Callable[[str, bytes, bytes], bytes]  # (path, local, remote) -> merged


@dataclass
class Plan:
    uploads: list[tuple[str, int]] = field(default_factory=list)  # (path, expected version)
    downloads: list[str] = field(default_factory=list)
    delete_local: list[str] = field(default_factory=list)
    delete_remote: list[tuple[str, int]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    in_sync: list[str] = field(default_factory=list)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class SyncEngine:
    """One folder ↔ one namespace, with a local index of the last known remote entries."""

    def __init__(
        self, client: MemoryProxyClient, namespace: str, root: Path, *, compress: bool = False
    ) -> None:
        self.client, self.namespace, self.root, self.compress = client, namespace, root, compress
        self.index_path = root.parent / f".sync-index-{root.name}.json"
        self.root.mkdir(parents=True, exist_ok=True)
        self.remote: SyncIndex | None = None

    # local state
    def local_files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def load_index(self) -> dict[str, FileMetadata]:
        if not self.index_path.exists():
            return {}
        raw = json.loads(self.index_path.read_text())
        return {k: FileMetadata.model_validate(v) for k, v in raw.items()}

    def save_index(self, index: dict[str, FileMetadata]) -> None:
        self.index_path.write_text(
            json.dumps({k: v.model_dump(mode="json") for k, v in index.items()})
        )

    def _remote_name(self, local: str, data: bytes) -> tuple[str, bytes]:
        if self.compress:
            packed = gzip.compress(data, mtime=0)
            if len(packed) < len(data):
                return local + ".gz", packed
        return local, data

    # 1. plan
    def plan(self) -> Plan:
        self.remote = self.client.sync_index(self.namespace)
        remote = self.remote.files
        index = self.load_index()
        local: dict[str, bytes] = {}
        for name, data in self.local_files().items():
            rname, rdata = self._remote_name(name, data)
            local[rname] = rdata
        plan = Plan()
        for path in sorted(set(local) | set(remote) | set(index)):
            r, prior, have = remote.get(path), index.get(path), local.get(path)
            if r is not None and r.is_deleted:
                if have is None:
                    plan.in_sync.append(path)
                elif prior is not None and prior.is_deleted and prior.version >= r.version:
                    plan.uploads.append((path, 0))  # recreated here after the tombstone
                else:
                    plan.delete_local.append(path)  # only tombstones delete local files
                continue
            known = None if prior is None or prior.is_deleted else prior
            if have is not None and r is not None:
                if md5(have) == r.md5:
                    plan.in_sync.append(path)
                elif known is None:
                    plan.downloads.append(path)
                else:
                    local_changed = md5(have) != known.md5
                    remote_changed = r.version > known.version
                    if local_changed and not remote_changed:
                        plan.uploads.append((path, r.version))
                    elif remote_changed and not local_changed:
                        plan.downloads.append(path)
                    else:
                        plan.conflicts.append(path)
            elif have is not None:
                plan.uploads.append((path, 0))
            elif r is not None:
                if known is not None:
                    plan.delete_remote.append((path, r.version))
                else:
                    plan.downloads.append(path)
        return plan

    # 2. resolve
    def resolve(self, plan: Plan, resolver: Resolver) -> None:
        local = dict(self._remote_name(n, d) for n, d in self.local_files().items())
        index = self.load_index()
        for path in plan.conflicts:
            blob = self.client.read_blob(self.namespace, path)
            merged = resolver(path, local[path], blob.data)
            _, returned = self.client.write_blob(self.namespace, path, merged, blob.version)
            (self.root / path).write_bytes(merged)
            index.update(returned.files)
        plan.conflicts.clear()
        self.save_index(index)

    # 3. execute
    def execute(self, plan: Plan) -> None:
        if plan.conflicts:
            raise MemoryProxyError(f"unresolved conflicts: {plan.conflicts}")
        assert self.remote is not None
        index = self.load_index()
        for path in plan.in_sync:
            if path in self.remote.files:
                index[path] = self.remote.files[path]
        local = dict(self._remote_name(n, d) for n, d in self.local_files().items())
        for path, version in plan.uploads:
            data = local[path]
            ctype = (
                "application/gzip" if path.endswith(".gz") and self.compress else "text/markdown"
            )
            _, returned = self.client.write_blob(self.namespace, path, data, version, ctype)
            index.update(returned.files)  # manifest-on-write
        for path in plan.downloads:
            blob = self.client.read_blob(self.namespace, path)
            data = (
                gzip.decompress(blob.data) if path.endswith(".gz") and self.compress else blob.data
            )
            target = self.root / (path[:-3] if path.endswith(".gz") and self.compress else path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            index[path] = FileMetadata(
                md5=blob.md5, last_modified=blob.last_modified, size=len(blob.data),
                version=blob.version,
            )  # fmt: skip
        for path in plan.delete_local:
            (self.root / path).unlink()
            index[path] = self.remote.files[path]
        for path, version in plan.delete_remote:
            _, returned = self.client.delete_blob(self.namespace, path, version)
            index.update(returned.files)
        self.save_index(index)

    # 4. retry
    def sync_with_retry(self, resolver: Resolver | None = None, attempts: int = 3) -> int:
        """Plan, resolve and execute; a 412, transport error or 5xx plans again. Returns
        the attempt that succeeded."""
        for attempt in range(1, attempts + 1):
            try:
                plan = self.plan()
                if plan.conflicts and resolver is not None:
                    self.resolve(plan, resolver)
                self.execute(plan)
                return attempt
            except VersionConflictError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")
