"""``memhub doctor``: what works and what does not, each check OK / DEGRADED / FAIL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from memhub.client.http import MemhubClient, ServerUnreachable
from memhub.client.profile import Profile
from memhub.errors import BadRequest, MemhubError, NotFound, Unauthorized, WorkspaceNotFound
from memhub.sync import hooks

OK, INFO, DEGRADED, FAIL = "OK", "INFO", "DEGRADED", "FAIL"
SEVERITY = {OK: 0, INFO: 0, DEGRADED: 1, FAIL: 2}
SKEW_WARN, SKEW_FAIL = 5.0, 60.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def exit_code(checks: list[Check]) -> int:
    return max((SEVERITY[c.status] for c in checks), default=0)


def run_checks(
    client: MemhubClient,
    profile: Profile,
    *,
    databases: list[Path],
    settings: Path,
    config_dir: Path,
) -> list[Check]:
    """Every check, in order; ``client`` is closed by the caller."""
    checks: list[Check] = []
    server_ok = _guard(checks, "server", lambda: _server(client, profile))
    if server_ok:
        if _guard(checks, "key", lambda: _key(client, profile)):
            _guard(checks, "workspace", lambda: _workspace(client, profile))
            _guard(checks, "leases", lambda: _leases(client))
        _guard(checks, "clock", lambda: _clock(client))
    unique = list(dict.fromkeys(db.expanduser().resolve() for db in databases))
    for db in unique:
        checks.append(_database(db))
    checks.append(_hooks(settings, config_dir, bool(unique)))
    return checks


def _guard(checks: list[Check], name: str, check: Callable[[], Check]) -> bool:
    try:
        result = check()
    except MemhubError as exc:
        result = Check(name, FAIL, str(exc))
    checks.append(result)
    return result.status != FAIL


def _server(client: MemhubClient, profile: Profile) -> Check:
    try:
        health = client.health()
    except ServerUnreachable as exc:
        return Check("server", FAIL, f"unreachable: {exc}")
    except MemhubError as exc:
        if exc.status == 503:
            return Check("server", DEGRADED, f"{profile.server} answers but its storage does not")
        raise
    return Check("server", OK, f"{profile.server}: {health.get('status')}")


def _key(client: MemhubClient, profile: Profile) -> Check:
    if not profile.key:
        return Check("key", FAIL, "no API key: memhub login --server URL --key KEY")
    try:
        client.leases()
    except Unauthorized as exc:
        return Check("key", FAIL, f"the key is refused: {exc.detail}")
    except (NotFound, WorkspaceNotFound):
        pass  # the key works; the workspace check says what is wrong
    return Check("key", OK, f"{profile.key[:11]}… from {profile.source}")


def _workspace(client: MemhubClient, profile: Profile) -> Check:
    try:
        info = client.workspace_info()
    except (NotFound, WorkspaceNotFound):
        return Check(
            "workspace", FAIL, f"workspace {profile.workspace!r} is not reachable with this key"
        )
    return Check("workspace", OK, f"{info.name}: {info.files} files, rev {info.head_rev}")


def _clock(client: MemhubClient) -> Check:
    before = time.time()
    response = client.request("GET", "/health")
    after = time.time()
    stamp = response.headers.get("date")
    if not stamp:
        return Check("clock", DEGRADED, "the server sent no Date header")
    skew = parsedate_to_datetime(stamp).timestamp() - (before + after) / 2
    status = OK if abs(skew) < SKEW_WARN else DEGRADED if abs(skew) < SKEW_FAIL else FAIL
    return Check("clock", status, f"skew {skew:+.1f} s (leases and backups rely on clocks)")


def _leases(client: MemhubClient) -> Check:
    now = time.time()
    active = [lease for lease in client.leases() if lease.active]
    if not active:
        return Check("leases", OK, "no lease is held")
    held = ", ".join(
        f"{x.name} by {x.holder} ({((x.expires_at or now) - now) / 60:.0f} min left)"
        for x in active
    )
    return Check("leases", OK, f"held: {held}")


def _database(path: Path) -> Check:
    name = f"db {path}"
    if not path.exists():
        return Check(name, DEGRADED, "does not exist (memhub db pull creates it)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return Check(name, FAIL, f"cannot open: {exc}")
    return Check(name, OK if result == "ok" else FAIL, f"quick_check: {result}")


def _hooks(path: Path, config_dir: Path, syncs_databases: bool) -> Check:
    try:
        hooks.HookConfig.load(config_dir)
    except BadRequest as exc:
        return Check("hooks", FAIL, f"{exc.detail}: the hooks sync nothing until it is fixed")
    foreign = hooks.foreign_hooks(path)
    if foreign and syncs_databases:
        return Check(
            "hooks",
            DEGRADED,
            f"another tool's hooks ({', '.join(foreign)}) in {path} also sync databases: "
            "two syncers of one DB overwrite each other; remove one of them",
        )
    if hooks.installed(path):
        return Check("hooks", OK, f"Claude Code hooks installed in {path}")
    return Check("hooks", INFO, f"not installed in {path} (memhub hooks install --claude)")
