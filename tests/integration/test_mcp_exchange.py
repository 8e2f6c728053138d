"""Handshake-era (2025) POSTs on ``/mcp`` are served in place (``memhub.mcp.exchange``)
and must be answered exactly as the SDK's own stateless streamable-HTTP transport
answers them: the same status, content type and JSON-RPC body, for results and
errors alike. Everything the in-place path does not take (notifications, batches,
bodies that do not parse, wrong headers, bodies over the SDK's limit) still reaches
the SDK and gets its answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from apiclient import build_app
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client
from mcp.server.transport_security import TransportSecuritySettings

from mcp import Client
from mcp_agent import agent_flow, call, error
from memhub.mcp.connect import FixedConnector
from memhub.mcp.server import build_server
from memhub.mcp.services import ServiceHub

WS = "alpha"
LEGACY = "2025-06-18"
JSON_ACCEPT = "application/json, text/event-stream"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    app = build_app(tmp_path)
    app.state.store.create_workspace(WS, exist_ok=True)
    app.state.store.put(WS, "kept/garden.md", b"# Garden\nTomatoes need sun.\n")
    keys = app.state.keys
    app.state.mcp_keys = {
        "rw": keys.create(WS, ["read", "write"])[0],
        "ro": keys.create(WS, ["read"])[0],
    }
    return app


def rpc(method: str, params: dict[str, Any] | None = None, n: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": n, "method": method}
    if params is not None:
        message["params"] = params
    return message


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": arguments})


INITIALIZE = rpc(
    "initialize",
    {
        "protocolVersion": LEGACY,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
)

# (body, headers beyond the key): every one a single request the in-place path serves
SERVED_IN_PLACE: list[tuple[dict[str, Any], dict[str, str]]] = [
    (INITIALIZE, {}),
    (rpc("ping"), {"mcp-protocol-version": LEGACY}),
    (rpc("tools/list"), {"mcp-protocol-version": LEGACY}),
    (tool("read_file", path="kept/garden.md"), {"mcp-protocol-version": LEGACY}),
    (tool("read_file", path="kept/gardn.md"), {"mcp-protocol-version": LEGACY}),
    (tool("search_memory", query="tomatoes", k="many"), {"mcp-protocol-version": LEGACY}),
    (tool("no_such_tool"), {"mcp-protocol-version": LEGACY}),
    (rpc("tools/call", {}), {"mcp-protocol-version": LEGACY}),
    (rpc("no/such/method"), {"mcp-protocol-version": LEGACY}),
    (rpc("resources/templates/list"), {}),
    (rpc("resources/read", {"uri": f"memhub://{WS}/kept/garden.md"}), {}),
    (rpc("prompts/list", n=7), {"mcp-protocol-version": "2025-03-26"}),
]

# what the SDK's transport answers itself: not one plain request, or refused first
LEFT_TO_THE_SDK: list[tuple[bytes, dict[str, str]]] = [
    (json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(), {}),
    (json.dumps([rpc("ping", n=1), rpc("ping", n=2)]).encode(), {}),
    (b'{"jsonrpc": "2.0", "id": 1, "method": ', {}),
    (json.dumps(rpc("ping")).encode(), {"accept": "text/event-stream"}),
    (json.dumps(rpc("ping")).encode(), {"content-type": "text/plain"}),
    (json.dumps({"jsonrpc": "2.0", "id": 1}).encode(), {}),
]


@asynccontextmanager
async def both(app: FastAPI, key: str) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client of the app's ``/mcp``, and one of the SDK's own stateless JSON transport
    over the same tools, the same key and the same data."""
    auth = {"authorization": f"Bearer {key}"}
    async with app.router.lifespan_context(app):
        principal = app.state.keys.verify(key).principal()
        reference = build_server(FixedConnector(ServiceHub(app.state, principal, WS)))
        sdk_app = reference.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with (
            reference.session_manager.run(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=auth
            ) as ours,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=sdk_app), base_url="http://testserver"
            ) as sdk,
        ):
            yield ours, sdk


