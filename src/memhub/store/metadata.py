"""The metadata database: SQLite (WAL) or PostgreSQL, chosen by URL.

This module is the only place that knows which database is behind the store:
it opens the engine, runs migrations, hands out read and write transactions,
and builds the two dialect-specific statements the store needs (insert-or-
ignore and upsert).

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (one writer at a
time, taken before the first read so a read-check-write cannot race) and are
queued on an in-process lock first, so threads wait in line instead of
spinning in SQLite's busy handler; concurrent writers share one COMMIT (group
commit, :mod:`memhub.store.groupcommit`), each acknowledged only once it is
durable. On PostgreSQL, writers of one workspace
serialise on its row (``UPDATE workspaces … RETURNING``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.dml import Insert

from memhub.errors import BadRequest, StorageUnavailable
from memhub.store.groupcommit import GroupCommit

MIGRATION_LOCK_ID = zlib.crc32(b"memhub-migrations")


def normalize_database_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_engine(database: str | None, *, echo: bool = False) -> Engine:
    """A SQLite engine: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE`` for writes (the
    connection option ``memhub_write``), ``BEGIN`` for reads."""
    memory = not database or database == ":memory:"
    if not memory:
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{database}" if not memory else "sqlite://",
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=8,
        max_overflow=32,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("memhub_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Metadata:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_database_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:
            raise BadRequest(
                f"cannot parse the database URL {url!r}",
                hint="MEMHUB_DATABASE_URL takes sqlite:///path or postgresql://user@host/db",
            ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed.database, echo)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url, echo=echo, pool_size=10, max_overflow=30, pool_pre_ping=True
            )
        else:
            raise BadRequest(
                f"unsupported database {self.dialect!r}",
                hint="MEMHUB_DATABASE_URL takes sqlite:///path or postgresql://user@host/db",
            )
        self._group = (
            GroupCommit(self.engine, queue_file=_writer_queue_file(parsed.database))
            if self.dialect == "sqlite"
            else None
        )
        self._statements: dict[tuple[str, ...], Any] = {}

    @staticmethod
    def _sqlite_engine(database: str | None, echo: bool) -> Engine:
        return sqlite_engine(database, echo=echo)

    # -- transactions ---------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; commits on success, rolls back on any error."""
        if self._group is not None:
            with self._translate(), self._group.transaction() as conn:
                yield conn
            return
        with self._translate(), self.engine.connect() as conn:
            conn = conn.execution_options(memhub_write=True, preserve_rowcount=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for all its statements."""
        with self._translate(), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            with conn.begin():
                yield conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StorageUnavailable(
                f"the metadata database is unavailable: {exc.orig}",
                hint="check MEMHUB_DATABASE_URL and that the database server is running",
            ) from exc
        except IntegrityError:
            raise
        except DatabaseError as exc:
            if type(exc) is DatabaseError or exc.connection_invalidated:
                raise StorageUnavailable(
                    f"the metadata database is unreadable: {exc.orig}",
                    hint="the database file is damaged or is not memhub's: restore a backup",
                ) from exc
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StorageUnavailable(
                    f"lost the connection to the metadata database: {exc.orig}"
                ) from exc
            raise

    # -- dialect-specific statements -------------------------------------------

    def insert_ignore(self, table: Table) -> Insert:
        """``INSERT … ON CONFLICT DO NOTHING``, built once; execute it with the values."""
        key = ("ignore", table.name)
        stmt = self._statements.get(key)
        if stmt is None:
            module = sqlite_dialect if self.dialect == "sqlite" else pg_dialect
            built = module.insert(table).on_conflict_do_nothing()
            # psycopg reports rowcount -1 for INSERTs unless asked; callers rely on 0/1
            stmt = self._statements[key] = built.execution_options(preserve_rowcount=True)
        return cast(Insert, stmt)

    def upsert(self, table: Table, keys: Sequence[str]) -> Insert:
        """``INSERT … ON CONFLICT (keys) DO UPDATE`` of every other column, built once;
        execute it with a value for every column."""
        key = ("upsert", table.name, *keys)
        stmt = self._statements.get(key)
        if stmt is None:
            module = sqlite_dialect if self.dialect == "sqlite" else pg_dialect
            base = module.insert(table)
            update = {c.name: base.excluded[c.name] for c in table.columns if c.name not in keys}
            stmt = self._statements[key] = base.on_conflict_do_update(
                index_elements=list(keys), set_=update
            )
        return cast(Insert, stmt)

    def lock_clause(self) -> bool:
        """Whether ``SELECT … FOR UPDATE`` means anything here (not on SQLite)."""
        return self.dialect == "postgresql"

    # -- lifecycle ---------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to run from many nodes)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "memhub.store:migrations")
        with self._translate(), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                    conn.commit()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT head_rev FROM workspaces LIMIT 1"))

    def close(self) -> None:
        self.engine.dispose()
        if self._group is not None:
            self._group.close()


def _writer_queue_file(database: str | None) -> Path | None:
    """The file a SQLite database's writers queue on (none for an in-memory one)."""
    if not database or database == ":memory:":
        return None
    return Path(database + ".writers")
