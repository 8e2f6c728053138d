"""Blob API throughput and change-feed latency, each against a baseline measured in the same run.

Run: ``.venv/bin/python bench/blob_api.py [--quick] [--json-out PATH] [--scratch DIR]``

At concurrency 1 and then 8, interleaved in rounds (below):

- ``raw write_durably``: durable 4 KiB writes done directly in Python with memhub's own
  ``write_durably`` (temp file, write, fsync, ``os.replace``, fsync the directory) into a
  256-way sharded directory like the blob store's. The baseline of the PUTs.
- ``store.put in-process``: the same bodies through ``Store.put`` (blob write plus the
  SQLite commit), no HTTP. A layer between the two, to tell where the time goes.
- On a real ``memhub serve`` on a fresh data dir (the embedded default: SQLite + local
  blobs; rate limits raised out of reach, requests carry the local admin key it writes):
  ``GET /nonexistent``, the app's JSON 404 through the whole middleware stack with no I/O
  (the trivial baseline of the GETs), and ``GET /health``, which checks the database and
  the blob directory.
- ``PUT /blob/...`` of 4 KiB random bodies, unconditional and with ``Content-MD5: new``,
  then ``GET`` of the files just written.
- The memory proxy's later protocol: ``PUT /{ns}/blob/...`` with ``If-Match-Version: 0``
  (beside the seed's ``Content-MD5: new`` PUT: the ratio of their req/s) and ``GET`` of
  them (beside the seed's GET). The namespace is percent-encoded as the proxy's client
  does; a namespace holds at most 50 files, since every PUT answers with its whole index.

Then the change feed: a data dir is filled to the small size and a copy of it to the large
size (10x); a server runs on each, and ``GET /v1/workspaces/default/changes`` (the last 10
changes, and ``since=0&limit=100``) is timed on both, alternating.

Then the seed's sync index: ``GET /sync`` on the large feed data dir and on one of
``sync_size`` (100,000) files: 200, 200 with ``Accept-Encoding: gzip``, and 304 with the
ETag; beside the index built as memhub built it before (a Revision and a dict per row,
then JSON; in process, on the same data) - the ratio of p50s. Aims: 200 at 100k files
<= 5 us per file, 304 <= 2 ms. The body is checked against the row-by-row build first.

Rounds: machines are noisy (here: two cores, shared with whatever else runs), so every
series is cut into rounds and the rounds of a series and of its baseline alternate. A ratio
is the median of the per-round ratios; req/s and percentiles are over all rounds. One
unmeasured warm-up round runs first.

Load generator: one thread per connection, each with its own keep-alive
``http.client.HTTPConnection`` (cheaper per request than httpx; no JSON parsing in the timed
loop). It shares the cores with the server, so its CPU time per request is recorded next to
the server's.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from memhub.core.durable import write_durably
from memhub.store import Store, open_store
from memhub.store.blobs import chunk_key
from memhub.store.schema import chunks, content_chunks, contents, files, revisions, workspaces

BODY_SIZE = 4096
WORKSPACE = "default"
AIM_PUT = 0.40  # PUT req/s over raw durable writes/s, same concurrency
AIM_GET = 0.50  # GET req/s over the trivial endpoint's req/s, same concurrency
MS = 1000.0
HERE = Path(__file__).resolve().parent

RAW = "raw write_durably 4KiB"
INPROC = "store.put in-process 4KiB"
NOT_FOUND = "GET /nonexistent (404, no I/O)"
HEALTH = "GET /health (DB ping + dir check)"
PUT = "PUT /blob 4KiB"
PUT_NEW = "PUT /blob 4KiB Content-MD5:new"
GET = "GET /blob 4KiB"
PUT_NS = "PUT /{ns}/blob 4KiB If-Match-Version:0"
GET_NS = "GET /{ns}/blob 4KiB"
NS_FILES = 50  # files per namespace in the namespaced series: a PUT answers its whole index
AIM_SYNC_US_PER_FILE = 5.0  # GET /sync at sync_size files, p50 / files
AIM_SYNC_304_MS = 2.0


@dataclass(frozen=True)
class Plan:
    raw: int
    store: int
    trivial: int
    put: int
    get: int
    warmup: int
    rounds: int
    sizes: tuple[int, int]
    changes: int
    probe: int
    populate_budget: float  # seconds: store.put slower than this fills the feed by cloning
    sync_size: int = 100_000  # files in the workspace of the GET /sync series
    sync_requests: int = 15  # GET /sync (200) per size; 304s: 20x as many
    concurrencies: tuple[int, ...] = (1, 8)


FULL = Plan(
    raw=2000, store=400, trivial=3000, put=1500, get=3000, warmup=100, rounds=5,
    sizes=(10_000, 100_000), changes=300, probe=200, populate_budget=90.0,
)  # fmt: skip
QUICK = Plan(
    raw=240, store=60, trivial=450, put=180, get=450, warmup=20, rounds=3,
    sizes=(1_000, 10_000), changes=60, probe=60, populate_budget=5.0,
)  # fmt: skip


# -- load generation -----------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    pid: int
    headers: dict[str, str]  # sent with every request: the local admin key


class Http:
    """One keep-alive connection; ``call`` checks the status and drains the body."""

    def __init__(self, server: Server) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        self.conn.connect()
        self.headers = server.headers

    def call(
        self, method: str, path: str, expect: int, body: bytes | None = None, **headers: str
    ) -> bytes:
        self.conn.request(method, path, body=body, headers={**self.headers, **headers})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != expect:
            raise RuntimeError(f"{method} {path}: {resp.status} (wanted {expect}): {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


Op = Callable[[Any, int], object]  # (Http, or None without a server; request index)


@dataclass
class Sample:
    """One stretch of load: per-request latencies (s), wall time, CPU seconds."""

    latencies: list[float]
    wall: float
    client_cpu: float
    server_cpu: float | None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from /proc; with its child processes
    (the workers of ``memhub serve --workers N``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return own + sum(cpu_seconds(int(kid)) for kid in kids if Path(f"/proc/{kid}").exists())


def run_load(op: Op, indices: range, c: int, server: Server | None) -> Sample:
    """``op`` for each index, on ``c`` threads (worker w takes every c-th index)."""
    barrier = threading.Barrier(c + 1)
    latencies: list[list[float]] = [[] for _ in range(c)]
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        client = Http(server) if server else None
        try:
            barrier.wait()
            mine, clock = latencies[w], time.perf_counter
            for i in indices[w::c]:
                start = clock()
                op(client, i)
                mine.append(clock() - start)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(c)]
    for t in threads:
        t.start()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()
    cpu0, srv0 = time.process_time(), cpu_seconds(server.pid) if server else 0.0
    wall0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    if errors:
        raise errors[0]
    return Sample(
        [x for lats in latencies for x in lats],
        wall,
        time.process_time() - cpu0,
        cpu_seconds(server.pid) - srv0 if server else None,
    )


@dataclass
class Spec:
    """A series: ``n`` calls of ``op``; compared with the series named ``baseline``."""

    name: str
    op: Op
    n: int
    server: Server | None = None
    baseline: str | None = None
    ratio_of: str = "req/s"  # or "p50"


@dataclass
class Series:
    name: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_ms: float  # per request
    server_cpu_ms: float | None  # per request
    baseline: str | None = None
    ratio_of: str | None = None
    ratio: float | None = None  # median over rounds
    round_ratios: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summarize(name: str, c: int, samples: list[Sample]) -> Series:
    ordered = sorted(x for s in samples for x in s.latencies)
    n = len(ordered)
    srv = [s.server_cpu for s in samples if s.server_cpu is not None]
    return Series(
        name=name, concurrency=c, requests=n, seconds=sum(s.wall for s in samples),
        p50_ms=percentile(ordered, 0.50) * MS, p90_ms=percentile(ordered, 0.90) * MS,
        p99_ms=percentile(ordered, 0.99) * MS, max_ms=ordered[-1] * MS,
        client_cpu_ms=sum(s.client_cpu for s in samples) / n * MS,
        server_cpu_ms=sum(srv) / n * MS if srv else None,
    )  # fmt: skip


def run_rounds(
    specs: list[Spec], c: int, plan: Plan, done: dict[str, int], rounds: int = 0
) -> list[Series]:
    """A warm-up round, then ``rounds`` (default ``plan.rounds``) rounds of every spec in order.

    Each spec gets its own run of indices: warm-up 0..warmup, then round after round, so
    writes never reuse a path. ``done[name]`` counts the indices completed so far.
    """
    rounds = rounds or plan.rounds
    samples: dict[str, list[Sample]] = {s.name: [] for s in specs}
    for r in range(rounds + 1):
        for spec in specs:
            start = done.get(spec.name, 0)
            if r == 0:
                count = min(plan.warmup, spec.n)
            else:  # round r's share of n, so that the rounds add up to n
                count = spec.n * r // rounds - spec.n * (r - 1) // rounds
            indices = range(start, start + count)
            sample = run_load(spec.op, indices, c, spec.server)
            done[spec.name] = indices.stop
            if r > 0:
                samples[spec.name].append(sample)
        print(f"  c={c} round {r}/{rounds} done ({spec.name.split(' @')[0]} last)",
              file=sys.stderr, flush=True)  # fmt: skip
    out = {}
    for spec in specs:
        series = summarize(spec.name, c, samples[spec.name])
        if spec.baseline is not None:
            pairs = zip(samples[spec.name], samples[spec.baseline], strict=True)
            if spec.ratio_of == "req/s":
                series.round_ratios = [a.rate / b.rate for a, b in pairs]
            else:
                series.round_ratios = [a.p50 / b.p50 for a, b in pairs]
            series.ratio = statistics.median(series.round_ratios)
            series.baseline, series.ratio_of = spec.baseline, spec.ratio_of
        out[spec.name] = series
    return list(out.values())


def bodies(n: int) -> list[bytes]:
    return [os.urandom(BODY_SIZE) for _ in range(n)]


# -- the server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_KEY_FILE = "admin.key"  # what `memhub serve` on loopback writes into its data dir
NO_LIMIT = str(10**9)
SERVER_ENV = {
    # rate limiting stays on (its cost is part of every request) with limits no run reaches
    "MEMHUB_RATE_LIMIT": NO_LIMIT,
    "MEMHUB_RATE_LIMIT_SCOPES": f"read={NO_LIMIT},write={NO_LIMIT},admin={NO_LIMIT}",
}


@contextmanager
def memhub_servers(*data_dirs: Path, workers: int = 1) -> Iterator[list[Server]]:
    """``memhub serve`` on each data dir, the embedded default: every MEMHUB_* variable of
    this environment is dropped, only SERVER_ENV is set. Yields the servers once each
    ``/health`` answers, with the local admin key the server created as a bearer header.
    Stops them all together with SIGTERM (a non-interactive shell's background job hands
    its children SIGINT ignored)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")} | SERVER_ENV
    exe = str(Path(sys.executable).with_name("memhub"))
    procs: list[tuple[subprocess.Popen[bytes], int, Path]] = []
    try:
        for data_dir in data_dirs:
            port = free_port()
            log_path = data_dir.with_name(data_dir.name + "-server.log")
            argv = [exe, "serve", "--data-dir", str(data_dir), "--port", str(port),
                    "--log-level", "warning", "--workers", str(workers)]  # fmt: skip
            with log_path.open("ab") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            procs.append((proc, port, log_path))
        t0 = time.perf_counter()
        servers = []
        for (proc, port, log_path), data_dir in zip(procs, data_dirs, strict=True):
            wait_healthy(proc, port, log_path)
            key_file = data_dir / ADMIN_KEY_FILE
            key = key_file.read_text().strip() if key_file.exists() else None
            servers.append(
                Server(port, proc.pid, {"Authorization": f"Bearer {key}"} if key else {})
            )
        took = time.perf_counter() - t0
        print(f"  memhub serve x{len(procs)} up in {took:.1f} s", file=sys.stderr)
        yield servers
    finally:
        for proc, _, _ in procs:
            proc.terminate()
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"memhub serve exited: {log_path.read_text()[-2000:]}")
        try:
            client = Http(Server(port, proc.pid, {}))
        except OSError:
            time.sleep(0.1)
            continue
        try:
            client.call("GET", "/health", 200)
            return
        finally:
            client.close()
    raise RuntimeError(f"memhub serve did not answer /health in 60 s (log: {log_path})")


