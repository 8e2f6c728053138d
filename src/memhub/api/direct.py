"""Routes whose parameters need no validation, run without FastAPI's dependency solver.

FastAPI solves a route's parameters on every request by walking its dependency tree
and validating each value with pydantic: for ``PUT /blob/{path}`` (a path, four
optional headers, the request context, the store and the two app-wide checks) that
was about 40 % of the route's CPU, more than the work it guards. Most of it is spent
proving what the declarations already say: a ``str`` path parameter is a string, an
optional ``str`` header is a string or None.

:class:`DirectRoute` looks at the route once, when FastAPI builds its handler. When
every parameter is such a value — a ``str`` path parameter, an optional ``str``
header, the ``Request``, or a dependency that is itself an ``async`` function of the
request alone (``get_context``, ``get_store``, the app-wide precondition and query
checks) — and the endpoint returns a ``Response``, the handler calls the very same
dependencies, in the order FastAPI would, and then the very same endpoint, with the
values read straight from the request. Any other route, and any request made while
``app.dependency_overrides`` is set, goes through FastAPI's own handler. Nothing is
checked twice or in a second way: the checks are the dependencies, run as they are.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    get_parameterless_sub_dependant,
    get_typed_return_annotation,
)
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
RequestDependency = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to call one endpoint: its dependencies (parameter name, or None for one
    whose value is unused), then its arguments by source."""

    dependencies: tuple[tuple[str | None, RequestDependency], ...]
    path_params: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # (parameter, header name)
    request_param: str | None
    endpoint: Callable[..., Any]
    is_coroutine: bool

    async def run(self, request: Request) -> Response:
        values: dict[str, Any] = {}
        done: dict[RequestDependency, Any] = {}  # FastAPI's per-request cache
        for name, call in self.dependencies:
            if call not in done:
                done[call] = await call(request)
            if name is not None:
                values[name] = done[call]
        params = request.path_params
        for name in self.path_params:
            values[name] = params[name]
        headers = request.headers
        for name, header in self.headers:
            values[name] = headers.get(header)
        if self.request_param is not None:
            values[self.request_param] = request
        if self.is_coroutine:
            response = await self.endpoint(**values)
        else:
            response = await run_in_threadpool(self.endpoint, **values)
        if not isinstance(response, Response):  # its annotation said so; keep it honest
            raise TypeError(f"{self.endpoint.__qualname__} returned {type(response).__name__}")
        return response


def request_only(dependant: Dependant) -> RequestDependency | None:
    """The dependency's function when it is ``async`` and takes the request alone."""
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call) or dependant.dependencies:
        return None
    params = list(inspect.signature(call).parameters)
    if params != [dependant.request_param_name]:
        return None
    return call


def _str_param(field: Any, *, optional: bool) -> bool:
    """A parameter FastAPI would pass through unchanged: ``str`` (or ``str | None``
    defaulting to None), no constraints or validators."""
    info = field.field_info
    if info.metadata:
        return False
    if optional:
        return bool(info.annotation == str | None and info.default is None)
    return bool(info.annotation is str)


def compile_plan(dependant: Dependant, app_dependencies: list[Dependant]) -> Plan | None:
    """A :class:`Plan` for ``dependant`` (the route's own, without the app's), or None
    when some parameter needs FastAPI's solver."""
    endpoint = dependant.call
    if endpoint is None or dependant.query_params or dependant.cookie_params:
        return None
    if dependant.body_params or any(
        getattr(dependant, name, None)
        for name in (
            "websocket_param_name",
            "http_connection_param_name",
            "response_param_name",
            "background_tasks_param_name",
            "security_scopes_param_name",
        )
    ):
        return None
    try:
        returns = get_typed_return_annotation(endpoint)  # as FastAPI resolves it
    except (NameError, TypeError):
        return None
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return None
    if not all(_str_param(f, optional=False) for f in dependant.path_params):
        return None
    if not all(_str_param(f, optional=True) for f in dependant.header_params):
        return None
    deps: list[tuple[str | None, RequestDependency]] = []
    for sub in [*app_dependencies, *dependant.dependencies]:
        call = request_only(sub)
        if call is None:
            return None
        deps.append((sub.name, call))
    headers = tuple((f.name, _header_name(f)) for f in dependant.header_params)
    covered = {name for name, _ in deps if name} | {f.name for f in dependant.path_params}
    covered |= {name for name, _ in headers} | {dependant.request_param_name or ""}
    if set(inspect.signature(endpoint).parameters) - covered:
        return None  # a parameter of a kind this plan does not know
    return Plan(
        dependencies=tuple(deps),
        path_params=tuple(f.name for f in dependant.path_params),
        headers=headers,
        request_param=dependant.request_param_name,
        endpoint=endpoint,
        is_coroutine=inspect.iscoroutinefunction(endpoint),
    )


def _header_name(field: Any) -> str:
    info = field.field_info
    if info.alias:
        return str(info.alias).lower()
    name = str(field.name)
    return name.replace("_", "-") if getattr(info, "convert_underscores", True) else name


class DirectRoute(APIRoute):
    """An ``APIRoute`` served by a :class:`Plan` when it has one (see the module doc);
    give it to a router as ``APIRouter(route_class=DirectRoute)``."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        route_dependant = self.dependant
        plans: weakref.WeakKeyDictionary[Any, Plan | None] = weakref.WeakKeyDictionary()

        def plan_for(app: Any) -> Plan | None:
            # the app's own dependencies (FastAPI(dependencies=...)) run first, as
            # FastAPI runs them; the route's dependant may already hold them
            if app not in plans:
                own = {id(d.call) for d in route_dependant.dependencies}
                app_deps = [
                    get_parameterless_sub_dependant(depends=d, path=self.path_format)
                    for d in getattr(app.router, "dependencies", [])
                    if id(d.dependency) not in own
                ]
                plans[app] = compile_plan(route_dependant, app_deps)
            return plans[app]

        async def handler(request: Request) -> Response:
            app = request.scope.get("app")
            plan = plan_for(app) if app is not None else None
            if plan is None or getattr(app, "dependency_overrides", None):
                return await standard(request)
            return await plan.run(request)

        return handler
