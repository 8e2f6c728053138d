"""inline_blobs: small blobs of the local blob store, kept in the metadata database so
that a small write is one transaction (and one fsync) with its revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inline_blobs",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("modified", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inline_blobs")
