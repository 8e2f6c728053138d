"""``connect(settings)``: the client a command uses, remote or in-process."""

from __future__ import annotations

from memhub.client.http import MemhubClient
from memhub.client.profile import Profile, load_profile
from memhub.client.retry import RetryPolicy
from memhub.client.settings import ClientSettings

LOCAL_URL = "http://memhub.local"


def connect(
    settings: ClientSettings,
    profile: Profile | None = None,
    *,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    local: bool | None = None,
) -> MemhubClient:
    """A client for the profile's server, or for the API in this process when no server
    is configured (``local=True`` forces it, ``local=False`` forbids it)."""
    profile = profile or load_profile(settings)
    policy = retry or RetryPolicy(attempts=settings.retries)
    wait = timeout or settings.timeout
    if local is False or (local is None and profile.explicit):
        return MemhubClient(
            profile.server, profile.key, profile.workspace, timeout=wait, retry=policy
        )
    from memhub.client.inprocess import ASGIBridge, local_app

    app, key, resources = local_app(settings.data_dir)
    try:
        bridge = ASGIBridge(app)
    except BaseException:
        resources.close()
        raise
    resources.callback(bridge.close)  # closed in reverse: the app's lifespan, then the store
    return MemhubClient(
        LOCAL_URL,
        key,
        profile.workspace,
        timeout=wait,
        transport=bridge,
        retry=policy,
        on_close=resources.close,
    )
