"""What ``memhub hook EVENT`` runs: a hook's steps, through the client library.

Claude Code waits for the SessionStart hook, and each hook is one interpreter start,
so its imports are most of its time (``bench/cli.py``). ``memhub hook`` therefore goes
around the Typer app (:func:`memhub.cli.main.main` sends it here) and runs the
everyday steps, folder pulls and pushes and the context, straight through the client:
no Typer, no rich. A DB step, whose work outweighs any import, runs as its
``memhub db`` command in this process (:func:`memhub.cli.hooks.run_cli_step`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from memhub.errors import MemhubError
from memhub.sync.hooks import Step, StepResult, run_hook

if TYPE_CHECKING:
    from memhub.client.settings import ClientSettings


class Steps:
    """The step runner :func:`memhub.sync.hooks.run_hook` calls, one step at a time."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings

    def __call__(self, step: Step) -> StepResult:
        try:
            if step.command in ("pull", "push"):
                return self._folder(step)
            if step.command == "context":
                return self._context(step)
        except MemhubError as exc:
            return 1, "", f"error: {exc}"
        from memhub.cli.hooks import run_cli_step

        return run_cli_step(step.args)

    def _folder(self, step: Step) -> StepResult:
        from memhub.client.factory import connect
        from memhub.client.profile import load_profile
        from memhub.sync.folder import sync_folder

        root = Path(step.target).expanduser().resolve()
        with connect(self.settings, load_profile(self.settings), local=False) as client:
            report = sync_folder(
                root,
                client,
                self.settings.config_dir,
                prefix=step.option,
                push=step.command == "push",
                pull=step.command == "pull",
            )
        if report.errors:
            first = report.errors[0]
            return (
                1,
                "",
                f"{len(report.errors)} not synced, first {first['path']}: {first['error']}",
            )
        return 0, "", ""

    def _context(self, step: Step) -> StepResult:
        from memhub.client.factory import connect

        with connect(self.settings) as client:
            result = client.context([], depth=step.target, max_tokens=int(step.option))
        if not result.markdown.strip():
            return 0, "", "nothing in memory to load yet"
        return 0, result.markdown + "\n", ""


def main(
    event: str,
    settings: ClientSettings | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the hook for ``event`` with these settings (default: the environment's);
    always 0, like :func:`memhub.sync.hooks.run_hook`."""
    err = err or sys.stderr
    if settings is None:
        from pydantic import ValidationError

        from memhub.client.settings import ClientSettings

        try:
            settings = ClientSettings()
        except ValidationError as exc:
            print(f"memhub hook: invalid MEMHUB_* setting: {exc}; nothing is synced", file=err)
            return 0
    return run_hook(event, settings.config_dir, Steps(settings), out=out, err=err)
