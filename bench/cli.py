"""How long the ``memhub`` command takes, as a process, beside ``python -c pass``.

Run: ``.venv/bin/python bench/cli.py [--quick] [--rounds N] [--json-out PATH] [--scratch DIR]``

One ``memhub serve`` (embedded default, rate limits off) and a folder of N small files
(10,000; 1,000 with ``--quick``) synced once before timing. Then, in rounds (7; 3 with
``--quick``), each round running every command once in a shuffled order:

- ``python -c pass``           the interpreter alone: the floor (and an A/A copy of it,
                                 which shows how noisy the machine is)
- ``memhub version``           aim ≤ 0.25 s
- ``memhub --help``            aim ≤ 0.25 s
- ``memhub sync DIR``          a no-op sync of the N files, end to end; aim ≤ 1 s (10,000)
- ``memhub hook session-start``  the Claude Code hook with the folder configured and
                                 nothing to pull, then the context; aim ≤ 0.5 s

Reported: the median seconds, the median of per-round ratios to ``python -c pass``,
the median overhead above it, and whether the median meets the aim. The aims are
absolute (they are what a user waits for); on a loaded machine compare the overheads.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MEMHUB = BIN / "memhub"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()[-2000:]}")
    return elapsed


def start_server(scratch: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (scratch / "server.log").open("wb")
    process = subprocess.Popen(
        [str(MEMHUB), "serve", "--port", str(port), "--data-dir", str(scratch / "server")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**env, "MEMHUB_RATE_LIMIT_ENABLED": "false"}, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit((scratch / "server.log").read_text())


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        directory = root / f"d{i % 50:02d}" / f"e{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"note-{i:05d}.md").write_text(f"# note {i}\n\nsomething to remember {i}\n")


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'command':<32}{'median s':>10}{'× python':>10}{'overhead s':>12}{'aim s':>8}  met"
    lines = [head, "-" * len(head)]
    for r in rows:
        aim = f"{r['aim_s']:.2f}" if r["aim_s"] else "-"
        met = "-" if r["aim_s"] is None else ("yes" if r["met"] else "no")
        lines.append(
            f"{r['command']:<32}{r['median_s']:>10.3f}{r['ratio_to_python']:>10.1f}"
            f"{r['overhead_s']:>12.3f}{aim:>8}  {met}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 files, 3 rounds")
    parser.add_argument("--files", type=int, help="how many files (overrides --quick)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7, --quick 3)")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "cli.json")
    parser.add_argument("--scratch", type=Path, help="where the temp dirs go")
    args = parser.parse_args()
    files = args.files or (1_000 if args.quick else 10_000)
    rounds = args.rounds or (3 if args.quick else 7)

    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-cli-", dir=args.scratch))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    base_env.update(HOME=str(scratch / "home"), XDG_DATA_HOME=str(scratch / "xdg"))
    process, url = start_server(scratch, base_env)
    try:
        key = (scratch / "server" / "admin.key").read_text().strip()
        env = {
            **base_env,
            "MEMHUB_SERVER": url,
            "MEMHUB_KEY": key,
            "MEMHUB_CONFIG_DIR": str(scratch / "config"),
            "MEMHUB_DATA_DIR": str(scratch / "client-data"),
            "CLAUDE_CONFIG_DIR": str(scratch / "claude"),
        }
        folder = scratch / "notes"
        make_tree(folder, files)
        run([str(MEMHUB), "sync", str(folder), "--prefix", "notes"], env)  # the first sync
        run([str(MEMHUB), "hooks", "install", "--claude", "--folder", f"{folder}:notes"], env)
        commands: dict[str, tuple[list[str], float | None]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "python -c pass (A/A)": ([sys.executable, "-c", "pass"], None),
            "memhub version": ([str(MEMHUB), "version"], 0.25),
            "memhub --help": ([str(MEMHUB), "--help"], 0.25),
            f"memhub sync ({files:,} files)": ([str(MEMHUB), "sync", str(folder)], 1.0),
            "memhub hook session-start": ([str(MEMHUB), "hook", "session-start"], 0.5),
        }
        for argv, _aim in commands.values():  # warm-up: page cache, .pyc files
            run(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            order = list(commands)
            random.shuffle(order)
            for name in order:
                times[name].append(run(commands[name][0], env))
        floor = times["python -c pass"]
        rows = []
        for name, (_argv, aim) in commands.items():
            median = statistics.median(times[name])
            ratio = statistics.median(t / b for t, b in zip(times[name], floor, strict=True))
            overhead = statistics.median(t - b for t, b in zip(times[name], floor, strict=True))
            rows.append(
                {
                    "command": name,
                    "median_s": round(median, 4),
                    "ratio_to_python": round(ratio, 2),
                    "overhead_s": round(overhead, 4),
                    "aim_s": aim,
                    "met": aim is None or median <= aim,
                    "samples_s": [round(t, 4) for t in times[name]],
                }
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(rows))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {
        "files": files,
        "rounds": rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "rows": rows,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"load average {load}; wrote {args.json_out}")


if __name__ == "__main__":
    main()
