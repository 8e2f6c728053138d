"""Serving a sync index: the JSON envelope, ``ETag`` / ``If-None-Match`` → 304, gzip.

The seed's ``GET /sync`` and the proxy's ``GET /sync/{namespace}`` (and its PUT
and DELETE answers) share this. The ``files`` object comes as one string from
the database (:mod:`memhub.store.syncindex`); the envelope is glued around it.

The tag is ``"sync-<workspace id>-<head rev>-<variant>"``: the head rev moves
with every write of the workspace, so a 304 needs one indexed query and no
listing. ``variant`` tells the seed's shape, the proxy's and a namespace
(by a hash of its name) apart; a gzip body's tag ends in ``-gz`` (a strong tag
names one representation), and either form of a tag matches in If-None-Match.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from memhub.store import Store
from memhub.store.syncindex import IndexBody, build_index, index_tag

GZIP_MIN_BYTES = 512  # below this gzip saves nothing worth a header
GZIP_LEVEL = 1  # fast: an index is repetitive text and compresses well at any level


def iso_millis(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def variant(prefix: str, versions: bool) -> str:
    if not prefix:
        return "v" if versions else "s"
    return "n" + hashlib.sha256(prefix.encode()).hexdigest()[:16]


def etag(ws_id: int, head_rev: int, tag_variant: str) -> str:
    return f'"sync-{ws_id}-{head_rev}-{tag_variant}"'


def render(body: IndexBody, *, versions: bool) -> bytes:
    """The whole index document: ``files``, ``index_last_modified`` [, ``index_version``]."""
    latest = body.latest if body.latest is not None else datetime.now(UTC).timestamp()
    tail = f',"index_last_modified":{json.dumps(iso_millis(latest))}'
    if versions:
        tail += f',"index_version":{body.head_rev}'
    return b'{"files":' + body.files_json.encode() + tail.encode() + b"}"


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    bare = tag.strip('"')
    for candidate in if_none_match.split(","):
        value = candidate.strip().removeprefix("W/").strip('"')
        if value == "*" or value in (bare, bare + "-gz"):
            return True
    return False


def wants_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return not q or _nonzero(q)
    return False


def _nonzero(q: str) -> bool:
    try:
        return float(q) > 0
    except ValueError:
        return False


async def index_response(
    request: Request,
    store: Store,
    workspace: str,
    prefix: str = "",
    *,
    versions: bool = False,
    status_code: int = 200,
    write_headers: dict[str, str] | None = None,
) -> Response:
    """The index of ``workspace`` under ``prefix`` as a response: 304 when the client's
    ``If-None-Match`` still holds. With ``write_headers`` it is the body of a write's
    answer (the proxy's manifest-on-write): those headers (the file's ``ETag``), no
    index tag, no 304."""
    tag_variant = variant(prefix, versions)
    if_none_match = request.headers.get("if-none-match") if write_headers is None else None
    if if_none_match:
        ws_id, head = await run_in_threadpool(index_tag, store, workspace)
        if _matches(if_none_match, etag(ws_id, head, tag_variant)):
            return Response(
                status_code=304,
                headers={"etag": etag(ws_id, head, tag_variant), "vary": "Accept-Encoding"},
            )
    gz = wants_gzip(request)

    def build() -> tuple[bytes, str]:
        body = build_index(store, workspace, prefix, versions=versions)
        data = render(body, versions=versions)
        tag = etag(body.workspace_id, body.head_rev, tag_variant)
        if gz and len(data) >= GZIP_MIN_BYTES:
            return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0), tag[:-1] + '-gz"'
        return data, tag

    data, tag = await run_in_threadpool(build)
    out = {"etag": tag} if write_headers is None else dict(write_headers)
    out["vary"] = "Accept-Encoding"
    if tag.endswith('-gz"'):
        out["content-encoding"] = "gzip"
    return Response(data, status_code=status_code, media_type="application/json", headers=out)


__all__ = ["index_response", "iso_millis", "render"]
