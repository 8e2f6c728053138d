"""DirectRoute (api/direct.py): a route of plain string parameters runs its dependencies
and endpoint without FastAPI's solver, with the same values, order and errors; any
other route, or an app with dependency overrides, keeps FastAPI's own handler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from memhub.api.app import create_app
from memhub.api.direct import DirectRoute, compile_plan
from memhub.api.routes import proxy_v2, seed
from memhub.config import Settings
from memhub.errors import BadRequest

CALLS: list[str] = []  # what ran, in order (module level: FastAPI resolves the
# string annotations of endpoints against the module's globals)


async def app_check(request: Request) -> None:
    CALLS.append("app_check")
    if request.headers.get("x-refuse"):
        raise BadRequest("refused by the app-wide check")


async def who(request: Request) -> str:
    CALLS.append("who")
    return request.headers.get("x-who", "nobody")


async def also(request: Request) -> None:
    CALLS.append("also")


def recorder() -> tuple[list[str], FastAPI, APIRouter]:
    calls = CALLS
    router = APIRouter(route_class=DirectRoute)

    @router.put("/thing/{path:path}", dependencies=[Depends(also)])
    async def put_thing(
        path: str,
        request: Request,
        user: Annotated[str, Depends(who)],
        again: Annotated[str, Depends(who)],  # cached: `who` runs once per request
        if_match: Annotated[str | None, Header(alias="If-Match")] = None,
        x_note: Annotated[str | None, Header()] = None,
    ) -> Response:
        calls.append("endpoint")
        body = await request.body()
        text = f"{path}|{user}|{again}|{if_match}|{x_note}|{len(body)}"
        return Response(text, status_code=201)

    @router.get("/sync-thing/{name}")
    def sync_thing(name: str) -> Response:
        calls.append("endpoint")
        return Response(name)

    @router.get("/query")
    async def with_query(q: Annotated[str, Query()]) -> Response:
        calls.append("endpoint")
        return Response(q)

    app = FastAPI(dependencies=[Depends(app_check)])

    @app.exception_handler(BadRequest)
    async def bad(_request: Request, exc: BadRequest) -> Response:
        return Response(exc.detail, status_code=exc.status)

    app.include_router(router)
    return calls, app, router


def plan_of(router: APIRouter, path: str, method: str = "GET") -> object:
    route = next(
        r
        for r in router.routes
        if isinstance(r, APIRoute) and r.path == path and method in r.methods
    )
    return compile_plan(route.dependant, [])


def test_plain_routes_are_planned_and_others_are_not() -> None:
    _, _, router = recorder()
    assert plan_of(router, "/thing/{path:path}", "PUT") is not None
    assert plan_of(router, "/sync-thing/{name}") is not None
    assert plan_of(router, "/query") is None  # a query parameter: FastAPI validates it
    # memhub's own: the seed's routes are planned; the proxy's pattern-checked headers
    # (and its router's plain APIRoute) are FastAPI's
    for method in ("GET", "PUT", "DELETE"):
        assert plan_of(seed.router, "/blob/{path:path}", method) is not None
    assert plan_of(seed.router, "/sync") is not None
    assert plan_of(proxy_v2.router, "/{namespace:path}/blob/{path:path}", "PUT") is None


def test_direct_and_fastapi_handlers_agree() -> None:
    """The same requests, once through the plan and once through FastAPI's solver (an
    override forces it): the same answers and the same calls in the same order."""
    calls, app, _ = recorder()
    headers = {"x-who": "ann", "If-Match": '"abc"', "x-note": "n1"}
    runs = []
    for forced in (False, True):
        if forced:
            app.dependency_overrides = {lambda: None: lambda: None}
        with TestClient(app) as client:
            calls.clear()
            put = client.put("/thing/a/b%20c.md", content=b"12345", headers=headers)
            first = list(calls)
            calls.clear()
            bare = client.put("/thing/x", content=b"")
            second = list(calls)
            calls.clear()
            refused = client.put("/thing/x", headers={"x-refuse": "1"})
            third = list(calls)
            sync = client.get("/sync-thing/n")
            runs.append(
                (
                    (put.status_code, put.text), first,
                    (bare.status_code, bare.text), second,
                    (refused.status_code, refused.text), third,
                    (sync.status_code, sync.text),
                )
            )  # fmt: skip
    direct, standard = runs
    assert direct == standard
    assert direct[0] == (201, 'a/b c.md|ann|ann|"abc"|n1|5')
    assert direct[1] == ["app_check", "also", "who", "endpoint"]
    assert direct[2] == (201, "x|nobody|nobody|None|None|0")
    assert direct[4] == (400, "refused by the app-wide check")
    assert direct[5] == ["app_check"]
    assert direct[6] == (200, "n")


def test_memhub_app_wide_checks_still_run_on_the_seed_routes(tmp_path: Path) -> None:
    """The seed's PUT takes the direct path; the app's precondition and query checks
    (dependencies of the whole app) still refuse before anything is written."""
    app = create_app(Settings(data_dir=tmp_path, rate_limit_enabled=False))
    key, _ = app.state.keys.create("default", ["read", "write"], description="t")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        wrong = client.put("/blob/a.md", content=b"x", headers={**auth, "If-Match-Version": "0"})
        assert wrong.status_code == 400
        assert wrong.json()["error_code"] == "UNSUPPORTED_PRECONDITION"
        query = client.put("/blob/a.md?typo=1", content=b"x", headers=auth)
        assert query.status_code == 400 and "typo" in query.json()["detail"]
        assert client.get("/blob/a.md", headers=auth).status_code == 404  # nothing written
        made = client.put("/blob/a.md", content=b"x", headers={**auth, "Content-MD5": "new"})
        assert made.status_code == 201
        again = client.put("/blob/a.md", content=b"y", headers={**auth, "Content-MD5": "new"})
        assert again.status_code == 412
        assert client.get("/blob/a.md", headers=auth).content == b"x"
        assert client.put("/blob/a.md", content=b"z").status_code == 401
