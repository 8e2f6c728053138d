"""The MCP hub never lets an id become another route: ``.`` and ``..`` would be
resolved by the HTTP client (``items/..`` is the workspace)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from memhub.errors import BadRequest
from memhub.mcp.rest import RestHub


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_ids_that_are_not_one_path_segment_are_refused(bad: str) -> None:
    async def test() -> None:
        # nothing listens there: a request that got out would fail with STORAGE_UNAVAILABLE
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
            hub = RestHub(http, "default")
            for call in (
                hub.delete_item(bad, None),
                hub.session(bad),
                hub.commit_session(bad),
                hub.discard_session(bad),
            ):
                with pytest.raises(BadRequest, match="is not an id"):
                    await call

    anyio.run(test)
