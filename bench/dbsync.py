"""``memhub db push`` of a changed SQLite database against a whole-file upload.

A deterministic SQLite database (WAL mode; ~200 MB, ``--quick`` ~20 MB) is pushed
to a real ``memhub serve`` (fresh temp data dir), then 1% of its rows is changed
and it is pushed again. Two variants of the change: a contiguous 1% range of
rowids (a batch of recent rows) and a scattered 1% (every 100th row, which
touches nearly every page). Beside each delta push, the same database is uploaded
whole with one ``PUT /v1/workspaces/default/files/…`` (what membridge effectively
did on every push), in the same run. Reports bytes sent and time, the ratios to
the whole-file upload, and the push's phases (snapshot, or pinning the file in
place when its ``-wal`` is empty; hashing, of what changed since the last push;
missing-chunk query and upload, while the integrity check runs; the wait for the
check; commit, where the server reads the chunks after the prefix it already
hashed for the whole file's sha256 and md5).

    .venv/bin/python bench/dbsync.py [--quick] [--rounds N] [--json-out FILE] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from memhub.client import MemhubClient
from memhub.sync import sqlite_snapshot as sq
from memhub.sync.dbstate import SyncState
from memhub.sync.dbsync import push

HERE = Path(__file__).resolve().parent
AIM_BYTES = 0.05  # the contiguous-1% push sends at most this share of the database
AIM_TIME = 0.20  # ... in at most this share of the whole-file upload's time
AIM_PAGES = 1.5  # scattered 1%: bytes on the wire <= this times the bytes of the changed pages
MB = 1e6
LINK_RATE = 100e6 / 8  # bytes/s: a 100 Mbit/s link
LINK_LABEL = "contiguous, 100 Mbit/s link"


@dataclass(frozen=True)
class Plan:
    rows: int
    rounds: int  # delta push + whole-file PUT per variant, interleaved; medians reported


FULL = Plan(rows=2_100_000, rounds=2)
QUICK = Plan(rows=210_000, rounds=2)


def build_db(path: Path, rows: int) -> None:
    """``items(id, k, payload)``: ``rows`` rows of ~100 bytes, the same on every run."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, k INTEGER, payload TEXT)")
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
            "INSERT INTO items SELECT x, (x * 2654435761) % 1000003, printf("
            "'%016x%016x%016x%016x%016x', x * 2654435761, x * 40503, x * 2246822519, "
            "x * 3266489917, x * 668265263) FROM n",
            (rows,),
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def changed_pages(before: Path, after: Path) -> tuple[int, int]:
    """Pages that differ between two snapshots (backup-API copies, deterministic), and
    the page size: what an ideal page-granular delta would have to send."""
    page = sq.header_page_size(after)
    changed = 0
    with before.open("rb") as a, after.open("rb") as b:
        while True:
            x, y = a.read(page * 256), b.read(page * 256)
            if not x and not y:
                break
            for i in range(0, max(len(x), len(y)), page):
                changed += x[i : i + page] != y[i : i + page]
    return changed, page