# -- writes and reads ----------------------------------------------------------------


def write_specs(
    plan: Plan, c: int, raw_dir: Path, store: Store, server: Server, done: dict[str, int]
) -> list[Spec]:
    """The series of one concurrency, in the order a round runs them."""
    shards = [raw_dir / f"c{c}" / f"{s:02x}" for s in range(256)]
    for shard in shards:
        shard.mkdir(parents=True, exist_ok=True)
    extra = plan.warmup  # the warm-up round's indices come first
    raw_data, store_data = bodies(plan.raw + extra), bodies(plan.store + extra)
    put_data, new_data = bodies(plan.put + extra), bodies(plan.put + extra)

    def raw(_h: None, i: int) -> None:
        write_durably(shards[i % 256] / f"{i}.bin", raw_data[i])

    def inproc(_h: None, i: int) -> None:
        store.put(WORKSPACE, f"inproc/c{c}/{i}.bin", store_data[i])

    def get(path: str, status: int) -> Op:
        return lambda h, _i: h.call("GET", path, status)

    def put(h: Http, i: int) -> None:
        h.call("PUT", f"/blob/bench/c{c}/put/{i}.bin", 201, put_data[i])

    def put_new(h: Http, i: int) -> None:
        h.call("PUT", f"/blob/bench/c{c}/new/{i}.bin", 201, new_data[i], **{"Content-MD5": "new"})

    def get_blob(h: Http, i: int) -> None:
        got = h.call("GET", f"/blob/bench/c{c}/put/{i % done[PUT]}.bin", 200)
        if len(got) != BODY_SIZE:
            raise RuntimeError(f"GET /blob returned {len(got)} bytes, wanted {BODY_SIZE}")

    # the memory proxy's later protocol: the client percent-encodes the namespace
    def ns_url(i: int) -> str:
        return f"/bench-ns%2Fc{c}%2Fg{i // NS_FILES}/blob/{i}.bin"

    ns_data = bodies(plan.put + extra)

    def put_ns(h: Http, i: int) -> None:
        h.call("PUT", ns_url(i), 201, ns_data[i], **{"If-Match-Version": "0"})

    def get_ns(h: Http, i: int) -> None:
        got = h.call("GET", ns_url(i % done[PUT_NS]), 200)
        if len(got) != BODY_SIZE:
            raise RuntimeError(f"GET /{{ns}}/blob returned {len(got)} bytes")

    http = {"server": server}
    return [
        Spec(RAW, raw, plan.raw),
        Spec(INPROC, inproc, plan.store, baseline=RAW),
        Spec(NOT_FOUND, get("/nonexistent", 404), plan.trivial, **http),
        Spec(HEALTH, get("/health", 200), plan.trivial, baseline=NOT_FOUND, **http),
        Spec(PUT, put, plan.put, baseline=RAW, **http),
        Spec(PUT_NEW, put_new, plan.put, baseline=RAW, **http),
        Spec(GET, get_blob, plan.get, baseline=NOT_FOUND, **http),
        Spec(PUT_NS, put_ns, plan.put, baseline=PUT_NEW, **http),
        Spec(GET_NS, get_ns, plan.get, baseline=GET, **http),
    ]


