"""Settings: the only reader of the environment (prefix ``MEMHUB_``).

Nothing reads settings at import time; the composition root
(:func:`memhub.api.app.create_app`, the CLI) builds one :class:`Settings` and
hands each component what it needs.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(user_data_dir("memhub", appauthor=False))


class Settings(BaseSettings):
    """Every setting memhub reads. Each is documented in README.md."""

    model_config = SettingsConfigDict(env_prefix="MEMHUB_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    host: str = "127.0.0.1"
    port: int = 8000
    default_workspace: str = "default"

    max_body_bytes: int = 1024**3
    chunk_size: int = 4 * 1024**2
    max_chunk_bytes: int = 16 * 1024**2
    metrics_public: bool = True
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'memhub.db'}"

    @property
    def resolved_blob_url(self) -> str:
        if self.blob_url:
            return self.blob_url
        return (self.data_dir / "blobs").as_uri()
