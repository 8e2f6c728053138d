"""The state the root callback hands every command (kept tiny: imported on every run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memhub.client.settings import ClientSettings


class CliState:
    """The client settings, built on first use (``--help`` never reads the environment)
    and then once per process."""

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> ClientSettings:
        if self._settings is None:
            from memhub.client.settings import ClientSettings

            self._settings = ClientSettings()
        return self._settings