def change_rows(path: Path, rows: int, variant: str, round_: int) -> int:
    """Rewrite 1% of the rows in place (same length): a contiguous range or every 100th."""
    tag = f"{variant[0]}{round_:x}"
    with closing(sqlite3.connect(path)) as conn:
        if variant == "contiguous":
            start = rows // 2 + round_ * (rows // 100)  # a fresh range each round
            where, args = "id >= ? AND id < ?", (start, start + rows // 100)
        else:
            where, args = "id % 100 = ?", (round_ + 1,)
        changed = conn.execute(
            f"UPDATE items SET payload = ? || substr(payload, 3) WHERE {where}", (tag, *args)
        ).rowcount
        conn.commit()
    return int(changed)


# -- the server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def memhub_server(data_dir: Path) -> Iterator[tuple[str, str, int]]:
    """``memhub serve`` on a fresh data dir (no MEMHUB_* from here but no rate limit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env["MEMHUB_RATE_LIMIT_ENABLED"] = "false"
    port = free_port()
    exe = str(Path(sys.executable).with_name("memhub"))
    log = data_dir.with_name("server.log").open("ab")
    argv = [exe, "serve", "--data-dir", str(data_dir), "--port", str(port)]
    proc = subprocess.Popen([*argv, "--log-level", "warning"], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("memhub serve did not start; see server.log")
            time.sleep(0.1)
        yield url, (data_dir / "admin.key").read_text().strip(), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Link:
    """A TCP relay to the server carrying at most ``rate`` bytes/s each way, shared by all
    its connections: a network link of that bandwidth (no added latency) on loopback."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port, self.rate = target_port, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.free_at = {"up": 0.0, "down": 0.0}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, way), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while piece := src.recv(1 << 16):
                with self.lock:  # reserve the link for this piece's transmission time
                    start = max(time.monotonic(), self.free_at[way])
                    self.free_at[way] = done = start + len(piece) / self.rate
                time.sleep(max(0.0, done - time.monotonic()))
                dst.sendall(piece)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


# -- the measurements ----------------------------------------------------------------


def delta_push(client: MemhubClient, db: Path, state: SyncState, pid: int) -> dict[str, Any]:
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    # through the link the server's URL differs, so the sync state (kept per server URL)
    # knows nothing of this file: --overwrite, i.e. if_match = the head it finds
    key = SyncState.key(client.server, client.workspace, "bench", db.resolve())
    overwrite = state.get(key) is None
    result = push(client, db, name="bench", state=state, holder="bench", overwrite=overwrite)
    # what went on the wire (zstd-compressed chunks); the chunks' own size is kept beside it
    result["chunk_bytes_sent"] = result["bytes_sent"]
    result["bytes_sent"] = result.get("wire_bytes_sent", result["bytes_sent"])
    result["wall_s"] = time.perf_counter() - started
    result["server_cpu_s"] = cpu_seconds(pid) - cpu
    return result


def whole_put(client: MemhubClient, db: Path, scratch: Path, pid: int) -> dict[str, Any]:
    """What membridge did: a consistent copy of the file, uploaded whole in one PUT."""
    copy = scratch / "whole.sqlite"
    started = time.perf_counter()
    sq.snapshot(db, copy)
    snap = time.perf_counter() - started
    cpu = cpu_seconds(pid)
    with copy.open("rb") as body:
        revision = client.put_stream(f"bench/whole-{time.time_ns()}.sqlite", body)
    put = time.perf_counter() - started - snap
    copy.unlink()
    return {
        "bytes_sent": revision.size,
        "snapshot_s": snap,
        "put_s": put,
        "wall_s": snap + put,
        "server_cpu_s": cpu_seconds(pid) - cpu,
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run(plan: Plan, scratch: Path) -> dict[str, Any]:
    db = scratch / "bench.db"
    t0 = time.perf_counter()
    build_db(db, plan.rows)
    size = db.stat().st_size
    out: dict[str, Any] = {"rows": plan.rows, "db_bytes": size}
    out["build_s"] = round(time.perf_counter() - t0, 2)
    print(f"  built {size / MB:.0f} MB, {plan.rows:,} rows in {out['build_s']} s", file=sys.stderr)
    state = state_of(scratch)
    with memhub_server(scratch / "data") as (url, key, pid), MemhubClient(url, key) as client:
        first = delta_push(client, db, state, pid)
        print(f"  first push {first['wall_s']:.1f} s", file=sys.stderr)
        noop = delta_push(client, db, state, pid)
        out.update(first_push=first, noop_push=noop, variants={})
        link = Link(int(url.rsplit(":", 1)[1]), LINK_RATE)
        try:
            with MemhubClient(link.url, key) as slow:
                for label, variant, via, rounds in (
                    ("contiguous", "contiguous", client, range(plan.rounds)),
                    ("scattered", "scattered", client, range(plan.rounds)),
                    (LINK_LABEL, "contiguous", slow, range(plan.rounds, plan.rounds + 1)),
                ):
                    out["variants"][label] = measure(via, db, variant, rounds, plan, scratch, pid)
        finally:
            link.close()
    return out


def measure(
    client: MemhubClient,
    db: Path,
    variant: str,
    rounds: range,
    plan: Plan,
    scratch: Path,
    pid: int,
) -> dict[str, Any]:
    """Per round: change 1% of the rows, push, then upload the same database whole."""
    size = db.stat().st_size
    deltas, wholes = [], []
    before, after = scratch / "pages-before.sqlite", scratch / "pages-after.sqlite"
    for round_ in rounds:
        sq.snapshot(db, before)
        changed = change_rows(db, plan.rows, variant, round_)
        sq.snapshot(db, after)
        pages, page_size = changed_pages(before, after)
        before.unlink()
        after.unlink()
        counted = {"rows_changed": changed, "pages_changed": pages, "page_size": page_size}
        deltas.append(delta_push(client, db, state_of(scratch), pid) | counted)
        wholes.append(whole_put(client, db, scratch, pid))
        print(
            f"  {variant} round {round_ + 1} via {client.server}: push "
            f"{deltas[-1]['wall_s']:.2f} s, whole PUT {wholes[-1]['put_s']:.2f} s",
            file=sys.stderr,
        )
    return summarize(deltas, wholes, size)


def state_of(scratch: Path) -> SyncState:
    return SyncState(scratch / "state.json")


def summarize(deltas: list[dict[str, Any]], wholes: list[dict[str, Any]], size: int) -> dict:
    phases = {k: median([d["phases"].get(k, 0.0) for d in deltas]) for k in deltas[0]["phases"]}
    push_s = median([d["wall_s"] for d in deltas])
    put_s = median([w["put_s"] for w in wholes])
    page_bytes = median([d["pages_changed"] * d["page_size"] for d in deltas])
    return {
        "rows_changed": deltas[0]["rows_changed"],
        "pages_changed": median([d["pages_changed"] for d in deltas]),
        "changed_page_bytes": page_bytes,
        "bytes_vs_changed_pages": median(
            [d["bytes_sent"] / max(1, d["pages_changed"] * d["page_size"]) for d in deltas]
        ),
        "chunk_bytes_sent": median([d.get("chunk_bytes_sent", d["bytes_sent"]) for d in deltas]),
        "bytes_sent": median([d["bytes_sent"] for d in deltas]),
        "chunks_sent": median([d["chunks_sent"] for d in deltas]),
        "chunks_total": deltas[0]["chunks_total"],
        "push_s": push_s,
        "push_phases_s": phases,
        "push_server_cpu_s": median([d["server_cpu_s"] for d in deltas]),
        "chunks_rehashed": median([d.get("chunks_rehashed", d["chunks_total"]) for d in deltas]),
        "chunks_resumed": median([d.get("chunks_resumed", 0) for d in deltas]),
        "whole_put_s": put_s,
        "whole_snapshot_put_s": median([w["wall_s"] for w in wholes]),
        "whole_server_cpu_s": median([w["server_cpu_s"] for w in wholes]),
        "bytes_ratio": median([d["bytes_sent"] for d in deltas]) / size,
        "time_ratio": push_s / put_s,
        "round_time_ratios": [
            d["wall_s"] / w["put_s"] for d, w in zip(deltas, wholes, strict=True)
        ],
        "deltas": deltas,
        "wholes": wholes,
    }


# -- output --------------------------------------------------------------------------


def table(out: dict[str, Any]) -> str:
    size = out["db_bytes"]
    head = ("step", "MB sent", "% of DB", "chunks sent/total", "time s", "÷ whole PUT",
            "srv CPU s", "changed pages MB", "sent ÷ changed")  # fmt: skip
    rows: list[tuple[str, ...]] = [head]
    first, noop = out["first_push"], out["noop_push"]
    for label, r in (("first push (empty server)", first), ("push, nothing changed", noop)):
        rows.append((label, f"{r['bytes_sent'] / MB:.1f}", f"{100 * r['bytes_sent'] / size:.1f}",
                     "skipped" if r["skipped"] else f"{r['chunks_sent']}/{r['chunks_total']}",
                     f"{r['wall_s']:.2f}", "",
                     f"{r['server_cpu_s']:.2f}", "", ""))  # fmt: skip
    for name, v in out["variants"].items():
        rows.append((f"push, 1% rows {name}", f"{v['bytes_sent'] / MB:.1f}",
                     f"{100 * v['bytes_ratio']:.1f}", f"{v['chunks_sent']:.0f}/{v['chunks_total']}",
                     f"{v['push_s']:.2f}", f"{v['time_ratio']:.2f}",
                     f"{v['push_server_cpu_s']:.2f}", f"{v['changed_page_bytes'] / MB:.1f}",
                     f"{v['bytes_vs_changed_pages']:.2f}"))  # fmt: skip
        whole_cpu = f"{v['whole_server_cpu_s']:.2f}"
        rows.append((f"  whole-file PUT ({name})", f"{size / MB:.1f}", "100.0", "-",
                     f"{v['whole_put_s']:.2f}", "1.00", whole_cpu, "", ""))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    for name, v in out["variants"].items():
        phases = ", ".join(f"{k} {s:.2f}" for k, s in v["push_phases_s"].items())
        sources = "/".join(sorted({str(d.get("source")) for d in v["deltas"]}))
        lines.append(f"phases of the {name} push ({sources}; s): {phases}")
        lines.append(
            f"  chunks sha256'd {v['chunks_rehashed']:.0f}/{v['chunks_total']}, whole-file "
            f"sha256 resumed after {v['chunks_resumed']:.0f} chunks"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~20 MB database")
    parser.add_argument("--json-out", type=Path, default=HERE / "results" / "dbsync.json")
    parser.add_argument("--scratch", type=Path, default=None, help="where temp files go")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per variant (2)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = Plan(rows=plan.rows, rounds=args.rounds)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="memhub-bench-dbsync-", dir=args.scratch))
    try:
        out = run(plan, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["aims"] = {
        label: {
            "bytes_ratio": v["bytes_ratio"],
            "time_ratio": v["time_ratio"],
            "bytes_met": v["bytes_ratio"] <= AIM_BYTES,
            "time_met": v["time_ratio"] <= AIM_TIME,
        }
        for label, v in out["variants"].items()
        if label.startswith("contiguous")
    }
    out["aims"]["scattered"] = {
        "bytes_vs_changed_pages": out["variants"]["scattered"]["bytes_vs_changed_pages"],
        "met": out["variants"]["scattered"]["bytes_vs_changed_pages"] <= AIM_PAGES,
    }
    out["plan"] = {"rows": plan.rows, "rounds": plan.rounds, "quick": args.quick}
    out["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg": os.getloadavg(),
    }
    out["total_s"] = round(time.perf_counter() - started, 1)
    print(table(out))
    scattered = out["aims"].pop("scattered")
    print(
        f"aim (scattered): bytes on the wire ≤ {AIM_PAGES}× the changed pages' bytes: "
        f"{scattered['bytes_vs_changed_pages']:.2f}× {'met' if scattered['met'] else 'MISSED'}"
    )
    for label, aim in out["aims"].items():
        print(
            f"aim ({label}): bytes ≤ {AIM_BYTES:.0%} of the DB: {aim['bytes_ratio']:.1%} "
            f"{'met' if aim['bytes_met'] else 'MISSED'}; time ≤ {AIM_TIME:.0%} of the whole-file "
            f"PUT: {aim['time_ratio']:.0%} {'met' if aim['time_met'] else 'MISSED'}"
        )
    out["aims"]["scattered"] = scattered
    print(f"total {out['total_s']} s; JSON in {args.json_out}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
