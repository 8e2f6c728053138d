"""Helpers of the web UI tests: sign in through the real form, read CSRF tokens."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

# the UI sets Secure cookies off loopback, and a client never sends those over http
BASE_URL = "http://127.0.0.1"

_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def ui_client(app: FastAPI) -> TestClient:
    """A browser-like client: no API credentials, cookies kept."""
    return TestClient(app, base_url=BASE_URL, follow_redirects=False)


def sign_in(client: TestClient, key: str) -> Response:
    form = client.get("/ui/login")
    assert form.status_code == 200, form.text
    match = _TOKEN.search(form.text)
    assert match, form.text
    return client.post("/ui/login", data={"key": key, "login_token": match.group(1)})


def csrf_of(client: TestClient, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = _CSRF.search(response.text)
    assert match, response.text
    return match.group(1)


def create_key(app: FastAPI, workspace: str, scopes: list[str]) -> str:
    app.state.store.create_workspace(workspace, exist_ok=True)
    key: str = app.state.keys.create(workspace, scopes)[0]
    return key
