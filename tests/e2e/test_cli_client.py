"""What a new user hit with the CLI, one test per defect, against one real ``memhub
serve`` for the whole module. Commands run in-process (typer's ``CliRunner``): the same
code as the console script, without paying an interpreter start per command."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from conftest import MEMHUB, ServerProcess, free_port
from memhub.cli.main import app

pytestmark = pytest.mark.e2e


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "xdg"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> ServerProcess:
    """The module's one ``memhub serve`` (each test has a config dir of its own)."""
    return module_server


@dataclass
class Cli:
    """``memhub ARGS`` in-process, with its own config dir, against the server."""

    env: dict[str, str]

    def __call__(self, *args: str | Path, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(app, [str(a) for a in args], env=self.env, input=input)

    def json(self, *args: str | Path) -> Any:
        result = self(*args, "--json")
        return json.loads(result.stdout)


@pytest.fixture
def cli(server: ServerProcess, tmp_path: Path) -> Cli:
    return Cli(
        {
            "MEMHUB_SERVER": server.base_url,
            "MEMHUB_KEY": server.key,
            "MEMHUB_CONFIG_DIR": str(tmp_path / "config"),
            "MEMHUB_DATA_DIR": str(tmp_path / "data"),
            "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
            "MEMHUB_WORKSPACE": None,  # type: ignore[dict-item]  # CliRunner unsets None
        }
    )


# -- help and start-up ---------------------------------------------------------------------


def test_help_is_grouped_h_works_and_flags_show_no_bool(cli: Cli) -> None:
    result = cli("-h")
    assert result.exit_code == 0
    positions = [result.stdout.index(f"\n{panel}:") for panel in ("Server", "Files", "Memory",
                 "Sync", "Databases", "Keys", "Hooks", "Maintenance")]  # fmt: skip
    assert positions == sorted(positions)
    sync_help = cli("sync", "-h").stdout
    assert "--dry-run " in sync_help and "<bool>" not in sync_help
    assert "--install-completion" not in sync_help


# -- serve -----------------------------------------------------------------------------------


def test_serve_validates_log_level_and_port_and_says_what_to_do(tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MEMHUB), "serve", "--data-dir", str(tmp_path / "d"), *args],
            capture_output=True, text=True, timeout=60, env=clean_env(tmp_path),
        )  # fmt: skip

    loud = serve("--log-level", "loud")
    assert loud.returncode == 2 and "Traceback" not in loud.stderr
    assert "--log-level must be one of" in loud.stderr
    high = serve("--port", "99999")
    assert high.returncode == 2 and "65535" in high.stderr and "Traceback" not in high.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = serve("--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "the port is in use" in busy.stderr
    assert "serving on" not in busy.stderr


# -- status, doctor, keys, lease ----------------------------------------------------------


def test_status_prints_a_table_and_json(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("a")
    assert cli("sync", folder, "--prefix", "status-test").exit_code == 0
    text = cli("status").stdout
    assert str(folder) in text and "status-test/" in text and "{" not in text
    status = cli.json("status")
    assert status["folders"][str(folder)]["prefix"] == "status-test/"


def test_doctor_unreachable_is_fail_and_missing_hooks_is_information(
    cli: Cli, tmp_path: Path
) -> None:
    dead = Cli({**cli.env, "MEMHUB_SERVER": f"http://127.0.0.1:{free_port()}"})
    result = dead("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.exit_code == 2 and checks["server"]["status"] == "FAIL"
    assert "unreachable" in checks["server"]["detail"]

    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    result = cli("doctor", "--db", db, "--db", tmp_path / "." / "x.db", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    names = [c["name"] for c in report["checks"]]
    assert names.count(f"db {db}") == 1  # one DB, however it is spelled
    assert {c["name"]: c["status"] for c in report["checks"]}["hooks"] == "INFO"


def test_doctor_warns_about_another_tools_hooks_syncing_databases(cli: Cli, tmp_path: Path) -> None:
    settings = tmp_path / "claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    foreign = {"hooks": {"Stop": [{"hooks": [{"type": "command",
               "command": "claude-mem-hook-push ~/.claude-mem/claude-mem.db"}]}]}}  # fmt: skip
    settings.write_text(json.dumps(foreign))
    db = tmp_path / "mem.db"
    sqlite3.connect(db).close()
    assert cli("hooks", "install", "--claude", "--db", f"{db}:mem").exit_code == 0
    result = cli("doctor", "--json")
    hooks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["hooks"]
    assert result.exit_code == 1 and hooks["status"] == "DEGRADED"
    assert "claude-mem-hook-push" in hooks["detail"]


