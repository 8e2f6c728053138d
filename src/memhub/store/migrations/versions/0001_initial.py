"""The initial store schema: workspaces, revisions, files, contents, chunks, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("head_rev", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "revisions",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("rev", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("author", sa.String(255)),
        sa.Column("session_id", sa.String(255)),
        sa.Column("message", sa.Text),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_revisions_path", "revisions", ["workspace_id", "path", "rev"])
    op.create_table(
        "files",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("rev", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("author", sa.String(255)),
        sa.Column("session_id", sa.String(255)),
        sa.Column("message", sa.Text),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "contents",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "content_chunks",
        sa.Column("workspace_id", sa.Integer, primary_key=True),
        sa.Column("content_sha256", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("chunk_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_content_chunks_chunk", "content_chunks", ["workspace_id", "chunk_sha256"])
    op.create_table(
        "chunks",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(255)),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.Float),
        sa.Column("expires_at", sa.Float),
    )


def downgrade() -> None:
    for table in ("leases", "chunks", "content_chunks", "contents", "files", "revisions"):
        op.drop_table(table)
    op.drop_table("workspaces")