def write_series(plan: Plan, scratch: Path, workers: int = 1) -> list[Series]:
    inproc_dir = scratch / "inproc"
    store = open_store(f"sqlite:///{inproc_dir / 'memhub.db'}", (inproc_dir / "blobs").as_uri())
    store.create_workspace(WORKSPACE, exist_ok=True)
    rows: list[Series] = []
    try:
        with memhub_servers(scratch / "server", workers=workers) as [server]:
            for c in plan.concurrencies:
                done: dict[str, int] = {}
                specs = write_specs(plan, c, scratch / "raw", store, server, done)
                rows += run_rounds(specs, c, plan, done)
    finally:
        store.close()
    return rows


# -- the change feed -----------------------------------------------------------------


def note(i: int) -> tuple[str, bytes]:
    return f"notes/{i // 1000:03d}/{i:06d}.md", f"# note {i}\n\nbench file {i}\n".encode()


def open_data_dir(data_dir: Path) -> Store:
    """The store ``memhub serve --data-dir`` opens (its default URLs)."""
    store = open_store(f"sqlite:///{data_dir / 'memhub.db'}", (data_dir / "blobs").as_uri())
    store.create_workspace(WORKSPACE, exist_ok=True)
    return store


def populate(store: Store, start: int, stop: int, plan: Plan, info: dict[str, Any]) -> None:
    """Files ``start``..``stop`` of the feed workspace, one revision each.

    The first ``plan.probe`` go through ``store.put`` (durable, timed). If ``store.put``
    would need more than ``plan.populate_budget`` for the largest size, the rest are clones of the
    rows that the last ``store.put`` wrote (see :func:`clone_files`).
    """
    t0 = time.perf_counter()
    if "put_rate" not in info:
        for i in range(start, start + plan.probe):
            store.put(WORKSPACE, *note(i), content_type="text/markdown")
        info["put_rate"] = plan.probe / (time.perf_counter() - t0)
        info["put_estimate_s"] = plan.sizes[1] / info["put_rate"]
        fast_enough = info["put_estimate_s"] <= plan.populate_budget
        info["method"] = "store.put" if fast_enough else "rows cloned from a store.put"
        start += plan.probe
    if info["method"] == "store.put":
        for i in range(start, stop):
            store.put(WORKSPACE, *note(i), content_type="text/markdown")
    else:
        clone_files(store, start, stop)
    info.setdefault("seconds", {})[str(stop)] = round(time.perf_counter() - t0, 2)


