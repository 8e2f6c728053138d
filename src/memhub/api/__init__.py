"""The HTTP API: seed-compatible routes and the /v1 API over the same store."""

from memhub.api.app import create_app

__all__ = ["create_app"]
