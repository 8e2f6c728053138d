"""Fixtures for the services the suite talks to: PostgreSQL, an S3 server, Redis.

Nothing here is faked. PostgreSQL and Redis are the machine's own servers; S3 is
moto's standalone server, started on loopback inside the test session.

When a service is unreachable, a test that needs it is skipped with the reason,
except in CI (``CI=true``), where it fails: in CI nothing that should run is
skipped.

- ``postgres_url`` (session): a fresh, empty database on the server named by
  ``MEMHUB_TEST_POSTGRES_URL``, dropped at the end of the session.
- ``fresh_postgres_url`` (function): the same, for one test that needs a database
  of its own (a migration from nothing, a gc that must not see other tests' data).
- ``s3_server`` (session): the endpoint URL of moto's server; fake AWS credentials
  are in the environment while it runs. ``s3_bucket`` (function): a new bucket.
- ``redis_url`` (session): ``MEMHUB_TEST_REDIS_URL``, checked with a PING.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.hookimpl(trylast=True)  # after -m has deselected what it deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``serial`` must not run in a pytest-xdist worker: Schemathesis' per-
    operation items collapse there into a few items that check nothing. ``make test``
    runs them in a pass of their own; refuse loudly rather than pass silently."""
    if os.environ.get("PYTEST_XDIST_WORKER") and any(
        item.get_closest_marker("serial") for item in items
    ):
        raise pytest.UsageError(
            "tests marked 'serial' cannot run under pytest-xdist: "
            'add -m "not serial" to the -n run and run them apart (see the Makefile)'
        )


def service_unavailable(reason: str) -> NoReturn:
    """Fail when ``CI=true``, skip otherwise: a missing service is a failure in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service fails the run)", pytrace=False)
    pytest.skip(reason)


# -- PostgreSQL ---------------------------------------------------------------------


def postgres_server_url() -> str:
    return os.environ.get("MEMHUB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """Create ``memhub_test_<hex>`` on ``server_url``, yield its URL, then drop it."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"memhub_test_{uuid.uuid4().hex[:16]}"
    server = make_url(server_url).set(drivername="postgresql")  # psycopg takes no "+driver"
    try:
        admin = psycopg.connect(
            server.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL at {server_url} is unreachable: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            # Tests dispose their engines; terminate whatever a failed test left open.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this session's own (``postgresql://…/memhub_test_<hex>``)."""
    with throwaway_database(postgres_server_url()) as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of this test's own, for tests that must see an empty server."""
    with throwaway_database(postgres_server_url()) as url:
        yield url


# -- S3 (moto's standalone server) ---------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    saved = {key: os.environ.get(key) for key in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)
    werkzeug_log = logging.getLogger("werkzeug")
    saved_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # one line per request is noise in reports
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug_log.setLevel(saved_level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[str]:
    """A new, empty bucket on ``s3_server``; emptied and removed afterwards."""
    import boto3

    name = f"memhub-test-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=name)
        yield name
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
    finally:
        client.close()


# -- Redis --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``MEMHUB_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), after a PING."""
    from urllib.parse import urlparse

    url = os.environ.get("MEMHUB_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    parsed = urlparse(url)
    address = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
    try:
        with socket.create_connection(address, timeout=5) as conn:
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError as exc:
        service_unavailable(f"Redis at {url} is unreachable: {exc}")
    if not reply.startswith((b"+PONG", b"-NOAUTH")):
        service_unavailable(f"Redis at {url} did not answer PING: {reply!r}")
    return url
