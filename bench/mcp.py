# ruff: noqa: E402  (sys.path is fixed before the imports: see below)
"""MCP tool-call latency over streamable HTTP beside the same operation over REST.

Run: ``.venv/bin/python bench/mcp.py [--quick] [--json-out PATH] [--scratch DIR]``

One ``memhub serve`` subprocess on a fresh data dir (the embedded default:
SQLite + local blobs), rate limiter on with limits it never reaches, seeded
with markdown notes. One client process, one event loop, concurrency 1. Three
operations, each done five ways in turn, call by call: REST; the MCP tool through
the SDK's own client twice, on the 2026 protocol (``mode="auto"``: the
per-request envelope, the SDK's single-exchange entry) and on the 2025
handshake protocol (``mode="legacy"``, what most clients in the field speak;
memhub serves these in place, ``memhub/mcp/exchange.py``); and the same 2025-era
``tools/call`` POST made by the bare httpx client of the REST series (``raw``:
after one ``initialize``, with the headers the SDK client sends, the JSON
response parsed), which is the protocol and the server without the SDK client's
own work:

============  ===============================================  ====================================
operation     REST (the baseline)                              MCP tool (``POST /mcp``, stateless)
============  ===============================================  ====================================
search        ``POST /v1/workspaces/default/search``           ``search_memory``
read          ``GET /v1/workspaces/default/files/{path}``      ``read_file``
write         ``PUT …/files/{new path}`` + ``If-None-Match``   ``write_file`` (no base_rev: create)
============  ===============================================  ====================================

Each iteration runs REST, MCP, MCP 2025, raw, then REST again (``REST'``, the
A/A control: the same request twice shows the noise floor). Rounds are
interleaved; the summary is the median over rounds of each round's p50
difference (MCP − REST, in ms) and ratio (MCP ÷ REST). The aim (issue 10): an
MCP tool call adds ≤ 2 ms at p50 over the same REST request, read on the raw
series: the same HTTP client both ways, so the difference is the protocol and
memhub's server; the SDK series add the SDK client's own work on top (JSON-RPC
plumbing, pydantic models, the jsonschema check of every result), which memhub
does not run and can only shrink by sending less. Server and client CPU time per
call are measured in blocks of calls beside the latencies.

``--baseline-src DIR`` serves another tree's sources too (``DIR`` is its
``src``, e.g. ``git archive main src | tar -x -C /tmp/main``), on its own data
dir, and interleaves its calls with this tree's in every iteration: a
before/after comparison under the same machine state.

Numbers go to ``bench/results/mcp.json`` (or ``--json-out``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's directory comes first on sys.path, and this file
# (mcp.py) would shadow the MCP SDK's ``mcp`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client

from mcp import Client

HERE = Path(__file__).resolve().parent
MEMHUB = Path(sys.executable).parent / "memhub"
WS = "/v1/workspaces/default"
WORDS = "garden tomato compost memory agent python sqlite search context river mountain".split()
FULL = {"rounds": 5, "calls": 50, "cpu_calls": 200, "notes": 300}
QUICK = {"rounds": 3, "calls": 20, "cpu_calls": 60, "notes": 100}

Call = Callable[[int], Awaitable[None]]


def start_server(
    data_dir: Path, src: Path | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``memhub serve`` on ``data_dir``; with ``src``, memhub imported from there."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    env |= {"MEMHUB_RATE_LIMIT": "1000000000", "MEMHUB_RATE_LIMIT_SCOPES": "admin=1000000000"}
    env |= {"HOME": str(data_dir.parent), "XDG_DATA_HOME": str(data_dir.parent / "xdg")}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = data_dir.parent / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MEMHUB, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"memhub serve exited:\n{log.read_text()}")
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url, log
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"memhub serve did not start:\n{log.read_text()}")


def note(i: int) -> bytes:
    words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(60)]
    return f"# Note {i}\n\n{' '.join(words)} marker{i}\n".encode()


async def seed(rest: httpx2.AsyncClient, count: int) -> None:
    for i in range(count):
        response = await rest.put(f"{WS}/files/notes/n{i}.md", content=note(i))
        assert response.status_code in (200, 201), response.text


def rest_ways(rest: httpx2.AsyncClient, run_id: str) -> dict[str, Call]:
    counter = iter(range(10**9))

    async def search(i: int) -> None:
        r = await rest.post(f"{WS}/search", json={"query": WORDS[i % len(WORDS)], "k": 10})
        assert r.status_code == 200 and r.json()["results"], r.text

    async def read(i: int) -> None:
        r = await rest.get(f"{WS}/files/notes/n{i % 50}.md")
        assert r.status_code == 200, r.text

    async def write(_i: int) -> None:
        path = f"{WS}/files/bench/{run_id}/rest-{next(counter)}.md"
        r = await rest.put(path, content=b"# x\nhello\n", headers={"if-none-match": "*"})
        assert r.status_code == 201, r.text

    return {"search": search, "read": read, "write": write}


def mcp_ways(mcp: Client, run_id: str) -> dict[str, Call]:
    counter = iter(range(10**9))

    async def search(i: int) -> None:
        r = await mcp.call_tool("search_memory", {"query": WORDS[i % len(WORDS)], "k": 10})
        assert not r.is_error and r.structured_content and r.structured_content["results"]

    async def read(i: int) -> None:
        r = await mcp.call_tool("read_file", {"path": f"notes/n{i % 50}.md"})
        assert not r.is_error, r.content

    async def write(_i: int) -> None:
        path = f"bench/{run_id}/mcp-{next(counter)}.md"
        r = await mcp.call_tool("write_file", {"path": path, "content": "# x\nhello\n"})
        assert not r.is_error, r.content

    return {"search": search, "read": read, "write": write}


AIM_MS = 2.0
RAW_VERSION = "2025-11-25"  # what the SDK's legacy client negotiates
RAW_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": RAW_VERSION,
}


async def raw_session(rest: httpx2.AsyncClient) -> None:
    """The one ``initialize`` (and ``notifications/initialized``) a 2025-era client sends."""
    params = {
        "protocolVersion": RAW_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    }
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    headers = {k: v for k, v in RAW_HEADERS.items() if k != "mcp-protocol-version"}
    r = await rest.post("/mcp", json=body, headers=headers)
    assert r.status_code == 200 and "result" in r.json(), r.text
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    r = await rest.post("/mcp", json=note, headers=RAW_HEADERS)
    assert r.status_code in (200, 202), r.text


def raw_ways(rest: httpx2.AsyncClient, run_id: str) -> dict[str, Call]:
    """The tool calls as bare JSON-RPC POSTs on the REST series' own client."""
    counter = iter(range(10**9))

    async def tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = {"name": name, "arguments": arguments}
        body = {"jsonrpc": "2.0", "id": next(counter), "method": "tools/call", "params": params}
        r = await rest.post("/mcp", json=body, headers=RAW_HEADERS)
        result = r.json()["result"]
        assert r.status_code == 200 and not result.get("isError"), r.text
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    async def search(i: int) -> None:
        found = await tool("search_memory", {"query": WORDS[i % len(WORDS)], "k": 10})
        assert found["results"]

    async def read(i: int) -> None:
        await tool("read_file", {"path": f"notes/n{i % 50}.md"})

    async def write(_i: int) -> None:
        path = f"bench/{run_id}/raw-{next(counter)}.md"
        await tool("write_file", {"path": path, "content": "# x\nhello\n"})

    return {"search": search, "read": read, "write": write}


