"""What both the server and the client need, and nothing heavier.

``memhub.core`` imports only the standard library, pydantic and
:mod:`memhub.errors`: the CLI, the sync client and the MCP server import it
without loading SQLAlchemy, tantivy or boto3 (``tests/unit/test_imports.py``
checks).

- :mod:`memhub.core.paths`    path and name rules (one set, on both sides)
- :mod:`memhub.core.durable`  atomic, durable local file writes
- :mod:`memhub.core.protocol` wire constants (headers, chunk sizes, limits)
- :mod:`memhub.core.models`   the pydantic models of the v1 API's responses
"""
