"""Tokens: exchange an API key (or a GitHub token, seed 002) for a short-lived JWT."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request

from memhub.api.openapi import error_responses
from memhub.auth.principal import Principal
from memhub.auth.tokens import TokenCodec
from memhub.core.paths import validate_name
from memhub.errors import Forbidden, StorageUnavailable, Unauthorized
from memhub.store import Store

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(codec: TokenCodec, token: str) -> dict[str, Any]:
    return {"access_token": token, "token_type": "bearer", "expires_in": codec.ttl_seconds}


@router.post("/token")
def token(request: Request) -> dict[str, Any]:
    """Exchange the API key in Authorization / X-API-Key for a JWT with its workspace and
    scopes. Tokens cannot be exchanged for tokens."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized(
            "send the API key to exchange (Authorization: Bearer mh_…)",
            headers={"www-authenticate": 'Bearer realm="memhub"'},
        )
    if principal.kind == "jwt":
        raise Forbidden("a token cannot be exchanged for another token; use the API key")
    codec: TokenCodec = request.app.state.tokens
    issued = codec.issue(
        subject=principal.name,
        workspace=principal.workspace or request.app.state.default_workspace,
        scopes=principal.scopes,
        key_id=principal.key_id,
        kind=principal.kind,
    )
    return _token_response(codec, issued)


def github_login(api_url: str, github_token: str) -> str:
    """The login of the GitHub user a token belongs to."""
    try:
        response = httpx.get(
            api_url.rstrip("/") + "/user",
            headers={
                "Authorization": f"Bearer {github_token}",
                "Accept": "application/vnd.github+json",
            },
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        raise StorageUnavailable(
            "GitHub could not be reached to check the token",
            hint="check MEMHUB_GITHUB_API_URL and the network",
        ) from exc
    if response.status_code in (401, 403):
        raise Unauthorized("GitHub rejected the token")
    if response.status_code != 200:
        raise StorageUnavailable(f"GitHub answered {response.status_code}")
    try:
        login = response.json()["login"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageUnavailable("GitHub's answer had no login") from exc
    if not isinstance(login, str) or not login:
        raise StorageUnavailable("GitHub's answer had no login")
    return login


def allowed_github_users(raw: str | None) -> dict[str, str]:
    """``MEMHUB_GITHUB_USERS``: ``login`` or ``login=workspace``, comma-separated."""
    users: dict[str, str] = {}
    for part in (raw or "").split(","):
        login, _, workspace = part.strip().partition("=")
        if login:
            users[login.lower()] = (workspace or login).strip()
    return users


@router.post("/github", responses=error_responses(401, 403))
def github(
    request: Request, github_token: Annotated[str, Query(min_length=1, max_length=512)]
) -> dict[str, Any]:
    """Exchange a GitHub token for a JWT (read, write) on the user's workspace. Only
    users listed in MEMHUB_GITHUB_USERS are let in."""
    settings = request.app.state.settings
    users = allowed_github_users(settings.github_users)
    if not users:
        raise Forbidden("GitHub sign-in is not enabled on this server (MEMHUB_GITHUB_USERS)")
    if not github_token.isascii() or not github_token.isprintable():
        raise Unauthorized("malformed GitHub token")
    login = github_login(settings.github_api_url, github_token)
    workspace = users.get(login.lower())
    if workspace is None:
        raise Forbidden(f"GitHub user {login!r} is not allowed on this server")
    workspace = validate_name(workspace, "workspace")
    store: Store = request.app.state.store
    store.create_workspace(workspace, exist_ok=True)
    codec: TokenCodec = request.app.state.tokens
    issued = codec.issue(
        subject=f"github:{login}",
        workspace=workspace,
        scopes=frozenset({"read", "write"}),
        kind="github",
    )
    return _token_response(codec, issued)
