"""``memhub serve`` as an outsider meets it (issue 8, items 4 and 11), one real server:

- X-Forwarded-For from loopback is not believed (uvicorn's proxy_headers are off):
  unauthenticated requests with a rotating XFF share one window and get 429;
- a request head over 64 KiB is refused at once (431, the httptools protocol's cap:
  api/http_protocol.py, tested in depth in tests/integration/test_http_protocol.py)
  and the server keeps serving;
- a keep-alive connection stays usable after a 4xx.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e]

LIMIT = 20


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, "connection closed before the response head"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, "connection closed inside the body"
        body += piece
    return head


def test_forwarded_for_headers_and_keep_alive(memhub_server: Any, tmp_path: Path) -> None:
    server = memhub_server(
        env={"MEMHUB_RATE_LIMIT_ENABLED": "true", "MEMHUB_RATE_LIMIT": str(LIMIT)}
    )
    statuses = []
    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        for i in range(LIMIT + 10):
            response = anonymous.get(
                "/v1/workspaces", headers={"X-Forwarded-For": f"203.0.113.{i % 250}"}
            )
            statuses.append(response.status_code)
    assert statuses[:LIMIT] == [401] * LIMIT
    assert 429 in statuses[LIMIT:], statuses

    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        try:  # refused while the client is still sending: a 4xx, or a reset
            huge = client.get("/health", headers={"X-Big": "a" * 200_000})
            assert huge.status_code == 431, huge.status_code
            assert huge.json()["error_code"] == "HEADERS_TOO_LARGE"
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            pass
        assert "HTTP 431" in server.log()
        assert client.get("/health").status_code == 200

    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        request = (
            f"GET /blob/x HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.key}\r\n\r\n"
        )
        sock.sendall(request.encode())
        assert _read_response(sock).startswith(b"HTTP/1.1 404")
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
