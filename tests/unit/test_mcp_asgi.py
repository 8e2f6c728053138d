"""AsgiClient: an MCP tool's request to the app in this process gives the route what a
server would (decoded path, raw path, query and body as httpx sends them) and comes back
as an ordinary ``httpx.Response``; what goes wrong in the app reaches the caller."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from memhub.auth.admission import INNER_REQUEST
from memhub.errors import StorageUnavailable
from memhub.mcp.asgi import AsgiClient
from memhub.mcp.hub import Hub


async def echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": list(request.query_params.multi_items()),
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
            "inner": request.scope.get(INNER_REQUEST),
        },
        headers={"x-answer": "yes"},
        status_code=201 if request.method == "PUT" else 200,
    )


async def streamed(_request: Request) -> Response:
    async def pieces() -> Any:
        for piece in (b"one ", b"two ", b"three"):
            yield piece

    return StreamingResponse(pieces(), media_type="text/plain")


async def broken(_request: Request) -> Response:
    raise RuntimeError("the route failed")


async def silent(_scope: Scope, _receive: Receive, _send: Send) -> None:
    return None


APP = Starlette(
    routes=[
        Route("/echo/{rest:path}", echo, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/streamed", streamed),
        Route("/broken", broken),
    ]
)


def run(test: Any) -> None:
    anyio.run(test)


def test_the_route_gets_what_a_server_would_give_it() -> None:
    async def test() -> None:
        client = AsgiClient(APP)
        url = "/echo/notes/%C3%A9t%C3%A9%20plan.md"
        response = await client.request(
            "GET",
            url,
            params={"limit": 5, "after": "a b&c", "wait": True, "none": None},
            headers={"Authorization": "Bearer k"},
        )
        assert response.status_code == 200 and response.headers["x-answer"] == "yes"
        seen = response.json()
        assert seen["path"] == "/echo/notes/été plan.md"
        assert seen["raw_path"] == url
        assert seen["query"] == [["limit", "5"], ["after", "a b&c"], ["wait", "true"], ["none", ""]]
        assert seen["headers"]["authorization"] == "Bearer k"
        assert seen["headers"]["host"] == "memhub.internal"
        assert seen["inner"] is True  # counted once against the rate limit

        put = await client.request("PUT", "/echo/f", content=b"\x00bytes", headers={"a": "b"})
        assert put.status_code == 201
        assert put.json()["headers"]["content-length"] == "6"

        posted = await client.request("POST", "/echo/j", json={"text": "ünïcode", "n": 1})
        body = posted.json()
        assert json.loads(body["body"]) == {"text": "ünïcode", "n": 1}
        assert body["body"] == '{"text":"ünïcode","n":1}'  # compact UTF-8, as httpx sends it
        assert body["headers"]["content-type"] == "application/json"

        empty = await client.request("POST", "/echo/e")
        assert empty.json()["headers"]["content-length"] == "0"

    run(test)


def test_a_streamed_response_arrives_whole() -> None:
    async def test() -> None:
        async with AsgiClient(APP).stream("GET", "/streamed") as response:
            assert response.status_code == 200
            assert await response.aread() == b"one two three"

    run(test)


def test_what_goes_wrong_in_the_app_reaches_the_caller() -> None:
    async def test() -> None:
        client = AsgiClient(APP)
        with pytest.raises(RuntimeError, match="the route failed"):
            await client.request("GET", "/broken")
        assert (await client.request("GET", "/nowhere")).status_code == 404
        # an app that answers nothing is an unreachable server to the hub
        hub = Hub(AsgiClient(silent), "default")
        with pytest.raises(StorageUnavailable, match=r"memhub\.internal"):
            await hub.workspace_info()
        with pytest.raises(httpx.RemoteProtocolError):
            await AsgiClient(silent).request("GET", "/")

    run(test)
