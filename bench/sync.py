"""Folder sync (``memhub sync``) against the seed's client protocol, in the same run.

Run: ``.venv/bin/python bench/sync.py [--quick] [--json-out PATH] [--scratch DIR]``

A tree of N files of 4 KiB in nested directories (10,000; 1,000 with ``--quick``) is
synced both ways by two clients, each against its own fresh ``memhub serve`` (embedded
default: SQLite + local blobs; rate limits off with ``MEMHUB_RATE_LIMIT_ENABLED=false``;
the local admin key):

- **memhub sync**: :class:`memhub.sync.folder.FolderSync` in-process, over HTTP: the
  change feed and the batch routes (500 files per request), three-way plan, state file.
- **seed protocol**: the memory proxy's client as its README describes it: ``GET /sync``
  (the whole index), compare the md5 of every local file with it, one conditional
  ``PUT /blob/{path}`` per changed file (``Content-MD5: new`` or the old md5); its pull is
  ``GET /blob/{path}`` per file. Both clients write pulled files the same way
  (``memhub.sync.local.write_local``: temp file, fsync, rename, fsync the directory), so
  the comparison is of protocols, not of disk writes. Both pushes read one source folder
  (the seed client skips memhub's ``.memhub/`` state directory).

Phases, each run by both clients (the order alternates between phases):

1. initial push of the tree into an empty workspace;
2. initial pull into an empty folder;
3. a no-op sync of the pushed folder (nothing changed anywhere), repeated, median;
   the CLI's ``memhub sync DIR --json`` is timed once too (its wall time includes
   starting Python and importing memhub).

Reported: seconds, files/s, HTTP requests, server CPU seconds, and the ratio
seed seconds ÷ memhub seconds (above 1: memhub is faster). Aim: a no-op sync of 10,000
files in under 1 s. Pulled folders are checked byte for byte against the source (not
timed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from memhub.client import MemhubClient
from memhub.sync.folder import FolderSync, Report
from memhub.sync.local import write_local

HERE = Path(__file__).resolve().parent
MEMHUB = Path(sys.executable).parent / "memhub"
BODY = 4096
NOOP_ROUNDS = 5
AIM_NOOP_SECONDS = 1.0
SYNC, SEED = "memhub sync", "seed protocol"


# -- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    key: str
    process: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def cpu(self) -> float:
        """utime + stime of the server process (all threads), from /proc."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")}
    env["MEMHUB_RATE_LIMIT_ENABLED"] = "false"
    return env


