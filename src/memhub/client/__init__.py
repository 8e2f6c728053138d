"""A typed HTTP client of the memhub API, used by the CLI, sync and MCP."""

from memhub.client.http import MemhubClient

__all__ = ["MemhubClient"]
