"""The offline extractor on LoCoMo: how much of the evidence survives into memory files.

Run: ``.venv/bin/python bench/extractor_locomo.py [--data ../shared/data/locomo] [--quick]``

For each conversation file, one workspace on the real app (in-process, SQLite, the
offline extractor): every session, in order, goes through ``POST
/memory/process-and-commit`` with its date (``session_N_date_time``) and its turns as
``[dia_id] Speaker: text`` lines. The extractor keeps each fact's turn id, so a memory
block can be traced back to the turns it came from.

Then every question with evidence is searched twice through ``POST
/v1/workspaces/{ws}/search``, in the same workspace and the same run:

- ``memory files``: the produced ``memories/``, ``timeline/`` and user-entity blocks
  (``sessions/`` hits dropped): an evidence turn is found at k when a top-k block cites it;
- ``raw transcripts``: ``path_prefix=sessions/``, the archived transcripts (one block per
  turn): found when a top-k block is that turn.

A memory block cites several turns (an entity's facts of one session), a raw block
one: the table also reports the mean number of turns a returned memory block cites,
so that recall is read beside how much text it costs. ``--quick``: the first file,
its first 6 sessions, the questions whose evidence lies there.
Writes ``bench/results/extractor_locomo.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from locomo import DEFAULT_DATA, ROOT, Conversation, Question, load, resolve
from memhub.api import create_app
from memhub.config import Settings

KS = (5, 10)
REF = re.compile(r"\[(D\d+:\d+)\]")


def session_date(value: str | None) -> str | None:
    """``1:56 pm on 8 May, 2023`` → ``2023-05-08``."""
    if not value:
        return None
    match = re.search(r"(\d{1,2}) (\w+),? (\d{4})", value)
    if not match:
        return None
    return datetime.strptime(" ".join(match.groups()), "%d %B %Y").date().isoformat()


def transcript(turns: list[dict[str, Any]]) -> str:
    lines = []
    for turn in turns:
        text = str(turn.get("text", "")).replace("\n", " ")
        if turn.get("blip_caption"):
            text += f" (shares a photo: {turn['blip_caption']})"
        lines.append(f"[{turn['dia_id']}] {turn['speaker']}: {text}")
    return "\n".join(lines)


class Cited:
    """The turn ids a search hit covers: read from the hit's lines of its file."""

    def __init__(self, client: TestClient, ws: str) -> None:
        self.client = client
        self.ws = ws
        self.files: dict[str, list[str]] = {}

    def __call__(self, hit: dict[str, Any]) -> list[str]:
        path = hit["path"]
        if path not in self.files:
            response = self.client.get(f"/v1/workspaces/{self.ws}/files/{path}")
            self.files[path] = response.text.split("\n")
        lines = self.files[path][hit["line_start"] - 1 : hit["line_end"]]
        return REF.findall("\n".join(lines))


