"""What a folder sync round did, path by path (``memhub sync --json`` prints it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Report:
    uploaded: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    planned: list[dict[str, str]] = field(default_factory=list)
    blocked: str | None = None  # a dry run that the mass-delete guard would refuse
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    def fail(self, path: str, error: Exception | str) -> None:
        """``path`` could not be synced this round (the next round tries again)."""
        self.errors.append({"path": path, "error": str(error)})

    def skip(self, path: str) -> None:
        """``path`` changed while the round ran: the next round decides."""
        self.skipped.append(path)

    @property
    def changed(self) -> int:
        return (
            len(self.uploaded) + len(self.downloaded) + len(self.deleted_local)
            + len(self.deleted_remote) + len(self.conflicts)
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "uploaded": self.uploaded,
            "downloaded": self.downloaded,
            "deleted_local": self.deleted_local,
            "deleted_remote": self.deleted_remote,
            "conflicts": self.conflicts,
            "skipped": self.skipped,
            "errors": self.errors,
            "planned": self.planned,
            "blocked": self.blocked,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class Remote:
    sha256: str | None  # None: absent or deleted
    rev: int


def summarize(paths: Iterable[str], limit: int = 10) -> str:
    items = list(paths)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
