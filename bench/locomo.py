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
from dataclasses import dataclass, field, replace
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
        # (file, category, 0) -> units; (file, category, k) -> found at k
        self.per_file_category: Counter[tuple[str, int, int]] = Counter()

    def add(self, conv: str, question: Question, ranked: list[str]) -> None:
        keys = ("all", f"category {question.category}", f"file {conv}")
        for unit in question.evidence:
            for key in keys:
                self.total[key] += 1
            self.per_file_category[(conv, question.category, 0)] += 1
            for k in KS:
                if any(e in ranked[:k] for e in unit):
                    self.per_file_category[(conv, question.category, k)] += 1
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


FORMATS = ("json", "markdown")
DEFAULT_PREFIX = {"json": "transcripts/", "markdown": "notes/"}


def render(conv: Conversation, n: int, fmt: str) -> tuple[str, str]:
    """(file name, content) of one session: a JSON list of turns, or markdown with one
    ``## D1:3 Speaker`` section per turn and the session date in the ``#`` heading."""
    turns = conv.sessions[n]
    if fmt == "json":
        return f"session_{n}.json", json.dumps(turns, ensure_ascii=False, indent=1)
    when = turns[0].get("date_time", "") if turns else ""
    lines = [f"# Session {n} — {when}" if when else f"# Session {n}", ""]
    for turn in turns:
        lines += [f"## {turn['dia_id']} {turn['speaker']}", str(turn.get("text", ""))]
        if turn.get("blip_caption"):
            lines.append(f"[image: {turn['blip_caption']}]")
        lines.append("")
    return f"session_{n}.md", "\n".join(lines)


def session_files(conv: Conversation, fmt: str, prefix: str) -> list[tuple[str, str]]:
    out = []
    for n in sorted(conv.sessions):
        name, content = render(conv, n, fmt)
        out.append((f"{prefix}{conv.name}/{name}", content))
    return out


def load_into(server: Server, conv: Conversation, fmt: str, prefix: str) -> tuple[str, int]:
    """One workspace per conversation, one file per session; returns the workspace and
    the number of blocks the index holds once caught up."""
    workspace = f"locomo-{conv.name}"
    types = {"json": "application/json", "markdown": "text/markdown"}
    with server.client(workspace) as client:
        client.request("POST", "/v1/workspaces", json={"name": workspace})
        operations = [
            {"op": "put", "path": path, "content": content, "content_type": types[fmt]}
            for path, content in session_files(conv, fmt, prefix)
        ]
        for result in client.batch_write(operations):
            if result.status not in (200, 201):
                raise RuntimeError(f"writing {result.path} failed: {result}")
        status = client.request("GET", f"/v1/workspaces/{workspace}/index").json()
    return workspace, int(status["blocks"])


def api_ranker(client: MemhubClient, workspace: str) -> Ranker:
    def rank(question: str) -> list[str]:
        found = client.search(question, k=max(KS), workspace=workspace)
        return [str(hit.turn_id) for hit in found.results if hit.turn_id]

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


# -- leave-one-conversation-out ---------------------------------------------------------------

# The ranking knobs searched (memhub.memory.documents.Ranking); ``neighbours`` is fixed
# when an index is built, the others per query.
GRID: dict[str, tuple[Any, ...]] = {
    "neighbours": (1, 2, 3),
    "context": (0.4, 0.7, 1.0),
    "tie_breaker": (0.1, 0.3, 0.5),
    "speaker_boost": (1.0, 2.0, 3.0),
}
QUICK_GRID: dict[str, tuple[Any, ...]] = {
    "neighbours": (1, 2),
    "context": (0.7, 1.0),
    "tie_breaker": (0.3,),
    "speaker_boost": (1.0, 2.0),
}


