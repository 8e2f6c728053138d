"""The capped httptools protocol (api/http_protocol.py) on a real socket: a uvicorn
server in a thread with a small echo app, and raw HTTP/1.1 written by hand.

Refused: a head past the limit (one huge header, many headers, a flood in small
pieces, a large head in one write), a head that trickles in past the timeout. Kept:
heads just under the limit, large bodies, keep-alive and pipelining, and the server
goes on serving other connections after a refusal."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from memhub.api.http_protocol import MAX_HEAD_BYTES, CappedHttpToolsProtocol, head_size


class ShortTimeoutProtocol(CappedHttpToolsProtocol):
    head_timeout = 0.5


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 with the method, path, number of headers and body size as JSON."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.dumps(
        {"path": scope["path"], "headers": len(scope["headers"]), "body": size}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    config = uvicorn.Config(
        echo_app, host="127.0.0.1", port=free, http=ShortTimeoutProtocol, lifespan="off",
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body; ``buf`` keeps what follows it."""
    while b"\r\n\r\n" not in buf:
        piece = sock.recv(65536)
        assert piece, f"closed before a response head: {bytes(buf)!r}"
        buf += piece
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece, "closed inside a body"
        rest += piece
    buf[:] = rest[length:]
    return status, headers, rest[:length]


def send_refusable(sock: socket.socket, data: bytes) -> None:
    """Send what the server may refuse (and close on) before it has all of it."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def request(
    path: str = "/", headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_refused(sock: socket.socket, status: int, code: str) -> None:
    got, headers, body = read_response(sock, bytearray())
    assert got == status
    assert headers["connection"] == "close"
    error = json.loads(body)
    assert error["error_code"] == code and error["detail"]
    assert closed_by_server(sock)


def assert_serving(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(request("/still-up"))
        assert read_response(sock, bytearray())[0] == 200


def test_keep_alive_and_pipelining(port: int) -> None:
    with connect(port) as sock:
        buf = bytearray()
        for i in range(3):
            sock.sendall(request(f"/one/{i}", body=b"x" * i))
            assert json.loads(read_response(sock, buf)[2]) == {
                "path": f"/one/{i}", "headers": 2, "body": i,
            }  # fmt: skip
        # three requests in one write, the second with a body: answered in order
        sock.sendall(request("/a") + request("/b", body=b"y" * 5000) + request("/c"))
        answers = [json.loads(read_response(sock, buf)[2]) for _ in range(3)]
        assert [(a["path"], a["body"]) for a in answers] == [("/a", 0), ("/b", 5000), ("/c", 0)]


def test_huge_single_header_is_refused(port: int) -> None:
    with connect(port) as sock:
        send_refusable(sock, request(headers=[("X-Big", "a" * 200_000)]))
        assert_refused(sock, 431, "HEADERS_TOO_LARGE")
    assert_serving(port)


def test_many_headers_are_refused(port: int) -> None:
    many = [(f"X-H{i}", "v" * 30) for i in range(3000)]  # ~120 KB
    with connect(port) as sock:
        send_refusable(sock, request(headers=many))
        assert_refused(sock, 431, "HEADERS_TOO_LARGE")
    assert_serving(port)


def test_endless_header_flood_is_refused(port: int) -> None:
    """Headers sent 4 KiB at a time with no blank line ever: the head never completes,
    so only the count of its bytes as they arrive can refuse it."""
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        sent = 0
        line = b"X-Flood: " + b"f" * 4085 + b"\r\n"
        try:
            while sent < 4 * MAX_HEAD_BYTES:
                sock.sendall(line)
                sent += len(line)
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_refused(sock, 431, "HEADERS_TOO_LARGE")


def test_large_head_in_one_write_is_measured(port: int) -> None:
    """A complete head above the limit that the server may read in one go."""
    headers = [("X-Pad", "p" * (MAX_HEAD_BYTES // 2)), ("X-Pad2", "q" * (MAX_HEAD_BYTES // 2))]
    with connect(port) as sock:
        send_refusable(sock, request(headers=headers))
        assert_refused(sock, 431, "HEADERS_TOO_LARGE")


def test_head_under_the_limit_and_large_bodies_pass(port: int) -> None:
    headers = [(f"X-H{i}", "v" * 900) for i in range(60)]  # ~55 KB
    assert head_size(b"/", [(k.encode(), v.encode()) for k, v in headers]) < MAX_HEAD_BYTES
    with connect(port) as sock:
        buf = bytearray()
        sock.sendall(request(headers=headers))
        status, _, body = read_response(sock, buf)
        assert status == 200 and json.loads(body)["headers"] == 62
        # a body far above the head limit, then a small head on the same connection
        big = b"b" * (3 * 1024 * 1024)
        sock.sendall(request("/big", body=big) + request("/after"))
        assert json.loads(read_response(sock, buf)[2])["body"] == len(big)
        assert json.loads(read_response(sock, buf)[2])["path"] == "/after"


def test_slow_head_times_out(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: te")
        time.sleep(ShortTimeoutProtocol.head_timeout / 2)
        sock.sendall(b"st\r\nX-Slow: 1")  # still trickling: the clock runs from the first byte
        assert_refused(sock, 408, "REQUEST_TIMEOUT")
    assert_serving(port)


def test_idle_keep_alive_is_not_a_slow_head(port: int) -> None:
    """The head clock starts with a head's first byte, not when a connection goes idle."""
    with connect(port) as sock:
        buf = bytearray()
        sock.sendall(request("/first"))
        assert read_response(sock, buf)[0] == 200
        time.sleep(ShortTimeoutProtocol.head_timeout * 1.5)  # under uvicorn's keep-alive (5 s)
        sock.sendall(request("/second"))
        assert json.loads(read_response(sock, buf)[2])["path"] == "/second"
