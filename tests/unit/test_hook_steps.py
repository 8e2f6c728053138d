"""What each hook event runs, as the ``memhub`` commands a user could type."""

from __future__ import annotations

from memhub.sync.hooks import HookConfig, steps_for

CONFIG = HookConfig.model_validate(
    {
        "folders": [{"path": "/home/me/notes", "prefix": "notes"}],
        "databases": [{"file": "/home/me/mem.db", "name": "mem"}],
        "depth": "wide",
        "max_tokens": 3000,
    }
)


def test_session_start_pulls_folders_then_databases_then_prints_the_context() -> None:
    assert [s.args for s in steps_for("session-start", CONFIG)] == [
        ["pull", "/home/me/notes", "--prefix", "notes"],
        ["db", "pull", "/home/me/mem.db", "--name", "mem"],
        ["context", "--depth", "wide", "--max-tokens", "3000"],
    ]


def test_stop_pushes_folders_then_databases_and_prints_nothing() -> None:
    steps = steps_for("stop", CONFIG)
    assert [s.args for s in steps] == [
        ["push", "/home/me/notes", "--prefix", "notes"],
        ["db", "push", "/home/me/mem.db", "--name", "mem"],
    ]
    assert [s.label for s in steps] == ["push /home/me/notes", "db push"]
