"""Operations (admin keys only): API keys, leases, the search index, metrics figures, fsck.

The same services and rules as ``/admin/keys``, ``/v1/…/leases``, ``/v1/…/index``,
``/metrics`` and ``memhub fsck``. A new key is shown once, in the answer to the
form that created it (pages are ``Cache-Control: no-store``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from memhub.auth.keys import KeyStore
from memhub.auth.principal import SCOPES
from memhub.core.paths import validate_name
from memhub.errors import BadRequest, Forbidden
from memhub.memory.service import Memory
from memhub.store import Store
from memhub.store.maintenance import fsck
from memhub.ui.deps import FormUi, Ui, UiDep

router = APIRouter(prefix="/w/{ws}/ops", include_in_schema=False)

FIGURES = (
    ("memhub_http_requests_total", "HTTP requests"),
    ("memhub_admission_rejections_total", "refused before their route"),
    ("memhub_revisions_written_total", "revisions written (this node)"),
    ("memhub_bytes_received_total", "file bytes received"),
    ("memhub_bytes_sent_total", "file bytes sent"),
    ("memhub_ratelimit_redis_failures_total", "rate-limit checks without Redis"),
)


def _admin(ui: Ui, ws: str) -> str:
    if not ui.principal.is_admin:
        raise Forbidden("operations need an admin key", context={"scope": "admin"})
    return ui.workspace(ws, "admin")


def _figures(ui: Ui) -> list[dict[str, Any]]:
    """Counters of this node's /metrics registry, summed by label where it helps."""
    registry = ui.request.app.state.metrics.registry
    totals: dict[str, dict[str, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            label = (
                sample.labels.get("status")
                or sample.labels.get("reason")
                or sample.labels.get("kind")
                or ""
            )
            if sample.name == "memhub_http_requests_total":
                label = label[:1] + "xx" if label else ""
            by = totals.setdefault(sample.name, {})
            by[label] = by.get(label, 0.0) + sample.value
    return [
        {"name": name, "title": title, "values": sorted(totals.get(name, {}).items())}
        for name, title in FIGURES
    ]


def _page(ui: Ui, workspace: str, **extra: Any) -> Response:
    store: Store = ui.request.app.state.store
    keys: KeyStore = ui.request.app.state.keys
    memory: Memory = ui.request.app.state.memory
    settings = ui.request.app.state.settings
    now = store.clock()
    return ui.render(
        "ops.html",
        workspace,
        keys=[k.to_dict() for k in keys.list()],
        leases=[lease.to_dict(now) for lease in store.leases.list(workspace)],
        index=memory.status(workspace),
        storage=store.get_workspace(workspace),
        workspaces=store.list_workspaces(),
        figures=_figures(ui),
        limits={
            "limit": settings.rate_limit,
            "window": settings.rate_window_seconds,
            "enabled": settings.rate_limit_enabled,
            "backend": "redis" if settings.redis_url else "in-process",
        },
        scopes=SCOPES,
        **extra,
    )


@router.get("")
def ops(ui: UiDep, ws: str) -> Response:
    return _page(ui, _admin(ui, ws))


@router.post("/keys")
def create_key(
    ui: FormUi,
    ws: str,
    workspace: Annotated[str, Form(max_length=64)],
    scopes: Annotated[list[str], Form(max_length=3)],
    description: Annotated[str, Form(max_length=500)] = "",
    expires_in_days: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    here = _admin(ui, ws)
    target = validate_name(workspace, "workspace")
    days: int | None = None
    if expires_in_days.strip():
        if not expires_in_days.strip().isdigit() or not 1 <= int(expires_in_days) <= 3650:
            raise BadRequest("expires in days must be a whole number from 1 to 3650")
        days = int(expires_in_days)
    store: Store = ui.request.app.state.store
    store.create_workspace(target, exist_ok=True)
    key, record = ui.request.app.state.keys.create(
        target,
        scopes,
        description=description or None,
        created_by=ui.principal.name,
        expires_in_days=days,
    )
    return _page(ui, here, new_key=key, new_record=record.to_dict())


@router.post("/keys/{key_id}/revoke")
def revoke_key(ui: FormUi, ws: str, key_id: str) -> Response:
    here = _admin(ui, ws)
    ui.request.app.state.keys.revoke(key_id)
    return RedirectResponse(f"/ui/w/{here}/ops#keys", status_code=303)


@router.post("/leases/{name}/release")
def release_lease(ui: FormUi, ws: str, name: str) -> Response:
    here = _admin(ui, ws)
    store: Store = ui.request.app.state.store
    store.leases.force_release(here, validate_name(name, "lease name"))
    return RedirectResponse(f"/ui/w/{here}/ops#leases", status_code=303)


@router.post("/index/rebuild")
def rebuild_index(ui: FormUi, ws: str) -> Response:
    here = _admin(ui, ws)
    stats = ui.request.app.state.memory.rebuild(here)
    return _page(ui, here, rebuilt=stats)


@router.post("/fsck")
def run_fsck(ui: FormUi, ws: str, verify: Annotated[bool, Form()] = False) -> Response:
    here = _admin(ui, ws)
    report = fsck(ui.request.app.state.store, verify_hashes=verify)
    return _page(ui, here, fsck=report.to_dict(), verified=verify)
