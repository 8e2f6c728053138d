"""Russian and Ukrainian search over the seed documents, through memhub's API.

Run: ``.venv/bin/python bench/seeds.py [--shared ../shared] [--queries PATH] [--json-out PATH]``

Seeds 000 (Russian), 003 (Ukrainian) and 004 (a real Russian ``CLAUDE.md``) are read
from ``<shared>/seeds`` and written into a real ``memhub serve`` (the embedded default
on a temporary data dir, rate limits off) as the paths the query set names
(``docs/memos-sync.md``, ``docs/membridge.md``, ``CLAUDE.md``). The query set
(``bench/querysets/seeds_ru_uk.json``: queries with inflected forms, each naming the
block(s) it must find by path and heading trail; no seed text) runs through
``POST /v1/workspaces/{ws}/search``. recall@3 = expected blocks found in the top 3 ÷
expected blocks, per language; MRR over the top 10 too.

Baselines over the same blocks (memhub's own cut, heading trail + text), same run:
rank_bm25 over lowercase whitespace tokens (DiffMem), and over ``\\w+`` tokens (no
stemming, no stop words) — what the analyzer's stemming and lemmatising add.

Then two context checks through ``POST /v1/workspaces/{ws}/context``: at depth
``basic`` every mandatory rule of the ``CLAUDE.md`` (the ones the query set lists)
comes back under Rules, within ``max_tokens``; at depth ``wide`` a Russian message with
an inflected form brings the right section among the relevant memories.

Prints a table, writes ``bench/results/seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locomo import ROOT, memhub_server, resolve
from memhub.memory.blocks import split_file

DEFAULT_QUERIES = ROOT / "bench" / "querysets" / "seeds_ru_uk.json"
K = 3
DEPTH = 10
AIM = 0.9
WORKSPACE = "seeds"


def seed_file(seeds: Path, number: str) -> Path:
    found = sorted(seeds.glob(f"{number}_*.txt"))
    if not found:
        raise SystemExit(f"seed {number} is missing from {seeds}")
    return found[0]


def key(path: str, heading: list[str] | str) -> str:
    title = heading if isinstance(heading, str) else " › ".join(heading)
    return f"{path}#{title}"


def evaluate(
    queries: list[dict[str, Any]], rank: Callable[[str], list[str]]
) -> dict[str, dict[str, Any]]:
    """Per query: the rank (1-based, None if beyond DEPTH) of each expected block."""
    out: dict[str, dict[str, Any]] = {}
    for q in queries:
        ranked = rank(q["query"])
        ranks = []
        for want in q["expect"]:
            wanted = key(want["path"], want["heading"])
            ranks.append(ranked.index(wanted) + 1 if wanted in ranked else None)
        out[q["id"]] = {"lang": q["lang"], "ranks": ranks, "top": ranked[:K]}
    return out


def summary(per_query: dict[str, dict[str, Any]], lang: str | None) -> dict[str, float]:
    rows = [r for r in per_query.values() if lang is None or r["lang"] == lang]
    ranks = [rank for r in rows for rank in r["ranks"]]
    found = sum(1 for rank in ranks if rank is not None and rank <= K)
    rr = [1 / rank if rank else 0.0 for rank in ranks]
    return {
        "queries": len(rows),
        "expected": len(ranks),
        f"recall@{K}": found / len(ranks) if ranks else 0.0,
        "recall@1": sum(1 for x in ranks if x == 1) / len(ranks) if ranks else 0.0,
        "mrr@10": sum(rr) / len(rr) if rr else 0.0,
    }


def bm25_ranker(
    blocks: list[tuple[str, str]], tokenize: Callable[[str], list[str]]
) -> Callable[[str], list[str]]:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokenize(text) for _, text in blocks])

    def rank(query: str) -> list[str]:
        scores = bm25.get_scores(tokenize(query))
        order = sorted(range(len(blocks)), key=lambda i: -scores[i])
        return [blocks[i][0] for i in order[:DEPTH]]

    return rank


def check_rules(client: Any, spec: dict[str, Any]) -> dict[str, Any]:
    ctx = client.context(
        spec["conversation"], depth=spec["depth"], max_tokens=spec["max_tokens"]
    ).model_dump()
    rules = [
        key(s["path"], s["heading"])
        for s in ctx["sources"]
        if s["section"] == "Rules" and s["path"] == spec["path"]
    ]
    wanted = [key(spec["path"], h) for h in spec["mandatory"]]
    missing = [w for w in wanted if w not in rules]
    sums = sum(s["tokens"] for s in ctx["sources"])
    return {
        "ok": not missing and ctx["tokens"] <= spec["max_tokens"] and sums == ctx["tokens"],
        "depth": spec["depth"],
        "rules_found": len(wanted) - len(missing),
        "rules_expected": len(wanted),
        "missing": missing,
        "extra_rules": [r for r in rules if r not in wanted],
        "tokens": ctx["tokens"],
        "max_tokens": spec["max_tokens"],
        "source_tokens_sum": sums,
    }


def check_inflected(client: Any, spec: dict[str, Any]) -> dict[str, Any]:
    ctx = client.context(
        spec["conversation"], depth=spec["depth"], max_tokens=spec["max_tokens"]
    ).model_dump()
    want = key(spec["expect"]["path"], spec["expect"]["heading"])
    relevant = [
        key(s["path"], s["heading"]) for s in ctx["sources"] if s["section"] == "Relevant memories"
    ]
    position = relevant.index(want) + 1 if want in relevant else None
    return {
        "ok": position is not None and ctx["tokens"] <= spec["max_tokens"],
        "depth": spec["depth"],
        "message": spec["conversation"][-1]["content"],
        "expected": want,
        "position_among_relevant": position,
        "first_relevant": relevant[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shared", default="../shared", help="folder holding seeds/")
    parser.add_argument("--queries", default=str(DEFAULT_QUERIES))
    parser.add_argument("--json-out", default=str(ROOT / "bench" / "results" / "seeds.json"))
    parser.add_argument("--scratch", default=None, help="where the temporary data dir goes")
    args = parser.parse_args()

    seeds = resolve(args.shared) / "seeds"
    spec = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    queries: list[dict[str, Any]] = spec["queries"]
    texts = {
        path: seed_file(seeds, n).read_text(encoding="utf-8") for n, path in spec["files"].items()
    }
    langs = sorted({q["lang"] for q in queries})
    print(f"{len(queries)} queries ({', '.join(langs)}) over {', '.join(texts)}")

    blocks = [
        (key(b.path, list(b.heading)), f"{' '.join(b.heading)}\n{b.text}")
        for path, text in texts.items()
        for b in split_file(path, text, workspace=WORKSPACE)
    ]
    known = {k for k, _ in blocks}
    unknown = [w for q in queries for w in q["expect"] if key(w["path"], w["heading"]) not in known]
    if unknown:
        print(f"the query set names blocks the seeds do not have: {unknown}", file=sys.stderr)
        return 2

    results: dict[str, dict[str, dict[str, Any]]] = {}
    checks: dict[str, dict[str, Any]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="memhub-seeds-", dir=args.scratch))
    t0 = time.perf_counter()
    try:
        with memhub_server(scratch / "data") as server, server.client(WORKSPACE) as client:
            client.request("POST", "/v1/workspaces", json={"name": WORKSPACE})
            for path, text in texts.items():
                client.put(path, text.encode("utf-8"), content_type="text/markdown")

            def api_rank(query: str) -> list[str]:
                found = client.search(query, k=DEPTH)
                return [key(h.path, h.heading) for h in found.results]

            results["memhub API"] = evaluate(queries, api_rank)
            context = spec.get("context_checks", {})
            if "workspace_rules" in context:
                checks["mandatory rules at depth basic"] = check_rules(
                    client, context["workspace_rules"]
                )
            if "inflected_wide" in context:
                checks["inflected Russian query at depth wide"] = check_inflected(
                    client, context["inflected_wide"]
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    took = time.perf_counter() - t0

    def whitespace(text: str) -> list[str]:
        return text.lower().split()

    def words(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    results["BM25 whitespace"] = evaluate(queries, bm25_ranker(blocks, whitespace))
    results["BM25 words"] = evaluate(queries, bm25_ranker(blocks, words))

    header = ["method", *(f"{lang} R@{K}" for lang in langs), f"all R@{K}", "all R@1", "MRR@10"]
    rows = [header]
    summaries: dict[str, dict[str, Any]] = {}
    for name, per_query in results.items():
        by_lang = {lang: summary(per_query, lang) for lang in langs}
        overall = summary(per_query, None)
        summaries[name] = {"all": overall, **by_lang}
        rows.append(
            [
                name,
                *(f"{by_lang[lang][f'recall@{K}']:.3f}" for lang in langs),
                f"{overall[f'recall@{K}']:.3f}",
                f"{overall['recall@1']:.3f}",
                f"{overall['mrr@10']:.3f}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print()
    for i, row in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    counts = {lang: summaries["memhub API"][lang]["queries"] for lang in langs}
    print(f"queries per language: {counts}")

    misses = {
        qid: r
        for qid, r in results["memhub API"].items()
        if any(x is None or x > K for x in r["ranks"])
    }
    for qid, r in misses.items():
        query = next(q for q in queries if q["id"] == qid)
        print(f"  miss {qid} {query['query']!r}: ranks {r['ranks']}, top {r['top']}")
    print()
    for name, check in checks.items():
        verdict = "ok" if check["ok"] else "FAILED"
        print(f"{name}: {verdict} {json.dumps(check, ensure_ascii=False)}")
    aims = {lang: summaries["memhub API"][lang][f"recall@{K}"] >= AIM for lang in langs}
    print(f"aim recall@{K} >= {AIM} per language: {aims}")

    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "files": spec["files"],
                "blocks": len(blocks),
                "k": K,
                "summary": summaries,
                "per_query": results,
                "context_checks": checks,
                "aim": {"recall": AIM, "met": aims},
                "api_seconds": round(took, 2),
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    ok = all(aims.values()) and all(c["ok"] for c in checks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