def answer(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json() if response.content else None
    return response.status_code, response.headers.get("content-type", ""), body


def test_in_place_answers_are_the_sdk_transport_answers(app: FastAPI) -> None:
    async def test() -> None:
        async with both(app, app.state.mcp_keys["rw"]) as (ours, sdk):
            for body, extra in SERVED_IN_PLACE:
                headers = {"accept": JSON_ACCEPT, "content-type": "application/json", **extra}
                mine = answer(await ours.post("/mcp", json=body, headers=headers))
                theirs = answer(await sdk.post("/mcp", json=body, headers=headers))
                assert mine == theirs, body
                assert mine[0] == 200
            # the cases above cover results, tool errors and JSON-RPC errors
            read = answer(await ours.post("/mcp", json=SERVED_IN_PLACE[3][0], headers=headers))
            assert "Tomatoes need sun" in json.dumps(read[2]["result"])
            missing = answer(await ours.post("/mcp", json=SERVED_IN_PLACE[4][0], headers=headers))
            assert missing[2]["result"]["isError"] is True
            assert "Did you mean: kept/garden.md" in json.dumps(missing[2])
            unknown = answer(await ours.post("/mcp", json=SERVED_IN_PLACE[8][0], headers=headers))
            assert unknown[2]["error"]["code"] == -32601

    anyio.run(test)


def test_what_is_not_one_plain_request_gets_the_sdk_answer(app: FastAPI) -> None:
    async def test() -> None:
        async with both(app, app.state.mcp_keys["rw"]) as (ours, sdk):
            for content, extra in LEFT_TO_THE_SDK:
                headers = {"accept": JSON_ACCEPT, "content-type": "application/json", **extra}
                mine = await ours.post("/mcp", content=content, headers=headers)
                theirs = await sdk.post("/mcp", content=content, headers=headers)
                assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content)
                assert mine.status_code in (202, 400, 406), (content, mine.text)
            # a body over the SDK's limit (4 MiB; the app's own JSON limit is larger) is
            # read up to the limit, then handed on: the SDK refuses it
            big = json.dumps(tool("write_file", path="big.md", content="x" * (5 * 1024**2)))
            headers = {"accept": JSON_ACCEPT, "content-type": "application/json"}
            response = await ours.post("/mcp", content=big.encode(), headers=headers)
            assert response.status_code == 413
            assert not app.state.store.list_files(WS, prefix="big")

    anyio.run(test)


def test_a_read_only_key_is_refused_a_write_in_place(app: FastAPI) -> None:
    async def test() -> None:
        async with both(app, app.state.mcp_keys["ro"]) as (ours, _sdk):
            headers = {
                "accept": JSON_ACCEPT,
                "content-type": "application/json",
                "mcp-protocol-version": LEGACY,
            }
            listed = (await ours.post("/mcp", json=rpc("tools/list"), headers=headers)).json()
            assert "write_file" not in {t["name"] for t in listed["result"]["tools"]}
            body = tool("write_file", path="notes/nope.md", content="no")
            written = (await ours.post("/mcp", json=body, headers=headers)).json()
            assert written["result"]["isError"] is True
            assert "FORBIDDEN" in written["result"]["content"][0]["text"]
            assert not app.state.store.list_files(WS, prefix="notes/nope")
            # no key at all: admission refuses before MCP sees the request
            anonymous = await ours.post(
                "/mcp", json=rpc("ping"), headers={**headers, "authorization": ""}
            )
            assert anonymous.status_code == 401

    anyio.run(test)


def test_the_sdk_client_on_the_handshake_protocol_runs_the_whole_flow(app: FastAPI) -> None:
    async def test() -> None:
        async with app.router.lifespan_context(app):
            http = httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"authorization": f"Bearer {app.state.mcp_keys['rw']}"},
            )
            url = "http://testserver/mcp"
            async with (
                http,
                Client(streamable_http_client(url, http_client=http), mode="legacy") as c,
            ):
                assert c.protocol_version == "2025-11-25"
                await agent_flow(c)
                assert (await call(c, "read_file", path="kept/garden.md"))["rev"] >= 1
                assert "Did you mean" in await error(c, "read_file", path="kept/gardn.md")

    anyio.run(test)
