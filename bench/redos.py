"""Parsing user text in linear time, and a server that keeps answering while it parses.

Run: ``.venv/bin/python bench/redos.py [--quick] [--size BYTES] [--rounds N]
[--json-out PATH]``

**Parse time** (:func:`memhub.memory.blocks.split_file_checked`, what the index and
the context run on every file). Inputs of ``--size`` bytes (default 1 MB):

- ``prose (baseline)``: ordinary markdown notes: wrapped paragraphs of 60–80
  character lines, a heading every ~15 lines, lists, a code fence now and then;
- ``prose (A/A control)``: the same text again, timed as a variant: its ratio to the
  baseline is the noise floor of this machine at this moment;
- adversarial inputs, each aimed at one part of the old or the new code:
  ``heading + spaces`` (the ReDoS of issue 8: ``# a`` + spaces + ``b``; the old
  regex was cubic, 2 KB took 34 s), ``many spaced headings`` (the same, a line at a
  time), ``unclosed markers`` (``[Strength:`` without ``]`` in one heading),
  ``dense headings`` (a heading every other line: over the structure budget, so
  cut into paragraphs), ``headings at the budget`` (just under
  ``MAX_BLOCK_STARTS`` headings: the most markdown-it work a file can cause),
  ``setext headings``, ``DiffMem headers, no /END`` (an entity file: the old splitter
  scanned to the end of the file for every header), ``nested quotes``, ``backticks``,
  ``unclosed fences``, ``speaker-like lines`` (transcript turn regex), ``deep JSON``
  (a ``.json`` of ``[`` only) and ``front matter`` (a memory item whose YAML is the
  whole budget).

Rounds: every input is split once per round, in a rotating order, after one warm-up
round; a ratio is the median of the per-round ratios (input time ÷ prose time in the
same round), so load that hits one round hits both sides. ``blocks`` is how many
blocks the input yields: the cost per block is what dense inputs pay.

**/health while parsing**: a real ``memhub serve`` (a subprocess on a temp data dir);
the adversarial file and the densest file are written, then a search makes the server
index them (the parse runs in the thread pool, off the event loop) while this process
asks ``/health`` every 5 ms on one keep-alive connection; the table gives /health's
latency idle and during each parse (p50, p99, max) and how long the search took.

Results: tables on stdout and ``bench/results/redos.json`` (or ``--json-out``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memhub.memory.blocks import split_file_checked
from memhub.memory.blocks.markdown import MAX_BLOCK_STARTS

ROOT = Path(__file__).resolve().parent
MEMHUB = Path(sys.executable).parent / "memhub"

WORDS = (
    "the agent keeps notes about projects people decisions and errors so that a new "
    "session starts with context memory hub search index sync file revision lease "
    "тест памяти пошук нотатки 検索 メモ"
).split()


def prose(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        if n % 15 == 1:
            line = f"{'#' * rng.randint(1, 3)} Section {n} {rng.choice(WORDS)}"
        elif n % 40 == 7:
            line = "```python\nprint('code stays whole')\n\n# not a heading\n```"
        elif n % 9 == 3:
            line = f"- {' '.join(rng.choice(WORDS) for _ in range(8))}"
        elif n % 6 == 0:
            line = ""
        else:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 13)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out)[:size]


def repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def inputs(size: int) -> dict[str, tuple[str, str]]:
    """name → (path, text)."""
    text = prose(size)
    front = "---\n" + repeat("k: [a, b, c]\n", 60_000) + "---\nbody\n"
    return {
        "prose (baseline)": ("notes/prose.md", text),
        "prose (A/A control)": ("notes/prose-again.md", text),
        "heading + spaces": ("notes/h.md", "# a" + " " * (size - 4) + "b"),
        "many spaced headings": ("notes/hs.md", repeat("# a" + " " * 60 + "b\n", size)),
        "unclosed markers": ("notes/m.md", "# " + repeat("[Strength: ", size - 2)),
        "dense headings": ("notes/dense.md", repeat("## x\ny\n", size)),
        "headings at the budget": (
            "notes/budget.md",
            repeat("## x\n" + "y" * (size // MAX_BLOCK_STARTS - 6) + "\n", size),
        ),
        "setext headings": ("notes/setext.md", repeat("a\n=\n", size)),
        "DiffMem headers, no /END": (
            "memories/people/p.md",
            repeat("### header\nline\n", size),
        ),
        "nested quotes": ("notes/q.md", ">" * size),
        "backticks": ("notes/b.md", "`" * size),
        "unclosed fences": ("notes/f.md", repeat("```\n", size)),
        "speaker-like lines": ("transcripts/t.txt", repeat("A" + " " * 38 + ":\n", size)),
        "deep JSON": ("data/deep.json", "[" * size),
        "front matter": ("items/fm.md", front),
    }


def time_parse(path: str, text: str) -> tuple[float, int, str | None]:
    start = time.perf_counter()
    blocks, error = split_file_checked(path, text, workspace="bench")
    return time.perf_counter() - start, len(blocks), error


def parse_bench(size: int, rounds: int) -> list[dict[str, Any]]:
    cases = inputs(size)
    names = list(cases)
    for name in names:  # warm-up round, not measured
        time_parse(*cases[name])
    times: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    info: dict[str, tuple[int, str | None]] = {}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        this: dict[str, float] = {}
        for name in order:
            elapsed, blocks, error = time_parse(*cases[name])
            this[name] = elapsed
            info[name] = (blocks, error)
        base = this["prose (baseline)"]
        for name in names:
            times[name].append(this[name])
            ratios[name].append(this[name] / base)
    rows = []
    for name in names:
        blocks, error = info[name]
        rows.append(
            {
                "input": name,
                "bytes": len(cases[name][1].encode()),
                "blocks": blocks,
                "median_s": statistics.median(times[name]),
                "max_s": max(times[name]),
                "ratio_to_prose": statistics.median(ratios[name]),
                "us_per_block": statistics.median(times[name]) / max(blocks, 1) * 1e6,
                "note": error or "",
            }
        )
    return rows


# -- /health while a parse runs ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, scratch: Path) -> None:
        self.port = free_port()
        self.data = scratch / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
        env.update({"MEMHUB_RATE_LIMIT_ENABLED": "false", "HOME": str(scratch)})
        self.log = (scratch / "server.log").open("wb")
        self.process = subprocess.Popen(
            [str(MEMHUB), "serve", "--port", str(self.port), "--data-dir", str(self.data)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("memhub serve did not start")
        self.key = (self.data / "admin.key").read_text().strip()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 600,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"Bearer {self.key}"} if hasattr(self, "key") else {}
        if body is not None:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def health_latencies(port: int, stop: Callable[[], bool], limit: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    while not stop() and len(out) < limit:
        start = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        out.append(time.perf_counter() - start)
        time.sleep(0.005)
    conn.close()
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def timed_search(server: Server, done: threading.Event, took: list[float]) -> None:
    """One search (which makes the server index what it has not seen), timed."""
    start = time.perf_counter()
    status, body = server.request("POST", "/v1/workspaces/default/search", b'{"query": "x"}')
    took.append(time.perf_counter() - start)
    done.set()
    assert status == 200, body


def health_bench(size: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="memhub-redos-") as scratch:
        server = Server(Path(scratch))
        try:
            idle = health_latencies(server.port, lambda: False, 200)
            rows.append({"while": "idle", **summary(idle), "search_s": 0.0})
            cases = inputs(size)
            for name in ("heading + spaces", "headings at the budget", "dense headings"):
                path, text = cases[name]
                status, _ = server.request("PUT", f"/blob/{path}", text.encode(), "text/markdown")
                assert status in (200, 201), status
                done = threading.Event()
                took: list[float] = []
                thread = threading.Thread(target=timed_search, args=(server, done, took))
                thread.start()
                samples = health_latencies(server.port, done.is_set, 100_000)
                thread.join()
                rows.append({"while": f"indexing {name}", **summary(samples), "search_s": took[0]})
        finally:
            server.stop()
    return rows


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(fmt(row[c]).ljust(widths[c]) for c in columns))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 MB")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-server", action="store_true", help="parse times only")
    parser.add_argument("--no-parse", action="store_true", help="the /health part only")
    parser.add_argument("--json-out", type=Path, default=ROOT / "results" / "redos.json")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    parse_rows = [] if args.no_parse else parse_bench(args.size, rounds)
    if parse_rows:
        print(f"split_file_checked on {args.size:,}-byte inputs, median of {rounds} rounds")
        print_table(
            parse_rows,
            ["input", "blocks", "median_s", "max_s", "ratio_to_prose", "us_per_block", "note"],
        )
    health_rows = [] if args.no_server else health_bench(args.size)
    if health_rows:
        print("\n/health latency (ms) of a real memhub serve, idle and while it indexes")
        print_table(health_rows, ["while", "n", "p50_ms", "p99_ms", "max_ms", "search_s"])
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(
        json.dumps(
            {"size": args.size, "rounds": rounds, "parse": parse_rows, "health": health_rows},
            indent=2,
        )
    )
    print(f"\nwrote {args.json_out}")


if __name__ == "__main__":
    main()
