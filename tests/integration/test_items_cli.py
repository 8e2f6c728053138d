"""``memhub items add|ls|get|rm|search`` on a local data dir (in process, through the
same items service the server runs). The same commands against a server are in
``tests/e2e/test_product_e2e.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memhub.cli.main import app as cli_app
from memhub.store import open_store


@pytest.fixture
def data_dir(tmp_path: Path, cli_env: Path) -> Path:
    data = tmp_path / "cli-data"
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'memhub.db'}", (data / "blobs").as_uri())
    store.create_workspace("default")
    store.close()
    return data


def run(data_dir: Path, *args: str, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(cli_app, [*args, "--data-dir", str(data_dir)], input=stdin)
    return result


def as_json(data_dir: Path, *args: str, stdin: str | None = None) -> Any:
    result = run(data_dir, *args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_items_cli_round_trip(data_dir: Path) -> None:
    added = as_json(
        data_dir, "items", "add", "Gina keeps bees.", "Gina sells honey.", "--tag", "gina"
    )
    assert [a["action"] for a in added] == ["created", "created"]
    again = as_json(data_dir, "items", "add", "-", stdin="gina keeps bees\n\nGina has a dog.\n")
    assert [a["action"] for a in again] == ["updated", "created"]
    assert again[0]["id"] == added[0]["id"]
    page = as_json(data_dir, "items", "ls")
    assert page["total"] == 3
    tagged = as_json(data_dir, "items", "ls", "--filter", '{"tags": {"contains": "gina"}}')
    assert {i["memory"] for i in tagged["items"]} == {"Gina keeps bees.", "Gina sells honey."}
    found = as_json(data_dir, "items", "search", "honey")
    assert [f["item"]["memory"] for f in found] == ["Gina sells honey."]
    one = as_json(data_dir, "items", "get", added[1]["id"])
    assert one["memory"] == "Gina sells honey."
    stale = run(data_dir, "items", "rm", added[1]["id"], "--if-rev", "1")
    assert stale.exit_code == 2 and "rev" in stale.output
    gone = as_json(data_dir, "items", "rm", added[1]["id"])
    assert gone[0]["deleted"] is True
    assert as_json(data_dir, "items", "ls")["total"] == 2
    shown = run(data_dir, "items", "ls")
    assert shown.exit_code == 0 and "Gina keeps bees." in shown.stdout


def test_items_cli_errors_are_messages(data_dir: Path) -> None:
    bad = run(data_dir, "items", "ls", "--filter", "{nope")
    assert bad.exit_code == 2 and "not JSON" in bad.output
    unknown = run(data_dir, "items", "ls", "--filter", '{"nope": 1}')
    assert unknown.exit_code == 2 and "unknown filter field" in unknown.output
    missing = run(data_dir, "items", "get", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 2 and "no memory item" in missing.output
    empty = run(data_dir, "items", "add", "   ")
    assert empty.exit_code == 2
