"""Helpers of the HTTP API tests (``test_api_*.py``): an in-process app, hashes,
error-body checks and a raw ASGI call for targets an HTTP client would normalise.

The app is the real one (:func:`memhub.api.create_app` over a SQLite file and a
local blob directory under the test's ``tmp_path``), driven by Starlette's
``TestClient`` used as a context manager so that the lifespan runs.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from memhub.api import create_app
from memhub.config import Settings
from raw_asgi import RawResponse, asgi_call

WS = "/v1/workspaces/default"
RFC1123 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
)
ISO_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_template: Path | None = None


def _template_database() -> Path:
    """A SQLite database migrated once per process by the real app; tests start from a
    copy of it (migrating from nothing costs ~0.1 s an app, copying ~0.01 s)."""
    global _template
    if _template is None:
        scratch = Path(tempfile.mkdtemp(prefix="memhub-api-template-"))
        atexit.register(shutil.rmtree, scratch, True)
        create_app(Settings(data_dir=scratch)).state.store.close()
        _template = scratch / "memhub.db"
    return _template


def build_app(data_dir: Path, **settings: Any) -> FastAPI:
    """The app over ``data_dir`` (SQLite there unless ``database_url`` is given), with an
    admin key of the default workspace in ``app.state.test_key``. Rate limits are off
    unless a test turns them on: these tests are about everything else."""
    database = data_dir / "memhub.db"
    if "database_url" not in settings and not database.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template_database(), database)
    settings.setdefault("rate_limit_enabled", False)
    app = create_app(Settings(data_dir=data_dir, **settings))
    app.state.test_key = app.state.keys.create(
        app.state.default_workspace, ["read", "write", "admin"]
    )[0]
    return app


def auth_headers(app: FastAPI) -> dict[str, str]:
    return {"authorization": f"Bearer {app.state.test_key}"}


@contextmanager
def api_client(
    data_dir: Path, *, raise_server_exceptions: bool = True, **settings: Any
) -> Iterator[TestClient]:
    """A client of a fresh app whose data lives in ``data_dir`` (lifespan running)."""
    app = build_app(data_dir, **settings)
    with TestClient(
        app, raise_server_exceptions=raise_server_exceptions, headers=auth_headers(app)
    ) as client:
        yield client


def assert_error(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` is the JSON error body memhub renders for every failure."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert {"detail", "error_code"} <= body.keys(), body
    assert isinstance(body["detail"], str) and body["detail"], body
    if code is not None:
        assert body["error_code"] == code, body
    return body


def sync_files(client: TestClient) -> dict[str, Any]:
    """The seed index's ``files`` (every head, tombstones included)."""
    response = client.get("/sync")
    assert response.status_code == 200, response.text
    files: dict[str, Any] = response.json()["files"]
    return files


def asgi_request(
    app: FastAPI,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    raw_path: bytes | None = None,
) -> RawResponse:
    """Send one request straight to the ASGI app, as a server would after decoding the
    target once: ``path`` reaches the router exactly as given (no client-side ``..``
    normalisation, no second percent-decoding as Starlette's TestClient does).
    Carries a Content-Length, and the app's admin key unless ``headers`` authorize."""
    given = list(headers or [])
    authorized = any(k.lower() == b"authorization" for k, _ in given)
    sent = [
        (b"content-length", str(len(body)).encode()),
        *given,
        *([] if authorized else [(b"authorization", f"Bearer {app.state.test_key}".encode())]),
    ]
    return asgi_call(app, method, path, sent, body=body, raw_path=raw_path)


def asgi_json(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    return parsed