def clone_files(store: Store, start: int, stop: int) -> None:
    """Files ``start``..``stop`` as copies of the newest revision's rows in every table
    ``Store.put`` writes (all columns copied, identity fields replaced), inserted in
    transactions of 10k; blobs are written plainly under their chunk keys and made durable
    with one ``os.sync()`` at the end."""
    ws_id = store.workspace_id(WORKSPACE)
    blob_root = Path(store.blobs.root)  # type: ignore[attr-defined]

    def row(conn: Connection, table: Table, **where: object) -> dict[str, Any]:
        query = select(table).where(table.c.workspace_id == ws_id)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return dict(conn.execute(query.limit(1)).mappings().one())

    with store.meta.read() as conn:
        rev = row(conn, revisions, rev=store.head_rev(WORKSPACE))
        sha = rev["sha256"]
        tmpl = {
            "chunk": row(conn, chunks, sha256=sha),
            "content": row(conn, contents, sha256=sha),
            "link": row(conn, content_chunks, content_sha256=sha),
            "rev": rev,
            "file": row(conn, files, path=rev["path"]),
        }
    tables = {"chunk": chunks, "content": contents, "link": content_chunks,
              "rev": revisions, "file": files}  # fmt: skip
    for s in range(256):
        (blob_root / "chunks" / f"{s:02x}").mkdir(parents=True, exist_ok=True)
    for lo in range(start, stop, 10_000):
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in tmpl}
        blobs: list[tuple[Path, bytes]] = []
        with store.meta.write() as conn:
            head = conn.execute(
                select(workspaces.c.head_rev).where(workspaces.c.id == ws_id)
            ).scalar_one()
            for i in range(lo, min(stop, lo + 10_000)):
                path, data = note(i)
                sha = hashlib.sha256(data).hexdigest()
                blobs.append((blob_root / chunk_key(sha), data))
                head += 1
                size, now = len(data), time.time()
                ident = {"sha256": sha, "md5": hashlib.md5(data).hexdigest(), "size": size,
                         "created_at": now}  # fmt: skip
                rows["chunk"].append({**tmpl["chunk"], "sha256": sha, "size": size,
                                      "created_at": now})  # fmt: skip
                rows["content"].append({**tmpl["content"], **ident})
                rows["link"].append({**tmpl["link"], "content_sha256": sha, "chunk_sha256": sha,
                                     "size": size})  # fmt: skip
                rows["rev"].append({**tmpl["rev"], **ident, "rev": head, "path": path})
                rows["file"].append({**tmpl["file"], **ident, "rev": head, "path": path})
            in_parallel(lambda item: item[0].write_bytes(item[1]), blobs)
            for key, table in tables.items():
                conn.execute(insert(table), rows[key])
            conn.execute(update(workspaces).where(workspaces.c.id == ws_id).values(head_rev=head))
    os.sync()


