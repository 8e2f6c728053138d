"""What authentication and rate limiting cost per request, against a baseline measured in
the same run.

Run: ``.venv/bin/python bench/auth.py [--quick] [--json-out PATH] [--scratch DIR]
[--redis-url URL] [--concurrency C ...]``

The route is ``GET /admin/health`` (admin scope): the cheapest authenticated route the
app has. It reads four settings and returns a small JSON object: no database, no blob
store, no index. What is left is FastAPI itself, so the ratios are the *worst case*:
on a route that does real work, the same absolute overhead is a smaller share.

**Over HTTP.** Five real uvicorn servers run side by side, each its own process, over
one data dir (SQLite, the embedded default), all started from one small launcher script
this bench writes to a temp file (``create_app(Settings())`` + ``uvicorn.run``, the call
``memhub serve`` makes, with logging at warning and no access log):

- ``no admission (baseline)``: the app built by ``create_app``; then, before the first
  request, its ``AdmissionMiddleware`` entry in ``app.user_middleware`` is swapped for a
  ``FixedPrincipal`` middleware that puts one admin principal in the ASGI scope. Starlette
  builds the middleware stack on the first request, so the swap is all it takes; every
  other middleware (security headers, metrics, path guard, body limit) stays.
- ``no admission (A/A control)``: a second process of exactly the baseline. Its ratio
  to the baseline is the noise floor of this machine at this moment: a ratio of the
  others within that distance of 1.0 is no measurable cost.
- ``auth, no rate limit``: the real app, ``MEMHUB_RATE_LIMIT_ENABLED=false``.
- ``auth + in-process limit``: rate limiting on, the in-process sliding window.
- ``auth + Redis limit``: rate limiting through Redis (``--redis-url``); skipped, and
  said so, when Redis does not answer.

The limited variants run with a limit no run reaches (10^9 per 60 s), so every request
is admitted and does the full check-and-record. Every request sends an API key made for
the run (``Authorization: Bearer mh_…``, admin scope); after the first request it is
verified from the key cache, which is how a hot key is served.

Rounds: each round runs every variant once (the order rotates), after one warm-up round
that is not measured. A ratio is the median of the per-round ratios (variant req/s ÷
baseline req/s in the same round), so background load that hits one round hits both
sides of its ratio. req/s and percentiles are over all rounds. Load: one thread per
connection, each with its own keep-alive ``http.client.HTTPConnection``; the timed loop
parses no JSON. ``srv CPU ms/req`` is the server process's user+system CPU
(``/proc/PID/stat``) per request.

**In process.** The admission middleware alone, in front of an ASGI app that answers 200
at once, called in a loop on one event loop: the fixed principal, then the real
middleware without a limit, with the in-process limit and with the Redis limit (built by
the app's own ``build_limiter``). Its CPU µs per request, set against the baseline server's
CPU per request, gives a second, far less noisy estimate of the ratio (``cpu model``:
base CPU ÷ (base CPU + admission CPU µs)); for Redis the wall time, which includes the
round trip, is printed too.

The Redis window of the run's key (``memhub:rl:key:<id>``, a new id every run) is deleted
at the end; nothing else in Redis is touched. Results: a table, a summary and
``bench/results/auth.json`` (or ``--json-out``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memhub.api.app import build_limiter
from memhub.api.metrics import Metrics
from memhub.auth.admission import AdmissionMiddleware, AdmissionPolicy
from memhub.auth.authenticator import Authenticator
from memhub.auth.keys import KeyStore
from memhub.auth.principal import Principal
from memhub.auth.tokens import TokenCodec
from memhub.config import Settings
from memhub.store import open_store

HERE = Path(__file__).resolve().parent
ROUTE = "/admin/health"
AIM = 0.85  # auth + in-process limit: req/s over the baseline's
MS = 1000.0
US = 1_000_000.0
NO_LIMIT = 10**9
JWT_SECRET = "bench-auth-jwt-secret-" + "b" * 40

BASELINE = "no admission (baseline)"
CONTROL = "no admission (A/A control)"
AUTH_ONLY = "auth, no rate limit"
AUTH_MEMORY = "auth + in-process limit"
AUTH_REDIS = "auth + Redis limit"
BYPASSED = (BASELINE, CONTROL)


@dataclass(frozen=True)
class Plan:
    requests: int  # per variant per concurrency, split evenly over the rounds
    rounds: int
    warmup: int
    concurrencies: tuple[int, ...]
    inproc_calls: int  # per variant per round, in process
    inproc_rounds: int


FULL = Plan(
    requests=3600, rounds=24, warmup=200, concurrencies=(1, 8),
    inproc_calls=4000, inproc_rounds=7,
)  # fmt: skip
QUICK = Plan(
    requests=1200, rounds=12, warmup=100, concurrencies=(8,),
    inproc_calls=2000, inproc_rounds=5,
)  # fmt: skip

LAUNCHER = textwrap.dedent(
    '''
    """memhub's app under uvicorn, as `memhub serve` runs it; argv: PORT [bypass]."""
    import sys

    import uvicorn
    from starlette.middleware import Middleware

    from memhub.api.app import create_app
    from memhub.auth.admission import AdmissionMiddleware
    from memhub.auth.principal import Principal
    from memhub.config import Settings

    PRINCIPAL = Principal("bench", "default", frozenset({"read", "write", "admin"}), None, "local")


    class FixedPrincipal:
        """Stands where AdmissionMiddleware stood: no credentials, no limits."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                scope.setdefault("state", {})["principal"] = PRINCIPAL
            await self.app(scope, receive, send)


    port = int(sys.argv[1])
    settings = Settings()
    app = create_app(settings)
    if sys.argv[2:] == ["bypass"]:
        before = len(app.user_middleware)
        app.user_middleware = [
            Middleware(FixedPrincipal) if m.cls is AdmissionMiddleware else m
            for m in app.user_middleware
        ]
        assert len(app.user_middleware) == before
        assert sum(m.cls is FixedPrincipal for m in app.user_middleware) == 1
        assert app.middleware_stack is None  # built on the first request, from the list above
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    '''
)


# -- servers ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def variant_env(name: str, data_dir: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env.update(
        MEMHUB_DATA_DIR=str(data_dir),
        MEMHUB_JWT_SECRET=JWT_SECRET,  # no jwt.secret file raced over by five processes
        MEMHUB_LOG_LEVEL="warning",
        MEMHUB_RATE_LIMIT=str(NO_LIMIT),
        MEMHUB_RATE_LIMIT_SCOPES="",
        MEMHUB_RATE_LIMIT_ENABLED="true" if name in (AUTH_MEMORY, AUTH_REDIS) else "false",
    )
    if name == AUTH_REDIS:
        env["MEMHUB_REDIS_URL"] = redis_url
    return env


@contextmanager
def servers(
    names: list[str], data_dir: Path, scratch: Path, redis_url: str
) -> Iterator[list[Server]]:
    launcher = scratch / "launch_memhub.py"
    launcher.write_text(LAUNCHER)
    started: list[Server] = []
    try:
        for name in names:
            port = free_port()
            log = scratch / f"server-{port}.log"
            args = [sys.executable, str(launcher), str(port)]
            if name in BYPASSED:
                args.append("bypass")
            with log.open("wb") as out:
                process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=variant_env(name, data_dir, redis_url), start_new_session=True,
                )  # fmt: skip
            started.append(Server(name, port, process, log))
        for server in started:
            wait_healthy(server)
        yield started
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        with suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not become healthy:\n{server.log.read_text()[-3000:]}")


# -- load over HTTP --------------------------------------------------------------------


@dataclass
class Sample:
    latencies: list[float]
    wall: float
    client_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(server: Server, headers: dict[str, str], n: int, c: int) -> Sample:
    """``n`` GETs of ROUTE on ``c`` keep-alive connections; every answer must be 200."""
    barrier = threading.Barrier(c + 1)
    latencies: list[list[float]] = [[] for _ in range(c)]
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            barrier.wait()
            mine, clock = latencies[w], time.perf_counter
            for _ in range(w, n, c):
                start = clock()
                conn.request("GET", ROUTE, headers=headers)
                response = conn.getresponse()
                body = response.read()
                mine.append(clock() - start)
                if response.status != 200:
                    raise RuntimeError(f"{server.name}: {response.status} {body[:300]!r}")
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(c)]
    for t in threads:
        t.start()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()
    cpu0, srv0, wall0 = time.process_time(), cpu_seconds(server.pid), time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    if errors:
        raise errors[0]
    return Sample(
        [x for lats in latencies for x in lats],
        wall,
        time.process_time() - cpu0,
        cpu_seconds(server.pid) - srv0,
    )


@dataclass
class Series:
    name: str
    concurrency: int
    requests: int
    seconds: float
    req_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    client_cpu_ms: float  # per request
    server_cpu_ms: float  # per request
    ratio: float | None = None  # req/s ÷ baseline req/s, median of the rounds
    round_ratios: list[float] = field(default_factory=list)
    cpu_model_ratio: float | None = None  # from the in-process admission cost


def percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summarize(name: str, c: int, samples: list[Sample]) -> Series:
    ordered = sorted(x for s in samples for x in s.latencies)
    n = len(ordered)
    seconds = sum(s.wall for s in samples)
    return Series(
        name=name, concurrency=c, requests=n, seconds=seconds, req_per_s=n / seconds,
        p50_ms=percentile(ordered, 0.50) * MS, p90_ms=percentile(ordered, 0.90) * MS,
        p99_ms=percentile(ordered, 0.99) * MS,
        client_cpu_ms=sum(s.client_cpu for s in samples) / n * MS,
        server_cpu_ms=sum(s.server_cpu for s in samples) / n * MS,
    )  # fmt: skip


def run_rounds(running: list[Server], headers: dict[str, str], c: int, plan: Plan) -> list[Series]:
    samples: dict[str, list[Sample]] = {s.name: [] for s in running}
    per_round = plan.requests // plan.rounds
    for r in range(plan.rounds + 1):
        shift = r % len(running)
        for server in running[shift:] + running[:shift]:  # the order rotates
            sample = run_load(server, headers, plan.warmup if r == 0 else per_round, c)
            if r > 0:
                samples[server.name].append(sample)
        print(f"  http c={c}: round {r}/{plan.rounds} done", file=sys.stderr, flush=True)
    base = samples[BASELINE]
    out = []
    for server in running:
        series = summarize(server.name, c, samples[server.name])
        if server.name != BASELINE:
            pairs = zip(samples[server.name], base, strict=True)
            series.round_ratios = [a.rate / b.rate for a, b in pairs]
            series.ratio = statistics.median(series.round_ratios)
        out.append(series)
    return out


# -- the admission middleware in process -----------------------------------------------


class FixedPrincipal:
    """What the baseline server runs where AdmissionMiddleware stood."""

    PRINCIPAL = Principal("bench", "default", frozenset({"read", "write", "admin"}), None, "local")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = self.PRINCIPAL
        await self.app(scope, receive, send)


async def answer_200(_scope: Any, _receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def admission_cost(
    data_dir: Path, key: str, redis_url: str | None, plan: Plan
) -> dict[str, dict[str, float]]:
    """Per middleware in front of ``answer_200``: wall and CPU µs per request (medians of
    the rounds). With Redis, wall time includes the round trip; CPU time is this
    process's own work (the client side of the Redis call included)."""
    store = open_store(f"sqlite:///{data_dir / 'memhub.db'}", (data_dir / "blobs").as_uri())
    keys = KeyStore(store.meta)
    authenticator = Authenticator(keys, TokenCodec(JWT_SECRET))
    policy = AdmissionPolicy(limit=NO_LIMIT, window=60.0, enabled=True)
    limiters = {AUTH_MEMORY: build_limiter(Settings(data_dir=data_dir), Metrics())}
    if redis_url:
        limiters[AUTH_REDIS] = build_limiter(
            Settings(data_dir=data_dir, redis_url=redis_url), Metrics()
        )
    apps: dict[str, Any] = {
        BASELINE: FixedPrincipal(answer_200),
        AUTH_ONLY: AdmissionMiddleware(
            answer_200,
            authenticator=authenticator,
            limiter=limiters[AUTH_MEMORY],
            policy=AdmissionPolicy(limit=NO_LIMIT, enabled=False),
        ),
    }
    for name, limiter in limiters.items():
        apps[name] = AdmissionMiddleware(
            answer_200, authenticator=authenticator, limiter=limiter, policy=policy
        )
    headers = [
        (b"host", b"127.0.0.1"),
        (b"user-agent", b"Python-urllib/3"),
        (b"accept-encoding", b"identity"),
        (b"authorization", f"Bearer {key}".encode()),
    ]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"admission answered {message['status']}")

    async def loop(app: Any, n: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            scope = {
                "type": "http", "method": "GET", "path": ROUTE, "headers": headers,
                "client": ("127.0.0.1", 50000), "query_string": b"",
            }  # fmt: skip
            await app(scope, receive, send)
        return (time.perf_counter() - start) / n * US, (time.process_time() - cpu) / n * US

    try:
        for app in apps.values():
            await loop(app, 200)  # fills the key cache, opens Redis connections
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
        for _ in range(plan.inproc_rounds):
            for name, app in apps.items():
                timings[name].append(await loop(app, plan.inproc_calls))
        return {
            name: {
                "wall_us": statistics.median(w for w, _ in values),
                "cpu_us": statistics.median(c for _, c in values),
            }
            for name, values in timings.items()
        }
    finally:
        for limiter in limiters.values():
            await limiter.close()
        store.close()


# -- output ----------------------------------------------------------------------------


def table(rows: list[Series]) -> str:
    header = (
        f"{'series':<27} {'conc':>4} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio-vs-baseline':>17} {'(cpu model)':>11} {'srv CPU ms/req':>14}"
    )
    lines = [header, "-" * len(header)]
    for s in rows:
        ratio = "baseline" if s.ratio is None else f"{s.ratio:.2f}"
        model = "" if s.cpu_model_ratio is None else f"{s.cpu_model_ratio:.3f}"
        lines.append(
            f"{s.name:<27} {s.concurrency:>4} {s.requests:>8} {s.req_per_s:>7.0f} "
            f"{s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {ratio:>17} {model:>11} {s.server_cpu_ms:>14.3f}"
        )
    return "\n".join(lines)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, concurrency 8")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "auth.json")
    parser.add_argument("--scratch", type=Path, default=None, help="where temp data dirs go")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--concurrency", type=int, nargs="+", default=None)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.concurrency:
        plan = Plan(**{**asdict(plan), "concurrencies": tuple(args.concurrency)})

    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-auth-", dir=args.scratch))
    names = [BASELINE, CONTROL, AUTH_ONLY, AUTH_MEMORY]
    redis_url: str | None = args.redis_url if redis_answers(args.redis_url) else None
    if redis_url:
        names.append(AUTH_REDIS)
    else:
        print(f"Redis at {args.redis_url} does not answer: {AUTH_REDIS!r} skipped", file=sys.stderr)
    window_key = None
    try:
        data_dir = scratch / "data"
        store = open_store(f"sqlite:///{data_dir / 'memhub.db'}", (data_dir / "blobs").as_uri())
        try:
            store.create_workspace("default", exist_ok=True)
            key, record = KeyStore(store.meta).create(
                "default", ["read", "write", "admin"], description="bench/auth.py"
            )
        finally:
            store.close()
        window_key = f"memhub:rl:key:{record.id}"
        headers = {"Authorization": f"Bearer {key}"}
        rows: list[Series] = []
        with servers(names, data_dir, scratch, args.redis_url) as running:
            for c in plan.concurrencies:
                rows += run_rounds(running, headers, c, plan)
        print("  in process: admission middleware alone", file=sys.stderr, flush=True)
        inproc = asyncio.run(admission_cost(data_dir, key, redis_url, plan))
    finally:
        if redis_url and window_key:
            import redis

            client = redis.Redis.from_url(redis_url)
            client.delete(window_key)
            client.close()
        shutil.rmtree(scratch, ignore_errors=True)

    overhead_us = {name: t["cpu_us"] - inproc[BASELINE]["cpu_us"] for name, t in inproc.items()}
    for s in rows:
        base = next(b for b in rows if b.concurrency == s.concurrency and b.name == BASELINE)
        if s.name in overhead_us and s.name != BASELINE:
            base_us = base.server_cpu_ms * 1000
            s.cpu_model_ratio = base_us / (base_us + overhead_us[s.name])

    print()
    print(f"GET {ROUTE} (admin key); {plan.rounds} rounds; ratio = median of per-round ratios")
    print(table(rows))
    print()
    print("admission middleware in process (per request, median of rounds):")
    for name, t in inproc.items():
        extra = "" if name == BASELINE else f"  (CPU +{overhead_us[name]:.1f} µs)"
        print(f"  {name:<27} wall {t['wall_us']:7.1f} µs  CPU {t['cpu_us']:7.1f} µs{extra}")
    print()
    summary: dict[str, Any] = {"inproc_us": inproc, "inproc_overhead_us": overhead_us}
    for c in plan.concurrencies:
        at_c = {s.name: s for s in rows if s.concurrency == c}
        memory, control = at_c[AUTH_MEMORY], at_c[CONTROL]
        assert memory.ratio is not None and control.ratio is not None
        noise = abs(1 - control.ratio)
        verdict = "meets" if memory.ratio >= AIM else "MISSES"
        print(
            f"c={c}: auth + in-process limit at {memory.ratio:.2f} of the baseline's req/s "
            f"({verdict} the aim of {AIM:.2f}; rounds {spread(memory.round_ratios)}); "
            f"A/A control {control.ratio:.2f} (rounds {spread(control.round_ratios)}); "
            f"cpu model {memory.cpu_model_ratio:.3f}"
        )
        summary[f"c{c}"] = {
            s.name: {
                "ratio": s.ratio,
                "round_ratios": s.round_ratios,
                "cpu_model_ratio": s.cpu_model_ratio,
            }
            for s in at_c.values()
            if s.name != BASELINE
        }
        summary[f"c{c}"]["aim_met"] = memory.ratio >= AIM
        summary[f"c{c}"]["noise"] = noise
    result = {
        "route": f"GET {ROUTE}",
        "plan": asdict(plan),
        "aim": AIM,
        "redis": redis_url,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_end": os.getloadavg(),
        },
        "series": [asdict(s) for s in rows],
        "summary": summary,
        "seconds": time.monotonic() - started,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json_out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