def grid_configs(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        configs = [{**c, name: v} for c in configs for v in values]
    return configs


def config_label(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def leave_one_out(
    convs: list[Conversation], formats: list[str], scratch: Path, quick: bool
) -> dict[str, Any]:
    """Choose the ranking on two files, report it on the third, for every rotation.

    In-process (the same WorkspaceIndex the server uses, minus HTTP), so a grid of
    configurations is affordable. Returns per held-out file: the chosen
    configuration, its figures on the files it was chosen on, and on the held-out
    file, per format and category."""
    from memhub.memory.documents import RANKING
    from memhub.memory.index import WorkspaceIndex
    from memhub.store import open_store

    grid = QUICK_GRID if quick else GRID
    configs = grid_configs(grid)
    default = {name: getattr(RANKING, name) for name in grid}
    if default not in configs:
        configs.append(default)
    # tallies[(fmt, config label)] -> Tally over every file
    tallies: dict[tuple[str, str], Tally] = {}
    for fmt in formats:
        store = open_store(f"sqlite:///{scratch}/loo-{fmt}.db", "memory://")
        for conv in convs:
            workspace = f"locomo-{conv.name}"
            store.create_workspace(workspace, exist_ok=True)
            for path, content in session_files(conv, fmt, DEFAULT_PREFIX[fmt]):
                store.put(workspace, path, content.encode())
        for neighbours in grid["neighbours"]:
            indexes = {}
            for conv in convs:
                ranking = replace(RANKING, neighbours=neighbours)
                root = scratch / f"idx-{fmt}-{neighbours}-{conv.name}"
                index = WorkspaceIndex(root, f"locomo-{conv.name}", store, ranking)
                index.catch_up()
                indexes[conv.name] = index
            for config in configs:
                if config["neighbours"] != neighbours:
                    continue
                tally = tallies.setdefault((fmt, config_label(config)), Tally())
                for conv in convs:
                    index = indexes[conv.name]
                    index.ranking = replace(RANKING, **config)
                    for q in conv.questions:
                        hits = index.search(q.text, k=max(KS))[0]
                        tally.add(conv.name, q, [str(h.turn_id) for h in hits if h.turn_id])
            for index in indexes.values():
                index.close()
        print(f"  {fmt}: {len(configs)} configurations evaluated", flush=True)

    def mean_r5(label: str, files: list[str]) -> float:
        return sum(tallies[(f, label)].recall(f"file {c}", 5) for f in formats for c in files) / (
            len(formats) * len(files)
        )

    names = [c.name for c in convs]
    labels = [config_label(c) for c in configs]
    rotations = {}
    for held in names:
        tuned_on = [n for n in names if n != held]
        best = max(labels, key=lambda lb: (mean_r5(lb, tuned_on), lb == config_label(default)))
        rotations[held] = {
            "config": best,
            "tuned": {f: _recalls(tallies[(f, best)], tuned_on) for f in formats},
            "held_out": {f: _recalls(tallies[(f, best)], [held]) for f in formats},
            "held_out_categories": {
                f: {
                    CATEGORIES[c]: round(_category_recall(tallies[(f, best)], held, c), 3)
                    for c in CATEGORIES
                }
                for f in formats
            },
        }
    overall = max(labels, key=lambda lb: (mean_r5(lb, names), lb == config_label(default)))
    return {
        "grid": {k: list(v) for k, v in grid.items()},
        "default": config_label(default),
        "default_figures": {
            f: _recalls(tallies[(f, config_label(default))], names) for f in formats
        },
        "rotations": rotations,
        "best_on_all": overall,
    }


def _recalls(tally: Tally, files: list[str]) -> dict[str, float]:
    """Recall@k pooled over the evidence units of ``files``."""
    out = {}
    for k in KS:
        found = sum(tally.found[k][f"file {f}"] for f in files)
        total = sum(tally.total[f"file {f}"] for f in files)
        out[f"recall@{k}"] = round(found / total, 3) if total else 0.0
    return out


def _category_recall(tally: Tally, file: str, category: int) -> float:
    # the tally keys categories over every file; recount for one file
    return tally.per_file_category.get((file, category, 5), 0) / max(
        1, tally.per_file_category.get((file, category, 0), 0)
    )


def loo_table(result: dict[str, Any], formats: list[str]) -> str:
    header = ["held out", "chosen on the other two", "format", "tuned R@5", "held-out R@5 / R@10"]
    rows = [header]
    for held, rot in result["rotations"].items():
        for f in formats:
            rows.append(
                [
                    held,
                    rot["config"],
                    f,
                    f"{rot['tuned'][f]['recall@5']:.3f}",
                    f"{rot['held_out'][f]['recall@5']:.3f} / {rot['held_out'][f]['recall@10']:.3f}",
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
    parser.add_argument(
        "--format",
        choices=[*FORMATS, "both"],
        default="both",
        help="how the sessions are written: JSON turns under transcripts/, or markdown "
        "(one '## D1:3 Speaker' section per turn, the date in the '#' heading) under notes/",
    )
    parser.add_argument("--prefix", default=None, help="folder the sessions go in (one format)")
    parser.add_argument(
        "--loo", action="store_true", help="also choose the ranking leave-one-conversation-out"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller grid for --loo")
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
    formats = list(FORMATS) if args.format == "both" else [args.format]

    methods = {f"memhub API ({fmt})": Tally() for fmt in formats}
    methods |= {"BM25 whitespace": Tally(), "BM25 words-stop": Tally()}
    timings: dict[str, float] = {}
    scratch = Path(tempfile.mkdtemp(prefix="memhub-locomo-", dir=args.scratch))
    blocks: dict[str, int] = {}
    latencies: list[float] = []
    loo: dict[str, Any] | None = None
    try:
        for fmt in formats:
            prefix = args.prefix or DEFAULT_PREFIX[fmt]
            with memhub_server(scratch / f"data-{fmt}") as server:
                t0 = time.perf_counter()
                workspaces = {}
                for conv in convs:
                    workspaces[conv.name], blocks[f"{fmt} {conv.name}"] = load_into(
                        server, conv, fmt, prefix
                    )
                timings[f"load_{fmt}_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                with server.client() as client:
                    for conv in convs:
                        rank = api_ranker(client, workspaces[conv.name])
                        for q in conv.questions:
                            t1 = time.perf_counter()
                            ranked = rank(q.text)
                            latencies.append(time.perf_counter() - t1)
                            methods[f"memhub API ({fmt})"].add(conv.name, q, ranked)
                timings[f"search_{fmt}_s"] = time.perf_counter() - t0
        if args.loo:
            print("leave-one-conversation-out:", flush=True)
            t0 = time.perf_counter()
            loo = leave_one_out(convs, formats, scratch, args.quick)
            timings["loo_s"] = time.perf_counter() - t0
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
    print("recall@5 / recall@10 of evidence turns (the shipped ranking, through the API)")
    print(table(methods, files))
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print()
    print(f"blocks indexed: {blocks} (turns in the data: {n_turns})")
    base = methods["BM25 words-stop"].recall("all", 5)
    verdicts = {}
    for fmt in formats:
        ours = methods[f"memhub API ({fmt})"].recall("all", 5)
        verdicts[fmt] = ours >= AIM_RECALL_AT_5
        print(f"{fmt}: recall@5 {ours:.3f}, {ours / base:.2f}x word BM25" if base else "")
    print(f"search over HTTP: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} questions)")
    if loo is not None:
        print()
        print("leave-one-conversation-out (weights chosen on two files, reported on the third)")
        print(loo_table(loo, formats))
        for fmt in formats:
            held = [loo["rotations"][f]["held_out"][fmt] for f in files]
            mean5 = sum(h["recall@5"] for h in held) / len(held)
            mean10 = sum(h["recall@10"] for h in held) / len(held)
            print(f"{fmt}: mean held-out recall@5 {mean5:.3f}, recall@10 {mean10:.3f}")
            for held_file in files:
                cats = loo["rotations"][held_file]["held_out_categories"][fmt]
                print(
                    f"  held out {held_file}: " + ", ".join(f"{c} {v:.2f}" for c, v in cats.items())
                )
        print(f"shipped ranking: {loo['default']}; best on all three: {loo['best_on_all']}")

    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "data": str(data),
                "files": files,
                "formats": formats,
                "turns": n_turns,
                "blocks": blocks,
                "questions": n_questions,
                "methods": {name: t.as_dict() for name, t in methods.items()},
                "aim": {"recall@5": AIM_RECALL_AT_5, "met": verdicts},
                "leave_one_out": loo,
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
