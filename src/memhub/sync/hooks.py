"""Claude Code hooks: pull and load memory when a session starts, push when it stops.

``install`` adds two entries to ``~/.claude/settings.json`` (or
``$CLAUDE_CONFIG_DIR/settings.json``), keeping every other setting and never
adding an entry twice; ``uninstall`` removes exactly those entries. What the
hooks sync (folders, SQLite databases) and how much context they print is in
``<memhub config dir>/hooks.json``.

A hook must never block or break the agent: its steps (memhub commands) run
in the hook's own process, in a worker thread under a deadline, and any
failure is a warning on stderr with exit code 0.
SessionStart prints the memory context to stdout, which Claude Code adds to
the session.
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memhub.core.durable import write_durably
from memhub.core.jsonfile import read_json_object, write_json_object
from memhub.errors import BadRequest

MARKER = "-m memhub hook "
EVENTS = {"SessionStart": "session-start", "Stop": "stop"}
HOOK_TIMEOUT = 60  # what Claude Code allows a hook
BUDGET = 50.0  # what memhub spends at most, in seconds, across the steps of one hook


def hook_command(event: str, env: dict[str, str] | None = None) -> str:
    """The shell command Claude Code runs; ``env`` carries a non-default config/data dir."""
    prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in sorted((env or {}).items()))
    return f"{prefix}{shlex.quote(sys.executable)} {MARKER}{EVENTS[event]}"


def _is_ours(entry: Any) -> bool:
    hooks = entry.get("hooks", []) if isinstance(entry, dict) else []
    return any(MARKER in str(h.get("command", "")) for h in hooks if isinstance(h, dict))


def install(path: Path, env: dict[str, str] | None = None) -> tuple[Path, bool]:
    """Add the hooks; returns (settings file, whether anything changed)."""
    settings = read_json_object(path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BadRequest(f"'hooks' in {path} is not an object; not touching it")
    changed = False
    for event in EVENTS:
        entries = hooks.setdefault(event, [])
        if not isinstance(entries, list):
            raise BadRequest(f"'hooks.{event}' in {path} is not a list; not touching it")
        wanted = {
            "hooks": [
                {"type": "command", "command": hook_command(event, env), "timeout": HOOK_TIMEOUT}
            ]
        }
        ours = [e for e in entries if _is_ours(e)]
        if ours == [wanted]:
            continue
        hooks[event] = [e for e in entries if not _is_ours(e)] + [wanted]
        changed = True
    if changed:
        write_json_object(path, settings)
    return path, changed


def uninstall(path: Path) -> tuple[Path, bool]:
    settings = read_json_object(path)
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
        write_json_object(path, settings)
    return path, changed


def installed(path: Path) -> bool:
    try:
        hooks = read_json_object(path).get("hooks", {})
    except BadRequest:
        return False
    return isinstance(hooks, dict) and all(
        isinstance(hooks.get(e), list) and any(_is_ours(x) for x in hooks[e]) for e in EVENTS
    )


FOREIGN_HOOKS = ("claude-mem-hook-pull", "claude-mem-hook-push")  # membridge's


def foreign_hooks(path: Path) -> list[str]:
    """Other tools' hook commands that sync databases too (two syncers of one DB fight)."""
    try:
        hooks = read_json_object(path).get("hooks", {})
    except BadRequest:
        return []
    found: list[str] = []
    for entries in hooks.values() if isinstance(hooks, dict) else []:
        for entry in entries if isinstance(entries, list) else []:
            for hook in entry.get("hooks", []) if isinstance(entry, dict) else []:
                command = str(hook.get("command", "")) if isinstance(hook, dict) else ""
                found += [name for name in FOREIGN_HOOKS if name in command]
    return sorted(set(found))


# -- what the hooks do -------------------------------------------------------------------


class FolderEntry(BaseModel):
    path: str
    prefix: str = ""


class DatabaseEntry(BaseModel):
    file: str
    name: str


