"""The migrations build exactly the schema the code declares, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from memhub.store.metadata import Metadata
from memhub.store.schema import metadata


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", "memhub.store:migrations")
    return ScriptDirectory.from_config(config).get_current_head()


def test_migrations_build_the_declared_schema_and_run_twice(empty_database_url: str) -> None:
    meta = Metadata(empty_database_url)
    try:
        meta.migrate()
        meta.migrate()  # a second node starting up, or a restart: nothing to do

        with meta.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == head_revision()
            # Nothing ignored: every table, column, type, nullability, index and
            # constraint of memhub.store.schema must be what the migrations built.
            assert compare_metadata(context, metadata) == []
            assert set(inspect(conn).get_table_names()) == {*metadata.tables, "alembic_version"}
    finally:
        meta.close()


def test_the_path_fold_migration_backfills_existing_files(tmp_path: Path) -> None:
    """A store from before 0004 keeps its files, and their case clashes are found."""
    from alembic import command

    from memhub.errors import PathConflict
    from memhub.store import open_store

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    meta = Metadata(url)
    config = Config()
    config.set_main_option("script_location", "memhub.store:migrations")
    with meta.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.commit()
        conn.exec_driver_sql(
            "INSERT INTO workspaces (name, created_at, head_rev) VALUES ('w', 0, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO files (workspace_id, path, rev, sha256, md5, size, content_type, "
            "created_at, deleted) VALUES (1, 'Заметки.md', 1, '', '', 0, 'text/plain', 0, false)"
        )
        conn.commit()
    meta.close()
    store = open_store(url, (tmp_path / "blobs").as_uri())
    try:
        with pytest.raises(PathConflict):
            store.put("w", "заметки.md", b"x")
    finally:
        store.close()