def in_parallel(fn: Callable[[Any], object], items: list[Any]) -> None:
    """File-system calls on 8 threads (they release the GIL): 3x faster here for 100k files."""
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(fn, items):
            pass


def remove_tree(root: Path) -> None:
    """``shutil.rmtree``, the many small shard directories in parallel."""
    shards = [*root.glob("*/blobs/chunks/*"), *root.glob("raw/*/*")]
    in_parallel(lambda path: shutil.rmtree(path, ignore_errors=True), shards)
    shutil.rmtree(root, ignore_errors=True)


def verify_feed(store: Store, size: int) -> None:
    """The filled workspace reads back through the Store API like one written by puts."""
    head = store.head_rev(WORKSPACE)
    tail = store.changes(WORKSPACE, head - 10, limit=100).changes
    problems = []
    if (n := store.get_workspace(WORKSPACE)["files"]) != size:
        problems.append(f"{n} files, wanted {size}")
    if [r.path for r in tail] != [note(i)[0] for i in range(size - 10, size)]:
        problems.append("the last 10 changes are not the last 10 files")
    for i in random.Random(size).sample(range(size), 50):
        path, data = note(i)
        if store.read_bytes(WORKSPACE, path)[1] != data:
            problems.append(f"{path} reads back wrong")
    if problems:
        raise RuntimeError(f"the feed workspace of {size} files is wrong: {problems}")


def build_feeds(plan: Plan, scratch: Path) -> tuple[dict[int, Path], dict[str, Any]]:
    """Data dirs with ``plan.sizes`` files: the small one, then a copy grown to the large."""
    info: dict[str, Any] = {}
    dirs: dict[int, Path] = {}
    done = 0
    for size in plan.sizes:
        data_dir = scratch / f"feed-{size}"
        if dirs:
            shutil.copytree(dirs[done], data_dir)
        store = open_data_dir(data_dir)
        try:
            populate(store, done, size, plan, info)
            verify_feed(store, size)
        finally:
            store.close()
        dirs[size], done = data_dir, size
    return dirs, info


