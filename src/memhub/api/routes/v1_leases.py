"""/v1 leases: acquire, renew, release, force."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from memhub.api.routes.common import PrincipalDep, StoreDep, StrictBody, access
from memhub.core.paths import validate_name
from memhub.store.leases import MAX_TTL

router = APIRouter(prefix="/v1", tags=["v1"])


class AcquireRequest(StrictBody):
    holder: str = Field(min_length=1, max_length=255)
    ttl: float = Field(default=7200, gt=0, le=MAX_TTL)
    force: bool = False


class RenewRequest(StrictBody):
    holder: str = Field(min_length=1, max_length=255)
    token: int
    ttl: float = Field(default=7200, gt=0, le=MAX_TTL)


class ReleaseRequest(StrictBody):
    holder: str = Field(min_length=1, max_length=255)
    token: int


@router.get("/workspaces/{workspace}/leases")
def list_leases(workspace: str, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    """The workspace's leases: holder, fencing token, time left."""
    workspace = access(principal, workspace, "read")
    now = store.clock()
    return {"leases": [lease.to_dict(now) for lease in store.leases.list(workspace)]}


@router.get("/workspaces/{workspace}/leases/{name}")
def get_lease(
    workspace: str, name: str, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """One lease."""
    workspace = access(principal, workspace, "read")
    return store.leases.get(workspace, validate_name(name, "lease name")).to_dict(store.clock())


@router.post("/workspaces/{workspace}/leases/{name}")
def acquire_lease(
    workspace: str, name: str, body: AcquireRequest, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Take the lease (409 while another holder has it, unless ``force``); returns its token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.acquire(workspace, name, body.holder, body.ttl, force=body.force)
    return lease.to_dict(store.clock())


@router.post("/workspaces/{workspace}/leases/{name}/renew")
def renew_lease(
    workspace: str, name: str, body: RenewRequest, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Extend a lease held with this holder and token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.renew(workspace, name, body.holder, body.token, body.ttl)
    return lease.to_dict(store.clock())


@router.post("/workspaces/{workspace}/leases/{name}/release")
def release_lease(
    workspace: str, name: str, body: ReleaseRequest, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Release a lease held with this holder and token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.release(workspace, name, body.holder, body.token)
    return lease.to_dict(store.clock())


@router.delete("/workspaces/{workspace}/leases/{name}")
def force_release_lease(
    workspace: str, name: str, store: StoreDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Break a lease whoever holds it (the next acquisition still gets a higher token)."""
    workspace = access(principal, workspace, "write")
    return store.leases.force_release(workspace, validate_name(name, "lease name")).to_dict(
        store.clock()
    )
