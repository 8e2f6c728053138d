"""The three-way sync planner: pure, so it can be tested exhaustively.

For every path it compares three versions, each a content hash or None
(absent or deleted):

- ``base``: what both sides held after the last sync (the local state file);
- ``local``: what the folder holds now;
- ``remote``: the server's head now.

Decisions:

=====================================  ==================================
situation                              action
=====================================  ==================================
local == remote                        nothing (the same change on both
                                       sides is not a conflict)
only local changed                     upload (If-Match: base) or, if
                                       deleted here, delete remotely
only remote changed                    download or, if deleted there,
                                       delete locally
both changed, one of them deleted      keep the edit: upload or download
                                       it (a delete never beats an edit)
both changed to different contents     conflict: the remote version takes
                                       the name, the local one is kept as
                                       ``name.conflict-<host>-<time>.ext``
                                       and uploaded like any other file
=====================================  ==================================
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    DELETE_REMOTE = "delete_remote"
    DELETE_LOCAL = "delete_local"
    CONFLICT = "conflict"
    ADOPT = "adopt"  # both sides already agree: record it as the new base


@dataclass(frozen=True, slots=True)
class Step:
    path: str
    action: Action
    base: str | None
    local: str | None
    remote: str | None


def decide(path: str, base: str | None, local: str | None, remote: str | None) -> Step | None:
    """The step that reconciles one path, or None when nothing is to be done."""
    if local == remote:
        return Step(path, Action.ADOPT, base, local, remote) if base != local else None
    if local == base:  # only the remote changed
        action = Action.DOWNLOAD if remote is not None else Action.DELETE_LOCAL
        return Step(path, action, base, local, remote)
    if remote == base:  # only the local side changed
        action = Action.UPLOAD if local is not None else Action.DELETE_REMOTE
        return Step(path, action, base, local, remote)
    if local is None:  # deleted here, edited there: keep the edit
        return Step(path, Action.DOWNLOAD, base, local, remote)
    if remote is None:  # edited here, deleted there: keep the edit
        return Step(path, Action.UPLOAD, base, local, remote)
    return Step(path, Action.CONFLICT, base, local, remote)


def plan(
    base: dict[str, str], local: dict[str, str], remote: dict[str, str], *, push: bool, pull: bool
) -> list[Step]:
    """Steps for every path any side knows, in path order. ``push``/``pull`` restrict
    the plan to one direction (a push never changes local files, a pull never the
    server; conflicts are left for a two-way sync)."""
    steps: list[Step] = []
    for path in sorted(set(base) | set(local) | set(remote)):
        step = decide(path, base.get(path), local.get(path), remote.get(path))
        if step is None:
            continue
        if not push and step.action in (Action.UPLOAD, Action.DELETE_REMOTE):
            continue
        if not pull and step.action in (Action.DOWNLOAD, Action.DELETE_LOCAL):
            continue
        if not (push and pull) and step.action is Action.CONFLICT:
            continue
        steps.append(step)
    return steps


def deletions(steps: Iterable[Step]) -> int:
    return sum(1 for s in steps if s.action in (Action.DELETE_LOCAL, Action.DELETE_REMOTE))


def conflict_name(path: str, host: str, stamp: str) -> str:
    """``notes/todo.md`` → ``notes/todo.conflict-<host>-<stamp>.md`` (Syncthing/rclone style)."""
    directory, name = posixpath.split(path)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:  # no extension, or a dotfile such as ".env"
        stem, ext = name, ""
    safe_host = "".join(c if c.isalnum() or c in "-_" else "-" for c in host) or "host"
    renamed = f"{stem}.conflict-{safe_host}-{stamp}" + (f".{ext}" if ext else "")
    return posixpath.join(directory, renamed) if directory else renamed