def test_keys_are_shown_whole_revoked_by_prefix_and_not_twice(
    cli: Cli, server: ServerProcess, tmp_path: Path
) -> None:
    data = ["--data-dir", str(server.data_dir)]
    created = cli.json("keys", "create", "--workspace", "keys-test", *data)
    listing = CliRunner().invoke(app, ["keys", "list", *data], env={"COLUMNS": "40"})
    assert created["id"] in listing.stdout  # whole, even in a narrow pipe
    revoked = cli("keys", "revoke", created["id"][:6], *data)
    assert revoked.exit_code == 0 and created["id"] in revoked.stderr
    again = cli("keys", "revoke", created["id"], *data)
    assert again.exit_code == 1 and "already revoked" in again.stderr
    assert cli("keys", "revoke", "zzzz-no-such", *data).exit_code == 1


def test_lease_list_hides_released_leases(cli: Cli, server: ServerProcess) -> None:
    with httpx.Client(
        base_url=server.base_url, headers={"authorization": f"Bearer {server.key}"}
    ) as h:
        base = "/v1/workspaces/default/leases"
        held = h.post(f"{base}/db:held", json={"holder": "a", "ttl": 600}).json()
        done = h.post(f"{base}/db:done", json={"holder": "b", "ttl": 600}).json()
        h.post(f"{base}/db:done/release", json={"holder": "b", "token": done["token"]})
    shown = cli("lease", "list").stdout
    assert "db:held" in shown and "db:done" not in shown
    assert "db:done" in cli("lease", "list", "--all").stdout
    assert [x["name"] for x in cli.json("lease", "list")["leases"]] == ["db:held"]
    assert held["token"] > 0


# -- sync --------------------------------------------------------------------------------------