class HookConfig(BaseModel):
    """``<config dir>/hooks.json``: what the hooks sync and how much context they print."""

    model_config = ConfigDict(extra="forbid")

    folders: list[FolderEntry] = Field(default_factory=list)
    databases: list[DatabaseEntry] = Field(default_factory=list)
    depth: Literal["basic", "wide", "deep", "temporal"] = "basic"
    max_tokens: int = Field(default=4000, ge=100, le=200_000)

    @staticmethod
    def path(config_dir: Path) -> Path:
        return config_dir / "hooks.json"

    @classmethod
    def load(cls, config_dir: Path) -> HookConfig:
        """The saved config (empty when there is none); a malformed file is an error."""
        path = cls.path(config_dir)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise BadRequest(f"cannot read {path}: {exc.strerror}") from exc
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "the file"
            raise BadRequest(
                f"{path} is malformed ({where}: {problem['msg']})",
                hint="fix it, or remove it and run `memhub hooks install --claude` again",
            ) from exc

    def save(self, config_dir: Path) -> Path:
        path = self.path(config_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, (self.model_dump_json(indent=2) + "\n").encode())
        return path


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a hook does: ``target`` is the folder or DB file, ``option`` its prefix
    or DB name; for the context, the depth and the token budget."""

    command: Literal["pull", "push", "db pull", "db push", "context"]
    target: str = ""
    option: str = ""

    @property
    def args(self) -> list[str]:
        """The same step as ``memhub`` arguments (how the CLI runs it)."""
        if self.command == "context":
            return ["context", "--depth", self.target, "--max-tokens", self.option]
        flag = "--name" if self.command.startswith("db ") else "--prefix"
        return [*self.command.split(), self.target, flag, self.option]

    @property
    def label(self) -> str:
        return " ".join(self.args[:2])


def steps_for(event: str, config: HookConfig) -> list[Step]:
    """What a hook runs, in order."""
    start = event == "session-start"
    steps = [Step("pull" if start else "push", f.path, f.prefix) for f in config.folders]
    steps += [Step("db pull" if start else "db push", d.file, d.name) for d in config.databases]
    if start:
        steps.append(Step("context", config.depth, str(config.max_tokens)))
    return steps


StepResult = tuple[int, str, str]  # exit code, stdout, stderr
StepRunner = Callable[[Step], StepResult]


def run_hook(
    event: str,
    config_dir: Path,
    run_step: StepRunner,
    *,
    budget: float = BUDGET,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one hook's steps with ``run_step`` (in this process: no interpreter start per
    step; see :mod:`memhub.sync.hook_steps`) in a worker thread, and print the context on session
    start. Always returns 0: a failure, or running out of ``budget`` seconds, is a
    warning on stderr, never a broken agent session."""
    out, err = out or sys.stdout, err or sys.stderr
    if event not in EVENTS.values():
        print(f"memhub hook: unknown event {event!r}", file=err)
        return 0
    try:
        config = HookConfig.load(config_dir)
    except BadRequest as exc:
        print(f"memhub hook: {exc}; nothing is pulled or pushed until it is fixed", file=err)
        return 0
    messages: list[str] = []
    context: list[str] = []

    def work() -> None:
        for step in steps_for(event, config):
            try:
                code, stdout, stderr = run_step(step)
            except Exception as exc:  # the boundary: a hook reports, it never raises
                messages.append(f"{step.label} failed: {exc!r}")
                continue
            if code != 0:
                tail = (stderr or stdout).strip().splitlines()[-1:] or [f"exit code {code}"]
                messages.append(f"{step.label} failed: {tail[0]}")
            elif step.command == "context":
                context.append(stdout)

    worker = threading.Thread(target=work, name=f"memhub-hook-{event}", daemon=True)
    worker.start()
    worker.join(budget)
    for message in list(messages):
        print(f"memhub hook: {message}", file=err)
    if worker.is_alive():
        print(f"memhub hook: out of time after {budget:.0f} s; the rest is skipped", file=err)
        return 0
    out.write("".join(context))
    out.flush()
    return 0
