"""files.path_fold: the case-folded path, so that a new path differing only in case
from a live one is found for every script (the database's own lower() folds ASCII
only on SQLite, and on PostgreSQL depends on the database's locale).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from memhub.core.paths import fold_case

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("path_fold", sa.Text, nullable=False, server_default=""))
    files = sa.table(
        "files",
        sa.column("workspace_id", sa.Integer),
        sa.column("path", sa.Text),
        sa.column("path_fold", sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(files.c.workspace_id, files.c.path)).all()
    update = (
        sa.update(files)
        .where(files.c.workspace_id == sa.bindparam("ws"), files.c.path == sa.bindparam("p"))
        .values(path_fold=sa.bindparam("fold"))
    )
    for start in range(0, len(rows), BATCH):
        conn.execute(
            update,
            [
                {"ws": ws, "p": path, "fold": fold_case(path)}
                for ws, path in rows[start : start + BATCH]
            ],
        )
    op.create_index("ix_files_path_fold", "files", ["workspace_id", "path_fold"])


def downgrade() -> None:
    op.drop_index("ix_files_path_fold", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("path_fold")
