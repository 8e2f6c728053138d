"""``memhub mcp install|uninstall``: the apps' config files, edited idempotently,
keeping every other setting, refusing files they cannot understand."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memhub.cli.main import app as cli_app
from memhub.errors import BadRequest
from memhub.mcp import install
from memhub.mcp.install import Target


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("MEMHUB_SERVER", "MEMHUB_KEY", "MEMHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMHUB_CONFIG_DIR", str(tmp_path / "memhub-config"))
    return tmp_path


def test_paths(home: Path) -> None:
    assert install.config_path("claude") == home / "claude" / ".claude.json"
    assert install.config_path("claude", "project", home / "p") == home / "p" / ".mcp.json"
    assert install.config_path("cursor") == home / ".cursor" / "mcp.json"
    assert install.config_path("cursor", "project", home / "p") == home / "p/.cursor/mcp.json"
    if sys.platform.startswith("linux"):
        want = home / "xdg" / "Claude" / "claude_desktop_config.json"
        assert install.config_path("claude-desktop") == want
    with pytest.raises(BadRequest):
        install.config_path("claude-desktop", "project")


def test_install_keeps_everything_else_and_is_idempotent(home: Path) -> None:
    path = home / "claude" / ".claude.json"
    path.parent.mkdir()
    original = {"numStartups": 7, "mcpServers": {"other": {"command": "other-server"}}}
    path.write_text(json.dumps(original))
    path.chmod(0o600)

    assert install.install("claude", Target()) == (path, True)
    config = json.loads(path.read_text())
    assert config["numStartups"] == 7
    assert config["mcpServers"]["other"] == {"command": "other-server"}
    ours = config["mcpServers"]["memhub"]
    assert ours == {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "memhub", "mcp"],
        "env": {},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    backup = path.with_name(".claude.json.memhub-backup")
    assert json.loads(backup.read_text()) == original

    before = path.read_bytes()
    assert install.install("claude", Target()) == (path, False)
    assert path.read_bytes() == before

    # a changed target replaces our entry, and only it
    assert install.install("claude", Target(server="http://h:1", workspace="w"))[1]
    args = json.loads(path.read_text())["mcpServers"]["memhub"]["args"]
    assert args == ["-m", "memhub", "mcp", "--server", "http://h:1", "--workspace", "w"]
    assert json.loads(backup.read_text()) == original  # the backup is the first state

    assert install.uninstall("claude") == (path, True)
    assert json.loads(path.read_text()) == original
    assert install.uninstall("claude") == (path, False)


def test_http_entries(home: Path) -> None:
    target = Target(url="https://hub.example/mcp", key="mh_secret", workspace="team")
    path, _ = install.install("claude", target, scope="project", project=home / "p")
    entry = json.loads(path.read_text())["mcpServers"]["memhub"]
    assert entry == {
        "type": "http",
        "url": "https://hub.example/mcp",
        "headers": {"Authorization": "Bearer ${MEMHUB_KEY}", "X-Memhub-Workspace": "team"},
    }
    assert "mh_secret" not in path.read_text()  # a project file is often committed
    cursor, _ = install.install("cursor", target, scope="project", project=home / "p")
    assert "${env:MEMHUB_KEY}" in cursor.read_text()

    user, _ = install.install("cursor", target)
    assert json.loads(user.read_text())["mcpServers"]["memhub"]["headers"]["Authorization"] == (
        "Bearer mh_secret"
    )
    assert stat.S_IMODE(user.stat().st_mode) == 0o600  # a new file holding a key
    with pytest.raises(BadRequest, match="stdio"):
        install.install("claude-desktop", target)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"mcpServers": []}'])
def test_refuses_files_it_cannot_understand(home: Path, content: str) -> None:
    path = install.config_path("cursor")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(BadRequest, match="not touching it"):
        install.install("cursor", Target())
    assert path.read_text() == content


def test_cli_install_and_uninstall(home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["mcp", "install", "--claude", "--claude-desktop"])
    assert result.exit_code == 0, result.output
    desktop = install.config_path("claude-desktop")
    assert "memhub" in json.loads(desktop.read_text())["mcpServers"]
    again = runner.invoke(cli_app, ["mcp", "install", "--claude", "--claude-desktop"])
    assert again.exit_code == 0 and "already in" in again.output
    http = runner.invoke(
        cli_app,
        ["mcp", "install", "--cursor", "--http", "--server", "http://127.0.0.1:9", "--key", "k1"],
    )
    assert http.exit_code == 0, http.output
    entry = json.loads(install.config_path("cursor").read_text())["mcpServers"]["memhub"]
    assert entry["url"] == "http://127.0.0.1:9/mcp"
    assert entry["headers"]["Authorization"] == "Bearer k1"
    assert runner.invoke(cli_app, ["mcp", "install"]).exit_code == 2  # no app named
    removed = runner.invoke(cli_app, ["mcp", "uninstall", "--claude", "--claude-desktop"])
    assert removed.exit_code == 0
    assert json.loads(desktop.read_text())["mcpServers"] == {}
