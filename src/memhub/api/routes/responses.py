"""memhub's error body as an OpenAPI model, for routes to declare every status they answer."""

from __future__ import annotations

from typing import Any

from memhub.api.openapi import ErrorBody

DESCRIPTIONS = {
    400: "invalid input",
    401: "no valid credentials",
    403: "the key lacks the scope, or the feature is turned off",
    404: "workspace, user, file or session not found",
    409: "a concurrent change: nothing was written",
    413: "body too large",
    412: "the precondition (rev, md5, If-Match) does not hold: nothing was written",
    422: "the body fails validation",
    429: "rate limited",
    502: "the configured LLM or git remote failed",
    503: "storage unavailable",
}
COMMON = (400, 401, 403, 404, 413, 422, 429, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its description and :class:`ErrorBody`."""
    return {code: {"description": DESCRIPTIONS[code], "model": ErrorBody} for code in codes}
