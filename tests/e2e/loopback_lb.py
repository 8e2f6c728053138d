"""A small HTTP load balancer on loopback, standing in for Caddy in the topology test.

Round robin over the backends per request; a backend that refuses the connection is
skipped and the request goes to the next one (Caddy's ``lb_try_duration`` does the same
for dial errors). A request that reached a backend is never retried elsewhere: if the
backend dies before answering, the client gets 502, as from Caddy, and must treat the
write as unacknowledged. Bodies are buffered (Content-Length or chunked); responses are
forwarded with their own Content-Length. ``X-Forwarded-For`` is set.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length",
})  # fmt: skip


class LoadBalancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.served: Counter[int] = Counter()  # requests answered, per backend index
        self.refused: Counter[int] = Counter()  # connections refused, per backend index
        self._next = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoadBalancer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _order(self) -> list[int]:
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.backends)
        return [(start + k) % len(self.backends) for k in range(len(self.backends))]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    parts: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self) -> None:
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                for index in balancer._order():
                    host, port = balancer.backends[index]
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                    try:
                        conn.connect()
                    except OSError:
                        balancer.refused[index] += 1
                        conn.close()
                        continue
                    try:
                        conn.request(self.command, self.path, body=body or None, headers=headers)
                        response = conn.getresponse()
                        data = response.read()
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        self._reply(502, [], b'{"detail":"the backend failed mid-request"}')
                        return
                    conn.close()
                    balancer.served[index] += 1
                    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                    if self.command == "HEAD":
                        kept.append(("Content-Length", response.getheader("content-length", "0")))
                    self._reply(response.status, kept, data)
                    return
                self._reply(502, [], b'{"detail":"no backend answers"}')

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response_only(status)
                for key, value in headers:
                    self.send_header(key, value)
                if status != 304 and self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

        return Handler
