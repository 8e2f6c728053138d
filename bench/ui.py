"""The web UI's page weight and server time on a workspace of 10,000 files, against the
API route that reads the same data, measured in the same run.

Run: ``.venv/bin/python bench/ui.py [--quick] [--files N] [--json-out PATH] [--scratch DIR]``

The app is the real one (``create_app``: SQLite file, in-memory blob store so that
seeding 10,000 files takes seconds, not minutes of fsyncs), driven in process by
Starlette's ``TestClient`` with a signed-in UI session (the real sign-in form). The
workspace: ``--files`` markdown files (default 10,000) in 100 directories, one of them
with 20 revisions, 1,000 memory items and one staged session; the search index is
caught up by a warm-up search before timing.

Each page is requested ``--requests`` times per round; rounds (5, or 3 with
``--quick``) run every page once each in a rotating order, after one warm-up round.
``server ms`` is the wall time of one in-process request (the test client's own cost
included, so it is an upper bound of the server's time). Its baseline is
``GET /v1/workspaces/{ws}/files/{path}`` of the same file (for the context pages:
``POST /v1/workspaces/{ws}/context`` of the same message and depth), timed in the same
round: ``× API`` is the median of the per-round ratios page p50 ÷ API p50.

Weight: the bytes a browser transfers (gzip, as the UI serves it) for the page, and
for a first visit (the page plus its stylesheet and two scripts, which are cached
after that). The targets: ≤ 200 KB for a first visit and p50 ≤ 50 ms.
Results: a table and ``bench/results/ui.json`` (or ``--json-out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from memhub.api import create_app
from memhub.config import Settings
from memhub.memory.items import Draft

WS = "bench"
TARGET_BYTES = 200 * 1024
TARGET_MS = 50.0
ITEMS = 1000
SESSION = (
    "Priya moved to Lisbon last month for a job at Feedzai.\n"
    "Yesterday I ran the Riverside Marathon with Priya and Tomasz.\n"
    "Tomasz works at the Krakow office on the roadmap.\n"
)
WORDS = (
    "memory agent note plan review tea coffee roadmap release deploy bug fix user team "
    "meeting project idea draft design test server client sync index search context "
    "alpha beta gamma delta kiev lisbon tokyo monday friday garden river mountain"
).split()


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def markdown(rng: random.Random, i: int) -> bytes:
    sections = [f"# Note {i}\n\n{text(rng, 40)}\n"]
    for s in range(rng.randint(1, 4)):
        sections.append(
            f"## Section {s}\n\n{text(rng, rng.randint(20, 120))}\n\n- {text(rng, 8)}\n"
        )
    return "\n".join(sections).encode()


def seed(app: Any, files: int) -> dict[str, Any]:
    store = app.state.store
    store.create_workspace(WS, exist_ok=True)
    rng = random.Random(7)
    started = time.perf_counter()
    for i in range(files):
        store.put(WS, f"dir{i % 100:02d}/note{i:05d}.md", markdown(rng, i), author="bench")
    hot = "dir00/hot.md"
    for r in range(20):
        store.put(WS, hot, markdown(rng, r) + f"\nrevision {r}\n".encode(), author="bench")
    items: list[Draft] = [
        Draft(memory=f"{text(rng, 12)} (fact {i})", cube_id=WS, tags=(rng.choice(WORDS),))
        for i in range(ITEMS)
    ]
    added = app.state.items.add(WS, items[: ITEMS // 2]) + app.state.items.add(
        WS, items[ITEMS // 2 :]
    )
    app.state.sessions.process(WS, "bench-session", SESSION, "2026-01-15")
    return {
        "hot": hot,
        "item": added[0].item.id,
        "seed_seconds": round(time.perf_counter() - started, 1),
    }


def sign_in(client: TestClient, key: str) -> None:
    form = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token, form.text
    response = client.post("/ui/login", data={"key": key, "login_token": token.group(1)})
    assert response.status_code == 303, response.text


def transferred(client: TestClient, url: str) -> tuple[int, int]:
    """(bytes on the wire with gzip, bytes decoded) of one GET."""
    response = client.get(url, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    body = response.content
    wire = response.num_bytes_downloaded
    return wire, len(body)


def timed(
    client: TestClient,
    url: str,
    n: int,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        if body is None:
            response = client.get(url, headers=headers)
        else:
            response = client.post(url, headers=headers, json=body)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 requests per page")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=Path("bench/results/ui.json"))
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    rounds = 3 if args.quick else 5
    per_round = args.requests or (10 if args.quick else 30)

    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-ui-", dir=args.scratch))
    try:
        settings = Settings(data_dir=scratch, blob_url="memory://", rate_limit_enabled=False)
        app = create_app(settings)
        key = app.state.keys.create(WS, ["read", "write", "admin"])[0]
        info = seed(app, args.files)
        hot = info["hot"]
        api_headers = {"authorization": f"Bearer {key}"}
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            sign_in(client, key)
            head = app.state.store.head_rev(WS)
            revs = [r.rev for r in app.state.store.history(WS, hot, limit=11)]
            new, old = revs[0], revs[10]  # the hot file's head and a rev 10 versions back
            pages = {
                "files /": f"/ui/w/{WS}/files/",
                "files dir (101)": f"/ui/w/{WS}/files/dir00/",
                "file view": f"/ui/w/{WS}/file/{hot}",
                "file @ old rev": f"/ui/w/{WS}/file/{hot}?rev={old}",
                "history (20)": f"/ui/w/{WS}/history/{hot}",
                "diff": f"/ui/w/{WS}/diff/{hot}?a={old}&b={new}",
                "diff side by side": f"/ui/w/{WS}/diff/{hot}?a={old}&b={new}&mode=split",
                "changes": f"/ui/w/{WS}/changes",
                "changes poll": f"/ui/w/{WS}/changes/feed?since={head}",
                "search": f"/ui/w/{WS}/search?q=roadmap+tea",
                "context (wide)": f"/ui/w/{WS}/context?message=roadmap+tea&depth=wide",
                "context depth row": f"/ui/w/{WS}/context/depth?message=roadmap+tea&depth=deep",
                "edit": f"/ui/w/{WS}/edit/{hot}",
                "operations": f"/ui/w/{WS}/ops",
                "sessions": f"/ui/w/{WS}/sessions",
                "session diff": f"/ui/w/{WS}/sessions/bench-session",
                "items (1000)": f"/ui/w/{WS}/items",
                "items by tag": f"/ui/w/{WS}/items?tag=tea",
                "items search": f"/ui/w/{WS}/items?q=roadmap+tea",
                "item": f"/ui/w/{WS}/items/{info['item']}",
            }
            api = f"/v1/workspaces/{WS}/files/{hot}"
            api_context = f"/v1/workspaces/{WS}/context"
            conversation = [{"role": "user", "content": "roadmap tea"}]
            context_body = {"conversation": conversation, "depth": "wide"}
            warm = time.perf_counter()
            client.get(f"/v1/workspaces/{WS}/search?q=warm", headers=api_headers)
            info["index_warmup_seconds"] = round(time.perf_counter() - warm, 1)
            assets = ["/ui/static/ui.css", "/ui/static/htmx.min.js", "/ui/static/ui.js"]
            asset_bytes = sum(transferred(client, a)[0] for a in assets)
            weights = {name: transferred(client, url) for name, url in pages.items()}

            samples: dict[str, list[float]] = {name: [] for name in pages}
            api_samples: list[float] = []
            api_context_samples: list[float] = []
            ratios: dict[str, list[float]] = {name: [] for name in pages}
            names = list(pages)
            for r in range(rounds + 1):
                order = names[r % len(names) :] + names[: r % len(names)]
                base = timed(client, api, per_round, api_headers)
                base_context = timed(client, api_context, per_round, api_headers, context_body)
                here = {name: timed(client, pages[name], per_round) for name in order}
                if r == 0:
                    continue  # warm-up
                api_samples += base
                api_context_samples += base_context
                for name, values in here.items():
                    samples[name] += values
                    against = base_context if name.startswith("context") else base
                    ratios[name].append(statistics.median(values) / statistics.median(against))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    api_p50 = statistics.median(api_samples)
    rows = []
    for name in pages:
        values = sorted(samples[name])
        wire, raw = weights[name]
        rows.append(
            {
                "page": name,
                "p50_ms": round(statistics.median(values), 2),
                "p95_ms": round(values[int(len(values) * 0.95) - 1], 2),
                "x_api": round(statistics.median(ratios[name]), 2),
                "page_bytes": raw,
                "page_wire_bytes": wire,
                "first_visit_wire_bytes": wire + asset_bytes,
                "ok": wire + asset_bytes <= TARGET_BYTES and statistics.median(values) <= TARGET_MS,
            }
        )
    print(
        f"\nUI pages on {args.files:,} files (+20 revisions), {rounds} rounds × {per_round} "
        f"requests, in process; API baselines: GET file p50 {api_p50:.2f} ms, "
        f"POST context (wide) p50 {statistics.median(api_context_samples):.2f} ms "
        "(× API of the context pages is against the latter)"
    )
    header = (
        f"{'page':<20} {'p50 ms':>7} {'p95 ms':>7} {'× API':>6} {'html KB':>8} {'gz KB':>6} "
        f"{'1st visit KB':>12}  ok"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['page']:<20} {row['p50_ms']:>7.2f} {row['p95_ms']:>7.2f} {row['x_api']:>6.2f} "
            f"{row['page_bytes'] / 1024:>8.1f} {row['page_wire_bytes'] / 1024:>6.1f} "
            f"{row['first_visit_wire_bytes'] / 1024:>12.1f}  {'yes' if row['ok'] else 'NO'}"
        )
    print(
        f"assets (css + htmx + ui.js, gzip): {asset_bytes / 1024:.1f} KB, "
        "cached after the first page"
    )
    print(f"seeding: {info['seed_seconds']} s; index warm-up: {info['index_warmup_seconds']} s")
    result = {
        "files": args.files,
        "rounds": rounds,
        "requests_per_round": per_round,
        "api_p50_ms": round(api_p50, 3),
        "api_context_p50_ms": round(statistics.median(api_context_samples), 3),
        "asset_wire_bytes": asset_bytes,
        "targets": {"first_visit_bytes": TARGET_BYTES, "p50_ms": TARGET_MS},
        "pages": rows,
        "info": info,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
