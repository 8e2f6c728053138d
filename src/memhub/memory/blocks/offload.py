"""Large files are cut into blocks in a worker process.

Parsing is pure Python: in a thread it still holds the GIL, and while a 1 MB file
is parsed the server's event loop waits for the GIL at every system call, so
even ``/health`` slows to hundreds of milliseconds. A file of at least
:data:`OFFLOAD_MIN_CHARS` characters is therefore parsed by a worker process
(``python -m memhub.memory.blocks.offload``, started on first use and kept); the
calling thread waits for its answer without the GIL. Smaller files, the
overwhelming majority, are parsed in place: the round trip would cost more than
their parse.

The worker is a plain child process speaking length-prefixed pickles over its
stdin/stdout (it is our own code, started by us): no ``multiprocessing``, so it
neither forks a threaded server nor re-imports the embedding program's main
module. One request at a time; other threads wait their turn. If the worker
dies (killed, out of memory) the file is parsed in place and the next large
file starts a new worker: offloading is an optimisation, never a reason to
lose a file. The same plumbing (:class:`WorkerProcess`, :func:`serve`) runs the
index's preparation workers (:mod:`memhub.memory.prepare`).
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from memhub.memory.blocks import Block, split_file_checked

OFFLOAD_MIN_CHARS = 64 * 1024

_HEADER = struct.Struct("!Q")


def split_file_offloaded(
    path: str, text: str, *, workspace: str | None = None
) -> tuple[list[Block], str | None]:
    """:func:`~memhub.memory.blocks.split_file_checked`, in the worker process for a
    large file (see the module doc)."""
    if len(text) < OFFLOAD_MIN_CHARS:
        return split_file_checked(path, text, workspace=workspace)
    try:
        result: tuple[list[Block], str | None] = _WORKER.call((path, text, workspace))
    except (OSError, EOFError, pickle.PickleError, struct.error):
        _WORKER.stop()
        return split_file_checked(path, text, workspace=workspace)
    return result


class WorkerProcess:
    """``python -m <module>`` as a child answering one pickled request at a time (the
    module calls :func:`serve`); started on first use, started anew after it died.
    Calls from several threads take turns."""

    def __init__(self, module: str) -> None:
        self._module = module
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def call(self, request: Any) -> Any:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                if process is not None:
                    _close(process)
                process = self._process = subprocess.Popen(
                    [sys.executable, "-m", self._module],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            assert process.stdin is not None and process.stdout is not None
            _send(process.stdin, request)
            return _receive(process.stdout)

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _close(process)


def _close(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_WORKER = WorkerProcess(__name__)


def shutdown() -> None:
    """Stop the worker (the server's shutdown; tests). A later large file starts it again."""
    _WORKER.stop()


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the parse worker exited")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the parse worker exited mid-answer")
    return pickle.loads(data)  # our own child process's answer


def serve(answer: Callable[[Any], Any]) -> None:
    """The child's side of :class:`WorkerProcess`: answer each request on stdin until
    the parent closes it."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return  # the server closed our stdin: it is shutting down
        _send(answers, answer(request))


def _split(request: tuple[str, str, str | None]) -> tuple[list[Block], str | None]:
    path, text, workspace = request
    return split_file_checked(path, text, workspace=workspace)


if __name__ == "__main__":
    serve(_split)