def search(client: TestClient, ws: str, query: str, prefix: str | None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": query, "k": 60 if prefix is None else max(KS)}
    if prefix:
        body["path_prefix"] = prefix
    response = client.post(f"/v1/workspaces/{ws}/search", json=body)
    response.raise_for_status()
    results: list[dict[str, Any]] = response.json()["results"]
    if prefix is None:
        results = [r for r in results if not r["path"].startswith("sessions/")]
    return results[: max(KS)]


def found_at(question: Question, ranked: list[list[str]]) -> dict[int, int]:
    return {
        k: sum(1 for unit in question.evidence if any(e in c for c in ranked[:k] for e in unit))
        for k in KS
    }


def run_conversation(
    client: TestClient, conv: Conversation, max_sessions: int | None
) -> dict[str, Any]:
    ws = f"lx-{conv.name}"
    assert client.post("/v1/workspaces", json={"name": ws}).status_code in (200, 201)
    numbers = sorted(conv.sessions)[:max_sessions]
    started = time.perf_counter()
    for n in numbers:
        turns = conv.sessions[n]
        body = {
            "memory_input": transcript(turns),
            "session_id": f"session-{n}",
            "session_date": session_date(turns[0].get("date_time") if turns else None),
            "user_id": ws,
        }
        response = client.post("/memory/process-and-commit", json=body)
        assert response.status_code == 200, response.text
    process_seconds = time.perf_counter() - started
    kept = {t["dia_id"] for n in numbers for t in conv.sessions[n]}
    questions = [q for q in conv.questions if all(e in kept for u in q.evidence for e in u)]
    cited = Cited(client, ws)
    totals = {"units": 0, "memory": dict.fromkeys(KS, 0), "raw": dict.fromkeys(KS, 0)}
    per_block: list[int] = []
    for question in questions:
        memory = [cited(h) for h in search(client, ws, question.text, None)]
        raw = [cited(h) for h in search(client, ws, question.text, "sessions/")]
        per_block += [len(set(c)) for c in memory[:5]]
        totals["units"] += len(question.evidence)
        for k, n_found in found_at(question, memory).items():
            totals["memory"][k] += n_found
        for k, n_found in found_at(question, raw).items():
            totals["raw"][k] += n_found
    heads = client.get(f"/v1/workspaces/{ws}/files", params={"limit": 10000}).json()
    files = heads.get("files", heads) if isinstance(heads, dict) else heads
    memory_files = [f for f in files if not f["path"].startswith("sessions/")]
    return {
        "conversation": conv.name,
        "sessions": len(numbers),
        "questions": len(questions),
        "process_seconds": round(process_seconds, 2),
        "memory_files": len(memory_files),
        "memory_bytes": sum(f["size"] for f in memory_files),
        "transcript_bytes": sum(f["size"] for f in files if f["path"].startswith("sessions/")),
        "turns_per_memory_block": round(statistics.mean(per_block), 2) if per_block else 0.0,
        **totals,
    }


def table(rows: list[dict[str, Any]]) -> str:
    header = ["file", "sessions", "units", "memory r@5", "memory r@10", "raw r@5", "raw r@10",
              "turns/block", "memory files", "process s"]  # fmt: skip
    out = [header]
    for r in rows:
        u = r["units"] or 1
        out.append(
            [
                r["conversation"],
                str(r["sessions"]),
                str(r["units"]),
                *(f"{r['memory'][k] / u:.3f}" for k in KS),
                *(f"{r['raw'][k] / u:.3f}" for k in KS),
                f"{r['turns_per_memory_block']:.2f}",
                str(r["memory_files"]),
                f"{r['process_seconds']:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in out) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in out]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="first file, first 6 sessions")
    parser.add_argument(
        "--json-out", default=str(ROOT / "bench" / "results" / "extractor_locomo.json")
    )
    args = parser.parse_args()
    paths = sorted(resolve(args.data).glob("*.json"))
    if not paths:
        print(f"no LoCoMo files in {args.data}", file=sys.stderr)
        return 2
    convs = [load(p) for p in (paths[:1] if args.quick else paths)]
    with tempfile.TemporaryDirectory(prefix="memhub-extractor-") as scratch:
        app = create_app(Settings(data_dir=Path(scratch), rate_limit_enabled=False))
        key = app.state.keys.create("default", ["read", "write", "admin"])[0]
        with TestClient(app, headers={"authorization": f"Bearer {key}"}) as client:
            rows = [run_conversation(client, c, 6 if args.quick else None) for c in convs]
    total = {
        "conversation": "all",
        "sessions": sum(r["sessions"] for r in rows),
        "questions": sum(r["questions"] for r in rows),
        "units": sum(r["units"] for r in rows),
        "memory": {k: sum(r["memory"][k] for r in rows) for k in KS},
        "raw": {k: sum(r["raw"][k] for r in rows) for k in KS},
        "turns_per_memory_block": round(
            statistics.mean(r["turns_per_memory_block"] for r in rows), 2
        ),
        "memory_files": sum(r["memory_files"] for r in rows),
        "process_seconds": round(sum(r["process_seconds"] for r in rows), 2),
    }
    print(table([*rows, total]))
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "rows": rows, "total": total}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