def ways(
    rest: httpx2.AsyncClient, mcp: Client, legacy: Client, run_id: str
) -> dict[str, dict[str, Call]]:
    by_way = {
        "REST": rest_ways(rest, run_id),
        "MCP": mcp_ways(mcp, run_id),
        "MCP 2025": mcp_ways(legacy, f"{run_id}-2025"),
        "raw": raw_ways(rest, run_id),
    }
    return {op: {way: calls[op] for way, calls in by_way.items()} for op in by_way["REST"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_per_call(pid: int, call: Call, calls: int) -> tuple[float, float]:
    """(server CPU ms, client CPU ms) per call over a block of ``calls`` calls."""
    server, client = cpu_seconds(pid), time.process_time()
    for i in range(calls):
        await call(i)
    return (
        (cpu_seconds(pid) - server) * 1000 / calls,
        (time.process_time() - client) * 1000 / calls,
    )


async def timed(call: Call, i: int) -> float:
    started = time.perf_counter()
    await call(i)
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class Served:
    """One ``memhub serve`` under test: this tree's (prefix ""), or ``--baseline-src``'s
    ("base ")."""

    prefix: str
    url: str
    key: str
    pid: int


WAYS = ("REST", "MCP", "MCP 2025", "raw")


@contextlib.asynccontextmanager
async def clients(served: Served, plan: dict[str, int]) -> AsyncIterator[dict[str, Call]]:
    """The three ways of each operation against one server, seeded: {"read REST": …}."""
    headers = {"authorization": f"Bearer {served.key}"}
    async with (
        httpx2.AsyncClient(base_url=served.url, headers=headers, timeout=60) as rest,
        httpx2.AsyncClient(headers=headers, timeout=60) as mcp_http,
        Client(streamable_http_client(f"{served.url}/mcp", http_client=mcp_http)) as mcp,
        Client(
            streamable_http_client(f"{served.url}/mcp", http_client=mcp_http), mode="legacy"
        ) as old,
    ):
        assert mcp.protocol_version == "2026-07-28", mcp.protocol_version
        assert old.protocol_version.startswith("2025"), old.protocol_version
        await seed(rest, plan["notes"])
        await raw_session(rest)
        table = ways(rest, mcp, old, os.urandom(4).hex())
        yield {f"{op} {way}": call for op, series in table.items() for way, call in series.items()}


async def measure(targets: list[Served], plan: dict[str, int]) -> dict[str, Any]:
    """Rounds of interleaved calls: in each iteration every way of every server in turn,
    then this tree's REST again (the A/A control)."""
    async with contextlib.AsyncExitStack() as stack:
        calls = {t.prefix: await stack.enter_async_context(clients(t, plan)) for t in targets}
        for by_name in calls.values():  # warm-up: index built, imports done, pools open
            for call in by_name.values():
                for i in range(3):
                    await call(i)
        rounds: dict[str, list[dict[str, float]]] = {op: [] for op in ("search", "read", "write")}
        for _ in range(plan["rounds"]):
            for op, per_round in rounds.items():
                per_round.append(await one_round(targets, calls, op, plan))
    return rounds


async def one_round(
    targets: list[Served], calls: dict[str, dict[str, Call]], op: str, plan: dict[str, int]
) -> dict[str, float]:
    names = [
        (t, f"{t.prefix}{way}", calls[t.prefix][f"{op} {way}"]) for t in targets for way in WAYS
    ]
    samples: dict[str, list[float]] = {name: [] for _t, name, _c in names}
    samples["REST'"] = []
    for i in range(plan["calls"]):
        for _t, name, call in names:
            samples[name].append(await timed(call, i))
        samples["REST'"].append(await timed(calls[""][f"{op} REST"], i))
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    # CPU time is steadier than latency on a loaded machine: blocks of calls
    for target, name, call in names:
        server, client = await cpu_per_call(target.pid, call, plan["cpu_calls"])
        p50[f"{name} server cpu"], p50[f"{name} client cpu"] = server, client
    return p50


def summarise(
    rounds: dict[str, list[dict[str, float]]], prefix: str = ""
) -> dict[str, dict[str, float]]:
    out = {}
    for op, per_round in rounds.items():
        med = statistics.median
        rest, mcp, legacy, raw = (f"{prefix}{way}" for way in WAYS)
        out[op] = {
            "rest_p50_ms": med(r[rest] for r in per_round),
            "mcp_p50_ms": med(r[mcp] for r in per_round),
            "mcp_minus_rest_ms": med(r[mcp] - r[rest] for r in per_round),
            "mcp_over_rest": med(r[mcp] / r[rest] for r in per_round),
            "mcp2025_p50_ms": med(r[legacy] for r in per_round),
            "mcp2025_minus_rest_ms": med(r[legacy] - r[rest] for r in per_round),
            "raw_p50_ms": med(r[raw] for r in per_round),
            "raw_minus_rest_ms": med(r[raw] - r[rest] for r in per_round),
            "raw_over_rest": med(r[raw] / r[rest] for r in per_round),
            "aa_diff_ms": med(r["REST'"] - r["REST"] for r in per_round),
            "rest_server_cpu_ms": med(r[f"{rest} server cpu"] for r in per_round),
            "mcp_server_cpu_ms": med(r[f"{mcp} server cpu"] for r in per_round),
            "mcp2025_server_cpu_ms": med(r[f"{legacy} server cpu"] for r in per_round),
            "raw_server_cpu_ms": med(r[f"{raw} server cpu"] for r in per_round),
            "rest_client_cpu_ms": med(r[f"{rest} client cpu"] for r in per_round),
            "mcp_client_cpu_ms": med(r[f"{mcp} client cpu"] for r in per_round),
            "mcp2025_client_cpu_ms": med(r[f"{legacy} client cpu"] for r in per_round),
            "raw_client_cpu_ms": med(r[f"{raw} client cpu"] for r in per_round),
        }
    return out


def print_tables(summary: dict[str, dict[str, float]], plan: dict[str, int], title: str) -> None:
    print(f"\n{title}: MCP over streamable HTTP vs REST, concurrency 1, {plan['rounds']} "
          f"rounds x {plan['calls']} calls")  # fmt: skip
    print("latency p50, ms; MCP/2025: the SDK's client (2026 / 2025 protocol); raw: the same "
          "2025 tools/call on the REST series' bare httpx client")  # fmt: skip
    print(f"{'operation':<10}{'REST':>7}{'raw':>7}{'raw-REST':>9}{'MCP':>7}{'MCP-REST':>9}"
          f"{'2025':>7}{'2025-REST':>10}{'A/A':>7}")  # fmt: skip
    for op, s in summary.items():
        print(f"{op:<10}{s['rest_p50_ms']:>7.2f}{s['raw_p50_ms']:>7.2f}"
              f"{s['raw_minus_rest_ms']:>+9.2f}{s['mcp_p50_ms']:>7.2f}"
              f"{s['mcp_minus_rest_ms']:>+9.2f}{s['mcp2025_p50_ms']:>7.2f}"
              f"{s['mcp2025_minus_rest_ms']:>+10.2f}{s['aa_diff_ms']:>+7.2f}")  # fmt: skip
    print("\nCPU time per call, ms (blocks of calls; steadier than latency on a loaded machine)")
    print(f"{'operation':<10}{'srv REST':>9}{'srv raw':>8}{'+raw':>6}{'srv MCP':>8}{'+MCP':>6}"
          f"{'srv 2025':>9}{'+2025':>6}{'cli REST':>9}{'cli raw':>8}{'cli MCP':>8}"
          f"{'cli 2025':>9}")  # fmt: skip
    for op, s in summary.items():
        base = s["rest_server_cpu_ms"]
        print(f"{op:<10}{base:>9.2f}{s['raw_server_cpu_ms']:>8.2f}"
              f"{s['raw_server_cpu_ms'] - base:>+6.2f}{s['mcp_server_cpu_ms']:>8.2f}"
              f"{s['mcp_server_cpu_ms'] - base:>+6.2f}{s['mcp2025_server_cpu_ms']:>9.2f}"
              f"{s['mcp2025_server_cpu_ms'] - base:>+6.2f}{s['rest_client_cpu_ms']:>9.2f}"
              f"{s['raw_client_cpu_ms']:>8.2f}{s['mcp_client_cpu_ms']:>8.2f}"
              f"{s['mcp2025_client_cpu_ms']:>9.2f}")  # fmt: skip
    verdicts = ", ".join(
        f"{op} {added:+.2f} ms {'met' if added <= AIM_MS else 'NOT met'}"
        for op, added in ((op, s["raw_minus_rest_ms"]) for op, s in summary.items())
    )
    print(f"\naim (raw - REST <= {AIM_MS} ms at p50): {verdicts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 20 calls per series")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "mcp.json")
    parser.add_argument("--scratch", type=Path, default=None, help="where the data dirs go")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="also serve another tree's src/ (e.g. a git archive of main) and interleave it",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-mcp-", dir=args.scratch))
    started = time.monotonic()
    sources = {"": None} | ({"base ": args.baseline_src} if args.baseline_src else {})
    processes: list[subprocess.Popen[bytes]] = []
    try:
        targets = []
        for prefix, src in sources.items():
            data = scratch / (prefix.strip() or "this") / "data"
            process, url, _log = start_server(data, src)
            processes.append(process)
            key = (data / "admin.key").read_text().strip()
            targets.append(Served(prefix, url, key, process.pid))
        rounds = asyncio.run(measure(targets, plan))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
        shutil.rmtree(scratch, ignore_errors=True)
    kind = "quick" if args.quick else "full"
    result: dict[str, Any] = {"plan": plan, "quick": args.quick, "rounds": rounds}
    for prefix, src in sources.items():
        summary = summarise(rounds, prefix)
        result["baseline_summary" if prefix else "summary"] = summary
        print_tables(summary, plan, f"{'baseline ' + str(src) if src else 'this tree'} ({kind})")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json_out} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
