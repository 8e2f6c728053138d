"""The README documents every command, setting and route a user meets."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from memhub.api import create_app
from memhub.cli.main import app as cli_app
from memhub.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"MEMHUB_{name.upper()}" in README, f"MEMHUB_{name.upper()} is not in README.md"


def test_every_command_is_documented() -> None:
    group = typer.main.get_command(cli_app)
    assert group.commands  # type: ignore[attr-defined]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"memhub {name}" in README, f"`memhub {name}` is not in README.md"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in README, f"`memhub {name} {opt}` is not in README.md"


def _readme_form(path: str) -> str:
    # {path:path} is written {path} in the README, {workspace} {ws}, {namespace} {ns}
    path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
    return path.replace("{workspace}", "{ws}").replace("{namespace}", "{ns}")


def test_every_route_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    paths = app.openapi()["paths"]
    operations = [(m.upper(), p) for p, ops in paths.items() for m in ops]
    assert len(operations) > 40, "the route list is suspiciously short"
    for method, path in operations:
        path = _readme_form(path)
        documented = f"{method} {path}" in README or (
            method in ("GET", "HEAD") and f"`GET`/`HEAD {path}" in README
        )
        assert documented, f"{method} {path} is not in README.md"
    app.state.store.close()
