"""Which git repository a workspace was set up from (``/repos/setup``, ``/repos/status``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from memhub.store import Store
from memhub.store.schema import repo_links


def record(
    store: Store, workspace: str, url: str, branch: str, head: str | None, commits: int
) -> None:
    ws_id = store.workspace_id(workspace)
    with store.meta.write() as conn:
        row = conn.execute(select(repo_links).where(repo_links.c.workspace_id == ws_id)).first()
        total = commits + (row.commits if row is not None and row.repo_url == url else 0)
        values = {
            "workspace_id": ws_id,
            "repo_url": url,
            "branch": branch,
            "last_sync": store.clock(),
            "last_commit": head,
            "commits": total,
        }
        conn.execute(store.meta.upsert(repo_links, ("workspace_id",)), values)


def get(store: Store, workspace: str) -> dict[str, Any] | None:
    ws_id = store.workspace_id(workspace)
    with store.meta.read() as conn:
        row = conn.execute(select(repo_links).where(repo_links.c.workspace_id == ws_id)).first()
    if row is None:
        return None
    return {
        "repo_url": row.repo_url,
        "branch": row.branch,
        "last_sync": row.last_sync,
        "last_commit": row.last_commit,
        "commits": row.commits,
    }
