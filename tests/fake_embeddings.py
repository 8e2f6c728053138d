"""A small OpenAI-compatible embeddings server for the tests (deterministic vectors).

``POST /v1/embeddings`` ``{"model", "input": str | [str]}`` answers
``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model"}``
as OpenAI, Ollama, LM Studio and vLLM do. A text's vector is a bag of *concepts*:
each word is mapped through a small synonym table (car, automobile, vehicle → one
concept) and hashed into 64 dimensions, so related words meet where BM25 cannot see
them, and the same text always gets the same vector. ``fail_with`` makes it answer
an error status (an outage); ``requests`` records the batches it was sent.

Run it by hand: ``python tests/fake_embeddings.py --port 8099`` and point memhub at
``MEMHUB_EMBEDDINGS_URL=http://127.0.0.1:8099/v1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMS = 64
CONCEPTS = {
    "car": "vehicle", "cars": "vehicle", "automobile": "vehicle", "vehicle": "vehicle",
    "truck": "vehicle", "drive": "vehicle", "drives": "vehicle",
    "dog": "pet", "dogs": "pet", "puppy": "pet", "cat": "pet", "kitten": "pet", "pet": "pet",
    "pets": "pet",
    "doctor": "health", "physician": "health", "clinic": "health", "hospital": "health",
    "sea": "ocean", "ocean": "ocean", "beach": "ocean", "coast": "ocean",
}  # fmt: skip
_WORD = re.compile(r"\w+", re.UNICODE)


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in _WORD.findall(text.lower()):
        concept = CONCEPTS.get(word, word)
        digest = hashlib.sha256(concept.encode()).digest()
        vector[digest[0] % DIMS] += 1.0
        vector[digest[1] % DIMS] += 0.5
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class FakeEmbeddings:
    def __init__(self) -> None:
        self.fail_with: int | None = None
        self.requests: list[list[str]] = []
        self.bearer: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/embeddings":
                    return self._send(404, {"error": {"message": "not found"}})
                if server.fail_with is not None:
                    return self._send(server.fail_with, {"error": {"message": "down"}})
                texts = body.get("input")
                texts = [texts] if isinstance(texts, str) else texts
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    return self._send(400, {"error": {"message": "input must be text"}})
                server.requests.append(texts)
                server.bearer.append(self.headers.get("authorization"))
                data = [
                    {"object": "embedding", "index": i, "embedding": embed(t)}
                    for i, t in enumerate(texts)
                ]
                self._send(200, {"object": "list", "data": data, "model": body.get("model")})

            def _send(self, status: int, payload: Any) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeEmbeddings:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def texts_embedded(self) -> int:
        return sum(len(r) for r in self.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible embeddings server")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    fake = FakeEmbeddings()
    fake.httpd.server_close()
    fake.httpd = ThreadingHTTPServer(("127.0.0.1", args.port), fake.httpd.RequestHandlerClass)
    print(f"serving http://127.0.0.1:{args.port}/v1/embeddings")
    fake.httpd.serve_forever()


if __name__ == "__main__":
    main()