def test_sync_remembers_the_prefix_and_dry_run_shows_a_refused_plan(
    cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.md").write_text(str(i))
    assert cli("sync", folder, "--prefix", "remembered").exit_code == 0
    (folder / "new.md").write_text("new")
    assert cli("sync", folder).exit_code == 0  # no --prefix: the recorded one
    listed = cli.json("ls", "remembered/")
    assert "remembered/new.md" in [f["path"] for f in listed["files"]]

    for i in range(4):
        (folder / f"{i}.md").unlink()
    dry = cli("sync", folder, "--dry-run")
    assert dry.exit_code == 1
    assert "would delete remote: 0.md" in dry.stderr and "refused" in dry.stderr
    result = cli("sync", folder, "--json")
    body = json.loads(result.stdout)
    assert result.exit_code == 1 and body["ok"] is False and body["error_code"] == "CONFLICT"


def test_sync_json_prints_a_result_when_the_server_is_down(cli: Cli, tmp_path: Path) -> None:
    dead = Cli({**cli.env, "MEMHUB_SERVER": f"http://127.0.0.1:{free_port()}",
                "MEMHUB_RETRIES": "0"})  # fmt: skip
    (tmp_path / "g").mkdir()
    result = dead("sync", tmp_path / "g", "--json")
    body = json.loads(result.stdout)
    assert result.exit_code == 1 and body["ok"] is False
    assert body["error_code"] == "SERVER_UNREACHABLE"


def test_watch_stops_with_the_auth_error(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    refused = Cli({**cli.env, "MEMHUB_KEY": "mh_" + "A" * 43})
    result = refused("sync", tmp_path / "w", "--watch")  # returns: it must not loop
    assert result.exit_code == 1 and "error:" in result.stderr
    assert "key" in result.stderr.lower() or "unauthorized" in result.stderr.lower()


# -- db ------------------------------------------------------------------------------------------


def test_db_divergence_names_the_command_that_resolves_it(cli: Cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for db in (a, b):
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t(x)")
            conn.execute("INSERT INTO t VALUES (?)", (str(db),))
        conn.close()
    assert cli("db", "push", a, "--name", "hint-test").exit_code == 0
    refused = cli("db", "push", b, "--name", "hint-test")
    assert refused.exit_code == 1
    assert f"memhub db pull {b} --name hint-test --overwrite" in refused.stderr


# -- memory ---------------------------------------------------------------------------------------


def test_context_says_so_when_nothing_matches(cli: Cli) -> None:
    result = cli("context", "zqxjv unmatched words")
    assert result.exit_code == 0 and result.stdout == ""
    assert "nothing in workspace default matches" in result.stderr


# -- hooks ----------------------------------------------------------------------------------------


def test_installed_hook_carries_the_config_dir_and_a_bad_hooks_json_warns(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli("hooks", "install", "--claude").exit_code == 0
    settings = json.loads((tmp_path / "claude" / "settings.json").read_text())
    command = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    assert f"MEMHUB_CONFIG_DIR={tmp_path / 'config'}" in command

    (tmp_path / "config" / "hooks.json").write_text('{"folders": "not a list"}')
    result = cli("hook", "stop")
    assert result.exit_code == 0  # never fails the agent
    assert "hooks.json is malformed" in result.stderr and "nothing is pulled or pushed" in (
        result.stderr
    )


# -- per-file commands ---------------------------------------------------------------------------


def test_per_file_commands_are_conditional_and_speak_json(cli: Cli, tmp_path: Path) -> None:
    path = "files-test/a.md"
    created = json.loads(cli("put", path, "--json", input="one\n").stdout)
    assert created["ok"] and created["created"] and created["rev"] > 0
    clash = cli("put", path, "--json", input="two\n")
    assert clash.exit_code == 1 and json.loads(clash.stdout)["error_code"] == "PRECONDITION_FAILED"
    assert "--if-match" in clash.stderr and "--force" in clash.stderr
    source = tmp_path / "two.md"
    source.write_text("two\n")
    updated = cli.json("put", path, source, "--if-match", created["sha256"])
    assert updated["rev"] > created["rev"]

    assert cli("get", path).stdout == "two\n"
    assert cli("get", path, "--rev", str(created["rev"])).stdout == "one\n"
    assert [r["rev"] for r in cli.json("history", path)["revisions"]] == [
        updated["rev"], created["rev"]]  # fmt: skip
    diff = cli("diff", path).stdout
    assert "-one" in diff and "+two" in diff and "\x1b[" not in diff  # no colour in a pipe

    gone = cli.json("rm", path)
    assert gone["deleted"] and cli("get", path).exit_code == 1
    back = cli.json("restore", path, "--rev", str(created["rev"]))
    assert back["restored_from"] == created["rev"] and cli("get", path).stdout == "one\n"
    assert path in cli("ls", "files-test/").stdout


def test_session_start_hook_pulls_then_prints_the_context_and_stop_pushes(
    cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "mem"
    folder.mkdir()
    assert cli("hooks", "install", "--claude", "--folder", f"{folder}:hook-test").exit_code == 0
    assert (
        cli("put", "hook-test/decisions.md", input="# Decisions\n\nUse PostgreSQL.\n").exit_code
        == 0
    )
    started = cli("hook", "session-start")
    assert started.exit_code == 0, started.stderr
    assert (folder / "decisions.md").read_text() == "# Decisions\n\nUse PostgreSQL.\n"
    assert "memhub hook:" not in started.stderr
    (folder / "later.md").write_text("written during the session\n")
    assert cli("hook", "stop").exit_code == 0
    assert cli("get", "hook-test/later.md").stdout == "written during the session\n"


def test_the_installed_hook_command_runs_its_steps_without_typer_or_rich(
    cli: Cli, tmp_path: Path
) -> None:
    """What Claude Code runs (``python -m memhub hook EVENT``, a process of its own) goes
    around the Typer app: the same pull, context and push, with neither typer nor rich
    loaded (start-up is what the agent waits for)."""
    folder = tmp_path / "mem"
    folder.mkdir()
    assert cli("hooks", "install", "--claude", "--folder", f"{folder}:direct-hook").exit_code == 0
    rules = "# Rules\n\n- **ALWAYS** ship the hooks with a test.\n"
    assert cli("put", "direct-hook/CLAUDE.md", input=rules).exit_code == 0
    env = {k: v for k, v in cli.env.items() if v is not None}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEMHUB_")}, **env}
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['memhub', 'hook', sys.argv[1]]\n"
        "try:\n    runpy.run_module('memhub', run_name='__main__')\n"
        "finally:\n"
        "    print('LOADED', sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )

    def hook(event: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", probe, event]
        return subprocess.run(argv, env=env, text=True, capture_output=True, timeout=120)

    started = hook("session-start")
    assert started.returncode == 0, started.stderr
    assert (folder / "CLAUDE.md").read_text() == rules
    assert "ship the hooks with a test." in started.stdout  # the context: its rules
    loaded = started.stderr.split("LOADED", 1)[1]
    assert "'typer'" not in loaded and "'rich'" not in loaded, loaded
    assert "memhub hook:" not in started.stderr
    (folder / "later.md").write_text("pushed by the direct hook\n")
    stopped = hook("stop")
    assert stopped.returncode == 0 and "memhub hook:" not in stopped.stderr, stopped.stderr
    assert cli("get", "direct-hook/later.md").stdout == "pushed by the direct hook\n"
    assert str(folder) in cli("status").stdout + cli("status").stderr  # remembered for status
