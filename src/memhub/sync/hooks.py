"""Claude Code hooks: pull and load memory when a session starts, push when it stops.

``install`` adds two entries to ``~/.claude/settings.json`` (or
``$CLAUDE_CONFIG_DIR/settings.json``), keeping every other setting and never
adding an entry twice; ``uninstall`` removes exactly those entries. What the
hooks sync (folders, SQLite databases) and how much context they print is in
``<memhub config dir>/hooks.json``.

A hook must never block or break the agent: each step runs as a subprocess
with a deadline, and any failure is a warning on stderr with exit code 0.
SessionStart prints the memory context to stdout, which Claude Code adds to
the session.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memhub.errors import BadRequest
from memhub.store.blobs.local import write_durably
from memhub.sync.profile import config_dir

MARKER = "-m memhub hook "
EVENTS = {"SessionStart": "session-start", "Stop": "stop"}
HOOK_TIMEOUT = 60  # what Claude Code allows a hook
BUDGET = 50.0  # what memhub spends at most, in seconds, across the steps of one hook


def claude_settings_path() -> Path:
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base) if base else Path.home() / ".claude") / "settings.json"


def hook_command(event: str) -> str:
    return f"{shlex.quote(sys.executable)} {MARKER}{EVENTS[event]}"


def _read_settings(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise BadRequest(
            f"{path} is not valid JSON; not touching it", hint="fix or move it, then try again"
        ) from exc
    if not isinstance(data, dict):
        raise BadRequest(f"{path} does not hold a JSON object; not touching it")
    return data


def _is_ours(entry: Any) -> bool:
    hooks = entry.get("hooks", []) if isinstance(entry, dict) else []
    return any(MARKER in str(h.get("command", "")) for h in hooks if isinstance(h, dict))


def install(path: Path | None = None) -> tuple[Path, bool]:
    """Add the hooks; returns (settings file, whether anything changed)."""
    path = path or claude_settings_path()
    settings = _read_settings(path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BadRequest(f"'hooks' in {path} is not an object; not touching it")
    changed = False
    for event in EVENTS:
        entries = hooks.setdefault(event, [])
        if not isinstance(entries, list):
            raise BadRequest(f"'hooks.{event}' in {path} is not a list; not touching it")
        wanted = {
            "hooks": [{"type": "command", "command": hook_command(event), "timeout": HOOK_TIMEOUT}]
        }
        ours = [e for e in entries if _is_ours(e)]
        if ours == [wanted]:
            continue
        hooks[event] = [e for e in entries if not _is_ours(e)] + [wanted]
        changed = True
    if changed:
        _write(path, settings)
    return path, changed


def uninstall(path: Path | None = None) -> tuple[Path, bool]:
    path = path or claude_settings_path()
    settings = _read_settings(path)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return path, False
    changed = False
    for event in EVENTS:
        entries = hooks.get(event)
        if isinstance(entries, list) and any(_is_ours(e) for e in entries):
            kept = [e for e in entries if not _is_ours(e)]
            if kept:
                hooks[event] = kept
            else:
                del hooks[event]
            changed = True
    if not hooks:
        settings.pop("hooks", None)
    if changed:
        _write(path, settings)
    return path, changed


def installed(path: Path | None = None) -> bool:
    try:
        hooks = _read_settings(path or claude_settings_path()).get("hooks", {})
    except BadRequest:
        return False
    return isinstance(hooks, dict) and all(
        isinstance(hooks.get(e), list) and any(_is_ours(x) for x in hooks[e]) for e in EVENTS
    )


def _write(path: Path, settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".memhub-backup")
        if not backup.exists():
            write_durably(backup, path.read_bytes())
    write_durably(path, (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode())


# -- what the hooks do -------------------------------------------------------------------


@dataclass(slots=True)
class HookConfig:
    folders: list[dict[str, str]] = field(default_factory=list)  # {"path", "prefix"}
    databases: list[dict[str, str]] = field(default_factory=list)  # {"file", "name"}
    depth: str = "basic"
    max_tokens: int = 4000

    @staticmethod
    def path() -> Path:
        return config_dir() / "hooks.json"

    @classmethod
    def load(cls) -> HookConfig:
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(
            folders=list(data.get("folders", [])),
            databases=list(data.get("databases", [])),
            depth=str(data.get("depth", "basic")),
            max_tokens=int(data.get("max_tokens", 4000)),
        )

    def save(self) -> Path:
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "folders": self.folders,
            "databases": self.databases,
            "depth": self.depth,
            "max_tokens": self.max_tokens,
        }
        write_durably(path, (json.dumps(data, indent=2) + "\n").encode())
        return path


def steps_for(event: str, config: HookConfig) -> list[list[str]]:
    """The memhub commands a hook runs, in order."""
    base = [sys.executable, "-m", "memhub"]
    steps: list[list[str]] = []
    if event == "session-start":
        for folder in config.folders:
            steps.append([*base, "pull", folder["path"], "--prefix", folder.get("prefix", "")])
        for db in config.databases:
            steps.append([*base, "db", "pull", db["file"], "--name", db["name"]])
        steps.append(
            [*base, "context", "--depth", config.depth, "--max-tokens", str(config.max_tokens)]
        )
    else:
        for folder in config.folders:
            steps.append([*base, "push", folder["path"], "--prefix", folder.get("prefix", "")])
        for db in config.databases:
            steps.append([*base, "db", "push", db["file"], "--name", db["name"]])
    return steps


def run_hook(event: str, budget: float = BUDGET) -> int:
    """Run one hook's steps; print the context on session start. Always returns 0."""
    if event not in EVENTS.values():
        print(f"memhub hook: unknown event {event!r}", file=sys.stderr)
        return 0
    deadline = time.monotonic() + budget
    for argv in steps_for(event, HookConfig.load()):
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            print("memhub hook: out of time; skipping the remaining steps", file=sys.stderr)
            break
        label = " ".join(argv[3:5])
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=remaining,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"memhub hook: {label} did not finish: {exc}", file=sys.stderr)
            continue
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]
            print(f"memhub hook: {label} failed: {tail[0]}", file=sys.stderr)
            continue
        if argv[3] == "context":
            sys.stdout.write(done.stdout)
    return 0
