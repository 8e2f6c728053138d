"""The HTTP/1.1 protocol ``memhub serve`` runs: uvicorn's httptools parser, head capped.

httptools (llhttp, in C) parses a request for a fraction of what h11 (pure Python)
costs, but has no limit on a request head: a 50 MB header was buffered whole. h11's
``max_incomplete_event_size`` is a limit, at h11's price on every request. This
protocol keeps httptools and bounds the head itself:

- **Size.** The bytes of a head still incomplete are counted as they arrive; past
  :data:`MAX_HEAD_BYTES` the connection gets ``431`` (``HEADERS_TOO_LARGE``, the
  usual JSON error body) and is closed, before another byte is parsed. A head that
  completes within one read is measured exactly (request line and headers) when its
  read was larger than the limit, so a large head cannot slip in whole either. The
  count of an incomplete head may lag by the bytes of one read that began inside the
  previous request's body: the buffered head stays below the limit plus one read.
- **Time.** A head that has begun must complete within :data:`HEAD_TIMEOUT` seconds
  (slowloris: a head sent a byte at a time keeps a connection and its buffer
  forever); else ``408`` and the connection is closed.

While a response is still being written on the connection (pipelining), a refusal
closes the connection without a status: a status line now would land in the middle
of that response.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from memhub.errors import HeadersTooLarge, MemhubError, RequestTimeout

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
HEAD_TIMEOUT = 30.0  # seconds from a head's first byte to its end

log = logging.getLogger("memhub.api")


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of a request head as sent, give or take its whitespace: the request line's
    target, each ``name: value`` line, and the blank line."""
    return len(url) + 16 + sum(len(name) + len(value) + 4 for name, value in headers) + 2


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request head bounded (see the module doc).
    ``memhub serve`` hands the class to uvicorn (``Config(http=...)``)."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout = HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True  # the next bytes belong to a request head
        self._head_bytes = 0  # of the open head, counted by whole reads
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_open:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)
        self._feed(data)
        if self._head_open and self._head_bytes > self.max_head_bytes and not self._refused:
            self._refuse(HeadersTooLarge(self._too_large_detail()))

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received``, except that a head this protocol refused (its
        callback stops the parser) is not also answered as an invalid request."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self._refused:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_headers_complete(self) -> None:
        # counted by whole reads, the head may look larger than it is: measure it then
        if (
            self._head_bytes > self.max_head_bytes
            and head_size(self.url, self.headers) > self.max_head_bytes
        ):
            self._refuse(HeadersTooLarge(self._too_large_detail()))
            raise _Refused  # stops the parser: nothing after this head is read
        self._close_head()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True  # bytes after this message begin the next head

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _close_head(self) -> None:
        self._head_open = False
        self._head_bytes = 0
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._head_open and self._head_bytes and not self._refused:
            self._refuse(RequestTimeout(f"the request head took over {self.head_timeout:g} s"))

    def _too_large_detail(self) -> str:
        return f"the request line and headers are larger than {self.max_head_bytes} bytes"

    def _refuse(self, error: MemhubError) -> None:
        """Answer ``error`` (unless a response is being written) and close."""
        self._refused = True
        self._cancel_timer()
        log.warning("HTTP %d from %s: %s", error.status, _peer(self.client), error.detail)
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            body = json.dumps(error.to_dict()).encode()
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[error.status],
                        b"content-type: application/json\r\n",
                        b"content-length: %d\r\n" % len(body),
                        b"connection: close\r\n\r\n",
                        body,
                    ]
                )
            )
        self.transport.close()


class _Refused(Exception):
    """Raised from a parser callback to stop httptools at a refused head."""


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"
