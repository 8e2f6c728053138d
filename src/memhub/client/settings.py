"""ClientSettings: the client side's one reader of the environment (prefix ``MEMHUB_``).

The CLI builds one :class:`ClientSettings` in its root callback (flags such
as ``--server`` override fields) and hands it down; ``memhub.sync`` and
``memhub.client`` are given what they need and read no environment
themselves. The server has its own :class:`memhub.config.Settings`.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_config_dir() -> Path:
    return Path(user_config_dir("memhub", appauthor=False))


def default_data_dir() -> Path:
    return Path(user_data_dir("memhub", appauthor=False))


class ClientSettings(BaseSettings):
    """Every setting the client reads. Each is documented in README.md."""

    model_config = SettingsConfigDict(env_prefix="MEMHUB_", extra="ignore")

    server: str | None = None
    key: str | None = None
    workspace: str | None = None
    config_dir: Path = Field(default_factory=default_config_dir)
    data_dir: Path = Field(default_factory=default_data_dir)
    host_id: str | None = None
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=6, ge=0, le=20)
    claude_config_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("CLAUDE_CONFIG_DIR", "MEMHUB_CLAUDE_CONFIG_DIR"),
    )

    @property
    def profile_path(self) -> Path:
        return self.config_dir / "profile.json"

    @property
    def claude_settings_path(self) -> Path:
        return (self.claude_config_dir or Path.home() / ".claude") / "settings.json"

    def custom_config_dir(self) -> bool:
        """Whether the config dir differs from the default (hooks must then carry it)."""
        return self.config_dir != default_config_dir()
