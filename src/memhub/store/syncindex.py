"""The sync index as JSON text built by the database, not by Python.

``GET /sync`` (seed 001) and ``GET /sync/{namespace}`` (the memory proxy's
later protocol) list the head of every path, tombstones included. Building a
``Revision`` and a dict per row costs about 27 µs a file; here the database
aggregates the rows into the ``files`` object itself (SQLite's
``json_group_object``, PostgreSQL's ``json_object_agg``), so Python handles one
string whatever the number of files.

:func:`index_tag` is what an ``ETag`` is made of: the workspace's id and head
rev. Every write bumps the head rev in the same transaction that changes the
``files`` table, and nothing else changes that table, so an unchanged tag means
an unchanged index. It is read before the rows (:func:`build_index` does both
on one connection), so a tag is never newer than the body it labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, text

from memhub.store.schema import workspaces
from memhub.store.service import Store

_HEAD = select(workspaces.c.head_rev).where(workspaces.c.id == bindparam("ws"))

# ms since the epoch exactly as Python's datetime.fromtimestamp gets them, so the text
# equals what the seed route formatted row by row: the fraction (exact: t - floor(t))
# times 1e6, rounded half to even to µs, then truncated to ms; a carry reaches the second
_X = "((created_at - CAST(created_at AS INTEGER)) * 1000000.0)"
_I = f"CAST({_X} AS INTEGER)"
_US = f"({_I} + ({_X} - {_I} > 0.5 OR ({_X} - {_I} = 0.5 AND {_I} % 2 = 1)))"
_MS = f"(CAST(created_at AS INTEGER) * 1000 + {_US} / 1000)"
_PG_X = "((created_at - floor(created_at)) * 1000000.0)"
_PG_I = f"floor({_PG_X})"
_PG_US = (
    f"({_PG_I}::bigint + CASE WHEN {_PG_X} - {_PG_I} > 0.5 OR ({_PG_X} - {_PG_I} = 0.5 "
    f"AND mod({_PG_I}::bigint, 2) = 1) THEN 1 ELSE 0 END)"
)
_PG_MS = f"(floor(created_at)::bigint * 1000 + {_PG_US} / 1000)"
_SQLITE_ENTRY = """json_object(
    'md5', md5,
    'last_modified', strftime('%Y-%m-%dT%H:%M:%S', {ms} / 1000, 'unixepoch')
                     || printf('.%03dZ', {ms} % 1000),
    'size', size,
    {version}'is_deleted', json(CASE WHEN deleted THEN 'true' ELSE 'false' END))""".replace(
    "{ms}", _MS
)
# (the entry is built in the aggregate: a subquery's column would lose its JSON subtype)
_SQLITE = """SELECT json_group_object(substr(path, :skip), {entry}), count(*), max(created_at)
FROM (SELECT path, md5, created_at, size, deleted, rev FROM files
      WHERE workspace_id = :ws AND path >= :low AND path < :high ORDER BY path)"""
_SQLITE_ALL = """SELECT json_group_object(path, {entry}), count(*), max(created_at)
FROM (SELECT path, md5, created_at, size, deleted, rev FROM files
      WHERE workspace_id = :ws ORDER BY path)"""

_PG_ENTRY = """json_build_object(
    'md5', md5,
    'last_modified', to_char(to_timestamp(({pgms}) / 1000) AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS')
                     || '.' || lpad((({pgms}) % 1000)::text, 3, '0') || 'Z',
    'size', size,
    {version}'is_deleted', deleted)""".replace("{pgms}", _PG_MS)
_PG = """SELECT coalesce(json_object_agg(substr(path, :skip), {entry} ORDER BY path)::text, '{{}}'),
       count(*), max(created_at)
FROM files WHERE workspace_id = :ws AND left(path, :plen) = :prefix"""
_PG_ALL = """SELECT coalesce(json_object_agg(path, {entry} ORDER BY path)::text, '{{}}'),
       count(*), max(created_at)
FROM files WHERE workspace_id = :ws"""


@dataclass(frozen=True, slots=True)
class IndexBody:
    """The ``files`` object as JSON text, and what the envelope around it needs."""

    files_json: str
    count: int
    latest: float | None  # the newest head's created_at; None when empty
    workspace_id: int
    head_rev: int


def index_tag(store: Store, workspace: str) -> tuple[int, int]:
    """(workspace id, head rev): changes whenever the index of any prefix may have."""
    ws_id = store.workspace_id(workspace)
    with store.meta.read() as conn:
        return ws_id, int(conn.execute(_HEAD, {"ws": ws_id}).scalar_one())


def build_index(
    store: Store, workspace: str, prefix: str = "", *, versions: bool = False
) -> IndexBody:
    """The heads under ``prefix`` (``""``: all; else ending in ``/``, stripped from the keys),
    each ``{md5, last_modified, size, [version,] is_deleted}``, in path order.

    A tombstone's ``size`` is 0; its md5 is that of what it deleted."""
    if prefix and not prefix.endswith("/"):
        raise ValueError("a prefix ends with '/'")
    ws_id = store.workspace_id(workspace)
    with store.meta.read() as conn:
        head = int(conn.execute(_HEAD, {"ws": ws_id}).scalar_one())
        files_json, count, latest = _query(conn, ws_id, prefix, versions)
    return IndexBody(files_json, int(count), latest, ws_id, head)


def _query(
    conn: Connection, ws_id: int, prefix: str, versions: bool
) -> tuple[str, int, float | None]:
    version = "'version', rev,\n    " if versions else ""
    params: dict[str, object] = {"ws": ws_id}
    if conn.dialect.name == "sqlite":
        entry = _SQLITE_ENTRY.format(version=version)
        if prefix:
            # a range on the primary key (workspace_id, path): '0' is the byte after '/'
            sql = _SQLITE.format(entry=entry)
            params |= {"skip": len(prefix) + 1, "low": prefix, "high": prefix[:-1] + "0"}
        else:
            sql = _SQLITE_ALL.format(entry=entry)
    else:
        entry = _PG_ENTRY.format(version=version)
        if prefix:
            sql = _PG.format(entry=entry)
            params |= {"skip": len(prefix) + 1, "plen": len(prefix), "prefix": prefix}
        else:
            sql = _PG_ALL.format(entry=entry)
    row = conn.execute(text(sql), params).one()
    return row[0] or "{}", row[1], row[2]


__all__ = ["IndexBody", "build_index", "index_tag"]
