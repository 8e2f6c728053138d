"""Staged sessions (the edits a processed transcript proposes, until committed) and
repo links (a workspace imported from a git repository: /repos/setup, /repos/status).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_sessions",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_date", sa.String(10), nullable=False),
        sa.Column("extractor", sa.String(255), nullable=False),
        sa.Column("edits", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("author", sa.String(255)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("committed_at", sa.Float),
        sa.Column("commit_revs", sa.Text),
    )
    op.create_table(
        "repo_links",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("repo_url", sa.Text, nullable=False),
        sa.Column("branch", sa.String(255)),
        sa.Column("last_sync", sa.Float, nullable=False),
        sa.Column("last_commit", sa.String(64)),
        sa.Column("commits", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("repo_links")
    op.drop_table("staged_sessions")
