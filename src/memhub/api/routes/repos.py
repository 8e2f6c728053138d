"""The seed's repository routes (DiffMem's README): ``POST /repos/setup`` imports a git
repository's history into the workspace ``user_id``; ``GET /repos/status/{user_id}``.

Remote URLs (``https://``, ``http://``, ``git://``, ``ssh://``) are cloned by the
server; a local path or ``file://`` URL is refused (403) unless the operator sets
``MEMHUB_REPOS_ALLOW_FILE_URLS=true``. Which branch: ``branch`` (default ``main``);
when the repository has no such branch but has DiffMem's ``user/<user_id>``, that one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from memhub.api.routes.common import PrincipalDep, access
from memhub.api.routes.responses import COMMON, errors
from memhub.api.routes.sessions import workspace_of
from memhub.errors import Forbidden
from memhub.gitbridge import links
from memhub.gitbridge.importer import ImportReport, import_branch, open_repo
from memhub.memory.diffmem_shapes import repo_status
from memhub.memory.service import Memory
from memhub.store import Store

router = APIRouter(tags=["repos"])
REMOTE_SCHEMES = ("https://", "http://", "git://", "ssh://")


class SetupBody(BaseModel):
    repo_url: str = Field(min_length=1, max_length=2048)
    branch: str | None = Field(default="main", max_length=255)
    user_id: str | None = Field(default=None, max_length=64)


def _import(store: Store, url: str, branch: str | None, ws: str, local: bool) -> ImportReport:
    with open_repo(url, allow_local=local) as repo:
        refs = repo.get_refs()
        wanted = f"refs/heads/{branch or 'main'}".encode()
        user_branch = f"refs/heads/user/{ws}".encode()
        if wanted not in refs and user_branch in refs:
            wanted = user_branch
        if wanted not in refs:
            from memhub.errors import BadRequest

            raise BadRequest(
                f"the repository has no branch {branch!r} (nor user/{ws})",
                context={"branch": branch},
            )
        report = import_branch(store, repo, wanted, ws)
    links.record(store, ws, url, report.branch, report.head, report.commits)
    return report


@router.post("/repos/setup", responses=errors(*COMMON, 503))
async def setup(body: SetupBody, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Import the repository's history into ``user_id`` (a workspace; an admin key
    creates it when missing). Commits already imported are skipped, so calling it
    again pulls only what is new."""
    settings = request.app.state.settings
    store: Store = request.app.state.store
    url = body.repo_url.strip()
    remote = url.startswith(REMOTE_SCHEMES)
    ws = workspace_of(request, principal, body.user_id, "write")
    if not remote and not settings.repos_allow_file_urls:
        raise Forbidden(
            "local and file:// repositories are off on this server",
            context={"repo_url": url},
            hint="use an https:// URL, or set MEMHUB_REPOS_ALLOW_FILE_URLS=true",
        )
    if principal.is_admin:
        await run_in_threadpool(store.create_workspace, ws, exist_ok=True)
    report = await run_in_threadpool(_import, store, url, body.branch, ws, not remote)
    return {
        "status": "success",
        "message": f"Repository set up for {ws}",
        "repo_url": url,
        "branch": report.branch,
        "user_id": ws,
        "import": report.to_dict(),
    }


@router.get("/repos/status/{user_id}", responses=errors(*COMMON))
async def status(user_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The repository a workspace was set up from, when it last synced, its files and
    index statistics (``repo_url`` is null for a workspace never set up from git)."""
    ws = access(principal, user_id, "read")
    store: Store = request.app.state.store
    memory: Memory = request.app.state.memory

    def run() -> dict[str, Any]:
        link = links.get(store, ws)
        info = repo_status(memory, ws)
        heads = store.list_files(ws, limit=10_000)
        return {
            "repo_url": link["repo_url"] if link else None,
            "branch": link["branch"] if link else None,
            "user_id": ws,
            "last_sync": datetime.fromtimestamp(link["last_sync"], UTC).isoformat()
            if link
            else None,
            "last_commit": link["last_commit"] if link else None,
            "status": "active" if link else "local",
            "file_count": len(heads),
            "memory_files_count": info.get("memory_files_count", 0),
            "index_stats": info.get("index_stats") or _index_stats(memory, ws),
        }

    return await run_in_threadpool(run)


def _index_stats(memory: Memory, ws: str) -> dict[str, Any]:
    blocks = memory.index.current(ws).num_docs()
    return {"total_blocks": blocks, "avg_tokens": 0.0}
