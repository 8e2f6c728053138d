"""What every UI route shares: the signed-in session, workspace access, CSRF, rendering.

Authorisation is the API's own: :func:`memhub.api.routes.common.access` decides
whether a session's principal may read or write a workspace (a workspace it
cannot reach is 404, exactly as on the API), so a page can do exactly what the
key's scopes allow. Templates hide write controls from read-only sessions; the
routes refuse them anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from memhub.api.routes.common import access
from memhub.auth.principal import Principal
from memhub.errors import Forbidden, MemhubError
from memhub.ui.sessions import Session

# (label, path under /ui/w/{ws}/, scope needed). A page is one template and one route
# module: add a row here and the navigation shows it.
NAV: list[tuple[str, str, str]] = [
    ("Files", "files/", "read"),
    ("Changes", "changes", "read"),
    ("Search", "search", "read"),
    ("Context", "context", "read"),
    ("Sessions", "sessions", "read"),
    ("Items", "items", "read"),
    ("Operations", "ops", "admin"),
]


class SignInRequired(MemhubError):
    """No (valid) session: the UI answers with a redirect to the sign-in page."""

    status = 401
    code = "UNAUTHORIZED"


class CsrfRejected(Forbidden):
    code = "CSRF_REJECTED"


@dataclass(frozen=True, slots=True)
class Ui:
    """The request's signed-in session."""

    request: Request
    session: Session
    session_id: str

    @property
    def principal(self) -> Principal:
        return self.session.principal

    @property
    def home(self) -> str:
        return self.principal.workspace or str(self.request.app.state.default_workspace)

    def workspace(self, name: str, scope: str = "read") -> str:
        return access(self.principal, name, scope)

    def can(self, scope: str) -> bool:
        return self.principal.can(scope)

    def render(
        self, template: str, workspace: str | None = None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        return page(
            self.request,
            template,
            status=status,
            session=self.session,
            ws=workspace,
            nav=[(label, href) for label, href, scope in NAV if self.can(scope)],
            can_write=self.can("write"),
            is_admin=self.principal.is_admin,
            who=self.principal.name,
            **values,
        )


def page(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    session: Session | None = values.pop("session", None)
    html = env.get_template(template).render(
        csrf=session.masked_csrf() if session else None,
        signed_in=session is not None,
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=status)


async def get_ui(request: Request) -> Ui:
    error: MemhubError | None = request.scope.get("state", {}).get("ui_error")
    if error is not None:
        raise error
    session: Session | None = request.scope.get("state", {}).get("ui_session")
    session_id: str | None = request.scope.get("state", {}).get("ui_session_id")
    if session is None or session_id is None:
        raise SignInRequired("sign in to use the web UI")
    return Ui(request, session, session_id)


async def check_csrf(request: Request, ui: Annotated[Ui, Depends(get_ui)]) -> Ui:
    """Every state-changing form carries the session's CSRF token (a field or the
    ``X-CSRF-Token`` header), and comes from this origin when the browser says so."""
    origin = request.headers.get("origin")
    # the host only: behind a TLS proxy the browser says https while this process sees http.
    # "null" is what a browser sends under our Referrer-Policy: no-referrer (the token decides)
    if (
        origin is not None
        and origin != "null"
        and urlsplit(origin).netloc != request.headers.get("host", "")
    ):
        raise CsrfRejected("cross-origin form post refused", context={"origin": origin[:200]})
    presented = request.headers.get("x-csrf-token")
    if presented is None:
        form = await request.form()
        value = form.get("csrf")
        presented = value if isinstance(value, str) else None
    if not ui.session.csrf_ok(presented):
        raise CsrfRejected("the form's CSRF token is missing or wrong; reload the page")
    return ui


UiDep = Annotated[Ui, Depends(get_ui)]
FormUi = Annotated[Ui, Depends(check_csrf)]
