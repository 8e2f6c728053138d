"""Editing another application's JSON settings file: refuse what is not ours to parse,
keep a backup and the file's permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from memhub.core.jsonfile import read_json_object, write_json_object
from memhub.errors import BadRequest


def test_a_missing_file_reads_as_empty_and_is_created_private_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "settings.json"
    assert read_json_object(path) == {}
    write_json_object(path, {"key": "ü"}, private=True)
    assert json.loads(path.read_text(encoding="utf-8")) == {"key": "ü"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("settings.json.memhub-backup").exists()  # nothing to back up


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"'])
def test_what_is_not_a_json_object_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(BadRequest, match="not touching it"):
        read_json_object(path)
    assert path.read_text() == text


def test_the_first_edit_keeps_a_backup_and_every_edit_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"theme": "dark"}')
    path.chmod(0o640)
    write_json_object(path, {"theme": "dark", "a": 1})
    write_json_object(path, {"theme": "dark", "a": 2})
    backup = path.with_name("settings.json.memhub-backup")
    assert json.loads(backup.read_text()) == {"theme": "dark"}  # the original, not the 1st edit
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640
    assert read_json_object(path) == {"theme": "dark", "a": 2}
