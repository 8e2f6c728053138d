"""LoCoMo turn retrieval through memhub's search API, beside two rank_bm25 baselines.

Run: ``.venv/bin/python bench/locomo.py [--data ../shared/data/locomo] [--json-out PATH]``

The task (``<data>/README.md``): every session of every conversation file is loaded
into a real ``memhub serve`` (the embedded default on a temporary data dir, rate limits
off) through the HTTP API — one workspace per conversation file (``POST
/v1/workspaces``), one transcript file per session (``transcripts/<conv>/session_<n>.json``,
a JSON list of turns ``{speaker, dia_id, text, blip_caption?, date_time}``), which
memhub cuts into one block per turn keeping ``dia_id`` as the turn id. Each question
with evidence is then asked through ``POST /v1/workspaces/{ws}/search`` (k=10). An
evidence turn counts as found at k when its ``dia_id`` is the ``turn_id`` of one of the
top k results. (An evidence entry the dataset writes as ``"D8:6; D9:17"`` is one unit,
found when either id is.)

Baselines over the same turns, in the same run (``rank_bm25.BM25Okapi``, one index per
conversation, scores over all its turns):

- ``whitespace``: the turn text lowercased and split on whitespace (DiffMem's search);
- ``words``: ``\\w+`` tokens of the lowercased text minus English stop words.

Prints a table (recall@5 / recall@10 overall, per question category and per file) and
writes ``bench/results/locomo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from memhub.client import MemhubClient
from memhub.memory.analyzer import EN_STOP

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "../shared/data/locomo"
KS = (5, 10)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
AIM_RECALL_AT_5 = 0.60


# -- a real server ---------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    key: str
    pid: int
    data_dir: Path

    def client(self, workspace: str = "default") -> MemhubClient:
        return MemhubClient(self.base_url, self.key, workspace, timeout=120.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def memhub_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """``memhub serve`` on ``data_dir`` (the embedded default, every MEMHUB_* variable of
    this environment dropped, rate limits off), up once ``/health`` answers; stopped with
    SIGTERM on exit. The key is the local admin key the server writes on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env |= {"MEMHUB_RATE_LIMIT_ENABLED": "false", **(extra_env or {})}
    exe = str(Path(sys.executable).with_name("memhub"))
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.with_name(data_dir.name + "-server.log")
    argv = [exe, "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"memhub serve exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"memhub serve did not answer /health (log: {log_path})")
            time.sleep(0.1)
        key = (data_dir / "admin.key").read_text().strip()
        yield Server(base, key, proc.pid, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def resolve(path: str) -> Path:
    """A path given on the command line: as is when absolute, else from the repo root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else (ROOT / candidate).resolve()


# -- the data --------------------------------------------------------------------------


@dataclass
class Question:
    text: str
    category: int
    evidence: list[list[str]]  # units: each is found when any of its ids is


@dataclass
class Conversation:
    name: str
    sessions: dict[int, list[dict[str, Any]]]  # session number -> turns (with date_time)
    questions: list[Question] = field(default_factory=list)

    @property
    def turns(self) -> list[dict[str, Any]]:
        return [turn for n in sorted(self.sessions) for turn in self.sessions[n]]


def load(path: Path) -> Conversation:
    data = json.loads(path.read_text(encoding="utf-8"))
    sessions: dict[int, list[dict[str, Any]]] = {}
    for key, turns in data.items():
        match = re.fullmatch(r"session_(\d+)", key)
        if match is None or not isinstance(turns, list):
            continue
        when = data.get(f"{key}_date_time")
        sessions[int(match.group(1))] = [
            {**turn, "date_time": when} if when else dict(turn) for turn in turns
        ]
    questions = [
        Question(
            str(qa["question"]),
            int(qa["category"]),
            [re.split(r"[;\s]+", str(e).strip()) for e in qa["evidence"] if str(e).strip()],
        )
        for qa in data.get("qa", [])
        if qa.get("evidence")
    ]
    return Conversation(path.stem, sessions, questions)


# -- scoring ---------------------------------------------------------------------------

Ranker = Callable[[str], list[str]]  # question -> dia_ids, best first


class Tally:
    """Found / total evidence units, overall, per category and per file, at each k."""

    def __init__(self) -> None:
        self.total: Counter[str] = Counter()
        self.found = {k: Counter[str]() for k in KS}

    def add(self, conv: str, question: Question, ranked: list[str]) -> None:
        keys = ("all", f"category {question.category}", f"file {conv}")
        for unit in question.evidence:
            for key in keys:
                self.total[key] += 1
            for k in KS:
                if any(e in ranked[:k] for e in unit):
                    for key in keys:
                        self.found[k][key] += 1

    def recall(self, key: str, k: int) -> float:
        return self.found[k][key] / self.total[key] if self.total[key] else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            key: {
                "units": self.total[key],
                **{f"recall@{k}": round(self.recall(key, k), 4) for k in KS},
            }
            for key in self.total
        }


def bm25_ranker(turns: list[dict[str, Any]], tokenize: Callable[[str], list[str]]) -> Ranker:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokenize(str(t.get("text", ""))) for t in turns])
    ids = [str(t["dia_id"]) for t in turns]

    def rank(question: str) -> list[str]:
        scores = bm25.get_scores(tokenize(question))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        return [ids[i] for i in order[: max(KS)]]

    return rank


def whitespace_tokens(text: str) -> list[str]:
    return text.lower().split()


def word_tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if w not in EN_STOP]


# -- memhub through the API --------------------------------------------------------------


def load_into(server: Server, conv: Conversation) -> tuple[str, int]:
    """One workspace per conversation, one transcript file per session; returns the
    workspace and the number of blocks the index holds once caught up."""
    workspace = f"locomo-{conv.name}"
    with server.client(workspace) as client:
        client.request("POST", "/v1/workspaces", json={"name": workspace})
        operations = [
            {
                "op": "put",
                "path": f"transcripts/{conv.name}/session_{n}.json",
                "content": json.dumps(turns, ensure_ascii=False, indent=1),
                "content_type": "application/json",
            }
            for n, turns in sorted(conv.sessions.items())
        ]
        for result in client.batch_write(operations):
            if result["status"] not in (200, 201):
                raise RuntimeError(f"writing {result['path']} failed: {result}")
        status = client.request("GET", f"/v1/workspaces/{workspace}/index").json()
    return workspace, int(status["blocks"])


def api_ranker(client: MemhubClient, workspace: str) -> Ranker:
    def rank(question: str) -> list[str]:
        found = client.search(question, k=max(KS), workspace=workspace)
        return [str(hit["turn_id"]) for hit in found["results"] if hit.get("turn_id")]

    return rank


# -- output ------------------------------------------------------------------------------


def table(results: dict[str, Tally], files: list[str]) -> str:
    keys = ["all", *(f"category {c}" for c in CATEGORIES), *(f"file {f}" for f in files)]
    names = {f"category {c}": f"{c} {n}" for c, n in CATEGORIES.items()}
    any_tally = next(iter(results.values()))
    header = ["", "units", *results]
    rows = [header]
    for key in keys:
        label = "overall" if key == "all" else names.get(key, key)
        rows.append(
            [
                label,
                str(any_tally.total[key]),
                *(f"{t.recall(key, 5):.3f} / {t.recall(key, 10):.3f}" for t in results.values()),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder of LoCoMo *.json files")
    parser.add_argument("--json-out", default=str(ROOT / "bench" / "results" / "locomo.json"))
    parser.add_argument("--scratch", default=None, help="where the temporary data dir goes")
    args = parser.parse_args()

    data = resolve(args.data)
    paths = sorted(data.glob("*.json"))
    if not paths:
        print(f"no LoCoMo files in {data}", file=sys.stderr)
        return 2
    convs = [load(p) for p in paths]
    n_turns = sum(len(c.turns) for c in convs)
    n_questions = sum(len(c.questions) for c in convs)
    print(f"{len(convs)} conversations, {n_turns} turns, {n_questions} questions with evidence")

    methods = {
        "memhub API": Tally(),
        "BM25 whitespace": Tally(),
        "BM25 words-stop": Tally(),
    }
    timings: dict[str, float] = {}
    scratch = Path(tempfile.mkdtemp(prefix="memhub-locomo-", dir=args.scratch))
    blocks: dict[str, int] = {}
    latencies: list[float] = []
    try:
        with memhub_server(scratch / "data") as server:
            t0 = time.perf_counter()
            workspaces = {}
            for conv in convs:
                workspaces[conv.name], blocks[conv.name] = load_into(server, conv)
            timings["load_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            with server.client() as client:
                for conv in convs:
                    rank = api_ranker(client, workspaces[conv.name])
                    for q in conv.questions:
                        t1 = time.perf_counter()
                        ranked = rank(q.text)
                        latencies.append(time.perf_counter() - t1)
                        methods["memhub API"].add(conv.name, q, ranked)
            timings["search_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    baselines = (("BM25 whitespace", whitespace_tokens), ("BM25 words-stop", word_tokens))
    for name, tokenize in baselines:
        t0 = time.perf_counter()
        for conv in convs:
            rank = bm25_ranker(conv.turns, tokenize)
            for q in conv.questions:
                methods[name].add(conv.name, q, rank(q.text))
        timings[f"{name}_s"] = time.perf_counter() - t0

    files = [c.name for c in convs]
    print()
    print("recall@5 / recall@10 of evidence turns")
    print(table(methods, files))
    ours = methods["memhub API"].recall("all", 5)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print()
    print(f"blocks indexed: {blocks} (turns in the data: {n_turns})")
    for name in ("BM25 whitespace", "BM25 words-stop"):
        base = methods[name].recall("all", 5)
        print(f"memhub / {name} at @5: {ours / base:.2f}x" if base else "")
    print(f"search over HTTP: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} questions)")
    verdict = "met" if ours >= AIM_RECALL_AT_5 else "MISSED"
    print(f"aim recall@5 >= {AIM_RECALL_AT_5}: {verdict} ({ours:.3f})")

    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "data": str(data),
                "files": files,
                "turns": n_turns,
                "blocks": blocks,
                "questions": n_questions,
                "methods": {name: t.as_dict() for name, t in methods.items()},
                "aim": {"recall@5": AIM_RECALL_AT_5, "met": ours >= AIM_RECALL_AT_5},
                "search_ms": {"p50": round(p50, 2), "p99": round(p99, 2)},
                "timings_s": {k: round(v, 2) for k, v in timings.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