@contextmanager
def memhub_serve(scratch: Path, name: str) -> Iterator[Server]:
    home = scratch / name
    home.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [MEMHUB, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", home / "data",
         "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=server_env(home),
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"memhub serve failed:\n{(home / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        key = (home / "data" / "admin.key").read_text().strip()
        yield Server(base_url, key, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class CountingTransport(httpx.HTTPTransport):
    """An ordinary transport that counts the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)


# -- the tree --------------------------------------------------------------------------------


def rel_path(i: int) -> str:
    """Nested: 25 top directories, 8 below each, 50 files per leaf at 10,000 files."""
    return f"project-{i % 25:02d}/part-{(i // 25) % 8}/note-{i:05d}.md"


def make_tree(root: Path, count: int, seed: int) -> dict[str, str]:
    """``count`` files of 4 KiB of random bytes; returns their sha256 by path."""
    rng = random.Random(seed)
    digests = {}
    for i in range(count):
        rel = rel_path(i)
        data = rng.randbytes(BODY)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digests[rel] = hashlib.sha256(data).hexdigest()
    return digests


def tree_digests(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".memhub/"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def local_files(root: Path) -> Iterator[tuple[str, Path]]:
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".memhub")
        for name in sorted(names):
            path = Path(directory) / name
            yield path.relative_to(root).as_posix(), path


# -- the two clients -------------------------------------------------------------------------


@dataclass
class SeedClient:
    """The memory proxy's client protocol (seed 001, "Client Sync Protocol")."""

    server: Server
    synced: dict[str, str] = field(default_factory=dict)  # path → last-synced md5
    transport: CountingTransport = field(default_factory=CountingTransport)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.server.base_url,
            headers=self.server.headers,
            timeout=60,
            transport=self.transport,
        )

    def index(self) -> dict[str, dict[str, Any]]:
        response = self.http.get("/sync")
        response.raise_for_status()
        return dict(response.json()["files"])

    def push(self, root: Path) -> dict[str, int]:
        """Fetch the index, compare, one conditional PUT per changed file (412: conflict)."""
        index = self.index()
        counts = {"put": 0, "unchanged": 0, "conflict": 0}
        for rel, path in local_files(root):
            data = path.read_bytes()
            md5 = hashlib.md5(data).hexdigest()
            if self.synced.get(rel) == md5:
                counts["unchanged"] += 1
                continue
            known = index.get(rel)
            if known and not known["is_deleted"] and known["md5"] == md5:
                self.synced[rel] = md5  # already there
                counts["unchanged"] += 1
                continue
            precondition = known["md5"] if known and not known["is_deleted"] else "new"
            response = self.http.put(
                f"/blob/{quote(rel)}", content=data, headers={"Content-MD5": precondition}
            )
            if response.status_code == 412:
                counts["conflict"] += 1
                continue
            response.raise_for_status()
            self.synced[rel] = md5
            counts["put"] += 1
        return counts

    def pull(self, root: Path) -> dict[str, int]:
        """Fetch the index, GET every file newer than what was last synced, save it."""
        counts = {"get": 0, "unchanged": 0}
        for rel, meta in self.index().items():
            if meta["is_deleted"]:
                continue
            if self.synced.get(rel) == meta["md5"]:
                counts["unchanged"] += 1
                continue
            response = self.http.get(f"/blob/{quote(rel)}")
            response.raise_for_status()
            data = response.content
            if hashlib.md5(data).hexdigest() != response.headers["etag"].strip('"'):
                raise RuntimeError(f"{rel}: the body does not match its ETag")
            write_local(root, rel, data)
            self.synced[rel] = meta["md5"]
            counts["get"] += 1
        return counts

    def noop(self, root: Path) -> dict[str, int]:
        """A round with nothing to do: the index, and the md5 of every local file."""
        counts = self.push(root)
        assert counts["put"] == 0 and counts["conflict"] == 0, counts
        return counts

    def close(self) -> None:
        self.http.close()


@dataclass
class SyncClient:
    """``memhub sync`` in-process: FolderSync over a real HTTP client."""

    server: Server
    workspace: str = "default"
    transport: CountingTransport = field(default_factory=CountingTransport)

    def __post_init__(self) -> None:
        self.client = MemhubClient(
            self.server.base_url, self.server.key, self.workspace, transport=self.transport
        )

    def run(self, root: Path) -> Report:
        report = FolderSync(root, self.client, host="bench").run(max_delete=100.0)
        if report.errors:
            raise RuntimeError(f"sync errors: {report.errors[:5]}")
        return report

    def close(self) -> None:
        self.client.close()


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Measure:
    phase: str
    client: str
    files: int
    seconds: float
    requests: int
    server_cpu: float
    client_cpu: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds else float("inf")


def measure(
    phase: str,
    client: str,
    files: int,
    server: Server,
    transport: CountingTransport,
    work: Callable[[], Any],
) -> tuple[Measure, Any]:
    requests0, cpu0, client0 = transport.requests, server.cpu(), time.process_time()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    requests, server_cpu = transport.requests - requests0, server.cpu() - cpu0
    client_cpu = time.process_time() - client0
    return Measure(phase, client, files, seconds, requests, server_cpu, client_cpu), result


def cli_noop(server: Server, root: Path, scratch: Path) -> float:
    """``memhub sync ROOT --json`` as a user runs it, wall time including start-up."""
    env = server_env(scratch / "cli-home")
    env |= {
        "MEMHUB_SERVER": server.base_url,
        "MEMHUB_KEY": server.key,
        "MEMHUB_CONFIG_DIR": str(scratch / "cli-config"),
    }
    start = time.perf_counter()
    result = subprocess.run(
        [MEMHUB, "sync", root, "--json"], capture_output=True, text=True, env=env, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"memhub sync failed: {result.stderr}")
    report = json.loads(result.stdout)
    assert not report["planned"], report["planned"][:5]
    return seconds


# -- the run ---------------------------------------------------------------------------------


def run(count: int, scratch: Path) -> dict[str, Any]:
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    # one source folder for both pushes: the seed client skips memhub's .memhub/ state dir
    source_sync = source_seed = scratch / "source"
    digests = make_tree(source_sync, count, seed=1)
    pull_sync, pull_seed = scratch / "pull-sync", scratch / "pull-seed"
    pull_sync.mkdir()
    pull_seed.mkdir()
    phases["make trees"] = time.perf_counter() - t0
    rows: list[Measure] = []
    extra: dict[str, Any] = {}
    with (
        memhub_serve(scratch, "server-sync") as s_sync,
        memhub_serve(scratch, "server-seed") as s_seed,
    ):
        sync_a, sync_b = SyncClient(s_sync), SyncClient(s_sync)
        seed_a, seed_b = SeedClient(s_seed), SeedClient(s_seed)

        def sync_push() -> Measure:
            m, report = measure("initial push", SYNC, count, s_sync, sync_a.transport,
                                lambda: sync_a.run(source_sync))  # fmt: skip
            assert len(report.uploaded) == count, len(report.uploaded)
            return m

        def seed_push() -> Measure:
            m, counts = measure("initial push", SEED, count, s_seed, seed_a.transport,
                                lambda: seed_a.push(source_seed))  # fmt: skip
            assert counts["put"] == count, counts
            return m

        def sync_pull() -> Measure:
            m, report = measure("initial pull", SYNC, count, s_sync, sync_b.transport,
                                lambda: sync_b.run(pull_sync))  # fmt: skip
            assert len(report.downloaded) == count, len(report.downloaded)
            return m

        def seed_pull() -> Measure:
            m, counts = measure("initial pull", SEED, count, s_seed, seed_b.transport,
                                lambda: seed_b.pull(pull_seed))  # fmt: skip
            assert counts["get"] == count, counts
            return m

        t = time.perf_counter()
        rows += [seed_push(), sync_push()]
        phases["push"] = time.perf_counter() - t
        t = time.perf_counter()
        rows += [sync_pull(), seed_pull()]
        phases["pull"] = time.perf_counter() - t
        for root in (pull_sync, pull_seed):
            assert tree_digests(root) == digests, f"{root} differs from the source"

        t = time.perf_counter()
        noops: dict[str, list[Measure]] = {SYNC: [], SEED: []}
        for i in range(NOOP_ROUNDS):  # alternate which goes first
            order = [SYNC, SEED] if i % 2 == 0 else [SEED, SYNC]
            for who in order:
                if who == SYNC:
                    m, report = measure("no-op sync", SYNC, count, s_sync, sync_a.transport,
                                        lambda: sync_a.run(source_sync))  # fmt: skip
                    assert report.planned == [], report.planned[:5]
                else:
                    m, _ = measure("no-op sync", SEED, count, s_seed, seed_a.transport,
                                   lambda: seed_a.noop(source_seed))  # fmt: skip
                noops[who].append(m)
        for ms in noops.values():
            median = statistics.median(m.seconds for m in ms)
            best = min(ms, key=lambda m: abs(m.seconds - median))
            best.detail = {"rounds": [round(m.seconds, 4) for m in ms], "median_of": len(ms)}
            rows.append(best)
        m_noop_b, _ = measure("no-op sync (the pulled folder)", SYNC, count, s_sync,
                              sync_b.transport, lambda: sync_b.run(pull_sync))  # fmt: skip
        rows.append(m_noop_b)
        phases["no-op"] = time.perf_counter() - t
        extra["cli_noop_seconds"] = cli_noop(s_sync, source_sync, scratch)
        for client in (sync_a, sync_b, seed_a, seed_b):
            client.close()
    phases["total before clean-up"] = time.perf_counter() - t0
    return {"rows": rows, "phases": phases, **extra}


def ratios(rows: list[Measure]) -> dict[str, float]:
    out = {}
    for phase in ("initial push", "initial pull", "no-op sync"):
        sync = next(r for r in rows if r.phase == phase and r.client == SYNC)
        seed = next(r for r in rows if r.phase == phase and r.client == SEED)
        out[phase] = seed.seconds / sync.seconds
    return out


def print_table(rows: list[Measure], speedups: dict[str, float]) -> None:
    header = (
        f"{'phase':<32} {'client':<14} {'files':>6} {'seconds':>8} {'files/s':>9} "
        f"{'requests':>8} {'srv CPU s':>9} {'cli CPU s':>9} {'seed ÷ memhub':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{speedups[r.phase]:.2f}x" if r.client == SYNC and r.phase in speedups else ""
        print(
            f"{r.phase:<32} {r.client:<14} {r.files:>6} {r.seconds:>8.3f} {r.rate:>9.0f} "
            f"{r.requests:>8} {r.server_cpu:>9.2f} {r.client_cpu:>9.2f} {ratio:>13}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 files instead of 10,000")
    parser.add_argument("--files", type=int, help="how many files (overrides --quick)")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "sync.json")
    parser.add_argument("--scratch", type=Path, help="where the temp dirs go")
    args = parser.parse_args()
    count = args.files or (1_000 if args.quick else 10_000)
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-sync-", dir=args.scratch))
    try:
        result = run(count, scratch)
    finally:
        started = time.perf_counter()
        shutil.rmtree(scratch, ignore_errors=True)
        cleanup = time.perf_counter() - started
    result["phases"]["clean-up"] = cleanup
    rows: list[Measure] = result["rows"]
    speedups = ratios(rows)
    print()
    print_table(rows, speedups)
    noop = next(r for r in rows if r.phase == "no-op sync" and r.client == SYNC)
    print()
    verdict = "met" if noop.seconds < AIM_NOOP_SECONDS else "MISSED"
    print(f"no-op sync of {count} files: {noop.seconds:.3f} s (median of {NOOP_ROUNDS}); "
          f"aim < {AIM_NOOP_SECONDS:.0f} s: {verdict}")  # fmt: skip
    print(f"`memhub sync DIR --json` no-op, wall time with Python start-up: "
          f"{result['cli_noop_seconds']:.2f} s")  # fmt: skip
    for phase, ratio in speedups.items():
        print(f"{phase}: seed protocol ÷ memhub sync = {ratio:.2f}x")
    print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result["phases"].items()))
    out = {
        "files": count,
        "body_bytes": BODY,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_end": os.getloadavg(),
        },
        "rows": [
            {
                "phase": r.phase,
                "client": r.client,
                "files": r.files,
                "seconds": round(r.seconds, 4),
                "files_per_s": round(r.rate, 1),
                "requests": r.requests,
                "server_cpu_s": round(r.server_cpu, 2),
                "client_cpu_s": round(r.client_cpu, 2),
                **r.detail,
            }
            for r in rows
        ],
        "ratios_seed_over_sync": {k: round(v, 3) for k, v in speedups.items()},
        "noop_aim_seconds": AIM_NOOP_SECONDS,
        "noop_aim_met": noop.seconds < AIM_NOOP_SECONDS,
        "cli_noop_seconds": round(result["cli_noop_seconds"], 3),
        "phases": {k: round(v, 2) for k, v in result["phases"].items()},
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
