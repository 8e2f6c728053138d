"""Leases: named, TTL-bound locks with a fencing token.

The row of a lease is never deleted, so its ``token`` only grows: every
acquisition (a new holder, the same holder again, or a forced take-over)
hands out ``token + 1``. A writer passes its token with a commit
(:class:`memhub.store.model.Fence`); the commit checks it inside the same
transaction, so a writer whose lease was taken over cannot commit.

All operations are one write transaction each: serialised on SQLite by
``BEGIN IMMEDIATE``, on PostgreSQL by ``SELECT … FOR UPDATE`` on the lease row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, select, update

from memhub.core.paths import validate_name
from memhub.errors import BadRequest, FencingTokenRejected, LeaseHeld, LeaseLost, LeaseNotFound
from memhub.store.metadata import Metadata
from memhub.store.model import Fence, Lease
from memhub.store.schema import leases

MAX_TTL = 7 * 24 * 3600.0


def _row_to_lease(workspace: str, row: Row[Any]) -> Lease:
    return Lease(
        workspace=workspace,
        name=row.name,
        holder=row.holder,
        token=row.token,
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
    )


def _check_ttl(ttl: float) -> float:
    if not (0 < ttl <= MAX_TTL):
        raise BadRequest(f"ttl must be between 0 and {int(MAX_TTL)} seconds", context={"ttl": ttl})
    return float(ttl)


class LeaseManager:
    def __init__(
        self,
        meta: Metadata,
        workspace_id: Callable[[str], int],
        clock: Callable[[], float],
    ) -> None:
        self._meta = meta
        self._ws_id = workspace_id
        self._clock = clock

    def _locked_row(self, conn: Connection, ws_id: int, name: str) -> Row[Any] | None:
        stmt = select(leases).where(leases.c.workspace_id == ws_id, leases.c.name == name)
        if self._meta.lock_clause():
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()

    def acquire(
        self, workspace: str, name: str, holder: str, ttl: float, *, force: bool = False
    ) -> Lease:
        name = validate_name(name, "lease name")
        holder = _check_holder(holder)
        ttl = _check_ttl(ttl)
        ws_id = self._ws_id(workspace)
        with self._meta.write() as conn:
            conn.execute(
                self._meta.insert_ignore(leases),
                {"workspace_id": ws_id, "name": name, "holder": None, "token": 0},
            )
            row = self._locked_row(conn, ws_id, name)
            assert row is not None
            now = self._clock()
            current = _row_to_lease(workspace, row)
            if current.active(now) and current.holder != holder and not force:
                raise LeaseHeld(
                    f"lease {name!r} is held by {current.holder}",
                    context=current.to_dict(now),
                    hint="wait for it to expire, or take it over with force",
                )
            token = row.token + 1
            conn.execute(
                update(leases)
                .where(leases.c.workspace_id == ws_id, leases.c.name == name)
                .values(holder=holder, token=token, acquired_at=now, expires_at=now + ttl)
            )
        return Lease(workspace, name, holder, token, now, now + ttl)

    def renew(self, workspace: str, name: str, holder: str, token: int, ttl: float) -> Lease:
        ttl = _check_ttl(ttl)
        ws_id = self._ws_id(workspace)
        with self._meta.write() as conn:
            row = self._locked_row(conn, ws_id, name)
            now = self._clock()
            self._require_holder(workspace, name, row, holder, token, now, "renew")
            assert row is not None
            conn.execute(
                update(leases)
                .where(leases.c.workspace_id == ws_id, leases.c.name == name)
                .values(expires_at=now + ttl)
            )
        return Lease(workspace, name, holder, token, row.acquired_at, now + ttl)

    def release(self, workspace: str, name: str, holder: str, token: int) -> Lease:
        ws_id = self._ws_id(workspace)
        with self._meta.write() as conn:
            row = self._locked_row(conn, ws_id, name)
            now = self._clock()
            self._require_holder(workspace, name, row, holder, token, now, "release")
            conn.execute(
                update(leases)
                .where(leases.c.workspace_id == ws_id, leases.c.name == name)
                .values(holder=None, expires_at=now)
            )
        return Lease(workspace, name, None, token, None, now)

    def force_release(self, workspace: str, name: str) -> Lease:
        ws_id = self._ws_id(workspace)
        with self._meta.write() as conn:
            row = self._locked_row(conn, ws_id, name)
            if row is None:
                raise LeaseNotFound(f"no lease named {name!r}")
            now = self._clock()
            conn.execute(
                update(leases)
                .where(leases.c.workspace_id == ws_id, leases.c.name == name)
                .values(holder=None, expires_at=now)
            )
        return Lease(workspace, name, None, row.token, None, now)

    def get(self, workspace: str, name: str) -> Lease:
        ws_id = self._ws_id(workspace)
        with self._meta.read() as conn:
            row = conn.execute(
                select(leases).where(leases.c.workspace_id == ws_id, leases.c.name == name)
            ).first()
        if row is None:
            raise LeaseNotFound(f"no lease named {name!r}")
        return _row_to_lease(workspace, row)

    def list(self, workspace: str) -> list[Lease]:
        ws_id = self._ws_id(workspace)
        with self._meta.read() as conn:
            rows = conn.execute(
                select(leases).where(leases.c.workspace_id == ws_id).order_by(leases.c.name)
            ).all()
        return [_row_to_lease(workspace, row) for row in rows]

    def check_fence(self, conn: Connection, ws_id: int, fence: Fence) -> None:
        """Inside a write transaction: the fence's token must still hold its lease."""
        row = self._locked_row(conn, ws_id, fence.lease)
        now = self._clock()
        if row is None:
            raise FencingTokenRejected(f"no lease named {fence.lease!r}")
        lease = _row_to_lease("", row)
        if lease.token != fence.token or not lease.active(now):
            raise FencingTokenRejected(
                f"lease {fence.lease!r} is no longer held with token {fence.token}",
                context={
                    "lease": fence.lease,
                    "provided_token": fence.token,
                    "current_token": lease.token,
                },
                hint="another writer took the lease over; pull, then acquire it again",
            )

    @staticmethod
    def _require_holder(
        workspace: str,
        name: str,
        row: Row[Any] | None,
        holder: str,
        token: int,
        now: float,
        action: str,
    ) -> None:
        if row is None:
            raise LeaseNotFound(f"no lease named {name!r}")
        lease = _row_to_lease(workspace, row)
        if lease.holder != holder or lease.token != token:
            raise LeaseLost(
                f"cannot {action} lease {name!r}: it is not held by {holder} with token {token}",
                context=lease.to_dict(now),
            )


def _check_holder(holder: str) -> str:
    holder = (holder or "").strip()
    if not holder or len(holder) > 255 or any(ord(c) < 32 for c in holder):
        raise BadRequest("holder must be 1 to 255 printable characters")
    return holder
