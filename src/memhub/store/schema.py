"""The metadata schema (SQLAlchemy Core). Migrations in ``migrations/`` build it.

- ``workspaces``: ``head_rev`` is the workspace's rev sequence; bumping it
  inside a write transaction is what serialises writers of one workspace.
- ``revisions``: every version of every file; ``(workspace_id, rev)`` is the
  change log, read in rev order.
- ``files``: the head of each path (a copy of its latest revision's fields),
  for conditional writes and the sync index without a scan of history.
- ``contents`` / ``content_chunks``: a content (sha256 of the whole) as an
  ordered list of chunks; ``chunks``: the chunks a workspace has uploaded.
  Bytes live in the blob store under the chunk's sha256, stored once.
- ``inline_blobs``: the bytes of small blobs of a local blob store, by blob key,
  written in the same transaction as the revision that first names them (the
  local store's inline tier: :mod:`memhub.store.blobs.metainline`).
- ``leases``: named locks; the row stays after release so ``token`` only grows.
- ``api_keys``: API keys by the sha256 of the key (the key itself is never stored).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("head_rev", BigInteger, nullable=False, default=0),
)

revisions = Table(
    "revisions",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("rev", BigInteger, primary_key=True, autoincrement=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("md5", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("author", String(255)),
    Column("session_id", String(255)),
    Column("message", Text),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ix_revisions_path", "workspace_id", "path", "rev"),
)

files = Table(
    "files",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("rev", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("md5", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("author", String(255)),
    Column("session_id", String(255)),
    Column("message", Text),
    Column("deleted", Boolean, nullable=False, default=False),
    # core.paths.fold_case(path): finds a live path that differs only in case
    Column("path_fold", Text, nullable=False, server_default=""),
    Index("ix_files_path_fold", "workspace_id", "path_fold"),
)

contents = Table(
    "contents",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("md5", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

content_chunks = Table(
    "content_chunks",
    metadata,
    Column("workspace_id", Integer, primary_key=True),
    Column("content_sha256", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("chunk_sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_content_chunks_chunk", "workspace_id", "chunk_sha256"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Small blobs of the local blob store (blobs/metainline.py): one transaction with their
# metadata, so a small write costs one COMMIT and no file fsyncs.
inline_blobs = Table(
    "inline_blobs",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("modified", Float, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("holder", String(255)),
    Column("token", BigInteger, nullable=False, default=0),
    Column("acquired_at", Float),
    Column("expires_at", Float),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("workspace", String(64), nullable=False),
    Column("scopes", String(64), nullable=False),
    Column("description", Text),
    Column("created_by", String(255)),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("last_used_at", Float),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_api_keys_workspace", "workspace"),
)

# The edits a processed session proposes until it is committed (memory/sessions.py).
staged_sessions = Table(
    "staged_sessions",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("session_date", String(10), nullable=False),
    Column("extractor", String(255), nullable=False),
    Column("edits", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("author", String(255)),
    Column("created_at", Float, nullable=False),
    Column("committed_at", Float),
    Column("commit_revs", Text),
)

# A workspace imported from (or mirrored with) a git repository (gitbridge/, /repos/*).
repo_links = Table(
    "repo_links",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("repo_url", Text, nullable=False),
    Column("branch", String(255)),
    Column("last_sync", Float, nullable=False),
    Column("last_commit", String(64)),
    Column("commits", Integer, nullable=False),
)
