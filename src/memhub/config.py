"""Settings: the only reader of the environment (prefix ``MEMHUB_``).

Nothing reads settings at import time; the composition root
(:func:`memhub.api.app.create_app`, the CLI) builds one :class:`Settings` and
hands each component what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    max_json_bytes: int = 16 * 1024**2
    chunk_size: int = 4 * 1024**2
    max_chunk_bytes: int = 16 * 1024**2
    index_dir: Path | None = None
    node_id: str | None = None
    metrics_public: bool = True
    log_level: str = "info"

    # authentication
    master_key_hash: str | None = None
    internal_service_secret: str | None = None
    jwt_secret: str | None = None
    jwt_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    github_api_url: str = "https://api.github.com"
    github_users: str | None = None

    # rate limits
    rate_limit_enabled: bool = True
    rate_limit: int = Field(default=100, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0)
    rate_limit_scopes: str | None = "write=600,admin=3000"
    redis_url: str | None = None
    rate_limit_on_redis_failure: Literal["fallback", "refuse"] = "fallback"
    trusted_proxies: str | None = None

    # browsers
    cors_origins: str | None = None
    ui_session_seconds: float = Field(default=3600.0, ge=60, le=7 * 24 * 3600)

    # optional semantic search of memory items (any OpenAI-compatible /v1/embeddings)
    embeddings_url: str | None = None
    embeddings_model: str = "nomic-embed-text"
    embeddings_api_key: str | None = None
    embeddings_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    # the LLM (optional; absent: the offline extractor and query planner)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_backoff_seconds: float = Field(default=0.5, ge=0, le=60)

    # git bridge: POST /repos/setup may import file:// URLs only when this is on
    repos_allow_file_urls: bool = False

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
