"""/v1 leases: acquire, renew, release, force."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from memhub.api.routes.common import PrincipalDep, StoreDep, StrictBody, access
from memhub.core.models import LeaseInfo, LeaseList
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
def list_leases(workspace: str, store: StoreDep, principal: PrincipalDep) -> LeaseList:
    """The workspace's leases: holder, fencing token, time left."""
    workspace = access(principal, workspace, "read")
    now = store.clock()
    leases = [
        LeaseInfo.model_validate(lease.to_dict(now)) for lease in store.leases.list(workspace)
    ]
    return LeaseList(leases=leases)


@router.get("/workspaces/{workspace}/leases/{name}")
def get_lease(workspace: str, name: str, store: StoreDep, principal: PrincipalDep) -> LeaseInfo:
    """One lease."""
    workspace = access(principal, workspace, "read")
    lease = store.leases.get(workspace, validate_name(name, "lease name"))
    return LeaseInfo.model_validate(lease.to_dict(store.clock()))


@router.post("/workspaces/{workspace}/leases/{name}")
def acquire_lease(
    workspace: str, name: str, body: AcquireRequest, store: StoreDep, principal: PrincipalDep
) -> LeaseInfo:
    """Take the lease (409 while another holder has it, unless ``force``); returns its token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.acquire(workspace, name, body.holder, body.ttl, force=body.force)
    return LeaseInfo.model_validate(lease.to_dict(store.clock()))


@router.post("/workspaces/{workspace}/leases/{name}/renew")
def renew_lease(
    workspace: str, name: str, body: RenewRequest, store: StoreDep, principal: PrincipalDep
) -> LeaseInfo:
    """Extend a lease held with this holder and token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.renew(workspace, name, body.holder, body.token, body.ttl)
    return LeaseInfo.model_validate(lease.to_dict(store.clock()))


@router.post("/workspaces/{workspace}/leases/{name}/release")
def release_lease(
    workspace: str, name: str, body: ReleaseRequest, store: StoreDep, principal: PrincipalDep
) -> LeaseInfo:
    """Release a lease held with this holder and token."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.release(workspace, name, body.holder, body.token)
    return LeaseInfo.model_validate(lease.to_dict(store.clock()))


@router.delete("/workspaces/{workspace}/leases/{name}")
def force_release_lease(
    workspace: str, name: str, store: StoreDep, principal: PrincipalDep
) -> LeaseInfo:
    """Break a lease whoever holds it (the next acquisition still gets a higher token)."""
    workspace = access(principal, workspace, "write")
    lease = store.leases.force_release(workspace, validate_name(name, "lease name"))
    return LeaseInfo.model_validate(lease.to_dict(store.clock()))
