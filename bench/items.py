"""Memory items over HTTP: adds and searches through MemOS's ``/product/*`` beside the same
through ``/v1/workspaces/{ws}/items``, each against a baseline measured in the same run.

Run: ``.venv/bin/python bench/items.py [--quick] [--items N] [--json-out PATH] [--scratch DIR]``

One real ``memhub serve`` on a fresh data dir (the embedded default: SQLite WAL with
``synchronous=FULL``, local blobs; rate limits off; the local admin key). Two workspaces
get the same N facts (10,000; 2,000 with ``--quick``), in batches of 100:

- ``POST /product/add`` (100 user messages a request, ``async_mode: sync``) into one;
- ``POST /v1/workspaces/{ws}/items`` (100 items a request) into the other;
- ``Items.add`` in this process on a third data dir (no HTTP): the baseline of the adds.

The three alternate batch by batch (rounds), so the machine's noise hits them alike.
Then, at N items, searches of two or three words alternate query by query:

- ``GET /nonexistent`` (the app's JSON 404 through the whole middleware, no I/O): the
  trivial baseline of the searches;
- ``POST /product/search`` (``top_k`` 10, MemOS's default relativity 0.45);
- ``POST /v1/workspaces/{ws}/items/search`` (``k`` 10);
- ``POST /v1/workspaces/{ws}/search`` (the general block search, ``k`` 10).

Aims: ≥ 500 adds/s through ``/product/add`` (batched) and search p50 ≤ 10 ms over HTTP
at 10,000 items. Ratios: add rate ÷ in-process rate; search p50 ÷ trivial p50.
Results: ``bench/results/items.json`` (or ``--json-out``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memhub.memory.items import Draft, Items
from memhub.memory.service import Memory
from memhub.store import open_store

HERE = Path(__file__).resolve().parent
BATCH = 100
AIM_ADDS = 500.0
AIM_SEARCH_P50_MS = 10.0
NAMES = "Ada Boris Chen Dana Emil Farah Goran Hana Ivo Jana Kofi Lena Mateo Nora Omar Pia".split()
VERBS = "keeps sells paints repairs borrows collects photographs studies bakes plants".split()
THINGS = (
    "kites bicycles violins teapots lanterns maps clocks boats quilts ferns "
    "cameras kettles drums looms chairs compasses"
).split()
PLACES = "Lisbon Kyoto Oslo Quito Tunis Hanoi Lima Perth Riga Accra Cusco Bergen".split()


def facts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(THINGS)} in {rng.choice(PLACES)} "
        f"on day {i} with {rng.choice(THINGS)}."
        for i in range(n)
    ]


def queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    pools = (NAMES, VERBS, THINGS, PLACES)
    return [
        " ".join(rng.choice(p) for p in rng.sample(pools, rng.choice((2, 3)))) for _ in range(n)
    ]


class Server:
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
        env |= {"MEMHUB_RATE_LIMIT_ENABLED": "false", "HOME": str(data_dir.parent)}
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir.parent / "server.log").open("wb")
        memhub = Path(sys.executable).parent / "memhub"
        self.process = subprocess.Popen(
            [str(memhub), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(data_dir), "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"memhub serve did not start; see {self.log.name}")
            try:
                if self.call("GET", "/health", auth=False)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self.key = (data_dir / "admin.key").read_text().strip()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(
        self, method: str, url: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        conn = getattr(self, "conn", None) or http.client.HTTPConnection("127.0.0.1", self.port)
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = f"Bearer {self.key}"
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, url, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload

    def timed(self, method: str, url: str, body: Any = None) -> tuple[float, Any]:
        start = time.perf_counter()
        status, payload = self.call(method, url, body)
        elapsed = time.perf_counter() - start
        if status not in (200, 404):
            raise SystemExit(f"{method} {url}: {status} {payload[:300]!r}")
        return elapsed, payload

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def run(n: int, n_queries: int, scratch: Path) -> dict[str, Any]:
    server = Server(scratch / "server" / "data")
    local_dir = scratch / "inproc"
    local_dir.mkdir(parents=True)
    store = open_store(f"sqlite:///{local_dir / 'memhub.db'}", (local_dir / "blobs").as_uri())
    store.create_workspace("inproc")
    memory = Memory(store, local_dir / "index")
    items = Items(store, memory, local_dir / "index")
    try:
        for ws in ("bench-product", "bench-v1"):
            server.call("POST", "/v1/workspaces", {"name": ws})
        texts = facts(n)
        adds: dict[str, list[float]] = {"product": [], "v1": [], "inproc": []}
        for start in range(0, n, BATCH):
            chunk = texts[start : start + BATCH]
            elapsed, _ = server.timed(
                "POST",
                "/product/add",
                {"user_id": "bench", "writable_cube_ids": ["bench-product"], "async_mode": "sync",
                 "messages": [{"role": "user", "content": t} for t in chunk]},
            )  # fmt: skip
            adds["product"].append(elapsed)
            elapsed, _ = server.timed(
                "POST", "/v1/workspaces/bench-v1/items", {"items": [{"memory": t} for t in chunk]}
            )
            adds["v1"].append(elapsed)
            begin = time.perf_counter()
            items.add("inproc", [Draft(t, cube_id="inproc") for t in chunk])
            adds["inproc"].append(time.perf_counter() - begin)
        # the first search of a workspace catches its index up with N new files: unmeasured
        warm = time.perf_counter()
        warm_body = {"query": "warm", "user_id": "b", "readable_cube_ids": ["bench-product"]}
        server.call("POST", "/product/search", warm_body)
        server.call("POST", "/v1/workspaces/bench-v1/items/search", {"query": "warm"})
        catch_up_s = time.perf_counter() - warm
        searches: dict[str, list[float]] = {"trivial": [], "product": [], "v1": [], "blocks": []}
        hits: dict[str, int] = {"product": 0, "v1": 0}
        for q in queries(n_queries):
            searches["trivial"].append(server.timed("GET", "/nonexistent")[0])
            elapsed, payload = server.timed(
                "POST", "/product/search",
                {"query": q, "user_id": "bench", "readable_cube_ids": ["bench-product"],
                 "top_k": 10},
            )  # fmt: skip
            searches["product"].append(elapsed)
            hits["product"] += len(json.loads(payload)["data"]["text_mem"][0]["memories"])
            elapsed, payload = server.timed(
                "POST", "/v1/workspaces/bench-v1/items/search", {"query": q, "k": 10}
            )
            searches["v1"].append(elapsed)
            hits["v1"] += len(json.loads(payload)["results"])
            searches["blocks"].append(
                server.timed("POST", "/v1/workspaces/bench-v1/search", {"query": q, "k": 10})[0]
            )
    finally:
        items.close()
        memory.close()
        store.close()
        server.stop()
    rates = {k: n / sum(v) for k, v in adds.items()}
    ratio_rounds = {
        k: statistics.median(b / a for a, b in zip(adds[k], adds["inproc"], strict=True))
        for k in ("product", "v1")
    }
    trivial_p50 = pct(searches["trivial"], 0.5)
    return {
        "items": n,
        "batch": BATCH,
        "queries": n_queries,
        "catch_up_first_search_s": round(catch_up_s, 2),
        "adds": {
            k: {
                "items_per_s": round(rates[k], 1),
                "request_p50_ms": round(pct(v, 0.5), 1),
                "request_p99_ms": round(pct(v, 0.99), 1),
                "ratio_to_inproc": None if k == "inproc" else round(ratio_rounds[k], 3),
            }
            for k, v in adds.items()
        },
        "searches": {
            k: {
                "p50_ms": round(pct(v, 0.5), 2),
                "p99_ms": round(pct(v, 0.99), 2),
                "ratio_p50_to_trivial": round(pct(v, 0.5) / trivial_p50, 2),
                "mean_hits": round(hits[k] / n_queries, 2) if k in hits else None,
            }
            for k, v in searches.items()
        },
        "aims": {
            "product_adds_per_s": AIM_ADDS,
            "product_adds_met": rates["product"] >= AIM_ADDS,
            "product_search_p50_ms": AIM_SEARCH_P50_MS,
            "product_search_met": pct(searches["product"], 0.5) <= AIM_SEARCH_P50_MS,
        },
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"memory items at {result['items']} items (batches of {result['batch']}), "
        f"{result['queries']} queries; load average {result['load_average'][0]:.1f} "
        f"on {result['cpus']} cores",
        "",
        f"{'adds':<34}{'items/s':>10}{'req p50 ms':>12}{'req p99 ms':>12}{'÷ inproc':>10}",
    ]
    names = {
        "product": "POST /product/add",
        "v1": "POST /v1/.../items",
        "inproc": "Items.add in-process (baseline)",
    }
    for key, row in result["adds"].items():
        ratio = "" if row["ratio_to_inproc"] is None else f"{row['ratio_to_inproc']:.2f}"
        lines.append(
            f"{names[key]:<34}{row['items_per_s']:>10.1f}{row['request_p50_ms']:>12.1f}"
            f"{row['request_p99_ms']:>12.1f}{ratio:>10}"
        )
    lines += ["", f"{'searches':<34}{'p50 ms':>10}{'p99 ms':>12}{'÷ trivial':>12}{'hits':>8}"]
    snames = {
        "trivial": "GET /nonexistent (baseline)",
        "product": "POST /product/search",
        "v1": "POST /v1/.../items/search",
        "blocks": "POST /v1/.../search (blocks)",
    }
    for key, row in result["searches"].items():
        hits = "" if row["mean_hits"] is None else f"{row['mean_hits']:.1f}"
        lines.append(
            f"{snames[key]:<34}{row['p50_ms']:>10.2f}{row['p99_ms']:>12.2f}"
            f"{row['ratio_p50_to_trivial']:>12.2f}{hits:>8}"
        )
    aims = result["aims"]
    lines += [
        "",
        f"aim ≥ {aims['product_adds_per_s']:.0f} adds/s via /product/add: "
        f"{'met' if aims['product_adds_met'] else 'NOT met'}; "
        f"aim search p50 ≤ {aims['product_search_p50_ms']:.0f} ms via /product/search: "
        f"{'met' if aims['product_search_met'] else 'NOT met'}; "
        f"first search after the adds (index catch-up): {result['catch_up_first_search_s']} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 items, 150 queries")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "items.json")
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    n = args.items or (2000 if args.quick else 10_000)
    n_queries = args.queries or (150 if args.quick else 400)
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-items-", dir=args.scratch))
    try:
        result = run(n, n_queries, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["quick"] = bool(args.quick)
    print(table(result))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