def feed_series(plan: Plan, scratch: Path) -> tuple[list[Series], dict[str, Any], dict[int, Path]]:
    t0 = time.perf_counter()
    dirs, info = build_feeds(plan, scratch)
    info["build_s"] = round(time.perf_counter() - t0, 1)
    print(f"  change feeds built in {info['build_s']} s", file=sys.stderr)
    small, large = plan.sizes
    base = f"/v1/workspaces/{WORKSPACE}/changes"
    with memhub_servers(dirs[small], dirs[large]) as [srv_small, srv_large]:
        specs: dict[str, list[Spec]] = {"tail": [], "first": []}
        for size, server in ((small, srv_small), (large, srv_large)):
            queries = {"tail": f"{base}?since={size - 10}&limit=100",
                       "first": f"{base}?since=0&limit=100"}  # fmt: skip
            check_pages(server, queries, size)
            for key, query in queries.items():
                name = feed_name(key, size)
                baseline = feed_name(key, small) if size == large else None

                def op(h: Http, _i: int, q: str = query) -> bytes:
                    return h.call("GET", q, 200)

                specs[key].append(Spec(name, op, plan.changes, server, baseline, "p50"))
        # short rounds (10 requests), so both sizes see the same background load
        rows = run_rounds(specs["tail"] + specs["first"], 1, plan, {}, plan.changes // 10)
    return rows, info, dirs


# -- the seed's sync index -------------------------------------------------------------


def legacy_sync(store: Store) -> bytes:
    """GET /sync as memhub built it before: a Revision per row, a dict per file, then JSON
    (the route's code of that time, in process: the baseline of the database-built index)."""
    from datetime import UTC, datetime

    def iso(ts: float) -> str:
        moment = datetime.fromtimestamp(ts, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    heads = store.sync_index(WORKSPACE)
    latest = max((h.created_at for h in heads), default=time.time())
    files = {h.path: {"md5": h.md5, "last_modified": iso(h.created_at), "size": h.size,
                      "is_deleted": h.deleted} for h in heads}  # fmt: skip
    return json.dumps({"files": files, "index_last_modified": iso(latest)}).encode()


def sync_name(what: str, size: int) -> str:
    return f"GET /sync {what} @{label(size)}"


def index_etag(server: Server, path: str) -> tuple[str, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("GET", path, headers=server.headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        return resp.getheader("etag") or "", body
    finally:
        conn.close()


def sync_series(
    plan: Plan, scratch: Path, dirs: dict[int, Path], info: dict[str, Any]
) -> list[Series]:
    """GET /sync on the feed's large data dir and on one of ``plan.sync_size`` files:
    200 (identity), 200 gzip, 304; beside the old row-by-row build, in process, on the
    same data (ratio of p50s)."""
    sizes = sorted({plan.sizes[1], plan.sync_size})
    largest = max(dirs)
    for size in sizes:
        if size not in dirs:
            data_dir = scratch / f"feed-{size}"
            shutil.copytree(dirs[largest], data_dir)
            store = open_data_dir(data_dir)
            try:
                populate(store, largest, size, plan, info)
                verify_feed(store, size)
            finally:
                store.close()
            dirs[size] = data_dir
    stores = {size: open_data_dir(dirs[size]) for size in sizes}
    try:
        with memhub_servers(*(dirs[size] for size in sizes)) as servers:
            specs: list[Spec] = []
            for size, server in zip(sizes, servers, strict=True):
                tag, body = index_etag(server, "/sync")
                if len(body["files"]) != size:
                    raise RuntimeError(f"GET /sync listed {len(body['files'])} of {size} files")
                old_body = json.loads(legacy_sync(stores[size]))
                if body != old_body:
                    old_files, new_files = old_body["files"], body["files"]
                    differ = [k for k in old_files if old_files[k] != new_files.get(k)]
                    sample = [(k, old_files[k], new_files.get(k)) for k in differ[:2]]
                    raise RuntimeError(
                        f"GET /sync differs from the row-by-row build in {len(differ)} files, "
                        f"e.g. {sample}; index_last_modified "
                        f"{old_body['index_last_modified']} vs {body['index_last_modified']}"
                    )
                old = sync_name("old row-by-row build, in process", size)

                def legacy(_h: None, _i: int, st: Store = stores[size]) -> bytes:
                    return legacy_sync(st)

                def full(h: Http, _i: int) -> bytes:
                    return h.call("GET", "/sync", 200)

                def zipped(h: Http, _i: int) -> bytes:
                    return h.call("GET", "/sync", 200, None, **{"Accept-Encoding": "gzip"})

                def unchanged(h: Http, _i: int, t: str = tag) -> bytes:
                    return h.call("GET", "/sync", 304, None, **{"If-None-Match": t})

                n = plan.sync_requests
                specs += [
                    Spec(old, legacy, max(3, n // 3)),
                    Spec(sync_name("200", size), full, n, server, old, "p50"),
                    Spec(sync_name("200 gzip", size), zipped, n, server, old, "p50"),
                    Spec(sync_name("304", size), unchanged, n * 20, server),
                ]
            rows = run_rounds(specs, 1, plan, {}, 3)
    finally:
        for store in stores.values():
            store.close()
    return rows


def check_pages(server: Server, queries: dict[str, str], size: int) -> None:
    client = Http(server)
    try:
        tail = json.loads(client.call("GET", queries["tail"], 200))
        first = json.loads(client.call("GET", queries["first"], 200))
    finally:
        client.close()
    if len(tail["changes"]) != 10 or len(first["changes"]) != 100 or not first["has_more"]:
        raise RuntimeError(f"unexpected change pages from the server with {size} files")


def feed_name(key: str, size: int) -> str:
    what = "since=head-10 (10 items)" if key == "tail" else "since=0&limit=100"
    return f"GET changes {what} @{label(size)}"


def label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


# -- report ----------------------------------------------------------------------------


def table(rows: list[Series]) -> str:
    head = ("series", "conc", "requests", "req/s", "p50 ms", "p99 ms", "ratio-vs-baseline",
            "srv CPU ms/req")  # fmt: skip
    lines = [head]
    for s in rows:
        ratio = (
            f"{s.ratio:.2f} ({s.ratio_of} / {short(s.baseline)})"
            if s.ratio is not None
            else "baseline"
        )
        srv = f"{s.server_cpu_ms:.2f}" if s.server_cpu_ms is not None else "-"
        lines.append((s.name, str(s.concurrency), str(s.requests), f"{s.rate:,.0f}",
                      f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}", ratio, srv))  # fmt: skip
    widths = [max(len(line[k]) for line in lines) for k in range(len(head))]

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(width) if k in (0, 6) else cell.rjust(width)
            for k, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(lines[0]), rule, *(fmt(line) for line in lines[1:])])


def short(name: str | None) -> str:
    names = {RAW: "raw", NOT_FOUND: "404", PUT_NEW: "seed PUT new", GET: "seed GET"}
    return names.get(name or "", (name or "").rsplit("@", 1)[-1])


def summary(rows: list[Series], plan: Plan, *, writes_only: bool = False) -> dict[str, Any]:
    def find(name: str, c: int = 1) -> Series:
        return next(s for s in rows if s.name == name and s.concurrency == c)

    out: dict[str, Any] = {"aims": {"put_vs_raw": AIM_PUT, "get_vs_trivial_404": AIM_GET}}
    for c in plan.concurrencies:
        out[f"c{c}"] = {
            "put_vs_raw": find(PUT, c).ratio,
            "put_new_vs_raw": find(PUT_NEW, c).ratio,
            "store_put_vs_raw": find(INPROC, c).ratio,
            "get_vs_404": find(GET, c).ratio,
            "health_vs_404": find(HEALTH, c).ratio,
            "get_vs_health": find(GET, c).rate / find(HEALTH, c).rate,
            "put_ns_vs_seed_put_new": find(PUT_NS, c).ratio,
            "get_ns_vs_seed_get": find(GET_NS, c).ratio,
        }
    if writes_only:
        return out
    sync: dict[str, Any] = {"aims": {"us_per_file": AIM_SYNC_US_PER_FILE,
                                     "not_modified_ms": AIM_SYNC_304_MS}}  # fmt: skip
    for size in sorted({plan.sizes[1], plan.sync_size}):
        full, zipped = find(sync_name("200", size)), find(sync_name("200 gzip", size))
        sync[label(size)] = {
            "files": size,
            "us_per_file": full.p50_ms * 1000 / size,
            "gzip_us_per_file": zipped.p50_ms * 1000 / size,
            "not_modified_ms": find(sync_name("304", size)).p50_ms,
            "vs_old_build_p50": full.ratio,
        }
    out["sync"] = sync
    large = plan.sizes[1]
    out["changes_p50_large_over_small"] = {
        "sizes": list(plan.sizes),
        "since_head_minus_10": find(feed_name("tail", large)).ratio,
        "since_0_limit_100": find(feed_name("first", large)).ratio,
    }

    def cpu_ratio(key: str) -> float:
        a, b = (
            find(feed_name(key, large)).server_cpu_ms,
            find(feed_name(key, plan.sizes[0])).server_cpu_ms,
        )
        return (a or math.nan) / (b or math.nan)

    out["changes_server_cpu_large_over_small"] = {
        "since_head_minus_10": cpu_ratio("tail"),
        "since_0_limit_100": cpu_ratio("first"),
    }
    return out


def summary_text(summ: dict[str, Any], plan: Plan) -> str:
    def verdict(value: float, aim: float) -> str:
        return f"{value:5.2f}   {'meets' if value >= aim else 'MISSES'} the aim >= {aim:.2f}"

    lines = ["", "Summary (median of per-round ratios, same run):"]
    for c in plan.concurrencies:
        s = summ[f"c{c}"]
        lines += [
            f"  c={c}  PUT req/s / raw durable write/s     {verdict(s['put_vs_raw'], AIM_PUT)}",
            f"  c={c}  PUT new req/s / raw durable write/s {verdict(s['put_new_vs_raw'], AIM_PUT)}",
            f"  c={c}  store.put in-process / raw          {s['store_put_vs_raw']:5.2f}",
            f"  c={c}  GET /blob req/s / GET 404 req/s     {verdict(s['get_vs_404'], AIM_GET)}",
            f"  c={c}  GET /health req/s / GET 404 req/s   {s['health_vs_404']:5.2f}",
            f"  c={c}  PUT /{{ns}}/blob / seed PUT new req/s {s['put_ns_vs_seed_put_new']:5.2f}"
            "   (1.0 = equal)",
            f"  c={c}  GET /{{ns}}/blob / seed GET req/s     {s['get_ns_vs_seed_get']:5.2f}"
            "   (1.0 = equal)",
        ]
    if "sync" not in summ:  # --writes-only
        return "\n".join(lines)
    ch, cpu = summ["changes_p50_large_over_small"], summ["changes_server_cpu_large_over_small"]
    small, large = (label(s) for s in ch["sizes"])
    for key, what in (("since_head_minus_10", "since=head-10    "),
                      ("since_0_limit_100", "since=0&limit=100")):  # fmt: skip
        lines.append(
            f"  changes {what} {large} / {small}: p50 {ch[key]:4.2f}, "
            f"server CPU/req {cpu[key]:4.2f}   (1.0 = flat)"
        )
    sync = summ["sync"]
    for key, row in sync.items():
        if key == "aims":
            continue
        per_file, nm = row["us_per_file"], row["not_modified_ms"]
        lines += [
            f"  GET /sync @{key}: {per_file:5.2f} us/file "
            f"({'meets' if per_file <= AIM_SYNC_US_PER_FILE else 'MISSES'} <= "
            f"{AIM_SYNC_US_PER_FILE}), gzip {row['gzip_us_per_file']:5.2f} us/file, "
            f"304 {nm:5.2f} ms ({'meets' if nm <= AIM_SYNC_304_MS else 'MISSES'} <= "
            f"{AIM_SYNC_304_MS}), p50 / old build {row['vs_old_build_p50']:4.2f}",
        ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, feed sizes 1k/10k")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "blob_api.json")
    parser.add_argument("--scratch", type=Path, help="parent of the temp data dirs")
    parser.add_argument("--workers", type=int, default=1, help="memhub serve --workers N "
                        "for the writes and reads (the change feed keeps one process)")  # fmt: skip
    parser.add_argument("--writes-only", action="store_true",
                        help="writes and reads only: no change feed, no sync index")  # fmt: skip
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    started = time.time()
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-", dir=args.scratch))
    phases: dict[str, float] = {}
    try:
        rows = write_series(plan, scratch, args.workers)
        phases["writes_and_reads_s"] = round(time.time() - started, 1)
        feed_info: dict[str, Any] = {}
        if not args.writes_only:
            feed, feed_info, dirs = feed_series(plan, scratch)
            phases["change_feed_s"] = round(time.time() - started - phases["writes_and_reads_s"], 1)
            rows += feed
            t0 = time.time()
            rows += sync_series(plan, scratch, dirs, feed_info)
            phases["sync_index_s"] = round(time.time() - t0, 1)
    finally:
        t0 = time.perf_counter()
        remove_tree(scratch)
        phases["cleanup_s"] = round(time.perf_counter() - t0, 1)
    summ = summary(rows, plan, writes_only=args.writes_only)
    elapsed = time.time() - started
    print(f"memhub serve --workers {args.workers} (writes and reads)")
    print(table(rows))
    print(summary_text(summ, plan))
    feed_note = (
        f"feed filled by {feed_info['method']} (store.put measured at "
        f"{feed_info['put_rate']:.0f}/s); "
        if feed_info
        else ""
    )
    print(f"\n{feed_note}load {os.getloadavg()[0]:.1f}; {elapsed:.0f} s in all")
    report = {
        "benchmark": "blob_api",
        "quick": args.quick,
        "workers": args.workers,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": round(elapsed, 1),
        "phases": phases,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_end": os.getloadavg(),
        },
        "plan": asdict(plan),
        "client": "one thread per connection, each a keep-alive http.client.HTTPConnection",
        "series": [{**asdict(s), "req_per_s": s.rate} for s in rows],
        "summary": summ,
        "feed_populate": feed_info,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"JSON: {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
